//! Vetting a column chunk before arrow-rs reads it: arrow-rs allocates from page headers before
//! it finds the bytes missing (a dictionary page claiming 1.6 G values made it ask for 12.9 GB,
//! `fuzz/findings/`), which aborts a process under an address-space or cgroup limit. Here every
//! page header of the chunk is read with spillway's own parser (headers and the few bytes of a
//! codec's preamble only, never the payloads) and its claims held against the bytes:
//!
//! - the chunk lies inside the file, and each page inside the chunk;
//! - each page's uncompressed size against its codec's data (`claim`);
//! - a dictionary page's values times their smallest stored width within its uncompressed size;
//! - a flat column's data pages hold no more values than the row group has rows.
//!
//! Memory: one buffer of at most [`WINDOW`] bytes (a header with long statistics), usually a few
//! KiB. Time: one small read per page header.

use super::claim::{check_page, levels_len, PREAMBLE};
use super::column::Chunk;
use super::header::{parse_header, Kind};
use super::page::{ReadAt, WINDOW};
use super::{DecodeError, Problem};

/// Bytes read at once while walking headers: a page header and, for small pages, the next ones.
const READ: u64 = 8 << 10;

/// Bits a stored value takes at least, by physical type: what a dictionary page's values need.
pub fn value_bits(physical: parquet::basic::Type, type_length: i32) -> u64 {
    use parquet::basic::Type;
    match physical {
        Type::BOOLEAN => 1,
        Type::INT32 | Type::FLOAT => 32,
        Type::INT64 | Type::DOUBLE => 64,
        Type::INT96 => 96,
        // A 4-byte length, even for an empty value.
        Type::BYTE_ARRAY => 32,
        Type::FIXED_LEN_BYTE_ARRAY => 8 * u64::try_from(type_length).unwrap_or(0).max(1),
    }
}

/// The bytes of a file that the walk has read: `buf` holds `[at, at + buf.len())`.
struct Bytes {
    at: u64,
    buf: Vec<u8>,
}

impl Bytes {
    /// `[from, from + n)` of the file, `n` clamped to `end`; reads at least [`READ`] bytes when
    /// it must read.
    fn get(&mut self, file: &dyn ReadAt, from: u64, n: u64, end: u64) -> Result<&[u8], Problem> {
        let n = n.min(end.saturating_sub(from));
        let held = self.at + self.buf.len() as u64;
        if from < self.at || from + n > held {
            let len = n.max(READ).min(end - from);
            // `len` is at most the bytes left of the chunk, which lies inside the file, and at
            // most a header's retry window (see `vet_chunk`).
            self.buf.resize(len as usize, 0);
            self.at = from;
            if let Err(e) = file.read_exact_at(&mut self.buf, from) {
                self.buf.clear();
                return Err(Problem::Parquet(format!("reading the column chunk: {e}")));
            }
        }
        let start = (from - self.at) as usize;
        Ok(&self.buf[start..start + n as usize])
    }
}

/// Walks every page header of `chunk` (see the module docs); `value_bits` is [`value_bits`] of
/// the column, `flat` whether it has no repetition levels (then each value is a row).
pub fn vet_chunk(
    file: &dyn ReadAt,
    chunk: &Chunk,
    value_bits: u64,
    flat: bool,
) -> Result<(), DecodeError> {
    let outside = || DecodeError {
        page: None,
        problem: Problem::ChunkOutsideFile {
            start: chunk.start,
            len: chunk.len,
            file_len: chunk.file_len,
        },
    };
    let end = chunk.start.checked_add(chunk.len).ok_or_else(outside)?;
    if end > chunk.file_len {
        return Err(outside());
    }
    let mut bytes = Bytes {
        at: 0,
        buf: Vec::new(),
    };
    let (mut pos, mut page, mut values) = (chunk.start, 0u32, 0usize);
    while pos < end {
        let at = |problem| DecodeError {
            page: Some(page),
            problem,
        };
        // A header is small: parse it from a short read, or retry with up to a window (headers
        // with long statistics), as the page reader does.
        let mut want = 256u64;
        let (header, hlen) = loop {
            let head = bytes.get(file, pos, want, end).map_err(at)?;
            match parse_header(head) {
                Ok(h) => break h,
                Err(_) if (head.len() as u64) < end - pos && want < WINDOW as u64 => {
                    want = WINDOW as u64;
                }
                Err(e) => return Err(at(e)),
            }
        };
        let total = hlen as u64 + header.compressed as u64;
        if total > end - pos {
            return Err(at(Problem::PageSize(header.compressed)));
        }
        // The compressed part's first bytes (after a V2 page's levels): the codec's preamble.
        let levels = levels_len(&header).min(header.compressed);
        let from = pos + hlen as u64 + levels as u64;
        let n = (header.compressed - levels).min(PREAMBLE) as u64;
        let preamble = bytes.get(file, from, n, end).map_err(at)?;
        check_page(chunk.codec, &header, preamble).map_err(at)?;
        match header.kind {
            Kind::Dictionary { num_values, .. } => {
                let need = (num_values as u128) * u128::from(value_bits);
                if need > (header.uncompressed as u128) * 8 {
                    return Err(at(Problem::DictionaryClaim {
                        values: num_values,
                        bytes: header.uncompressed,
                    }));
                }
            }
            Kind::Data { num_values, .. } | Kind::DataV2 { num_values, .. } if flat => {
                values = values.saturating_add(num_values);
                if values > chunk.rows {
                    return Err(at(Problem::MoreValues));
                }
            }
            _ => {}
        }
        pos += total;
        page += 1;
    }
    Ok(())
}

#[cfg(test)]
#[path = "vet_tests.rs"]
mod tests;
