//! `export`: a spill file (or some of its rows and columns) to Parquet or Arrow IPC, streaming in
//! bounded memory, for tools that cannot map a spill file (polars, DuckDB, pandas, Spark).
//!
//! Each column keeps its meaning: the symbol codes become a dictionary column of the symbol names,
//! the time column `timestamp[ns, tz]` (the zone the file records, else UTC), floats stay floats
//! (NaN, or null with `nan_as_null`). Rows go out `batch_rows` at a time; Parquet row groups are
//! cut at about [`ROW_GROUP_BYTES`] of values, because the Parquet writer holds a whole row group
//! before writing it. Values are read with positioned reads (`pread`), not through the mapping, so
//! the resident set holds about one batch and never grows with the file (and no `unsafe` is needed
//! to drop mapped pages). The output is written to a temporary name in its directory and renamed
//! when complete, as builds are; a FIFO or a device at the output path is written directly
//! (`--to /dev/stdout`), and the output is never the exported file itself (see `output`).

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::types::UInt32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampNanosecondArray, UInt32Array, UInt8Array,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use spill::{DType, Role, SpillFile};

use crate::error::{Error, Result};
use crate::output::{self, Target};

/// Bytes of values per Parquet row group (the writer buffers one row group, encoded).
pub const ROW_GROUP_BYTES: u64 = 64 << 20;

/// Rows per batch handed to the writers.
pub const BATCH_ROWS: u64 = 65_536;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Apache Parquet (snappy pages).
    Parquet,
    /// Arrow IPC file (Feather v2), uncompressed.
    Arrow,
}

impl Format {
    /// The format a file name asks for: `.parquet`/`.pq`, or `.arrow`/`.feather`/`.ipc`.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "arrow" | "feather" | "ipc" => Some(Format::Arrow),
            _ => None,
        }
    }
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Columns in output order (default: every column, stored order).
    pub columns: Option<Vec<String>>,
    /// Rows `[start, stop)` (default: all; `stop` past the end is cut to it).
    pub rows: Option<Range<u64>>,
    /// Write NaN float values as null.
    pub nan_as_null: bool,
    /// Output format (default: from the output's extension).
    pub format: Option<Format>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The output file.
    pub output: PathBuf,
    /// Its format.
    pub format: Format,
    /// Rows written.
    pub rows: u64,
    /// Columns written.
    pub columns: usize,
    /// Bytes of the output file.
    pub bytes: u64,
}

/// Parses `A:B`, `A:`, `:B` (half-open row ranges).
pub fn parse_rows(s: &str) -> Result<Range<u64>> {
    let bad = || {
        Error::Config(format!(
            "--rows {s:?} is not START:STOP (either may be left out)"
        ))
    };
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let num = |t: &str, default: u64| match t.trim() {
        "" => Ok(default),
        t => t.parse::<u64>().map_err(|_| bad()),
    };
    let (start, stop) = (num(a, 0)?, num(b, u64::MAX)?);
    if stop < start {
        return Err(Error::Config(format!("--rows {s:?}: stop is before start")));
    }
    Ok(start..stop)
}

