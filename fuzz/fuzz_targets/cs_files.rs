//! Arbitrary bytes as a count file and as a cross-section plan (both untrusted: they travel
//! between machines). Every outcome must be a parse or an error; a panic or an allocation the
//! bytes did not pay for is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = spillway::internals::parse_counts(data);
    let _ = spillway::internals::parse_plan(data);
});
