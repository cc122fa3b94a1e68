//! The plan's compact summary of every footer: per file its identity, rows, fingerprint and, per
//! top-level column, an interned name and type, what the type allows, the decoder's working set,
//! and how the fast decoder would read it (computed here, once, for the whole build). Column names
//! are interned, so a universe of thousands of files with a hundred columns each costs a few MiB to
//! plan, not a copy of every schema. Also the footer fan-out and the time column's choice, which
//! `inspect` shares.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arrow_schema::DataType;
use parquet::basic::Type as PhysicalType;
use parquet::file::metadata::ColumnChunkMetaData;
use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::config::DEFAULT_TIME_COLUMNS;
use crate::decode::WINDOW;
use crate::decode::{fast_reading, single_leaves, Chunk, Physical, Role};
use crate::error::{Result, SymbolError, SymbolErrorKind};
use crate::input::discover::SymbolFiles;
use crate::input::footer::{
    chunk_sizes, footer_crc, io_kind, load_metadata, type_name, ChunkSizes,
};
use crate::input::schema::{classify, is_epoch_integer, Kind};
use crate::input::source;

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
    /// Largest estimated working set of one of its column chunks in the fast decoder.
    pub work_fast: u64,
    /// The same in arrow-rs.
    pub work_arrow: u64,
    /// Whether that leaf has definition levels (an optional column).
    pub optional: bool,
    /// Where its column chunks are in [`FileInfo::chunks`] (one per row group), when the fast
    /// decoder can read it.
    pub chunks: Option<u32>,
    /// How the fast decoder reads it as a target or feature column, if it can.
    pub fast_value: Option<Physical>,
    /// How the fast decoder reads it as the time column, if it can.
    pub fast_time: Option<Physical>,
    /// An integer type that can hold epoch times (`--time-unit`).
    pub epoch_integer: bool,
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
    /// Rows of each row group.
    pub row_groups: Vec<usize>,
    /// Top-level columns in schema order.
    pub columns: Vec<ColumnInfo>,
    /// The column chunks of the columns the fast decoder can read, each column's row groups in
    /// a run (see [`ColumnInfo::chunks`]).
    pub chunks: Vec<Chunk>,
    /// CRC-32 of the footer bytes (the file's content fingerprint).
    pub footer_crc: u32,
    /// Footer length in bytes; parsed, a footer takes about [`FOOTER_EXPANSION`] times that.
    pub footer_len: u64,
}

/// Estimated bytes a decoder holds for one data page of a column (pyarrow and arrow-rs write
/// pages of about 1 MiB).
const PAGE_ESTIMATE: u64 = 1 << 20;
/// arrow-rs's decoder state per column chunk beyond its data (readers, buffers, arrays),
/// measured with arrow-rs 60 on 4,000-column files: ~14 KiB for every codec...
const CHUNK_STATE: u64 = 16 << 10;
/// ...plus ~48 KiB for zstd, whose decompression context arrow-rs creates per column chunk.
const ZSTD_STATE: u64 = 48 << 10;

/// Estimated working set of one column chunk: in the fast decoder, its read window, a
/// decompressed page and the dictionary; in arrow-rs, a page, the dictionary and the decoder's
/// own state (codec contexts included).
fn chunk_work(c: ChunkSizes) -> (u64, u64) {
    let page_and_dictionary = c.uncompressed.min(c.dictionary + PAGE_ESTIMATE);
    let fast = c.compressed.min(WINDOW as u64) + page_and_dictionary;
    let state = CHUNK_STATE + if c.zstd { ZSTD_STATE } else { 0 };
    (fast, page_and_dictionary + state)
}

/// Memory of a parsed footer (arrow-rs metadata and schema) per footer byte, measured on a
/// 20,000-column file: a 3.8 MB footer costs about 40 MB in every reader that opens the file.
pub const FOOTER_EXPANSION: u64 = 12;

impl FileInfo {
    /// The column chunks of `col`, one per row group, if the fast decoder can read it.
    pub fn chunks_of(&self, col: &ColumnInfo) -> Option<&[Chunk]> {
        let at = col.chunks? as usize;
        self.chunks.get(at..at + self.row_groups.len())
    }

