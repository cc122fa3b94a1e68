//! Unit tests of `vet`: honest chunks pass, each lie is refused with its own problem.

use crate::decode::claim::tests::compress;
use parquet::basic::{Compression, Type};

use super::*;

/// A file in memory.
struct Mem(Vec<u8>);

impl ReadAt for Mem {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| self.0.get(o..o + buf.len()))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// An i32 field `delta` ids after the last.
fn i32_field(delta: u8, v: i64, out: &mut Vec<u8>) {
    out.push(delta << 4 | 5);
    varint(((v << 1) ^ (v >> 63)) as u64, out);
}

/// A page header: type 0 (data, V1) or 2 (dictionary), `n` values, plain encoding.
fn header(page_type: i64, uncompressed: i64, compressed: i64, n: i64) -> Vec<u8> {
    let mut h = Vec::new();
    i32_field(1, page_type, &mut h);
    i32_field(1, uncompressed, &mut h);
    i32_field(1, compressed, &mut h);
    match page_type {
        // 5: data page header {num_values, encoding PLAIN, def RLE, rep RLE}
        0 => {
            h.push(2 << 4 | 12);
            i32_field(1, n, &mut h);
            i32_field(1, 0, &mut h);
            i32_field(1, 3, &mut h);
            i32_field(1, 3, &mut h);
        }
        // 7: dictionary page header {num_values, encoding PLAIN}
        _ => {
            h.push(4 << 4 | 12);
            i32_field(1, n, &mut h);
            i32_field(1, 0, &mut h);
        }
    }
    h.push(0);
    h.push(0);
    h
}

/// A chunk of `pages` (header, payload) at offset 4 of a file, and the file.
fn chunk(codec: Compression, rows: usize, pages: &[(Vec<u8>, Vec<u8>)]) -> (Chunk, Mem) {
    let mut file = b"PAR1".to_vec();
    for (h, p) in pages {
        file.extend_from_slice(h);
        file.extend_from_slice(p);
    }
    let c = Chunk {
        start: 4,
        len: file.len() as u64 - 4,
        codec,
        rows,
        file_len: file.len() as u64,
    };
    (c, Mem(file))
}

