//! One object opened for reading, in two ways:
//! - for the fast decoder, [`ReadAt`]: the task declares the byte runs it will read, in the
//!   order it reads them ([`ObjectFile::expect`]), and ranged GETs of at most `request_size` run
//!   that many ahead (`requests_in_flight`); a window never reads past the end of its run. A
//!   read the declaration missed is one GET, waited for at once, and counted (`unplanned`);
//! - for arrow-rs, [`ObjectFile::stage`]: the footer and the column chunks of some columns are
//!   fetched into an unnamed sparse temporary file at their own offsets, which the local code
//!   then reads unchanged. Memory holds only the requests in flight.

use std::collections::VecDeque;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use object_store::ObjectMeta;

use super::request::Body;
use super::{Pending, Store, FOOTER_TAIL};
use crate::decode::ReadAt;
use crate::error::SymbolErrorKind;

/// An object of a store's listing, opened for reading.
pub struct ObjectFile {
    store: Arc<Store>,
    name: String,
    meta: ObjectMeta,
    ahead: Mutex<Ahead>,
}

/// The read-ahead of one task: pieces of its runs, in the order they will be read.
#[derive(Default)]
struct Ahead {
    /// The declared runs, sorted by offset (for [`ReadAt::read_limit`]).
    sorted: Vec<Range<u64>>,
    /// Pieces not sent yet, in read order.
    todo: VecDeque<Piece>,
    /// Pieces sent (at most `requests_in_flight`), in read order, with their bytes or request.
    sent: VecDeque<(Piece, Slot)>,
}

/// A request's range, in run `run` of phase `phase`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    phase: usize,
    run: usize,
    range: Range<u64>,
}

enum Slot {
    Waiting(Pending),
    Ready(Body),
}

fn io_error(kind: SymbolErrorKind) -> std::io::Error {
    std::io::Error::other(kind.to_string())
}

impl ObjectFile {
    pub(super) fn new(store: Arc<Store>, name: String, meta: ObjectMeta) -> ObjectFile {
        ObjectFile {
            store,
            name,
            meta,
            ahead: Mutex::new(Ahead::default()),
        }
    }

    /// Size and last modification, as listed.
    pub fn identity(&self) -> (u64, Option<SystemTime>) {
        (
            self.meta.size,
            Some(SystemTime::from(self.meta.last_modified)),
        )
    }

    /// The ETag, as listed.
    pub fn etag(&self) -> Option<&str> {
        self.meta.e_tag.as_deref()
    }

    /// Declares what the caller reads next: phases in the order it reads them, each a set of
    /// byte runs it reads together (interleaved, as the time and target columns of a row group),
    /// each run front to back. Reading in a phase drops what is left of the phases before it
    /// (their rows were filtered out), and in a run what lies before the read.
    pub fn expect(&self, phases: Vec<Vec<Range<u64>>>) {
        let size = self.store.io.request_size;
        let Ok(mut a) = self.ahead.lock() else { return };
        *a = Ahead::default();
        let mut run = 0;
        for (phase, runs) in phases.into_iter().enumerate() {
            // The pieces of a phase's runs, taken in turn.
            let mut queues: Vec<VecDeque<Piece>> = Vec::new();
            for r in runs.into_iter().filter(|r| r.start < r.end) {
                a.sorted.push(r.clone());
                let mut q = VecDeque::new();
                let mut at = r.start;
                while at < r.end {
                    let end = r.end.min(at + size);
                    q.push_back(Piece {
                        phase,
                        run,
                        range: at..end,
                    });
                    at = end;
                }
                queues.push(q);
                run += 1;
            }
            while queues.iter().any(|q| !q.is_empty()) {
                for q in &mut queues {
                    if let Some(p) = q.pop_front() {
                        a.todo.push_back(p);
                    }
                }
            }
        }
        a.sorted.sort_by_key(|r| r.start);
        self.top_up(&mut a);
    }

