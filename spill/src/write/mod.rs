//! Writing: [`SpillWriter`] takes column slices in row order from one caller, computes checksums
//! and stats as the bytes go out, and commits atomically in [`SpillWriter::finish`].
//!
//! Column bytes go through a [`Sink`] backend; the writer itself owns ordering, checksums, stats,
//! the header, metadata, trailer and the crash-safe commit, so every backend writes the same bytes.

mod direct;
mod mmap;
mod os;
mod temp;

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

pub use temp::{is_temp_name, process_alive, stale_temps, temp_path};

use crate::error::{short, Error, Result};
use crate::format::{
    encode_header, Trailer, CHECKSUM_CRC32, FEATURE_TIME_ORDER, TRAILER_LEN, VERSION_MAJOR,
    VERSION_MINOR,
};
use crate::layout::Layout;
use crate::meta::Metadata;
use crate::stats::{ChunkedCrc, Element, StatsAccum};

/// Default memory for the writer's windows (mmap) or staging buffers, across all columns.
pub const DEFAULT_WRITE_MEMORY: u64 = 32 << 20;

/// The backend that puts column bytes into the file.
///
/// Calls arrive per column in increasing, contiguous offsets (the writer guarantees it); offsets
/// are absolute file offsets inside that column's region.
pub(crate) trait Sink {
    /// Writes `bytes` at `offset`, which lies in column `col`'s region and continues its last write.
    fn write(&mut self, col: usize, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every byte written so far reach the file (page cache or disk), releasing buffers.
    fn finish(&mut self) -> io::Result<()>;
}

/// How the writer puts bytes into the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteMode {
    /// O_DIRECT where the filesystem supports it, else memory-mapped windows (always them off
    /// Linux, which alone has O_DIRECT).
    #[default]
    Auto,
    /// Bounded memory-mapped windows, with writeback started as each window is released.
    Mmap,
    /// Per-column aligned staging buffers written with O_DIRECT (fails where unsupported, and on
    /// every platform but Linux).
    Direct,
}

/// Writer options (builder style).
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    mode: WriteMode,
    memory: u64,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions {
            mode: WriteMode::Auto,
            memory: DEFAULT_WRITE_MEMORY,
        }
    }
}

impl WriteOptions {
    /// Sets the write mode.
    pub fn with_mode(mut self, mode: WriteMode) -> WriteOptions {
        self.mode = mode;
        self
    }

    /// Sets the memory the writer may keep resident for windows or buffers, across all columns
    /// (each column gets between 4 KiB and 8 MiB of it).
    pub fn with_memory(mut self, bytes: u64) -> WriteOptions {
        self.memory = bytes;
        self
    }

    /// Bytes of window or buffer per column for `ncols` columns: a power of two.
    pub fn per_column(&self, ncols: usize) -> u64 {
        let share = self.memory / (ncols.max(1) as u64);
        let share = share.clamp(crate::format::ALIGN, 8 << 20);
        1 << (63 - share.leading_zeros())
    }

    /// The resident memory the writer needs for `ncols` columns with these options: a buffer
    /// (or window) per column and the O_DIRECT backend's spares, each with the page the
    /// allocator spends on aligning it (a 4 KiB buffer aligned to 4 KiB takes two pages), and
    /// its bounce buffers when the per-column buffers are small.
    pub fn resident_bytes(&self, ncols: usize) -> u64 {
        let buffers = (ncols + direct::IN_FLIGHT) as u64;
        let per_column = self.per_column(ncols);
        (per_column + crate::format::ALIGN) * buffers + direct::bounce_bytes(per_column)
    }
}

/// What a successful commit produced.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The final path.
    pub path: PathBuf,
    /// Bytes in the file.
    pub file_len: u64,
    /// The metadata written.
    pub metadata: Metadata,
}

struct ColumnState {
    rows: u64,
    crc: ChunkedCrc,
    stats: StatsAccum,
}

