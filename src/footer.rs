//! Reading parquet footers (metadata only: statistics, page indexes and encoding stats are skipped)
//! into a compact per-file summary. Column names are interned, so a universe of thousands of files
//! with a hundred columns each costs a few MiB to plan, not a copy of every schema.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::basic::Type as PhysicalType;
use parquet::file::metadata::ParquetStatisticsPolicy;

use crate::decode::Role;
use crate::error::{SymbolError, SymbolErrorKind};
use crate::schema::{classify, Kind};

/// Estimated bytes a decoder holds for one data page of a column (pyarrow and arrow-rs write
/// pages of about 1 MiB).
const PAGE_ESTIMATE: u64 = 1 << 20;
/// Decoder state per column chunk beyond its data (readers, buffers, arrays), measured with
/// arrow-rs 60 on 4,000-column files: ~14 KiB for every codec...
const CHUNK_STATE: u64 = 16 << 10;
/// ...plus ~48 KiB for zstd, whose decompression context is created per column chunk.
const ZSTD_STATE: u64 = 48 << 10;

/// Reader options for every parquet file spillway opens: footer statistics are never decoded.
pub fn reader_options() -> ArrowReaderOptions {
    ArrowReaderOptions::new()
        .with_column_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll)
}

/// Interned strings (column names, type names), shared by the threads reading footers.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    inner: Arc<Mutex<Strings>>,
}

#[derive(Debug, Default)]
struct Strings {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Strings> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of `s`, adding it if new.
    pub fn id(&self, s: &str) -> u32 {
        let mut g = self.lock();
        if let Some(&id) = g.ids.get(s) {
            return id;
        }
        let id = g.names.len() as u32;
        let a: Arc<str> = Arc::from(s);
        g.names.push(a.clone());
        g.ids.insert(a, id);
        id
    }

    /// The string of `id`.
    pub fn get(&self, id: u32) -> Arc<str> {
        self.lock().names[id as usize].clone()
    }

    /// The id of `s` if it was ever interned.
    pub fn lookup(&self, s: &str) -> Option<u32> {
        self.lock().ids.get(s).copied()
    }
}

/// One top-level column of a file.
#[derive(Debug, Clone, Copy)]
pub struct ColumnInfo {
    /// Interned name.
    pub name: u32,
    /// Interned arrow type name (for messages and `inspect`).
    pub dtype: u32,
    /// Interned time zone of a timestamp column (`None`: naive, INT96, or not a timestamp).
    pub timezone: Option<u32>,
    /// What the type allows.
    pub kind: Kind,
    /// Root (top-level field) index in the file schema.
    pub root: u32,
    /// Largest estimated decoder working set of one of its column chunks (dictionary + a page).
    pub work_bytes: u64,
    /// Whether the fast decoder reads it as a target or feature column.
    pub fast_value: bool,
    /// Whether the fast decoder reads it as the time column.
    pub fast_time: bool,
}

/// The footer of one file, compactly.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time (to notice a file replaced between plan and read).
    pub mtime: Option<SystemTime>,
    /// Rows, from the footer.
    pub rows: u64,
    /// Top-level columns in schema order.
    pub columns: Vec<ColumnInfo>,
    /// CRC-32 of the footer bytes (the file's content fingerprint).
    pub footer_crc: u32,
    /// Footer length in bytes; parsed, a footer takes about [`FOOTER_EXPANSION`] times that.
    pub footer_len: u64,
}

/// Memory of a parsed footer (arrow-rs metadata and schema) per footer byte, measured on a
/// 20,000-column file: a 3.8 MB footer costs about 40 MB in every reader that opens the file.
pub const FOOTER_EXPANSION: u64 = 12;

