//! The O_DIRECT backend: each column stages its bytes in a 4096-aligned buffer and writes it with
//! one aligned `pwrite` when full, bypassing the page cache. Column regions start on 4096-byte
//! boundaries and are zero-padded to the next one, so every write is aligned in offset, length and
//! memory: the last partial buffer of a column is written padded with zeros, which are exactly the
//! padding bytes the format requires. Memory: `columns x buffer` bytes, whatever the file size.
//!
//! Why: writing through fresh page cache costs a page fault or a copy into a newly allocated page
//! for every 4 KiB (measured: 1.1-1.2 s of wall and 2-3 s of kernel CPU for 1.6 GB on the 2-core
//! VM), O_DIRECT costs the DMA only (0.13 s for the same bytes).

use std::io;
use std::path::Path;

use super::os::{open_direct, write_all_at};
use super::Sink;
use crate::format::ALIGN;

/// One 4096-aligned page; a `Vec` of them is an aligned buffer with no unsafe and no slack.
#[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C, align(4096))]
struct Page([u8; ALIGN as usize]);

/// A heap buffer starting on a 4096-byte boundary, a whole number of pages long.
struct AlignedBuf {
    pages: Vec<Page>,
}

impl AlignedBuf {
    /// `len` is a multiple of 4096.
    fn new(len: usize) -> AlignedBuf {
        AlignedBuf {
            pages: vec![Page([0; ALIGN as usize]); len / ALIGN as usize],
        }
    }

    fn bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.pages)
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.pages)
    }
}

struct Staging {
    buf: AlignedBuf,
    /// Bytes of `buf` this column uses per write (its buffer size, or less for a small column).
    cap: usize,
    /// Bytes at which the current buffer is written: `cap`, except for the first buffer (see
    /// [`stagger`]).
    limit: usize,
    /// File offset of the buffer's first byte (4096-aligned).
    pos: u64,
    /// Bytes staged.
    fill: usize,
}

/// One aligned write for the I/O thread.
struct Job {
    buf: AlignedBuf,
    pos: u64,
    len: usize,
    /// The pool the buffer goes back to once written.
    pool: Pool,
}

/// Where a written buffer returns: the column buffers' spares or the bounce buffers.
#[derive(Clone, Copy)]
enum Pool {
    Spare,
    Bounce,
}

/// Bytes of one bounce buffer. A large slice written to a column whose staging buffer is small
/// (a wide file: 4000 columns share the memory, 16 KiB each) goes to the device through these
/// instead, in writes of up to this size rather than one per staging buffer. Measured on
/// wide4000 (4 files x 75k rows x 4000 features, 16 KiB staging buffers), one build each on a
/// loaded machine: 22.6 s without, 15.0 s with them.
pub(crate) const BOUNCE: usize = 1 << 20;

/// Bounce buffers: one per I/O thread, and two the writer fills while those are written.
pub(crate) const BOUNCE_BUFFERS: usize = IO_THREADS + 2;

/// The bounce buffers' memory for a per-column buffer of `per_column` bytes: none when the
/// staging buffers are as large as a bounce buffer (they already write in large requests).
pub(crate) fn bounce_bytes(per_column: u64) -> u64 {
    if per_column >= BOUNCE as u64 {
        0
    } else {
        (BOUNCE as u64 + ALIGN) * BOUNCE_BUFFERS as u64
    }
}

/// Spare buffers beyond one per column: writes that can be in flight while the writer goes on.
pub(crate) const IN_FLIGHT: usize = 8;

/// Threads issuing the writes. O_DIRECT writes are synchronous, so one thread keeps one request
/// at the device; small requests (wide files: many columns, small buffers) are latency-bound.
/// Measured on this VM's virtio disk, 2 GiB in 128 KiB O_DIRECT writes (`dd oflag=direct`, one
/// process vs four at disjoint offsets): 2.15 s with one writer, 0.81 s with four.
const IO_THREADS: usize = 4;

/// Writes column bytes through per-column aligned staging buffers with O_DIRECT. Full buffers go
/// to I/O threads, so the writer never waits for the device while it has work: it swaps in a
/// spare buffer and continues (it waits only when `IN_FLIGHT` writes are already queued).
pub(crate) struct DirectSink {
    columns: Vec<Staging>,
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    spares: std::sync::mpsc::Receiver<AlignedBuf>,
    /// Empty when the staging buffers are [`BOUNCE`] bytes or more.
    bounces: std::sync::mpsc::Receiver<AlignedBuf>,
    /// Bytes from which a write bypasses an empty staging buffer through a bounce buffer.
    bounce_from: usize,
    io: Vec<std::thread::JoinHandle<io::Result<()>>>,
}

