//! Arbitrary bytes as a dataset manifest (`dataset.json`: untrusted, it comes from a bucket or a
//! shared directory), of either kind (a sharded build's, a collection's). Every outcome must be
//! a parse or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = spillway::dataset::parse_any_manifest(std::path::Path::new("dataset.json"), data);
});