impl FileInfo {
    /// The column named by interned id `name`.
    pub fn column(&self, name: u32) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The identity of a file for change detection: size and modification time.
pub fn identity(
    file: &File,
    path: &Path,
    symbol: &str,
) -> Result<(u64, Option<SystemTime>), SymbolError> {
    let meta = file
        .metadata()
        .map_err(|e| SymbolError::new(symbol, path, io_kind("reading the size", &e)))?;
    Ok((meta.len(), meta.modified().ok()))
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

/// Reads the footer of `path` (one of `symbol`'s files).
pub fn read_footer(path: &Path, symbol: &str, names: &Interner) -> Result<FileInfo, SymbolError> {
    let err = |kind| SymbolError::new(symbol, path, kind);
    let file = File::open(path).map_err(|e| err(io_kind("opening", &e)))?;
    let (size, mtime) = identity(&file, path, symbol)?;
    let meta = load_metadata(&file).map_err(err)?;
    let pq = meta.metadata();
    let descr = pq.file_metadata().schema_descr();
    let fields = meta.schema().fields();
    // Leaf facts per root: INT96-ness (for primitive roots) and the decoder working set.
    let mut int96 = vec![false; fields.len()];
    let mut work = vec![0u64; fields.len()];
    for (leaf, col) in descr.columns().iter().enumerate() {
        let root = descr.get_column_root_idx(leaf);
        if root >= fields.len() {
            continue;
        }
        if col.physical_type() == PhysicalType::INT96 {
            int96[root] = true;
        }
        for rg in pq.row_groups() {
            let Some(c) = rg.columns().get(leaf) else {
                continue;
            };
            work[root] = work[root].max(chunk_work(c));
        }
    }
    let rows = pq.file_metadata().num_rows();
    let rows = u64::try_from(rows).map_err(|_| {
        err(SymbolErrorKind::Parquet {
            context: "reading the footer".into(),
            message: format!("negative row count {rows}"),
        })
    })?;
    let leaves = crate::decode::single_leaves(&meta);
    let fast = |root: usize, role| {
        crate::decode::fast_reading(&meta, &leaves, root as u32, role).is_some()
    };
    let columns = fields
        .iter()
        .enumerate()
        .map(|(root, f)| ColumnInfo {
            fast_value: fast(root, Role::Value),
            fast_time: fast(root, Role::Time),
            name: names.id(f.name()),
            dtype: names.id(&type_name(f.data_type())),
            timezone: match f.data_type() {
                DataType::Timestamp(_, Some(tz)) if !int96[root] && !tz.is_empty() => {
                    Some(names.id(tz))
                }
                _ => None,
            },
            kind: classify(f.data_type(), int96[root]),
            root: root as u32,
            work_bytes: work[root],
        })
        .collect();
    let (footer_crc, footer_len) =
        footer_crc(&file, size).map_err(|e| err(io_kind("reading the footer", &e)))?;
    Ok(FileInfo {
        path: path.to_path_buf(),
        size,
        mtime,
        rows,
        columns,
        footer_crc,
        footer_len,
    })
}

/// CRC-32 and length of the footer (thrift metadata, its length and the magic).
fn footer_crc(file: &File, size: u64) -> std::io::Result<(u32, u64)> {
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

/// Estimated decoder working set of one column chunk: its decoded dictionary, one page, and the
/// decoder's own state.
fn chunk_work(c: &parquet::file::metadata::ColumnChunkMetaData) -> u64 {
    let compressed = c.compressed_size().max(1) as u64;
    let uncompressed = c.uncompressed_size().max(0) as u64;
    let dict = match c.dictionary_page_offset() {
        Some(d) if d > 0 && c.data_page_offset() > d => (c.data_page_offset() - d) as u64,
        _ => 0,
    };
    // Scale the compressed dictionary by the chunk's compression ratio.
    let dict = (dict as f64 * (uncompressed as f64 / compressed as f64)) as u64;
    let state = match c.compression() {
        parquet::basic::Compression::ZSTD(_) => CHUNK_STATE + ZSTD_STATE,
        _ => CHUNK_STATE,
    };
    uncompressed.min(dict + PAGE_ESTIMATE) + state
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