impl DirectSink {
    /// Opens `path` a second time with O_DIRECT. Fails (EINVAL on tmpfs, for one) where the
    /// filesystem refuses it, and always off Linux; the caller then falls back.
    pub(crate) fn open(path: &Path, regions: &[(u64, u64)], buffer: u64) -> io::Result<DirectSink> {
        let file = open_direct(path)?;
        let buffer =
            usize::try_from(buffer).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // Probe: some filesystems accept O_DIRECT at open and refuse the first write. Write the
        // first column's first block (zeros, as the file holds there now) to find out here.
        if let Some(&(start, end)) = regions.first() {
            if end > start {
                write_all_at(&file, AlignedBuf::new(ALIGN as usize).bytes(), start)?;
            }
        }
        let ncols = regions.len();
        let columns = regions
            .iter()
            .enumerate()
            .map(|(i, &(start, end))| {
                // A column never needs more buffer than its padded region (a multiple of 4096).
                let cap = buffer
                    .min(usize::try_from(end - start).unwrap_or(buffer))
                    .max(ALIGN as usize);
                Staging {
                    buf: AlignedBuf::new(buffer),
                    cap,
                    limit: stagger(cap, i, ncols),
                    pos: start,
                    fill: 0,
                }
            })
            .collect();
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job>(IN_FLIGHT);
        let (spare_tx, spares) = std::sync::mpsc::sync_channel(IN_FLIGHT + 1);
        for _ in 0..IN_FLIGHT {
            let _ = spare_tx.send(AlignedBuf::new(buffer));
        }
        let (bounce_tx, bounces) = std::sync::mpsc::sync_channel(BOUNCE_BUFFERS);
        if bounce_bytes(buffer as u64) > 0 {
            for _ in 0..BOUNCE_BUFFERS {
                let _ = bounce_tx.send(AlignedBuf::new(BOUNCE));
            }
        }
        let file = std::sync::Arc::new(file);
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        let mut io = Vec::with_capacity(IO_THREADS);
        for t in 0..IO_THREADS {
            let (file, job_rx) = (file.clone(), job_rx.clone());
            let (spare_tx, bounce_tx) = (spare_tx.clone(), bounce_tx.clone());
            let thread = std::thread::Builder::new().name(format!("spill-io-{t}"));
            io.push(thread.spawn(move || -> io::Result<()> {
                let mut first_error = None;
                loop {
                    let next = job_rx.lock().map_or(None, |rx| rx.recv().ok());
                    let Some(job) = next else { break };
                    // After a failure, keep draining (the writer may be blocked sending) but
                    // write nothing.
                    if first_error.is_none() {
                        if let Err(e) = write_all_at(&file, &job.buf.bytes()[..job.len], job.pos) {
                            first_error = Some(e);
                        }
                    }
                    let _ = match job.pool {
                        Pool::Spare => spare_tx.send(job.buf),
                        Pool::Bounce => bounce_tx.send(job.buf),
                    };
                }
                first_error.map_or(Ok(()), Err)
            })?);
        }
        Ok(DirectSink {
            columns,
            jobs: Some(jobs),
            spares,
            bounces,
            bounce_from: if bounce_bytes(buffer as u64) > 0 {
                (2 * buffer).max(64 << 10)
            } else {
                usize::MAX
            },
            io,
        })
    }

    /// Hands column `col`'s staged bytes to the I/O thread (the tail zero-padded to 4096 when
    /// `pad`, the format's padding) and swaps in a spare buffer.
    fn flush(&mut self, col: usize, pad: bool) -> io::Result<()> {
        let c = &mut self.columns[col];
        if c.fill == 0 {
            return Ok(());
        }
        let len = if pad {
            c.fill.next_multiple_of(ALIGN as usize)
        } else {
            c.fill
        };
        c.buf.bytes_mut()[c.fill..len].fill(0);
        let spare = self.spares.recv().map_err(|_| io_thread_gone())?;
        let buf = std::mem::replace(&mut c.buf, spare);
        let job = Job {
            buf,
            pos: c.pos,
            len,
            pool: Pool::Spare,
        };
        c.pos += len as u64;
        c.fill = 0;
        c.limit = c.cap;
        let jobs = self.jobs.as_ref().ok_or_else(io_thread_gone)?;
        jobs.send(job).map_err(|_| io_thread_gone())
    }

    /// Writes the longest whole-page prefix of `bytes` (at most [`BOUNCE`]) at column `col`'s
    /// position through a bounce buffer; the staging buffer must be empty. Returns the bytes
    /// taken.
    fn bounce(&mut self, col: usize, bytes: &[u8]) -> io::Result<usize> {
        let n = (bytes.len() / ALIGN as usize * ALIGN as usize).min(BOUNCE);
        let mut buf = self.bounces.recv().map_err(|_| io_thread_gone())?;
        buf.bytes_mut()[..n].copy_from_slice(&bytes[..n]);
        let c = &mut self.columns[col];
        let job = Job {
            buf,
            pos: c.pos,
            len: n,
            pool: Pool::Bounce,
        };
        c.pos += n as u64;
        let jobs = self.jobs.as_ref().ok_or_else(io_thread_gone)?;
        jobs.send(job).map_err(|_| io_thread_gone())?;
        Ok(n)
    }

