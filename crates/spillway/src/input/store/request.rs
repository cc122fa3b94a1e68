//! Requests on the I/O runtime: a ranged GET checked against the listing (its length, its ETag)
//! and retried when its body is short; waiting for one from a reader or planning thread, which
//! gives up when the build is cancelled; and the first requests of upcoming tasks, started ahead.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use object_store::{GetOptions, ObjectMeta};

use super::{Store, WARM};
use crate::cancel::Cancel;
use crate::error::SymbolErrorKind;

/// How often a waiting thread looks at the cancellation flags.
const POLL: Duration = Duration::from_millis(50);
/// Our own retries of a body shorter than asked (object_store retries failed requests itself).
const SHORT_RETRIES: u32 = 3;

/// Why waiting for a request stopped early.
pub(crate) enum Stopped {
    Cancelled,
    Failed(String),
}

impl Store {
    /// Starts `range` of `name` ahead of the task that will read it first, keeping at most
    /// [`WARM`] such requests (the oldest dropped).
    pub(crate) fn warm(
        self: &Arc<Self>,
        name: &str,
        meta: &ObjectMeta,
        range: std::ops::Range<u64>,
    ) {
        let Ok(mut w) = self.warm.lock() else { return };
        if w.iter().any(|(n, r, _)| n == name && *r == range) {
            return;
        }
        if w.len() >= WARM {
            w.pop_front();
        }
        w.push_back((
            name.to_string(),
            range.clone(),
            self.spawn_get(name, meta, range),
        ));
    }

    /// A GET of `range` of `name`: the one started ahead, if any, else a new one.
    pub(crate) fn get_warm(
        self: &Arc<Self>,
        name: &str,
        meta: &ObjectMeta,
        range: std::ops::Range<u64>,
    ) -> Pending {
        let taken = self.warm.lock().ok().and_then(|mut w| {
            let i = w.iter().position(|(n, r, _)| n == name && *r == range)?;
            w.remove(i).map(|(_, _, p)| p)
        });
        taken.unwrap_or_else(|| self.spawn_get(name, meta, range))
    }

    /// Runs `fut` on the I/O runtime and waits for it from this (non-runtime) thread, giving up
    /// when the build is cancelled (the request is then dropped, which aborts it).
    pub(crate) fn wait<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> std::result::Result<T, Stopped> {
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| Stopped::Failed("the I/O runtime is shut down".into()))?;
        let (tx, rx) = sync_channel(1);
        let task = AbortOnDrop(rt.spawn(async move {
            let _ = tx.send(fut.await);
        }));
        loop {
            match rx.recv_timeout(POLL) {
                Ok(v) => return Ok(v),
                Err(RecvTimeoutError::Timeout) if self.cancel.is_cancelled() => {
                    drop(task);
                    return Err(Stopped::Cancelled);
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Stopped::Failed(
                        "an I/O task ended without an answer".into(),
                    ))
                }
            }
        }
    }

    /// Starts a ranged GET of `range` of `name` on the runtime; the receiver gets the checked
    /// bytes (exactly the range, the listed ETag), retried when short.
    pub(crate) fn spawn_get(
        self: &Arc<Self>,
        name: &str,
        meta: &ObjectMeta,
        range: std::ops::Range<u64>,
    ) -> Pending {
        let (tx, rx) = sync_channel(1);
        let store = Arc::clone(self);
        let (name, meta) = (name.to_string(), meta.clone());
        let Some(rt) = self.rt.as_ref() else {
            let _ = tx.send(Err(SymbolErrorKind::Io {
                op: "reading",
                message: "the I/O runtime is shut down".into(),
            }));
            return Pending { rx, _task: None };
        };
        let task = rt.spawn(async move {
            let _ = tx.send(store.get_checked(&name, &meta, range).await);
        });
        Pending {
            rx,
            _task: Some(AbortOnDrop(task)),
        }
    }

    /// A ranged GET of `range`, checked: exactly `range.len()` bytes of the object as listed.
    async fn get_checked(
        &self,
        name: &str,
        meta: &ObjectMeta,
        range: std::ops::Range<u64>,
    ) -> std::result::Result<Body, SymbolErrorKind> {
        let want = range.end - range.start;
        let mut attempt = 0;
        self.counters.logical.fetch_add(1, Ordering::Relaxed);
        loop {
            let started = Instant::now();
            let opts = GetOptions::new()
                .with_range(Some(range.clone()))
                .with_if_match(meta.e_tag.clone());
            let got = match self.os.get_opts(&meta.location, opts).await {
                Ok(r) => {
                    let listed = meta.e_tag.as_deref().map(bare_etag);
                    let served = r.meta.e_tag.as_deref().map(bare_etag);
                    if r.meta.size != meta.size || (served.is_some() && served != listed) {
                        return Err(SymbolErrorKind::Changed);
                    }
                    // The frames as the client read them: collecting them into one buffer
                    // would copy every byte once more (and fault in a fresh buffer each time).
                    let mut stream = r.into_stream();
                    let mut body = Body::default();
                    loop {
                        match stream.next().await {
                            Some(Ok(frame)) => body.push(frame),
                            Some(Err(e)) => break Err(e),
                            None => break Ok(body),
                        }
                    }
                }
                Err(e) => Err(e),
            };
            self.counters.note_time(started.elapsed(), name);
            let why = match got {
                Ok(b) if b.len() == want => return Ok(b),
                Ok(b) => format!(
                    "short read: got {} of {want} bytes at offset {}",
                    b.len(),
                    range.start
                ),
                Err(object_store::Error::Precondition { .. }) => {
                    return Err(SymbolErrorKind::Changed)
                }
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(SymbolErrorKind::Io {
                        op: "reading",
                        message: "the object is gone (deleted after it was listed)".into(),
                    })
                }
                // The response's range is not the one asked: a proxy or server fault.
                Err(e @ object_store::Error::Generic { .. }) if e.to_string().contains("range") => {
                    e.to_string()
                }
                Err(e) => {
                    return Err(SymbolErrorKind::Io {
                        op: "reading",
                        message: self.scrub(e.to_string()),
                    })
                }
            };
            attempt += 1;
            if attempt > SHORT_RETRIES {
                return Err(SymbolErrorKind::Io {
                    op: "reading",
                    message: self.scrub(why),
                });
            }
            let jitter = u64::from(started.elapsed().subsec_nanos() % 50);
            tokio::time::sleep(Duration::from_millis(100 * (1 << attempt) + jitter)).await;
        }
    }
}