    /// Sends requests until `requests_in_flight` are out.
    fn top_up(&self, a: &mut Ahead) {
        while a.sent.len() < self.store.io.requests_in_flight {
            let Some(p) = a.todo.pop_front() else { break };
            let pending = self.store.get_warm(&self.name, &self.meta, p.range.clone());
            a.sent.push_back((p, Slot::Waiting(pending)));
        }
    }

    /// One ranged GET, waited for.
    fn get(&self, range: Range<u64>) -> Result<Body, SymbolErrorKind> {
        self.store
            .spawn_get(&self.name, &self.meta, range)
            .wait(&self.store.cancel)
    }

    /// Starts fetching the first request of what `phases` (as [`ObjectFile::expect`] takes
    /// them) will read, for the task that takes them next (see [`Store::get_warm`]).
    pub fn warm(&self, phases: &[Vec<Range<u64>>]) {
        let size = self.store.io.request_size;
        if let Some(r) = phases.iter().flatten().find(|r| r.start < r.end) {
            let piece = r.start..r.end.min(r.start + size);
            self.store.warm(&self.name, &self.meta, piece);
        }
    }

    /// The footer (its thrift bytes, length and magic) and where it starts: the last 64 KiB
    /// read at once, and one more read when the footer is longer. Kept in the store's cache, so
    /// the time scan and the readers that open the object later do not fetch it again.
    fn footer(&self) -> Result<(u64, Bytes), SymbolErrorKind> {
        if let Some(f) = self.store.cached_footer(&self.name) {
            return Ok(f);
        }
        let size = self.meta.size;
        let first = size.saturating_sub(FOOTER_TAIL);
        let tail = self.get(first..size)?.to_bytes();
        let n = tail.len();
        let len = match n >= 8 {
            true => u64::from(u32::from_le_bytes([
                tail[n - 8],
                tail[n - 7],
                tail[n - 6],
                tail[n - 5],
            ])),
            false => 0,
        };
        let start = size.saturating_sub(len.saturating_add(8));
        let footer = match start < first {
            true => {
                let mut all = self.get(start..first)?.to_bytes().to_vec();
                all.extend_from_slice(&tail);
                Bytes::from(all)
            }
            // Copied: a slice would keep the whole tail alive in the cache.
            false => Bytes::copy_from_slice(&tail[(start - first) as usize..]),
        };
        self.store.keep_footer(&self.name, start, footer.clone());
        Ok((start, footer))
    }

    /// An unnamed sparse temporary file of the object's size holding its footer, and, when
    /// `roots` is given, the column chunks of those top-level columns: what arrow-rs and the
    /// footer code read, at their own offsets.
    pub fn stage(&self, roots: Option<&[usize]>) -> Result<File, SymbolErrorKind> {
        let io = |op: &'static str| {
            move |e: std::io::Error| SymbolErrorKind::Io {
                op,
                message: e.to_string(),
            }
        };
        let file = tempfile::tempfile().map_err(io("staging (a temporary file)"))?;
        file.set_len(self.meta.size).map_err(io("staging"))?;
        let (at, footer) = self.footer()?;
        file.write_all_at(&footer, at).map_err(io("staging"))?;
        let end = at + footer.len() as u64;
        self.store.counters.note_used(&self.name, at..end);
        let Some(roots) = roots else { return Ok(file) };
        let meta = crate::input::footer::load_metadata(&file)?;
        let pq = meta.metadata();
        let descr = pq.file_metadata().schema_descr();
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for rg in pq.row_groups() {
            for (leaf, c) in rg.columns().iter().enumerate() {
                if leaf < descr.num_columns() && roots.contains(&descr.get_column_root_idx(leaf)) {
                    let (start, len) = c.byte_range();
                    let end = start.saturating_add(len).min(self.meta.size);
                    ranges.push(start.min(end)..end);
                }
            }
        }
        ranges.sort_by_key(|r| r.start);
        let size = self.store.io.request_size;
        let mut requests: VecDeque<Range<u64>> = VecDeque::new();
        for r in ranges {
            match requests.back_mut() {
                Some(last) if r.start <= last.end && r.end - last.start <= size => {
                    last.end = last.end.max(r.end)
                }
                _ => {
                    let mut at = r.start;
                    while at < r.end {
                        let end = r.end.min(at + size);
                        requests.push_back(at..end);
                        at = end;
                    }
                }
            }
        }
        let mut sent: VecDeque<(u64, Pending)> = VecDeque::new();
        loop {
            while sent.len() < self.store.io.requests_in_flight {
                let Some(r) = requests.pop_front() else { break };
                sent.push_back((r.start, self.store.spawn_get(&self.name, &self.meta, r)));
            }
            let Some((at, pending)) = sent.pop_front() else {
                break;
            };
            let body = pending.wait(&self.store.cancel)?;
            for (off, frame) in body.frames() {
                file.write_all_at(frame, at + off).map_err(io("staging"))?;
            }
            self.store
                .counters
                .note_used(&self.name, at..at + body.len());
        }
        Ok(file)
    }
}

