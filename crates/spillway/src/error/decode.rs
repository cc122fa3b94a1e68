//! What is wrong with a column chunk the fast decoder or the page vetting read: the page, and the
//! problem ([`DecodeError`], [`Problem`]); [`SymbolErrorKind::Decode`](super::SymbolErrorKind::Decode)
//! adds the file, the column and the row group.

/// What is wrong with a column chunk of a file the fast decoder reads, and in which of its pages
/// (counted from 0 in file order, the dictionary page included). [`SymbolErrorKind::Decode`](super::SymbolErrorKind::Decode) adds
/// the file, the column and the row group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", page.map(|p| format!("page {p}: ")).unwrap_or_default())]
pub struct DecodeError {
    /// The page, when the problem is in one.
    pub page: Option<u32>,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The parquet crate could not read the page (decompression), or the file could not be read.
    #[error("{0}")]
    Parquet(String),
    /// A page header is not valid thrift, or lacks a required field.
    #[error("page header: {0}")]
    PageHeader(String),
    /// A page larger than its chunk or than any writer makes.
    #[error("page of {0} bytes does not fit its column chunk")]
    PageSize(usize),
    /// The page's CRC does not match its bytes.
    #[error("page checksum mismatch (stored {stored:#010x}, computed {actual:#010x})")]
    Checksum {
        /// Stored CRC.
        stored: u32,
        /// CRC of the bytes read.
        actual: u32,
    },
    /// An encoding the fast decoder does not read where the footer promised it would.
    #[error("{0} encoding {1} is not supported here")]
    Encoding(&'static str, parquet::basic::Encoding),
    /// A repeated value of the hybrid encoding is out of range (a definition level above the
    /// column's maximum, say).
    #[error("level {value} is above the maximum level {max}")]
    ValueOutOfRange {
        /// The value.
        value: u32,
        /// The largest allowed.
        max: u32,
    },
    /// An RLE / bit-packed run is cut short.
    #[error("truncated RLE / bit-packed run")]
    TruncatedRun,
    /// A run header of more than 64 bits.
    #[error("RLE run header too long")]
    RunHeaderTooLong,
    /// A run longer than memory can index.
    #[error("RLE run too long")]
    RunTooLong,
    /// The encoded data ended before the values it announced.
    #[error("RLE data ended before its values")]
    DataEnded,
    /// The definition levels of a V1 page are cut short.
    #[error("truncated definition levels")]
    TruncatedLevels,
    /// Repetition levels in a flat column.
    #[error("repetition levels in a column that has none")]
    RepetitionLevels,
    /// Definition levels in a required column.
    #[error("definition levels in a required column")]
    LevelsOnRequiredColumn,
    /// A dictionary index width over 32 bits.
    #[error("dictionary index width {0}")]
    IndexWidth(u32),
    /// The dictionary page's size is not its value count times the value width.
    #[error("dictionary page size does not match its value count")]
    DictionarySize,
    /// An index past the dictionary's end.
    #[error("dictionary index {index} out of range ({len} entries)")]
    DictionaryIndex {
        /// The index.
        index: u32,
        /// Dictionary entries.
        len: usize,
    },
    /// The page's plain values end before its levels say.
    #[error("plain values end early")]
    PlainValuesShort,
    /// Bytes left after the page's last plain value.
    #[error("{0} bytes left after the page's last value: the page holds more values than its levels announce")]
    LeftoverBytes(usize),
    /// Dictionary indices left after the page's last value (beyond a bit-packed group's padding).
    #[error("dictionary indices left after the page's last value: the page holds more values than its levels announce")]
    LeftoverIndices,
    /// Definition levels left after the page's last row.
    #[error("definition levels left after the page's last row")]
    LeftoverLevels,
    /// The chunk ended before the row group's rows.
    #[error("the column chunk holds fewer values than its row group's rows")]
    FewerValues,
    /// The chunk holds values past the row group's rows.
    #[error("the column chunk holds more values than its row group's rows")]
    MoreValues,
    /// A page header claims more uncompressed bytes than its codec's frame states.
    #[error("page claims {claimed} bytes uncompressed where its {} data says {frame}", codec_name(*codec))]
    FrameSize {
        /// Bytes claimed by the page header.
        claimed: usize,
        /// The codec.
        codec: parquet::basic::Compression,
        /// Bytes the codec's frame states (or, uncompressed, the bytes stored).
        frame: u64,
    },
    /// A page header claims more uncompressed bytes than its stored bytes can decompress to.
    #[error("page claims {claimed} bytes uncompressed, more than its {stored} {} bytes can hold (at most {limit})", codec_name(*codec))]
    Uncompressed {
        /// Bytes claimed by the page header (a thrift i32).
        claimed: u32,
        /// Bytes stored (a thrift i32).
        stored: u32,
        /// The codec.
        codec: parquet::basic::Compression,
        /// The most those bytes can give.
        limit: u64,
    },
    /// A dictionary page claims more values than its uncompressed size can hold.
    #[error("dictionary page claims {values} values in {bytes} bytes")]
    DictionaryClaim {
        /// Values claimed.
        values: usize,
        /// Bytes of the page, uncompressed.
        bytes: usize,
    },
    /// A column chunk's byte range, from the footer, is not inside the file.
    #[error("column chunk [{start}, +{len}) lies outside the file ({file_len} bytes)")]
    ChunkOutsideFile {
        /// First byte, as the footer says.
        start: u64,
        /// Bytes, as the footer says.
        len: u64,
        /// Bytes of the file.
        file_len: u64,
    },
}

/// The name of a parquet codec, for messages.
fn codec_name(codec: parquet::basic::Compression) -> &'static str {
    use parquet::basic::Compression;
    match codec {
        Compression::UNCOMPRESSED => "uncompressed",
        Compression::SNAPPY => "snappy",
        Compression::GZIP(_) => "gzip",
        Compression::LZO => "lzo",
        Compression::BROTLI(_) => "brotli",
        Compression::LZ4 => "lz4",
        Compression::ZSTD(_) => "zstd",
        Compression::LZ4_RAW => "lz4_raw",
    }
}