/// Exports `input` to `output` (see the module documentation).
pub fn export(input: &Path, output: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let format = match opts.format.or_else(|| Format::from_path(output)) {
        Some(f) => f,
        None => {
            return Err(Error::Config(format!(
            "cannot tell the format of {} from its extension: use .parquet or .arrow (or --format)",
            output.display()
        )))
        }
    };
    let reads = [("the spill file being exported", input)];
    // `-` is standard output, streamed as a device is.
    let (output, target) = if output.as_os_str() == "-" {
        (Path::new("/dev/stdout"), Target::Stream)
    } else {
        (output, output::check_stream("--to", output, &reads)?)
    };
    // Values are read from this handle; the mapping validates the file and serves its metadata.
    let data = File::open(input).map_err(|e| Error::io("opening", input, e))?;
    let f = spill::open(input)?;
    same_file(&data, input)?;
    let nrows = f.nrows();
    let rows = opts.rows.clone().unwrap_or(0..nrows);
    let rows = rows.start.min(nrows)..rows.end.min(nrows);
    let names: Vec<String> = match &opts.columns {
        Some(c) if c.is_empty() => return Err(Error::Config("--columns names no column".into())),
        Some(c) => c.clone(),
        None => f.columns().iter().map(|c| c.name.clone()).collect(),
    };
    let mut indices = Vec::with_capacity(names.len());
    for n in &names {
        match f.column_index(n) {
            Some(i) if !indices.contains(&i) => indices.push(i),
            Some(_) => return Err(Error::Config(format!("--columns names {n:?} twice"))),
            None => {
                let known: Vec<&str> = f.columns().iter().map(|c| c.name.as_str()).collect();
                return Err(Error::Config(format!(
                    "no column {n:?} in {} (columns: {})",
                    input.display(),
                    known.join(", ")
                )));
            }
        }
    }
    let tz = stored_timezone(&data, input, &f, &indices)?;
    let columns = Columns::new(&f, &data, input, indices, tz.as_deref(), opts.nan_as_null)?;
    let row_bytes: u64 = columns.row_bytes().max(1);
    let group_rows = (ROW_GROUP_BYTES / row_bytes).clamp(1024, 1 << 20);
    let batch_rows = BATCH_ROWS.min(group_rows);

    // Written beside the output and renamed over it when complete (rename is atomic only within
    // one filesystem), so a failed or interrupted export leaves no partial file under its name;
    // a FIFO or a device is written directly (never replaced).
    let (tmp, file) = match target {
        Target::Replace(real) => {
            let tmp = output::temp_beside(&real)?;
            let file = tmp
                .as_file()
                .try_clone()
                .map_err(|e| Error::io("opening", tmp.path(), e))?;
            (Some((tmp, real)), file)
        }
        Target::Stream => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(output)
                .map_err(|e| Error::io("opening", output, e))?;
            (None, file)
        }
    };
    let written = Arc::new(AtomicU64::new(0));
    let file = Counted {
        file,
        bytes: Arc::clone(&written),
    };
    let werr = |e: String| Error::io("writing", output, std::io::Error::other(e));
    let mut sink = match format {
        Format::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(group_rows as usize))
                .build();
            Sink::Parquet(Box::new(
                ArrowWriter::try_new(file, columns.schema(), Some(props))
                    .map_err(|e| werr(e.to_string()))?,
            ))
        }
        Format::Arrow => Sink::Arrow(Box::new(
            arrow_ipc::writer::FileWriter::try_new(file, &columns.schema())
                .map_err(|e| werr(e.to_string()))?,
        )),
    };
    let mut at = rows.start;
    while at < rows.end {
        let end = (at + batch_rows).min(rows.end);
        let batch = columns.batch(at..end)?;
        sink.write(&batch).map_err(werr)?;
        at = end;
    }
    sink.finish().map_err(werr)?;
    let bytes = written.load(Ordering::Relaxed);
    if let Some((tmp, real)) = tmp {
        output::persist(tmp, &real)?;
    }
    Ok(ExportReport {
        output: output.to_path_buf(),
        format,
        rows: rows.end - rows.start,
        columns: names.len(),
        bytes,
    })
}

enum Sink {
    Parquet(Box<ArrowWriter<Counted>>),
    Arrow(Box<arrow_ipc::writer::FileWriter<Counted>>),
}

