//! Arbitrary bytes as the fast decoder's RLE / bit-packed hybrid stream (definition levels and
//! dictionary indices come straight from page bytes): every width 0..=32, reads of every size and
//! the all-equal skip. Every outcome must be values or an error; a panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spillway::internals::fuzz_hybrid(data));
