//! What a page's stored bytes can decompress to: a page header's uncompressed size is a claim,
//! and both spillway's decoder and arrow-rs size a buffer by it before decompressing (arrow-rs:
//! `Vec::with_capacity` for every codec; the snappy, LZ4 and brotli codecs size their output or
//! window by it too). [`check_page`] holds the claim against the codec's own frame where it
//! states the size (snappy's length preamble, zstd's frame content size), against the stored
//! bytes for uncompressed pages, and against the codec's largest ratio elsewhere.
//!
//! Ratios: deflate (gzip) cannot exceed 1032:1 and LZ4 255:1 (a match length grows by 255 per
//! extra byte); a zstd block gives at most 128 KiB and takes at least 4 bytes (32768:1). Brotli
//! has no such bound, so the zstd ratio is its documented cap. Whatever the ratio, a claim of
//! up to [`CLAIM_FLOOR`] is accepted: so small an allocation cannot hurt, and a tiny page of
//! constants compresses better than any ratio.

use parquet::basic::Compression;

use super::header::{Header, Kind};
use super::Problem;

/// Claims up to this many bytes pass whatever the stored size (see the module docs).
pub const CLAIM_FLOOR: u64 = 1 << 20;

/// Most bytes of a compressed part's start that [`check_page`] looks at (the longest zstd frame
/// header: magic 4, descriptor 1, window 1, dictionary id 4, content size 8).
pub const PREAMBLE: usize = 18;

/// Largest ratio of deflate (gzip).
const DEFLATE_RATIO: u64 = 1032;
/// Largest ratio of LZ4 (raw blocks, frames and the Hadoop framing alike).
const LZ4_RATIO: u64 = 255;
/// Largest ratio of zstd without a frame content size, and the cap for codecs with no bound.
const ZSTD_RATIO: u64 = 32_768;

/// Bytes of levels a V2 page stores before its (maybe compressed) values; 0 for other pages.
/// Saturates: [`check_page`] refuses levels longer than the page.
pub fn levels_len(header: &Header) -> usize {
    match header.kind {
        Kind::DataV2 {
            def_len, rep_len, ..
        } => def_len.saturating_add(rep_len),
        _ => 0,
    }
}

/// Checks `header`'s uncompressed size against its payload, compressed by `codec`; `values` is
/// the start of the compressed part (after a V2 page's [`levels_len`] bytes of levels): at least
/// [`PREAMBLE`] bytes, or all of it when shorter. Index pages are decompressed by no one and pass.
pub fn check_page(codec: Compression, header: &Header, values: &[u8]) -> Result<(), Problem> {
    match header.kind {
        Kind::Other => Ok(()),
        Kind::DataV2 { compressed, .. } => {
            let levels = levels_len(header);
            if levels > header.compressed || levels > header.uncompressed {
                return Err(Problem::TruncatedLevels);
            }
            let codec = match compressed {
                true => codec,
                false => Compression::UNCOMPRESSED,
            };
            check(
                codec,
                header.compressed - levels,
                values,
                header.uncompressed - levels,
            )
        }
        Kind::Data { .. } | Kind::Dictionary { .. } => {
            check(codec, header.compressed, values, header.uncompressed)
        }
    }
}

/// Checks that `stored` bytes compressed by `codec`, starting with `head`, can give `claimed`.
pub fn check(
    codec: Compression,
    stored: usize,
    head: &[u8],
    claimed: usize,
) -> Result<(), Problem> {
    // Nothing is decompressed (arrow-rs: a V2 page of no values) or allocated.
    if claimed == 0 {
        return Ok(());
    }
    let frame = |frame: u64| match frame == claimed as u64 {
        true => Ok(()),
        false => Err(Problem::FrameSize {
            claimed,
            codec,
            frame,
        }),
    };
    let ratio = |ratio: u64| {
        let limit = (stored as u64).saturating_mul(ratio).max(CLAIM_FLOOR);
        match claimed as u64 <= limit {
            true => Ok(()),
            false => Err(Problem::Uncompressed {
                claimed: u32::try_from(claimed).unwrap_or(u32::MAX),
                stored: u32::try_from(stored).unwrap_or(u32::MAX),
                codec,
                limit,
            }),
        }
    };
    match codec {
        Compression::UNCOMPRESSED => frame(stored as u64),
        Compression::SNAPPY => match snappy_len(head) {
            Some(len) => frame(len),
            None => Err(Problem::PageHeader("no snappy length preamble".into())),
        },
        Compression::GZIP(_) => ratio(DEFLATE_RATIO),
        Compression::LZ4 | Compression::LZ4_RAW => ratio(LZ4_RATIO),
        Compression::ZSTD(_) => match zstd_content_size(head) {
            Some(size) => frame(size),
            None => ratio(ZSTD_RATIO),
        },
        Compression::BROTLI(_) | Compression::LZO => ratio(ZSTD_RATIO),
    }
}

