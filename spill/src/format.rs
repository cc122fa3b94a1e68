//! The fixed-size parts of a spill file: constants, the header, the trailer, dtypes and roles.
//!
//! Everything here mirrors a table in `SPEC.md`; change both together.

use crate::error::{Error, Result};

/// Magic at byte 0 of every spill file (`\x89SPILL\r\n`, PNG-style: a high bit and a CR-LF catch
/// 7-bit and newline-mangling transfers).
pub const MAGIC: [u8; 8] = *b"\x89SPILL\r\n";
/// Magic in the last 8 bytes of a committed file: the commit mark, written last.
pub const TRAILER_MAGIC: [u8; 8] = *b"SPILLEND";
/// Major format version this crate writes and reads. A file with another major is refused.
pub const VERSION_MAJOR: u16 = 1;
/// Minor format version this crate writes. Files with a newer minor are read (see SPEC.md).
pub const VERSION_MINOR: u16 = 2;
/// Every column region starts on a multiple of this (the page size; also the O_DIRECT unit).
pub const ALIGN: u64 = 4096;
/// Size of the header region at offset 0 (one alignment unit; the first column starts here).
pub const HEADER_LEN: u64 = ALIGN;
/// Bytes of the header that carry fields; the rest of the header region is zero.
pub const HEADER_FIELDS_LEN: usize = 16;
/// Size of the trailer, the last bytes of the file.
pub const TRAILER_LEN: u64 = 64;
/// Smallest possible spill file: header, an empty metadata object would still need 2 bytes, trailer.
pub const MIN_FILE_LEN: u64 = HEADER_LEN + TRAILER_LEN;

/// Checksum algorithm id for CRC-32 (IEEE 802.3 polynomial, as zlib's `crc32`). The only one defined.
pub const CHECKSUM_CRC32: u32 = 1;
/// Required-feature bit 0 (1.2): the rows are time-major (`"order": "time"`). A reader of 1.0 or
/// 1.1 knows no bits, so it refuses such a file instead of reading its symbol table as row ranges.
pub const FEATURE_TIME_ORDER: u64 = 1;
/// Required-feature bits this reader understands: [`FEATURE_TIME_ORDER`]. Any other set bit is
/// refused.
pub const KNOWN_REQUIRED_FEATURES: u64 = FEATURE_TIME_ORDER;

/// Default bytes per checksummed column chunk (4 MiB: 52 chunks for a 218 MB column, so `verify`
/// parallelises and names damaged rows to within 1M float32 rows).
pub const DEFAULT_CHUNK_BYTES: u64 = 4 << 20;

/// Hard caps on lengths read from a file (and accepted by the writer). A field over its cap is
/// refused before anything is allocated for it.
pub mod caps {
    /// Largest metadata block.
    pub const MAX_METADATA_BYTES: u64 = 1 << 30;
    /// Most columns.
    pub const MAX_COLUMNS: usize = 1 << 20;
    /// Most symbols.
    pub const MAX_SYMBOLS: usize = 1 << 26;
    /// Longest column or symbol name, in bytes of UTF-8.
    pub const MAX_NAME_BYTES: usize = 4096;
    /// Smallest and largest checksum chunk.
    pub const MIN_CHUNK_BYTES: u64 = super::ALIGN;
    /// Largest checksum chunk.
    pub const MAX_CHUNK_BYTES: u64 = 1 << 30;
    /// Most rows (2^48: a 1 PiB float32 column; keeps every `rows x 8` product far from overflow).
    pub const MAX_ROWS: u64 = 1 << 48;
    /// Most runs in each run-length list of the timestamp index (`steps`, `rows`; two integers a
    /// run): 16 Mi runs (a run is 16 bytes parsed and 32 in the index, so a hostile index costs
    /// at most 1.5 GiB, and needs 130 MB of metadata to).
    pub const MAX_TIMESTAMP_RUNS: u64 = 1 << 24;
}

/// Element type of a column. All values are little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// IEEE-754 binary32.
    F32,
    /// IEEE-754 binary64.
    F64,
    /// Two's-complement 64-bit integer.
    I64,
    /// Two's-complement 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 8-bit integer.
    U8,
}

