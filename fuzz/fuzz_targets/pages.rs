//! Arbitrary bytes as a column chunk's pages: spillway's own thrift page-header parser, the
//! window that walks the chunk, CRC checks and decompression (every codec), and the column decoder
//! on top, for a required and an optional DOUBLE column. Every outcome must be values or an
//! error; a panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spillway::internals::fuzz_pages(data));