/// Writes one spill file. See the module docs; created by [`SpillWriter::create`].
pub struct SpillWriter {
    final_path: PathBuf,
    temp: temp::TempFile,
    file: File,
    layout: Layout,
    columns: Vec<ColumnState>,
    sink: Box<dyn Sink>,
    mode: WriteMode,
}

impl std::fmt::Debug for SpillWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillWriter")
            .field("final_path", &self.final_path)
            .field("temp", &self.temp.path())
            .finish_non_exhaustive()
    }
}

impl SpillWriter {
    /// Creates a writer for `layout` whose file will appear at `path` on commit. The bytes go to a
    /// hidden temporary file in the same directory, with the whole data area reserved up front
    /// (so a full disk fails here, not halfway through).
    pub fn create(
        path: impl AsRef<Path>,
        layout: Layout,
        opts: WriteOptions,
    ) -> Result<SpillWriter> {
        let final_path = path.as_ref().to_path_buf();
        // Leftovers of killed writers of this same file go now (never those of live processes).
        temp::remove_stale_for(&final_path);
        let temp = temp::TempFile::new(&final_path)?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Like any file a program creates: the umask decides (0644 under the usual 022).
            options.mode(0o666);
        }
        let file = options
            .open(temp.path())
            .map_err(|e| Error::io("creating a temporary file for", &final_path, e))?;
        temp.arm();
        os::reserve(&file, layout.data_end())
            .map_err(|e| Error::io("reserving space for", &final_path, e))?;
        os::write_all_at(&file, &encode_header(), 0)
            .map_err(|e| Error::io("writing", &final_path, e))?;