/// The output file, counting the bytes written into it (a FIFO or a device has no size to ask).
struct Counted {
    file: File,
    bytes: Arc<AtomicU64>,
}

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Sink {
    fn write(&mut self, b: &RecordBatch) -> std::result::Result<(), String> {
        match self {
            Sink::Parquet(w) => {
                w.write(b).map_err(|e| e.to_string())?;
                // Flush at row-group size at the latest; the writer cuts groups by rows already.
                Ok(())
            }
            Sink::Arrow(w) => w.write(b).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> std::result::Result<(), String> {
        match self {
            Sink::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
            Sink::Arrow(mut w) => w.finish().map_err(|e| e.to_string()),
        }
    }
}

/// The selected columns of a file and how each becomes an Arrow array.
struct Columns<'f, D> {
    file: &'f SpillFile<D>,
    data: &'f File,
    path: &'f Path,
    indices: Vec<usize>,
    schema: SchemaRef,
    /// The symbol names, built once and shared by every batch (the IPC file format forbids a
    /// dictionary that changes between batches).
    names: Arc<StringArray>,
    nan_as_null: bool,
}

impl<'f, D: spill::Backing> Columns<'f, D> {
    fn new(
        file: &'f SpillFile<D>,
        data: &'f File,
        path: &'f Path,
        indices: Vec<usize>,
        tz: Option<&str>,
        nan_as_null: bool,
    ) -> Result<Self> {
        let tz: Arc<str> = Arc::from(tz.unwrap_or("UTC"));
        let fields = indices
            .iter()
            .map(|&i| {
                let c = &file.columns()[i];
                let dt = match (c.role, c.dtype) {
                    (Role::Symbol, DType::U32) => {
                        DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
                    }
                    (Role::Time, DType::I64) => {
                        DataType::Timestamp(TimeUnit::Nanosecond, Some(Arc::clone(&tz)))
                    }
                    (_, DType::F32) => DataType::Float32,
                    (_, DType::F64) => DataType::Float64,
                    (_, DType::I64) => DataType::Int64,
                    (_, DType::I32) => DataType::Int32,
                    (_, DType::U32) => DataType::UInt32,
                    (_, DType::U8) => DataType::UInt8,
                    (_, other) => {
                        return Err(Error::Config(format!(
                            "column {:?} has dtype {}, which export does not know",
                            c.name,
                            other.name()
                        )))
                    }
                };
                let nullable = nan_as_null && matches!(c.dtype, DType::F32 | DType::F64);
                Ok(Field::new(c.name.clone(), dt, nullable))
            })
            .collect::<Result<Vec<_>>>()?;
        let names = StringArray::from_iter_values(file.symbols().iter().map(|s| s.name.as_str()));
        Ok(Columns {
            file,
            data,
            path,
            indices,
            schema: Arc::new(Schema::new(fields)),
            names: Arc::new(names),
            nan_as_null,
        })
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Bytes of values per row.
    fn row_bytes(&self) -> u64 {
        let cols = self.file.columns();
        self.indices.iter().map(|&i| cols[i].dtype.size()).sum()
    }

    /// Rows `rows` of every selected column as one record batch.
    fn batch(&self, rows: Range<u64>) -> Result<RecordBatch> {
        let r = rows.start as usize..rows.end as usize;
        let arrays = self
            .indices
            .iter()
            .zip(self.schema.fields())
            .map(|(&i, field)| self.array(i, field.data_type(), r.clone()))
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(self.schema(), arrays)
            .map_err(|e| Error::Internal(format!("export batch: {e}")))
    }

    fn array(&self, i: usize, dt: &DataType, r: Range<usize>) -> Result<ArrayRef> {
        let off = self.file.columns()[i].offset;
        let (data, path) = (self.data, self.path);
        let nulls = |valid: Vec<bool>| {
            let n = NullBuffer::from(valid);
            (self.nan_as_null && n.null_count() > 0).then_some(n)
        };
        Ok(match dt {
            DataType::Dictionary(..) => {
                let codes = UInt32Array::from(read_values::<u32>(data, path, off, r)?);
                let names = Arc::clone(&self.names) as ArrayRef;
                Arc::new(
                    DictionaryArray::<UInt32Type>::try_new(codes, names)
                        .map_err(|e| Error::Internal(format!("symbol codes: {e}")))?,
                )
            }
            DataType::Timestamp(_, tz) => Arc::new(
                TimestampNanosecondArray::from(read_values::<i64>(data, path, off, r)?)
                    .with_timezone_opt(tz.clone()),
            ),
            DataType::Float32 => {
                let v = read_values::<f32>(data, path, off, r)?;
                let valid = nulls(v.iter().map(|x| !x.is_nan()).collect());
                Arc::new(Float32Array::new(v.into(), valid))
            }
            DataType::Float64 => {
                let v = read_values::<f64>(data, path, off, r)?;
                let valid = nulls(v.iter().map(|x| !x.is_nan()).collect());
                Arc::new(Float64Array::new(v.into(), valid))
            }
            DataType::Int64 => Arc::new(Int64Array::from(read_values::<i64>(data, path, off, r)?)),
            DataType::Int32 => Arc::new(Int32Array::from(read_values::<i32>(data, path, off, r)?)),
            DataType::UInt32 => {
                Arc::new(UInt32Array::from(read_values::<u32>(data, path, off, r)?))
            }
            _ => Arc::new(UInt8Array::from(read_values::<u8>(data, path, off, r)?)),
        })
    }
}

/// `Err` unless `file` (opened first) is the file now at `path` (validated second): a rebuild
/// renaming a new file over the path in between would otherwise mix two files.
fn same_file(file: &File, path: &Path) -> Result<()> {
    let a = file
        .metadata()
        .map_err(|e| Error::io("reading the metadata of", path, e))?;
    let b = std::fs::metadata(path).map_err(|e| Error::io("reading the metadata of", path, e))?;
    if (a.dev(), a.ino()) != (b.dev(), b.ino()) {
        return Err(Error::Config(format!(
            "{} was replaced while it was being opened; run the export again",
            path.display()
        )));
    }
    Ok(())
}

/// Rows `rows` of the column whose values start at byte `offset`, in one positioned read.
fn read_values<T: bytemuck::Pod>(
    data: &File,
    path: &Path,
    offset: u64,
    rows: Range<usize>,
) -> Result<Vec<T>> {
    let mut v = vec![T::zeroed(); rows.len()];
    let at = offset + (rows.start * std::mem::size_of::<T>()) as u64;
    data.read_exact_at(bytemuck::cast_slice_mut(&mut v), at)
        .map_err(|e| Error::io("reading", path, e))?;
    Ok(v)
}

/// The time zone the file records for its time column (format 1.1 `timezone`), if any. Read from
/// the metadata JSON directly until the spill crate exposes the key.
fn stored_timezone<D: spill::Backing>(
    file: &File,
    path: &Path,
    f: &SpillFile<D>,
    indices: &[usize],
) -> Result<Option<String>> {
    let Some(time) = indices
        .iter()
        .find(|&&i| f.columns()[i].role == Role::Time)
        .map(|&i| f.columns()[i].name.clone())
    else {
        return Ok(None);
    };
    let io = |e| Error::io("reading the metadata of", path, e);
    let mut t = [0u8; spill::TRAILER_LEN as usize];
    file.read_exact_at(&mut t, f.file_len() - spill::TRAILER_LEN)
        .map_err(io)?;
    let trailer = spill::Trailer::decode(&t)?;
    // The file was validated by spill::open: the metadata length is within its cap.
    let mut meta = vec![0u8; trailer.metadata_len as usize];
    file.read_exact_at(&mut meta, trailer.metadata_offset)
        .map_err(io)?;
    let v: serde_json::Value = serde_json::from_slice(&meta)
        .map_err(|e| Error::Internal(format!("metadata re-read: {e}")))?;
    Ok(v["columns"]
        .as_array()
        .and_then(|cols| cols.iter().find(|c| c["name"] == time.as_str()))
        .and_then(|c| c["timezone"].as_str())
        .map(str::to_string))
}
