//! The fast decoder: flat numeric columns with plain or dictionary pages, decoded straight into the
//! output type. It knows no pipeline types: it decodes one column chunk at a time, and the read
//! stage (`read::fast`) drives it.
//!
//! `page` reads a column chunk's pages itself: large reads through a bounded window, page headers
//! (`header`, a minimal thrift compact reader), CRCs, and decompression by codecs a reader thread keeps for the whole build. `column`
//! decodes definition levels (RLE / bit-packed hybrid, `hybrid`) and values, PLAIN or
//! dictionary-encoded, straight into the output type. A dictionary page is converted to the
//! output type once, and indices gather straight into the output: no arrow arrays, no float64
//! copy of every value. `physical` says which columns it reads; files with anything else stay on
//! the arrow-rs path, which produces the same values (tests/decoders.rs builds random files both
//! ways and compares bytes). The layers depend one way: `column` on `page` and `hybrid`, `page`
//! on `header`; the fuzz targets' entry points (`fuzz`, the `fuzzing` feature) sit above them all.
//!
//! `vet` walks a column chunk's page headers before arrow-rs reads it, holding every claim that
//! sizes an allocation (chunk and page sizes, uncompressed sizes against the codec's data
//! (`claim`), dictionary and data page value counts) against the bytes; the page reader checks
//! the same uncompressed-size claims before it decompresses.
//!
//! It is stricter than arrow-rs where arrow-rs is silent: a definition level above the column's
//! maximum, a page holding more values than its levels announce, or a chunk holding more rows than
//! its row group, are errors.

mod claim;
mod column;
#[cfg(feature = "fuzzing")]
mod fuzz;
mod header;
mod hybrid;
mod page;
mod physical;
mod vet;

pub use column::{check_levels, Buffers, Chunk, ColumnDecoder, STEP_SCRATCH};
#[cfg(feature = "fuzzing")]
pub use fuzz::{fuzz_hybrid, fuzz_pages};
pub use page::{Codecs, ReadAt, WINDOW};
pub use physical::{
    chunk_eligible, eligible, fast_reading, single_leaves, Decoded, Physical, Role,
};
pub use vet::{value_bits, vet_chunk};

pub use crate::error::{DecodeError, Problem};