impl Ahead {
    /// The sent piece holding `pos`, after dropping what the read makes stale; a declared piece
    /// not sent yet is sent now. `None`: `pos` was not declared.
    fn find(&mut self, file: &ObjectFile, pos: u64) -> Option<usize> {
        let piece = match self.sent.iter().find(|(p, _)| p.range.contains(&pos)) {
            Some((p, _)) => p.clone(),
            None => self.todo.iter().find(|p| p.range.contains(&pos))?.clone(),
        };
        let stale = |p: &Piece| p.phase < piece.phase || (p.run == piece.run && p.range.end <= pos);
        self.sent.retain(|(p, _)| !stale(p));
        self.todo.retain(|p| !stale(p));
        if let Some(i) = self.sent.iter().position(|(p, _)| *p == piece) {
            return Some(i);
        }
        self.todo.retain(|p| *p != piece);
        let pending = file
            .store
            .get_warm(&file.name, &file.meta, piece.range.clone());
        self.sent.push_front((piece, Slot::Waiting(pending)));
        Some(0)
    }
}

impl ReadAt for ObjectFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let mut a = self
            .ahead
            .lock()
            .map_err(|_| std::io::Error::other("read-ahead lock poisoned"))?;
        let end = offset + buf.len() as u64;
        let mut pos = offset;
        while pos < end {
            let Some(i) = a.find(self, pos) else {
                // Not declared: one GET, up to the next declared byte.
                let stop = a
                    .sent
                    .iter()
                    .map(|(p, _)| p.range.start)
                    .filter(|&s| s > pos)
                    .min()
                    .map_or(end, |s| s.min(end));
                self.store
                    .counters
                    .unplanned
                    .fetch_add(1, Ordering::Relaxed);
                let body = self.get(pos..stop).map_err(io_error)?;
                self.store.counters.note_used(&self.name, pos..stop);
                let from = (pos - offset) as usize;
                body.copy_to(0, &mut buf[from..from + body.len() as usize]);
                pos = stop;
                continue;
            };
            self.top_up(&mut a);
            let (piece, slot) = &mut a.sent[i];
            let range = piece.range.clone();
            if let Slot::Waiting(_) = slot {
                let Slot::Waiting(p) = std::mem::replace(slot, Slot::Ready(Body::default())) else {
                    return Err(std::io::Error::other("read-ahead slot changed"));
                };
                *slot = Slot::Ready(p.wait(&self.store.cancel).map_err(io_error)?);
            }
            let Slot::Ready(body) = slot else {
                return Err(std::io::Error::other("read-ahead slot not ready"));
            };
            let stop = end.min(range.end);
            let dst = (pos - offset) as usize;
            body.copy_to(
                pos - range.start,
                &mut buf[dst..dst + (stop - pos) as usize],
            );
            self.store.counters.note_used(&self.name, pos..stop);
            pos = stop;
            if stop == range.end {
                a.sent.remove(i);
                self.top_up(&mut a);
            }
        }
        Ok(())
    }

    fn read_limit(&self, offset: u64) -> Option<u64> {
        let a = self.ahead.lock().ok()?;
        let i = a.sorted.partition_point(|r| r.start <= offset);
        let run = a.sorted.get(i.checked_sub(1)?)?;
        (offset < run.end).then_some(run.end)
    }
}