/// The uncompressed length a raw snappy block starts with (a varint of at most 32 bits).
fn snappy_len(head: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &b) in head.iter().take(5).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return u32::try_from(v).ok().map(u64::from);
        }
    }
    None
}

/// The content size a zstd frame header states, when it states one (RFC 8878, 3.1.1.1).
fn zstd_content_size(head: &[u8]) -> Option<u64> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    if head.get(..4)? != MAGIC {
        return None;
    }
    let descriptor = *head.get(4)?;
    let single_segment = descriptor & 0x20 != 0;
    let dict_len = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    let fcs_len = match descriptor >> 6 {
        0 if single_segment => 1,
        0 => return None,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let at = 5 + usize::from(!single_segment) + dict_len;
    let bytes = head.get(at..at + fcs_len)?;
    let mut le = [0u8; 8];
    le[..fcs_len].copy_from_slice(bytes);
    let v = u64::from_le_bytes(le);
    Some(if fcs_len == 2 { v + 256 } else { v })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use parquet::compression::{create_codec, CodecOptionsBuilder};

    /// `data` compressed by `codec` (the parquet crate's codecs, as writers use them).
    pub(in crate::decode) fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
        let options = CodecOptionsBuilder::default().build();
        let mut c = create_codec(codec, &options)
            .expect("codec")
            .expect("a compressing codec");
        let mut out = Vec::new();
        c.compress(data, &mut out).expect("compress");
        out
    }

    fn codecs() -> [Compression; 6] {
        [
            Compression::SNAPPY,
            Compression::GZIP(Default::default()),
            Compression::LZ4_RAW,
            Compression::LZ4,
            Compression::ZSTD(Default::default()),
            Compression::BROTLI(Default::default()),
        ]
    }

    #[test]
    fn honest_claims_pass_for_every_codec() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let zeros = vec![0u8; 4 << 20];
        for codec in codecs() {
            for d in [&data[..], &zeros[..], &[]] {
                let c = compress(codec, d);
                assert_eq!(check(codec, c.len(), &c, d.len()), Ok(()), "{codec}");
            }
        }
        assert_eq!(check(Compression::UNCOMPRESSED, 10, &[0; 10], 10), Ok(()));
    }

    #[test]
    fn lying_claims_are_refused_for_every_codec() {
        let data: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for codec in codecs() {
            let c = compress(codec, &data);
            let lie = (c.len() * 40_000).max(2 << 20);
            assert!(check(codec, c.len(), &c, lie).is_err(), "{codec}");
            // The frame-stating codecs catch even a small lie.
            if matches!(codec, Compression::SNAPPY) {
                let e = check(codec, c.len(), &c, data.len() + 1).expect_err("a lie");
                assert!(matches!(e, Problem::FrameSize { .. }), "{e}");
            }
        }
        assert!(check(Compression::UNCOMPRESSED, 10, &[0; 10], 11).is_err());
        assert!(check(Compression::SNAPPY, 0, &[], 5).is_err());
    }

    #[test]
    fn zstd_frame_content_sizes_are_read_in_every_width() {
        // Single segment, 1-byte size.
        assert_eq!(
            zstd_content_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x20, 7]),
            Some(7)
        );
        // 2-byte size (+256), with a window byte.
        assert_eq!(
            zstd_content_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x50, 1, 0]),
            Some(257)
        );
        // 8-byte size with a 4-byte dictionary id, single segment.
        let mut h = vec![0x28, 0xb5, 0x2f, 0xfd, 0xe3, 9, 9, 9, 9];
        h.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(zstd_content_size(&h), Some(1 << 40));
        // No size, and a truncated header.
        assert_eq!(
            zstd_content_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50]),
            None
        );
        assert_eq!(zstd_content_size(&[0x28, 0xb5, 0x2f, 0xfd, 0x80]), None);
        // A zstd frame stating 7 bytes refuses a claim of 8.
        let h = [0x28, 0xb5, 0x2f, 0xfd, 0x20, 7];
        let zstd = Compression::ZSTD(Default::default());
        assert!(check(zstd, 100, &h, 8).is_err());
    }
}