        let regions: Vec<(u64, u64)> = (0..layout.columns().len())
            .map(|i| {
                let start = layout.offset(i);
                // Each column owns its padding, so its region ends at the next 4096 boundary.
                let end = crate::format::align_up(start + layout.length(i)).unwrap_or(start);
                (start, end)
            })
            .collect();
        let per_column = opts.per_column(regions.len());
        let file2 = file
            .try_clone()
            .map_err(|e| Error::io("duplicating the handle of", &final_path, e))?;
        let direct = || direct::DirectSink::open(temp.path(), &regions, per_column);
        let (sink, mode): (Box<dyn Sink>, WriteMode) = match opts.mode {
            WriteMode::Direct => (
                Box::new(direct().map_err(|e| Error::io("opening with O_DIRECT", &final_path, e))?),
                WriteMode::Direct,
            ),
            // Where the filesystem refuses O_DIRECT (tmpfs, some FUSE and network filesystems),
            // the mapped windows write the same bytes.
            WriteMode::Auto => match direct() {
                Ok(d) => (Box::new(d), WriteMode::Direct),
                Err(_) => (
                    Box::new(mmap::MmapSink::new(file2, regions, per_column)),
                    WriteMode::Mmap,
                ),
            },
            WriteMode::Mmap => (
                Box::new(mmap::MmapSink::new(file2, regions, per_column)),
                WriteMode::Mmap,
            ),
        };
        let columns = layout
            .columns()
            .iter()
            .map(|c| ColumnState {
                rows: 0,
                crc: ChunkedCrc::new(layout.chunk_bytes()),
                stats: StatsAccum::new(c.dtype),
            })
            .collect();
        Ok(SpillWriter {
            final_path,
            temp,
            file,
            layout,
            columns,
            sink,
            mode,
        })
    }

    /// The mode in use (`Auto` resolved to what the filesystem allowed).
    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// The layout being written.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Rows written so far to column `col`.
    pub fn rows_written(&self, col: usize) -> u64 {
        self.columns.get(col).map_or(0, |c| c.rows)
    }

    /// Writes `values` to column `col` starting at row `row`, which must be the column's next
    /// unwritten row (writes to each column continue in row order; columns interleave freely).
    pub fn write<T: Element>(&mut self, col: usize, row: u64, values: &[T]) -> Result<()> {
        let ncols = self.columns.len();
        let (Some(spec), Some(state)) = (self.layout.columns().get(col), self.columns.get_mut(col))
        else {
            return Err(Error::NoSuchColumnIndex { index: col, ncols });
        };
        if spec.dtype != T::DTYPE {
            return Err(Error::DTypeMismatch {
                column: short(&spec.name),
                stored: spec.dtype,
                requested: T::DTYPE,
            });
        }
        if row != state.rows {
            return Err(Error::OutOfOrder {
                column: short(&spec.name),
                row,
                expected: state.rows,
            });
        }
        let count = values.len() as u64;
        let nrows = self.layout.nrows();
        if row.checked_add(count).is_none_or(|end| end > nrows) {
            return Err(Error::PastEnd {
                column: short(&spec.name),
                row,
                count,
                nrows,
            });
        }
        let bytes: &[u8] = bytemuck::cast_slice(values);
        state.stats.update(values);
        state.crc.update(bytes);
        let offset = self.layout.offset(col) + row * spec.dtype.size();
        self.sink
            .write(col, offset, bytes)
            .map_err(|e| Error::io("writing", &self.final_path, e))?;
        state.rows += count;
        Ok(())
    }

    /// Commits: checks every row of every column was written, writes the metadata and the
    /// trailer, fsyncs, renames the temporary file to the final path and fsyncs the directory.
    /// `build` is free-form build metadata (a JSON object) stored with the file.
    pub fn finish(mut self, build: Map<String, Value>) -> Result<Committed> {
        let nrows = self.layout.nrows();
        for (spec, state) in self.layout.columns().iter().zip(&self.columns) {
            if state.rows != nrows {
                return Err(Error::Incomplete {
                    column: short(&spec.name),
                    written: state.rows,
                    nrows,
                });
            }
        }
        let path = self.final_path.clone();
        self.sink
            .finish()
            .map_err(|e| Error::io("writing", &path, e))?;

        let mut metadata = self.layout.skeleton();
        metadata.build = build;
        let states = std::mem::take(&mut self.columns);
        for (col, state) in metadata.columns.iter_mut().zip(states) {
            col.checksums = state.crc.finish();
            col.stats = state.stats.finish();
        }
        let metadata_offset = self.layout.data_end();
        metadata.validate(metadata_offset)?;
        let json = metadata.to_json()?;
        let metadata_len = json.len() as u64;
        let file_len = metadata_offset + metadata_len + TRAILER_LEN;
        let trailer = Trailer {
            metadata_offset,
            metadata_len,
            file_len,
            required_features: match self.layout.order() {
                crate::Order::Time => FEATURE_TIME_ORDER,
                _ => 0,
            },
            major: VERSION_MAJOR,
            minor: VERSION_MINOR,
            checksum_algorithm: CHECKSUM_CRC32,
            metadata_checksum: crc32fast::hash(&json),
        };
        let write_err = |e| Error::io("writing", &path, e);
        os::write_all_at(&self.file, &json, metadata_offset).map_err(write_err)?;
        os::write_all_at(
            &self.file,
            &trailer.encode(),
            metadata_offset + metadata_len,
        )
        .map_err(write_err)?;
        // Durability before visibility: the data must be on disk before the name points at it,
        // or a crash after the rename could expose a file whose blocks never made it.
        self.file
            .sync_all()
            .map_err(|e| Error::io("syncing", &path, e))?;
        // Renaming over a device, a FIFO or a directory would replace it (`/dev/null`): only a
        // regular file (or nothing) may be at the path.
        if let Ok(m) = std::fs::metadata(&path) {
            if !m.is_file() {
                return Err(Error::io(
                    "renaming to",
                    &path,
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a regular file: a spill file replaces only a regular file",
                    ),
                ));
            }
        }
        // rename(2) within one directory is atomic: readers see the old file or the new one.
        std::fs::rename(self.temp.path(), &path).map_err(|e| Error::io("renaming to", &path, e))?;
        self.temp.disarm();
        // The rename itself is only durable once the directory entry is synced.
        os::sync_dir(&path)?;
        Ok(Committed {
            path,
            file_len,
            metadata,
        })
    }
}