    /// The column named by interned id `name`.
    pub fn column(&self, name: u32) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Reads the footer of `path` (one of `symbol`'s files).
pub fn read_footer(path: &Path, symbol: &str, names: &Interner) -> Result<FileInfo, SymbolError> {
    let err = |kind| SymbolError::new(symbol, path, kind);
    let input = source::open(path).map_err(err)?;
    let (size, mtime) = input
        .identity()
        .map_err(|e| err(io_kind("reading the size", &e)))?;
    let file = input.into_file(None).map_err(err)?;
    let meta = load_metadata(&file).map_err(err)?;
    let pq = meta.metadata();
    let descr = pq.file_metadata().schema_descr();
    let fields = meta.schema().fields();
    // Leaf facts per root: INT96-ness (for primitive roots) and the decoder working set.
    let mut int96 = vec![false; fields.len()];
    let mut work = vec![(0u64, 0u64); fields.len()];
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
            let (fast, arrow) = chunk_work(chunk_sizes(c));
            work[root] = (work[root].0.max(fast), work[root].1.max(arrow));
        }
    }
    let corrupt = |message: String| {
        err(SymbolErrorKind::Parquet {
            context: "reading the footer (corrupt)".into(),
            message,
        })
    };
    let rows = pq.file_metadata().num_rows();
    let rows = u64::try_from(rows).map_err(|_| corrupt(format!("negative row count {rows}")))?;
    // The row count is a claim that sizes work: it must agree with the row groups, and each flat
    // column chunk must hold its row group's rows.
    let mut grouped = 0u64;
    for (i, rg) in pq.row_groups().iter().enumerate() {
        let n = u64::try_from(rg.num_rows())
            .map_err(|_| corrupt(format!("row group {i} claims {} rows", rg.num_rows())))?;
        grouped = grouped.saturating_add(n);
        for c in rg.columns() {
            if c.column_descr().max_rep_level() == 0 && c.num_values() != rg.num_rows() {
                return Err(corrupt(format!(
                    "row group {i} claims {n} rows, its column chunk {:?} {} values",
                    c.column_path().string(),
                    c.num_values()
                )));
            }
        }
    }
    if grouped != rows {
        return Err(corrupt(format!(
            "the footer claims {rows} rows, its row groups hold {grouped}"
        )));
    }
    let leaves = single_leaves(&meta);
    let fast = |root: usize, role| fast_reading(&meta, &leaves, root as u32, role).map(|(_, p)| p);
    let row_groups: Vec<usize> = pq
        .row_groups()
        .iter()
        .map(|rg| usize::try_from(rg.num_rows()).unwrap_or(0))
        .collect();
    let mut chunks = Vec::new();
    let mut seen = HashSet::with_capacity(fields.len());
    if let Some(dup) = fields.iter().find(|f| !seen.insert(f.name().as_str())) {
        return Err(err(SymbolErrorKind::DuplicateColumn {
            column: dup.name().clone(),
        }));
    }
    let columns = fields
        .iter()
        .enumerate()
        .map(|(root, f)| {
            let leaf = leaves.get(root).copied().flatten();
            let (fast_value, fast_time) = (fast(root, Role::Value), fast(root, Role::Time));
            let mut at = None;
            if let (Some(leaf), true) = (leaf, fast_value.is_some() || fast_time.is_some()) {
                let mine: Option<Vec<Chunk>> = pq
                    .row_groups()
                    .iter()
                    .map(|rg| {
                        rg.columns()
                            .get(leaf)
                            .and_then(|c| chunk_of(c, rg.num_rows(), size))
                    })
                    .collect();
                if let Some(mine) = mine {
                    at = Some(chunks.len() as u32);
                    chunks.extend(mine);
                }
            }
            (root, f, leaf, fast_value, fast_time, at)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(root, f, leaf, fast_value, fast_time, at)| ColumnInfo {
            optional: leaf.is_some_and(|l| descr.column(l).max_def_level() > 0),
            chunks: at,
            fast_value: fast_value.filter(|_| at.is_some()),
            fast_time: fast_time.filter(|_| at.is_some()),
            epoch_integer: is_epoch_integer(f.data_type()),
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
            work_fast: work[root].0,
            work_arrow: work[root].1,
        })
        .collect();
    let (footer_crc, footer_len) =
        footer_crc(&file, size).map_err(|e| err(io_kind("reading the footer", &e)))?;
    Ok(FileInfo {
        path: path.to_path_buf(),
        size,
        mtime,
        rows,
        row_groups,
        columns,
        chunks,
        footer_crc,
        footer_len,
    })
}

/// A symbol's footers, or the error of its first bad file.
pub type SymbolFooters<'a> = (&'a SymbolFiles, Result<Vec<FileInfo>, SymbolError>);

/// Where a column chunk's pages are, from its footer entry: from the dictionary page (or the first
/// data page) over its stored size. `None` for an entry no writer would make.
///
/// A chunk of no rows may have no data page: pyarrow then writes its empty dictionary page and
/// a data page offset of 0, inside the file's leading magic where no page can start. The chunk
/// starts at its dictionary page then.
pub fn chunk_of(c: &ColumnChunkMetaData, rows: i64, file_len: u64) -> Option<Chunk> {
    /// Bytes of the leading magic `PAR1`: no page starts before.
    const MAGIC: u64 = 4;
    let data = u64::try_from(c.data_page_offset()).ok()?;
    let start = match c.dictionary_page_offset().map(u64::try_from) {
        Some(Ok(d)) if d > 0 && (d < data || data < MAGIC) => d,
        _ => data,
    };
    Some(Chunk {
        start,
        len: u64::try_from(c.compressed_size()).ok()?,
        codec: c.compression(),
        rows: usize::try_from(rows).ok()?,
        file_len,
    })
}

/// Every file's footer, symbol by symbol in parallel; a symbol fails with its first bad file.
pub fn read_footers<'a>(
    symbols: impl IntoParallelIterator<Item = &'a SymbolFiles>,
    names: &Interner,
    cancel: &Cancel,
) -> Result<Vec<SymbolFooters<'a>>> {
    let footers = symbols
        .into_par_iter()
        .map(|s| {
            let files = match cancel.is_cancelled() {
                true => Ok(Vec::new()),
                false => s
                    .files
                    .iter()
                    .map(|f| read_footer(f, &s.name, names))
                    .collect(),
            };
            (s, files)
        })
        .collect();
    cancel.check()?;
    Ok(footers)
}

/// The time column's name: `given`, else the first of [`DEFAULT_TIME_COLUMNS`] found in the first
/// file (of `first_files`, one per symbol in order) that has one (else the first default).
pub fn time_column<'f>(
    given: Option<&str>,
    mut first_files: impl Iterator<Item = &'f FileInfo>,
    names: &Interner,
) -> String {
    if let Some(c) = given {
        return c.to_string();
    }
    first_files
        .find_map(|f| {
            DEFAULT_TIME_COLUMNS
                .into_iter()
                .find(|n| names.lookup(n).is_some_and(|id| f.column(id).is_some()))
        })
        .unwrap_or(DEFAULT_TIME_COLUMNS[0])
        .to_string()
}
