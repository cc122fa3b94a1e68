//! The intermediate file, read with positioned reads (`pread`) at the rows its layout places.
//!
//! Not a memory map: pages of a mapping count in the process's resident set until released, and
//! releasing them needs `madvise` (unsafe, which this crate forbids); a positioned read copies
//! into the transposition's own bounded buffers and leaves the pages to the page cache.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use spill::Layout;

use crate::error::{Error, Result};

/// The committed symbol-major intermediate: its file, its layout, and the bytes read from it.
pub struct Source {
    file: File,
    path: PathBuf,
    layout: Layout,
    read: AtomicU64,
}

/// Threads reading one column's stretches at once: a single synchronous `pread` at a time
/// leaves the disk idle between requests (queue depth 1); four keep it busy.
const READ_THREADS: usize = 4;
/// Below this many bytes a column's stretches are read by the calling thread alone.
const PARALLEL_BYTES: usize = 1 << 20;

impl Source {
    /// Opens the intermediate at `path`, checking it is the committed file `layout` describes.
    pub fn open(path: &Path, layout: &Layout) -> Result<Source> {
        // A spill reader validates the header, trailer and metadata (O(metadata)): a file that
        // is not what was just committed is never read by row.
        let f = spill::open(path)?;
        if f.nrows() != layout.nrows() || f.columns().len() != layout.columns().len() {
            return Err(Error::Internal(format!(
                "the intermediate {} does not have the planned layout",
                path.display()
            )));
        }
        drop(f);
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        Ok(Source {
            file,
            path: path.to_path_buf(),
            layout: layout.clone(),
            read: AtomicU64::new(0),
        })
    }

    /// The layout of the intermediate (symbol-major).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Reads `out.len() / size` values of column `col` from row `row` into `out` (bytes).
    pub fn read(&self, col: usize, row: u64, out: &mut [u8]) -> Result<()> {
        let size = self.layout.columns()[col].dtype.size();
        let at = self.layout.offset(col) + row * size;
        let end = row * size + out.len() as u64;
        if end > self.layout.length(col) {
            return Err(Error::Internal(format!(
                "read past column {col} of the intermediate ({end} > {} bytes)",
                self.layout.length(col)
            )));
        }
        self.file
            .read_exact_at(out, at)
            .map_err(|e| Error::io("reading the intermediate", &self.path, e))?;
        self.read.fetch_add(out.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads each `(row, bytes)` of column `col` ([`Source::read`]), on up to four threads when
    /// there is enough to read.
    pub fn read_all(&self, col: usize, jobs: &mut [(u64, &mut [u8])]) -> Result<()> {
        let total: usize = jobs.iter().map(|(_, b)| b.len()).sum();
        if total < PARALLEL_BYTES || jobs.len() < 2 {
            return jobs
                .iter_mut()
                .try_for_each(|(row, b)| self.read(col, *row, b));
        }
        let per = jobs.len().div_ceil(READ_THREADS);
        std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .chunks_mut(per)
                .map(|group| {
                    s.spawn(move || {
                        group
                            .iter_mut()
                            .try_for_each(|(row, b)| self.read(col, *row, b))
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|h| {
                h.join()
                    .map_err(|_| Error::Internal("a reader of the intermediate panicked".into()))?
            })
        })
    }

    /// Reads `out.len()` times of the time column (column 0) from row `row`.
    pub fn read_times(&self, row: u64, out: &mut [i64]) -> Result<()> {
        self.read(0, row, bytemuck::cast_slice_mut(out))
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}
