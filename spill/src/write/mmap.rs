//! The memory-mapped backend: each column writes through its own small window of the file.
//!
//! A window is mapped, filled, then unmapped, and writeback of its range is started with
//! `sync_file_range(SYNC_FILE_RANGE_WRITE)`. Unmapping drops the pages from the process's resident
//! set, so peak RSS is `columns x window`, whatever the file size (a whole-file `MmapMut` would make
//! VmHWM equal the file size, and memmap2's `flush_async` does not start writeback on Linux).
//! Off Linux, where there is no `sync_file_range`, the window is flushed with `flush_async` before
//! it is unmapped instead.

use std::fs::File;
use std::io;

use memmap2::{MmapMut, MmapOptions};

use super::Sink;

struct Window {
    map: MmapMut,
    start: u64,
}

/// Writes column bytes through one bounded window per column.
pub(crate) struct MmapSink {
    file: File,
    /// Each column's region `[start, end)`, padded to 4096: windows never leave it.
    regions: Vec<(u64, u64)>,
    window: u64,
    open: Vec<Option<Window>>,
}

impl MmapSink {
    /// `window` is a power of two, at least 4096.
    pub(crate) fn new(file: File, regions: Vec<(u64, u64)>, window: u64) -> MmapSink {
        let open = regions.iter().map(|_| None).collect();
        MmapSink {
            file,
            regions,
            window,
            open,
        }
    }

    fn map_window(&self, col: usize, offset: u64) -> io::Result<Window> {
        let (region_start, region_end) = self.regions[col];
        let aligned = offset / self.window * self.window;
        let start = aligned.max(region_start);
        let end = (aligned + self.window).min(region_end);
        let len = usize::try_from(end - start)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the file is this writer's own temporary file, created with create_new and
        // reserved to its full data size; nobody else truncates it while we write. `start` is a
        // multiple of 4096 (regions start on 4096 boundaries and windows are 4096-multiples), and
        // [start, end) lies inside the column's region, so no two live windows share a page.
        let map = unsafe {
            MmapOptions::new()
                .offset(start)
                .len(len)
                .map_mut(&self.file)?
        };
        // Every page of the window is about to be overwritten: readahead on the first fault would
        // only zero-fill pages of other windows (measured: 45% of the CPU of a 2 GiB write).
        // Windows takes no such hint.
        #[cfg(unix)]
        map.advise(memmap2::Advice::Random)?;
        Ok(Window { map, start })
    }

    /// Unmaps column `col`'s window and starts writeback of its range.
    fn retire(&mut self, col: usize) -> io::Result<()> {
        let Some(w) = self.open[col].take() else {
            return Ok(());
        };
        // sync_file_range is Linux's: elsewhere the mapping starts its own writeback before it
        // goes (msync(MS_ASYNC); on Windows FlushViewOfFile, which its documentation puts before
        // FlushFileBuffers to get a view's bytes to disk). `finish` fsyncs either way.
        #[cfg(not(target_os = "linux"))]
        w.map.flush_async()?;
        let (start, len) = (w.start, w.map.len() as u64);
        drop(w.map);
        start_writeback(&self.file, start, len)
    }
}

impl Sink for MmapSink {
    fn write(&mut self, col: usize, mut offset: u64, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let inside = self.open[col]
                .as_ref()
                .is_some_and(|w| offset >= w.start && offset < w.start + w.map.len() as u64);
            if !inside {
                self.retire(col)?;
                self.open[col] = Some(self.map_window(col, offset)?);
            }
            let Some(w) = self.open[col].as_mut() else {
                unreachable!("a window was mapped just above");
            };
            let at = (offset - w.start) as usize;
            let n = bytes.len().min(w.map.len() - at);
            w.map[at..at + n].copy_from_slice(&bytes[..n]);
            offset += n as u64;
            bytes = &bytes[n..];
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        for col in 0..self.open.len() {
            self.retire(col)?;
        }
        Ok(())
    }
}

/// Starts asynchronous writeback of `[start, start + len)` (no waiting).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, start: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(start), Ok(len)) = (libc::off64_t::try_from(start), libc::off64_t::try_from(len))
    else {
        return Ok(());
    };
    // SAFETY: plain syscall on an open descriptor; no memory is passed.
    let rc =
        unsafe { libc::sync_file_range(file.as_raw_fd(), start, len, libc::SYNC_FILE_RANGE_WRITE) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        // Some filesystems (and tmpfs) do not support it: writeback then happens as usual.
        if !matches!(
            err.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::ESPIPE)
        ) {
            return Err(err);
        }
    }
    Ok(())
}

/// sync_file_range(2) is Linux's: elsewhere [`MmapSink::retire`] flushed the window before
/// unmapping it, and there is nothing to start here.
#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _start: u64, _len: u64) -> io::Result<()> {
    Ok(())
}