/// A dictionary page of 3 doubles and a data page of 5 indices... stored plainly: 5 doubles.
fn honest(codec: Compression) -> Vec<(Vec<u8>, Vec<u8>)> {
    let dict: Vec<u8> = [1.0f64, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let data: Vec<u8> = (0..5).flat_map(|v| f64::from(v).to_le_bytes()).collect();
    [(2, dict, 3), (0, data, 5)]
        .into_iter()
        .map(|(t, raw, n)| {
            let stored = match codec {
                Compression::UNCOMPRESSED => raw.clone(),
                c => compress(c, &raw),
            };
            (header(t, raw.len() as i64, stored.len() as i64, n), stored)
        })
        .collect()
}

fn codecs() -> [Compression; 6] {
    [
        Compression::UNCOMPRESSED,
        Compression::SNAPPY,
        Compression::GZIP(Default::default()),
        Compression::LZ4_RAW,
        Compression::ZSTD(Default::default()),
        Compression::BROTLI(Default::default()),
    ]
}

const F64: u64 = 64;

#[test]
fn honest_pages_pass_for_every_codec() {
    for codec in codecs() {
        let (c, file) = chunk(codec, 5, &honest(codec));
        assert_eq!(vet_chunk(&file, &c, F64, true), Ok(()), "{codec}");
    }
}

#[test]
fn a_lying_dictionary_is_refused_before_anything_is_allocated() {
    // The finding's shape: 1.6 G values claimed by a 24-byte page.
    let mut pages = honest(Compression::UNCOMPRESSED);
    pages[0].0 = header(2, 24, 24, 1_616_953_743);
    let (c, file) = chunk(Compression::UNCOMPRESSED, 5, &pages);
    let e = vet_chunk(&file, &c, F64, true).expect_err("refused");
    assert_eq!(e.page, Some(0));
    assert!(matches!(e.problem, Problem::DictionaryClaim { .. }), "{e}");
    // Byte arrays take at least 4 bytes each: 7 values in 24 bytes cannot be.
    pages[0].0 = header(2, 24, 24, 7);
    let (c, file) = chunk(Compression::UNCOMPRESSED, 5, &pages);
    let bits = value_bits(Type::BYTE_ARRAY, 0);
    assert!(vet_chunk(&file, &c, bits, true).is_err());
    pages[0].0 = header(2, 24, 24, 6);
    let (c, file) = chunk(Compression::UNCOMPRESSED, 5, &pages);
    assert_eq!(vet_chunk(&file, &c, bits, true), Ok(()));
}

#[test]
fn a_lying_uncompressed_size_is_refused_for_every_codec() {
    for codec in codecs() {
        let mut pages = honest(codec);
        let stored = pages[1].1.len() as i64;
        // 1 GiB claimed by a few dozen stored bytes: beyond every codec's ratio.
        pages[1].0 = header(0, 1 << 30, stored, 5);
        let (c, file) = chunk(codec, 5, &pages);
        let e = vet_chunk(&file, &c, F64, true).expect_err("refused");
        assert_eq!(e.page, Some(1), "{codec}");
        assert!(
            matches!(
                e.problem,
                Problem::Uncompressed { .. } | Problem::FrameSize { .. }
            ),
            "{codec}: {e}"
        );
    }
    // Codecs that state the size catch a lie of one byte.
    for codec in [Compression::UNCOMPRESSED, Compression::SNAPPY] {
        let mut pages = honest(codec);
        let stored = pages[1].1.len() as i64;
        pages[1].0 = header(0, 41, stored, 5);
        let (c, file) = chunk(codec, 5, &pages);
        assert!(vet_chunk(&file, &c, F64, true).is_err(), "{codec}");
    }
}

#[test]
fn truncated_headers_and_chunks_past_the_file_are_refused() {
    let pages = honest(Compression::UNCOMPRESSED);
    let (c, file) = chunk(Compression::UNCOMPRESSED, 5, &pages);
    // The chunk cut inside the second page's header, and inside its payload.
    let second = 4 + (pages[0].0.len() + pages[0].1.len()) as u64;
    for cut in [second + 3, second + pages[1].0.len() as u64 + 2] {
        let short = Chunk { len: cut - 4, ..c };
        let e = vet_chunk(&file, &short, F64, true).expect_err("refused");
        assert_eq!(e.page, Some(1), "cut at {cut}: {e}");
    }
    // A footer claiming a chunk longer than the file.
    let long = Chunk { len: 1 << 40, ..c };
    let e = vet_chunk(&file, &long, F64, true).expect_err("refused");
    assert!(matches!(e.problem, Problem::ChunkOutsideFile { .. }), "{e}");
    let far = Chunk {
        start: u64::MAX - 2,
        ..c
    };
    assert!(vet_chunk(&file, &far, F64, true).is_err());
}

#[test]
fn data_pages_may_not_claim_more_values_than_rows() {
    let mut pages = honest(Compression::UNCOMPRESSED);
    let (c, file) = chunk(Compression::UNCOMPRESSED, 4, &pages);
    let e = vet_chunk(&file, &c, F64, true).expect_err("refused");
    assert_eq!(e.problem, Problem::MoreValues);
    // Repeated columns count values, not rows: not checked.
    assert_eq!(vet_chunk(&file, &c, F64, false), Ok(()));
    pages[1].0 = header(0, 40, 40, i64::from(i32::MAX));
    let (c, file) = chunk(Compression::UNCOMPRESSED, 5, &pages);
    assert!(vet_chunk(&file, &c, F64, true).is_err());
}

#[test]
fn headers_with_long_statistics_are_read_whole() {
    // A data page header carrying 3000 bytes of statistics (skipped by the parser).
    let mut pages = honest(Compression::UNCOMPRESSED);
    let mut h = header(0, 40, 40, 5);
    h.pop(); // the header's STOP
    h.push(5 << 4 | 8); // field 10, binary: unknown to the parser, skipped
    varint(3000, &mut h);
    h.extend(std::iter::repeat_n(7u8, 3000));
    h.push(0);
    pages[1].0 = h;
    let (c, file) = chunk(Compression::UNCOMPRESSED, 5, &pages);
    assert_eq!(vet_chunk(&file, &c, F64, true), Ok(()));
}
