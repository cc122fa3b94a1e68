//! The fuzz targets' entry points (the `fuzzing` feature; not an API): each takes arbitrary
//! bytes into one decoder layer and must never panic. `fuzz/fuzz_targets/` calls them through
//! `spillway::internals`.

use std::io::Write;

use parquet::basic::Compression;

use super::column::{Buffers, Chunk, ColumnDecoder};
use super::hybrid::Hybrid;
use super::page::Codecs;
use super::physical::Physical;

/// Fuzzing entry (the `fuzzing` feature; not an API): `data[0] % 33` is the bit width, `data[1]`
/// seeds the read sizes, the rest is an RLE / bit-packed hybrid stream, read as levels and indices
/// are (whole reads and all-equal skips) until it errors or 65,536 values are out. Must never panic.
pub fn fuzz_hybrid(data: &[u8]) {
    let [w, seed, stream @ ..] = data else { return };
    let width = u32::from(*w) % 33;
    let mut h = Hybrid::new(width, u32::MAX);
    let mut out = vec![0u32; 256];
    let (mut done, mut step) = (0usize, usize::from(*seed));
    while done < 1 << 16 {
        step = (step * 31 + 7) % 251 + 1;
        let ok = if step % 3 == 0 {
            h.skip_repeat(stream, step, step as u32 % 2).is_ok()
        } else {
            h.read(stream, &mut out[..step]).is_ok()
        };
        if !ok {
            return;
        }
        done += step;
    }
    let _ = h.exhausted(stream);
}

/// Fuzzing entry (the `fuzzing` feature; not an API): `data[0]` picks the codec and the column's
/// shape, the rest is a column chunk of 100 rows, written to a temporary file and decoded page by
/// page (headers, CRCs, decompression, levels, values) as the fast decoder reads a chunk. Must
/// never panic.
pub fn fuzz_pages(data: &[u8]) {
    let [pick, chunk @ ..] = data else { return };
    let codec = match pick % 6 {
        0 => Compression::UNCOMPRESSED,
        1 => Compression::SNAPPY,
        2 => Compression::GZIP(Default::default()),
        3 => Compression::LZ4_RAW,
        4 => Compression::ZSTD(Default::default()),
        _ => Compression::BROTLI(Default::default()),
    };
    let Ok(mut file) = tempfile::tempfile() else {
        return;
    };
    if file.write_all(chunk).is_err() {
        return;
    }
    let c = Chunk {
        start: 0,
        len: chunk.len() as u64,
        codec,
        rows: 100,
        file_len: chunk.len() as u64,
    };
    let mut codecs = Codecs::default();
    let mut d: ColumnDecoder<f64> =
        ColumnDecoder::new(&c, Physical::F64, pick & 8 != 0, Buffers::default());
    let mut out = [0f64; 37];
    let mut valid = [false; 37];
    let skip = usize::from(pick >> 4);
    if d.skip(&file, &mut codecs, skip).is_err() {
        return;
    }
    let mut left = 100 - skip;
    while left > 0 {
        let n = left.min(out.len());
        if d.read(&file, &mut codecs, &mut out[..n], Some(&mut valid[..n]))
            .is_err()
        {
            return;
        }
        left -= n;
    }
    let _ = d.finish(&file);
}