/// An ETag without its quotes and weak marker: listings and responses quote them differently
/// (Azure lists `0x8DC…`, and answers a GET with `"0x8DC…"`).
fn bare_etag(e: &str) -> &str {
    e.trim_start_matches("W/").trim_matches('"')
}

/// A response body as it arrived: the frames the HTTP client read, not copied into one buffer.
#[derive(Clone, Default)]
pub(crate) struct Body {
    frames: Vec<Bytes>,
    len: u64,
}

impl Body {
    fn push(&mut self, frame: Bytes) {
        self.len += frame.len() as u64;
        self.frames.push(frame);
    }

    /// Its length in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Copies its bytes from `from` into `dst` (the caller keeps `from + dst.len()` within it).
    pub(crate) fn copy_to(&self, mut from: u64, mut dst: &mut [u8]) {
        for f in &self.frames {
            if dst.is_empty() {
                return;
            }
            let n = f.len() as u64;
            if from >= n {
                from -= n;
                continue;
            }
            let take = ((n - from) as usize).min(dst.len());
            let at = from as usize;
            dst[..take].copy_from_slice(&f[at..at + take]);
            dst = &mut dst[take..];
            from = 0;
        }
    }

    /// Its frames, each with its offset from the body's start.
    pub(crate) fn frames(&self) -> impl Iterator<Item = (u64, &Bytes)> {
        self.frames.iter().scan(0u64, |at, f| {
            let here = *at;
            *at += f.len() as u64;
            Some((here, f))
        })
    }

    /// Its bytes in one buffer (a copy when it came in several frames).
    pub(crate) fn to_bytes(&self) -> Bytes {
        match self.frames.as_slice() {
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        }
    }
}

/// A GET running on the runtime: its checked bytes arrive on `rx`. Dropping it aborts it.
pub(crate) struct Pending {
    rx: std::sync::mpsc::Receiver<std::result::Result<Body, SymbolErrorKind>>,
    _task: Option<AbortOnDrop>,
}

impl Pending {
    /// Waits for the bytes, checking `cancel` between waits.
    pub(crate) fn wait(self, cancel: &Cancel) -> std::result::Result<Body, SymbolErrorKind> {
        loop {
            match self.rx.recv_timeout(POLL) {
                Ok(v) => return v,
                Err(RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                    return Err(SymbolErrorKind::Io {
                        op: "reading",
                        message: "cancelled".into(),
                    })
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(SymbolErrorKind::Io {
                        op: "reading",
                        message: "an I/O task ended without an answer".into(),
                    })
                }
            }
        }
    }
}

/// Aborts a runtime task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
