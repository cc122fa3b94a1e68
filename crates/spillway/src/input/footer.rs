//! Parquet footers: parsing them (metadata only: statistics, page indexes and encoding stats are
//! skipped) under the panic guard, a file's identity (size, modification time) and footer
//! checksum, the decoder working-set estimate of a column chunk, and readable type names. The
//! plan summarises footers compactly (`plan::files`).

use std::fs::File;

use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::ParquetStatisticsPolicy;

use crate::error::SymbolErrorKind;

/// Reader options for every parquet file spillway opens: footer statistics are never decoded.
pub fn reader_options() -> ArrowReaderOptions {
    ArrowReaderOptions::new()
        .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll)
}

/// An I/O failure as a symbol error kind.
pub fn io_kind(op: &'static str, e: &std::io::Error) -> SymbolErrorKind {
    SymbolErrorKind::Io {
        op,
        message: e.to_string(),
    }
}

/// Parses the footer and arrow schema of an open file; a panic inside the parquet crate is an
/// error too.
pub fn load_metadata(file: &File) -> Result<ArrowReaderMetadata, SymbolErrorKind> {
    crate::guard::no_panic(|| ArrowReaderMetadata::load(file, reader_options()))
        .map_err(SymbolErrorKind::DecoderPanic)?
        .map_err(|e| SymbolErrorKind::Parquet {
            context: "reading the footer".into(),
            message: e.to_string(),
        })
}

/// CRC-32 and length of the footer (thrift metadata, its length and the magic).
pub fn footer_crc(file: &File, size: u64) -> std::io::Result<(u32, u64)> {
    use std::os::unix::fs::FileExt;
    let mut tail = [0u8; 8];
    file.read_exact_at(&mut tail, size.saturating_sub(8))?;
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    // The footer parsed, so len + 8 <= size; min() keeps a racing truncation harmless.
    let len = len.min(size.saturating_sub(8)) + 8;
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, size - len)?;
    Ok((crc32fast::hash(&buf), len))
}

/// The sizes of one column chunk that its decoder's memory depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkSizes {
    /// Bytes as stored.
    pub compressed: u64,
    /// Bytes decompressed.
    pub uncompressed: u64,
    /// Estimated bytes of its dictionary page, decompressed.
    pub dictionary: u64,
    /// Whether it is zstd-compressed.
    pub zstd: bool,
}

/// The sizes of a column chunk, from its footer entry.
pub fn chunk_sizes(c: &parquet::file::metadata::ColumnChunkMetaData) -> ChunkSizes {
    let compressed = c.compressed_size().max(1) as u64;
    let uncompressed = c.uncompressed_size().max(0) as u64;
    let dict = match c.dictionary_page_offset() {
        Some(d) if d > 0 && c.data_page_offset() > d => (c.data_page_offset() - d) as u64,
        _ => 0,
    };
    // Scale the compressed dictionary by the chunk's compression ratio.
    let dictionary = (dict as f64 * (uncompressed as f64 / compressed as f64)) as u64;
    ChunkSizes {
        compressed,
        uncompressed,
        dictionary,
        zstd: matches!(c.compression(), parquet::basic::Compression::ZSTD(_)),
    }
}

/// A readable type name ("Float64", "Timestamp(ns, UTC)", "INT96", ...).
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Timestamp(u, tz) => {
            let unit = match u {
                arrow_schema::TimeUnit::Second => "s",
                arrow_schema::TimeUnit::Millisecond => "ms",
                arrow_schema::TimeUnit::Microsecond => "us",
                arrow_schema::TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("Timestamp({unit}, {tz})"),
                None => format!("Timestamp({unit})"),
            }
        }
        other => {
            let s = other.to_string();
            if s.len() > 60 {
                format!(
                    "{}...",
                    &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
                )
            } else {
                s
            }
        }
    }
}