    /// Waits for every queued write; the first error of the I/O threads, if any.
    fn join(&mut self) -> io::Result<()> {
        self.jobs = None;
        let mut result = Ok(());
        for h in self.io.drain(..) {
            let r = h.join().unwrap_or_else(|_| Err(io_thread_gone()));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

/// The first buffer of column `i` of `ncols` is written at this many bytes (a multiple of 4096),
/// the later ones at `cap`. Every batch brings rows for every column, so without this all the
/// buffers would fill in the same batch and go to the device as one burst of `ncols` writes,
/// during which the writer waits for spare buffers (measured: with 1 MiB buffers, 5% less CPU
/// than 256 KiB but 7% more wall). Staggered, about one buffer fills per `1 / ncols` of the
/// stream and the I/O thread keeps pace.
fn stagger(cap: usize, i: usize, ncols: usize) -> usize {
    let align = ALIGN as usize;
    let early = (cap / ncols.max(1) * i) / align * align;
    (cap - early).max(align)
}

fn io_thread_gone() -> io::Error {
    io::Error::other("the O_DIRECT writer thread stopped")
}

impl Sink for DirectSink {
    fn write(&mut self, col: usize, offset: u64, mut bytes: &[u8]) -> io::Result<()> {
        debug_assert_eq!(
            offset,
            self.columns[col].pos + self.columns[col].fill as u64
        );
        while !bytes.is_empty() {
            if self.columns[col].fill == 0 && bytes.len() >= self.bounce_from {
                let n = self.bounce(col, bytes)?;
                bytes = &bytes[n..];
                continue;
            }
            let c = &mut self.columns[col];
            let n = (c.limit - c.fill).min(bytes.len());
            c.buf.bytes_mut()[c.fill..c.fill + n].copy_from_slice(&bytes[..n]);
            c.fill += n;
            bytes = &bytes[n..];
            if c.fill == c.limit {
                self.flush(col, false)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        for col in 0..self.columns.len() {
            self.flush(col, true)?;
        }
        self.join()
    }
}

impl Drop for DirectSink {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// The spill tests' skip report, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/spill/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::skip::skipped;
    use super::*;

    #[test]
    fn first_writes_are_aligned_and_spread_over_a_buffer() {
        let align = ALIGN as usize;
        for (cap, ncols) in [(256 << 10, 103), (1 << 20, 7), (4096, 50), (8192, 1)] {
            let limits: Vec<usize> = (0..ncols).map(|i| stagger(cap, i, ncols)).collect();
            assert_eq!(limits[0], cap);
            for &l in &limits {
                assert!(l % align == 0 && (align..=cap).contains(&l), "{l} of {cap}");
            }
            // Non-increasing, and when the buffer has room, the last column writes far earlier.
            assert!(limits.windows(2).all(|w| w[0] >= w[1]));
            if cap / align >= ncols {
                assert!(limits[ncols - 1] <= cap / ncols + align, "{limits:?}");
            }
        }
    }

    /// Small staging buffers (as in a wide file) with writes of every size: a few bytes, a
    /// staging buffer's worth, and slices larger than a bounce buffer that take the bounce path,
    /// alone and after staged bytes. The file must hold exactly the bytes written, zero-padded.
    #[test]
    fn bounce_buffers_write_the_same_bytes_as_staging() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("direct.bin");
        let sizes = [
            3usize,
            5000,
            BOUNCE + 12_345,
            8192,
            70_000,
            2 * BOUNCE + 4096,
            1,
        ];
        let total: usize = sizes.iter().sum();
        let region = (total as u64).div_ceil(ALIGN) * ALIGN;
        let regions = [(0, region), (region, 2 * region)];
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(2 * region))
            .expect("create");
        let mut sink = match DirectSink::open(&path, &regions, 8192) {
            Ok(sink) => sink,
            Err(e) => {
                skipped(&format!(
                    "O_DIRECT unsupported in {}: {e}",
                    dir.path().display()
                ));
                return;
            }
        };
        assert!(
            sink.bounce_from < BOUNCE,
            "8 KiB buffers bounce large writes"
        );
        let mut expected = vec![vec![0u8; region as usize]; 2];
        let mut at = [0usize; 2];
        let mut next = 1u8;
        for (i, &n) in sizes.iter().enumerate() {
            for col in [i % 2, 1 - i % 2] {
                let bytes: Vec<u8> = (0..n).map(|k| next.wrapping_add(k as u8)).collect();
                next = next.wrapping_add(31);
                sink.write(col, regions[col].0 + at[col] as u64, &bytes)
                    .expect("write");
                expected[col][at[col]..at[col] + n].copy_from_slice(&bytes);
                at[col] += n;
            }
        }
        sink.finish().expect("finish");
        let file = std::fs::read(&path).expect("read back");
        assert_eq!(file.len(), 2 * region as usize);
        assert!(
            file[..region as usize] == expected[0][..],
            "column 0 differs"
        );
        assert!(
            file[region as usize..] == expected[1][..],
            "column 1 differs"
        );
    }
}