impl DType {
    /// Every dtype, in spec order.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F64,
        DType::I64,
        DType::I32,
        DType::U32,
        DType::U8,
    ];

    /// Bytes per element.
    pub const fn size(self) -> u64 {
        match self {
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 => 1,
        }
    }

    /// The name stored in the metadata (also numpy's little-endian dtype string minus the `<`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::U8 => "u8",
        }
    }

    /// Parses a stored dtype name.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether the dtype is an unsigned integer.
    pub const fn is_unsigned(self) -> bool {
        matches!(self, DType::U32 | DType::U8)
    }

    /// Whether NaN counts apply.
    pub const fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a column means to a consumer. Unknown roles from newer writers read as [`Role::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The row timestamp (int64 nanoseconds since the Unix epoch, UTC).
    Time,
    /// The symbol code: an index into the symbol table.
    Symbol,
    /// The training target.
    Target,
    /// A model input; features of one dtype are stored at a constant stride (SPEC.md).
    Feature,
    /// Anything else.
    Other,
}

impl Role {
    /// The name stored in the metadata.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Time => "time",
            Role::Symbol => "symbol",
            Role::Target => "target",
            Role::Feature => "feature",
            Role::Other => "other",
        }
    }

    /// Parses a stored role; anything unknown is `Other` (forward compatible).
    pub fn from_name(name: &str) -> Role {
        [Role::Time, Role::Symbol, Role::Target, Role::Feature]
            .into_iter()
            .find(|r| r.name() == name)
            .unwrap_or(Role::Other)
    }
}

/// Rounds `n` up to a multiple of [`ALIGN`], or `None` on overflow.
pub const fn align_up(n: u64) -> Option<u64> {
    match n.checked_add(ALIGN - 1) {
        Some(v) => Some(v / ALIGN * ALIGN),
        None => None,
    }
}

/// Encodes the header fields (the first [`HEADER_FIELDS_LEN`] bytes; the rest of the header is zero).
pub fn encode_header() -> [u8; HEADER_FIELDS_LEN] {
    let mut h = [0u8; HEADER_FIELDS_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
    h[10..12].copy_from_slice(&VERSION_MINOR.to_le_bytes());
    h[12..16].copy_from_slice(&(ALIGN as u32).to_le_bytes());
    h
}

/// The decoded trailer: where the metadata is and how to read the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Byte offset of the metadata block.
    pub metadata_offset: u64,
    /// Byte length of the metadata block.
    pub metadata_len: u64,
    /// Length of the whole file, trailer included.
    pub file_len: u64,
    /// Required-feature bits (a reader refuses bits it does not know).
    pub required_features: u64,
    /// Format major version.
    pub major: u16,
    /// Format minor version.
    pub minor: u16,
    /// Checksum algorithm id for the metadata and the data chunks.
    pub checksum_algorithm: u32,
    /// Checksum of the metadata bytes.
    pub metadata_checksum: u32,
}

impl Trailer {
    /// Encodes the trailer, computing its own checksum.
    pub fn encode(&self) -> [u8; TRAILER_LEN as usize] {
        let mut t = [0u8; TRAILER_LEN as usize];
        t[0..8].copy_from_slice(&self.metadata_offset.to_le_bytes());
        t[8..16].copy_from_slice(&self.metadata_len.to_le_bytes());
        t[16..24].copy_from_slice(&self.file_len.to_le_bytes());
        t[24..32].copy_from_slice(&self.required_features.to_le_bytes());
        t[32..34].copy_from_slice(&self.major.to_le_bytes());
        t[34..36].copy_from_slice(&self.minor.to_le_bytes());
        t[36..40].copy_from_slice(&self.checksum_algorithm.to_le_bytes());
        t[40..44].copy_from_slice(&self.metadata_checksum.to_le_bytes());
        let crc = crc32fast::hash(&t[0..48]);
        t[48..52].copy_from_slice(&crc.to_le_bytes());
        t[56..64].copy_from_slice(&TRAILER_MAGIC);
        t
    }

    /// Decodes and checks a trailer: magic, its own checksum, reserved bytes.
    pub fn decode(t: &[u8; TRAILER_LEN as usize]) -> Result<Trailer> {
        if t[56..64] != TRAILER_MAGIC {
            return Err(Error::NotCommitted);
        }
        let stored = le_u32(t, 48);
        let actual = crc32fast::hash(&t[0..48]);
        if stored != actual {
            return Err(Error::TrailerChecksum { stored, actual });
        }
        if t[44..48] != [0; 4] || t[52..56] != [0; 4] {
            return Err(Error::TrailerReserved);
        }
        Ok(Trailer {
            metadata_offset: le_u64(t, 0),
            metadata_len: le_u64(t, 8),
            file_len: le_u64(t, 16),
            required_features: le_u64(t, 24),
            major: le_u16(t, 32),
            minor: le_u16(t, 34),
            checksum_algorithm: le_u32(t, 36),
            metadata_checksum: le_u32(t, 40),
        })
    }
}

/// Decodes the header fields: magic, version, alignment. Returns (major, minor).
pub fn decode_header(h: &[u8; HEADER_FIELDS_LEN]) -> Result<(u16, u16)> {
    if h[0..8] != MAGIC {
        return Err(Error::BadMagic);
    }
    let align = le_u32(h, 12);
    if u64::from(align) != ALIGN {
        return Err(Error::BadAlignmentField { align });
    }
    Ok((le_u16(h, 8), le_u16(h, 10)))
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trips_and_detects_flips() {
        let t = Trailer {
            metadata_offset: 8192,
            metadata_len: 300,
            file_len: 8556,
            required_features: 0,
            major: 1,
            minor: 0,
            checksum_algorithm: CHECKSUM_CRC32,
            metadata_checksum: 0xdead_beef,
        };
        let bytes = t.encode();
        assert_eq!(Trailer::decode(&bytes).ok(), Some(t));
        for bit in 0..(48 * 8) {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Trailer::decode(&b).is_err(),
                "flip of bit {bit} went unnoticed"
            );
        }
    }

    #[test]
    fn dtype_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("f16"), None);
        assert_eq!(Role::from_name("feature"), Role::Feature);
        assert_eq!(Role::from_name("embedding"), Role::Other);
    }

    #[test]
    fn align_up_rounds_and_saturates() {
        assert_eq!(align_up(0), Some(0));
        assert_eq!(align_up(1), Some(4096));
        assert_eq!(align_up(4096), Some(4096));
        assert_eq!(align_up(u64::MAX), None);
    }
}
