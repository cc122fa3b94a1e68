//! `store`: universes in object storage (`s3://`, `gs://`, `az://`), read through the
//! `object_store` crate. This module owns the client and its tokio runtime, which runs only I/O:
//! reader and planning threads hand it a request and wait on a channel, checking for
//! cancellation between waits, so Ctrl-C stops a build with requests in flight.
//!
//! - [`Store`]: one opened store (a bucket and prefix), its client built from the environment
//!   and the `--storage-option`s, the objects its listing found, and what its requests cost
//!   ([`RemoteStats`]);
//! - `list`: the listing, turned into a [`Universe`](super::discover::Universe) by the same rules
//!   as a directory;
//! - `object`: one object opened for reading: ranged GETs running ahead of the fast decoder
//!   ([`ReadAt`](crate::decode::ReadAt)), or staged into a sparse local file for arrow-rs;
//! - `count`: the HTTP layer that counts every attempt and every byte received.
//!
//! Every GET names the object's ETag from the listing (`If-Match`) and checks the length of the
//! body it got: a replaced object is a `Changed` error naming it, a short body is asked again,
//! never decoded. Files are named by their URLs (`s3://bucket/u/AAPL.parquet`); the stores open
//! in the process are found by the URL prefix they serve ([`find`]), as DataFusion's object store
//! registry does, so that the pipeline passes names and never clients.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{GetOptions, ObjectMeta, ObjectStore, ObjectStoreScheme};

use crate::cancel::Cancel;
use crate::config::{StorageOptions, OWN_KEYS};
use crate::error::{Error, Result, SymbolErrorKind};
use crate::input::source::RemoteStats;

mod count;
mod list;
mod object;

pub use object::ObjectFile;

/// Default ranged GETs each reader keeps running ahead of its decoder.
pub const REQUESTS_IN_FLIGHT: usize = 4;
/// Default bytes per ranged GET.
pub const REQUEST_SIZE: u64 = 2 << 20;
/// Memory the client itself holds (runtime, connection pool, TLS), charged to the budget.
pub const CLIENT_BYTES: u64 = 8 << 20;
/// Footers kept for the objects' later readers (the time scan, the filter passes, arrow-rs).
const FOOTER_CACHE: u64 = 8 << 20;
/// First requests of upcoming tasks started ahead (each one request).
const WARM: usize = 2;
/// The bytes of a file's end read at once for its footer (one more read when it is larger).
pub const FOOTER_TAIL: u64 = 64 << 10;
/// How often a waiting thread looks at the cancellation flags.
const POLL: Duration = Duration::from_millis(50);
/// Our own retries of a body shorter than asked (object_store retries failed requests itself).
const SHORT_RETRIES: u32 = 3;

/// How a store's reads are shaped: requests in flight per reader, bytes per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoShape {
    /// Ranged GETs a reader keeps running ahead.
    pub requests_in_flight: usize,
    /// Bytes per ranged GET.
    pub request_size: u64,
}

impl IoShape {
    /// Bytes of responses a reader may hold: requests in flight, each collected whole.
    pub fn reader_bytes(&self) -> u64 {
        self.requests_in_flight as u64 * self.request_size
    }

    /// The shape the options ask for (defaults where they are silent).
    pub fn from_options(options: &StorageOptions) -> Result<IoShape> {
        let requests_in_flight = match options.get("requests_in_flight") {
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n @ 1..=256) => n,
                _ => {
                    return Err(Error::Config(format!(
                        "storage option requests_in_flight={v}: expected 1 to 256"
                    )))
                }
            },
            None => REQUESTS_IN_FLIGHT,
        };
        let request_size = match options.get("request_size") {
            Some(v) => match crate::config::parse_size(v) {
                Ok(n) if ((64 << 10)..=(256 << 20)).contains(&n) => n,
                _ => {
                    return Err(Error::Config(format!(
                        "storage option request_size={v}: expected a size from 64KiB to 256MiB"
                    )))
                }
            },
            None => REQUEST_SIZE,
        };
        Ok(IoShape {
            requests_in_flight,
            request_size,
        })
    }
}

/// Counters shared with the HTTP layer.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) attempts: AtomicU64,
    pub(crate) logical: AtomicU64,
    pub(crate) list_pages: AtomicU64,
    pub(crate) body_bytes: AtomicU64,
    /// Per object, the byte ranges handed to a decoder or the footer code (merged).
    used: Mutex<HashMap<String, Vec<std::ops::Range<u64>>>>,
    pub(crate) unplanned: AtomicU64,
    slowest: Mutex<(Duration, String)>,
}

impl Counters {
    /// Notes that `range` of object `name` was used.
    pub(crate) fn note_used(&self, name: &str, range: std::ops::Range<u64>) {
        if range.start >= range.end {
            return;
        }
        if let Ok(mut used) = self.used.lock() {
            let v = used.entry(name.to_string()).or_default();
            merge_range(v, range);
        }
    }

    /// Bytes used at least once, over every object.
    fn used_bytes(&self) -> u64 {
        self.used.lock().map_or(0, |u| {
            u.values().flatten().map(|r| r.end - r.start).sum()
        })
    }

    fn note_time(&self, took: Duration, name: &str) {
        if let Ok(mut s) = self.slowest.lock() {
            if took > s.0 {
                *s = (took, name.to_string());
            }
        }
    }
}

/// One opened object store: a bucket and a prefix, the client, its runtime and its listing.
pub struct Store {
    rt: Option<tokio::runtime::Runtime>,
    os: Arc<dyn ObjectStore>,
    /// `scheme://bucket/prefix`, no trailing slash, no credentials: the names of its files start
    /// with it.
    base: String,
    prefix: Key,
    /// Objects found by the listing, by name (URL).
    objects: Mutex<HashMap<String, ObjectMeta>>,
    counters: Arc<Counters>,
    io: IoShape,
    secrets: Vec<String>,
    cancel: Cancel,
    footers: Mutex<FooterCache>,
    /// First requests of tasks not started yet: (object, range, request), oldest first.
    warm: Mutex<std::collections::VecDeque<(String, std::ops::Range<u64>, Pending)>>,
}

/// Footers by object, the oldest dropped beyond [`FOOTER_CACHE`] bytes.
#[derive(Default)]
struct FooterCache {
    map: HashMap<String, (u64, Bytes)>,
    order: std::collections::VecDeque<String>,
    bytes: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("base", &self.base).finish()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A stalled request must not hold up the caller.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// The stores open in this process, found by the URL prefix they serve.
static OPEN: Mutex<Vec<Weak<Store>>> = Mutex::new(Vec::new());

/// The open store serving `name` (a file's URL), the most recently opened when several do.
pub fn find(name: &Path) -> Option<Arc<Store>> {
    let name = name.to_str()?;
    let mut open = OPEN.lock().ok()?;
    open.retain(|w| w.strong_count() > 0);
    open.iter()
        .rev()
        .filter_map(Weak::upgrade)
        .find(|s| name.starts_with(&s.base) && name[s.base.len()..].starts_with('/'))
}

/// Why waiting for a request stopped early.
pub(crate) enum Stopped {
    Cancelled,
    Failed(String),
}

impl Store {
    /// Opens the store of `input` (a URL checked by the config) with `options` over the
    /// environment. No request is sent yet. `cancel` stops every wait of this store.
    pub fn open(input: &Path, options: &StorageOptions, cancel: &Cancel) -> Result<Arc<Store>> {
        let text = input.to_string_lossy();
        let usage = |what: String| Error::Config(format!("--input {text}: {what}"));
        let url = url::Url::parse(&text).map_err(|e| usage(e.to_string()))?;
        let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(|e| usage(e.to_string()))?;
        let io = IoShape::from_options(options)?;
        let counters = Arc::new(Counters::default());
        let retry = retry_config(options)?;
        let connector = count::Counting::new(Arc::clone(&counters));
        let mut secrets: Vec<String> = options.secrets().map(str::to_string).collect();
        secrets.extend(std::env::vars().filter_map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            let cloud = ["aws_", "google_", "azure_"].iter().any(|p| k.starts_with(p));
            (cloud && crate::config::is_secret(&k) && v.len() >= 6).then_some(v)
        }));
        let unknown = |store: &str, key: &str| {
            Error::Config(format!(
                "storage option {key:?} is not an option of {store} (object_store's keys, \
                 e.g. aws_endpoint_url, aws_region; spillway's own: {})",
                OWN_KEYS.join(", ")
            ))
        };
        let own = |k: &str| OWN_KEYS.contains(&k);
        let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
            ObjectStoreScheme::AmazonS3 => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env().with_url(url.as_str());
                for (k, v) in options.iter().filter(|(k, _)| !own(k)) {
                    let key: AmazonS3ConfigKey = k.parse().map_err(|_| unknown("S3", k))?;
                    b = b.with_config(key, v);
                }
                b.with_retry(retry)
                    .with_http_connector(connector)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
                for (k, v) in options.iter().filter(|(k, _)| !own(k)) {
                    let key: GoogleConfigKey = k.parse().map_err(|_| unknown("GCS", k))?;
                    b = b.with_config(key, v);
                }
                b.with_retry(retry)
                    .with_http_connector(connector)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                for (k, v) in options.iter().filter(|(k, _)| !own(k)) {
                    let key: AzureConfigKey = k.parse().map_err(|_| unknown("Azure", k))?;
                    b = b.with_config(key, v);
                }
                b.with_retry(retry)
                    .with_http_connector(connector)
                    .build()
                    .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            }
            _ => return Err(usage("not an object store URL".into())),
        };
        let scrub = |s: String| scrub(&secrets, s);
        let os = built.map_err(|e| usage(scrub(e.to_string())))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spillway-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("starting the I/O runtime: {e}")))?;
        let base = format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.path().trim_end_matches('/')
        );
        let store = Arc::new(Store {
            rt: Some(rt),
            os,
            base,
            prefix,
            objects: Mutex::new(HashMap::new()),
            counters,
            io,
            secrets,
            cancel: cancel.clone(),
            footers: Mutex::default(),
            warm: Mutex::default(),
        });
        if let Ok(mut open) = OPEN.lock() {
            open.push(Arc::downgrade(&store));
        }
        Ok(store)
    }

    /// `scheme://bucket/prefix` (no trailing slash): what the names of its files start with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How reads are shaped.
    pub fn io(&self) -> IoShape {
        self.io
    }

    /// Memory the store holds beyond its readers' requests: the client, the footer cache and
    /// the requests started ahead.
    pub fn fixed_bytes(&self) -> u64 {
        CLIENT_BYTES + FOOTER_CACHE + WARM as u64 * self.io.request_size
    }

    /// The cached footer of `name`: where it starts, its bytes.
    pub(crate) fn cached_footer(&self, name: &str) -> Option<(u64, Bytes)> {
        self.footers.lock().ok()?.map.get(name).cloned()
    }

    /// Keeps the footer of `name`, dropping the oldest beyond [`FOOTER_CACHE`].
    pub(crate) fn keep_footer(&self, name: &str, start: u64, bytes: Bytes) {
        let Ok(mut c) = self.footers.lock() else { return };
        let len = bytes.len() as u64;
        if len > FOOTER_CACHE / 4 || c.map.contains_key(name) {
            return;
        }
        while c.bytes + len > FOOTER_CACHE {
            let Some(old) = c.order.pop_front() else { break };
            if let Some((_, b)) = c.map.remove(&old) {
                c.bytes -= b.len() as u64;
            }
        }
        c.map.insert(name.to_string(), (start, bytes));
        c.order.push_back(name.to_string());
        c.bytes += len;
    }

    /// Starts `range` of `name` ahead of the task that will read it first, keeping at most
    /// [`WARM`] such requests (the oldest dropped).
    pub(crate) fn warm(self: &Arc<Self>, name: &str, meta: &ObjectMeta, range: std::ops::Range<u64>) {
        let Ok(mut w) = self.warm.lock() else { return };
        if w.iter().any(|(n, r, _)| n == name && *r == range) {
            return;
        }
        if w.len() >= WARM {
            w.pop_front();
        }
        w.push_back((name.to_string(), range.clone(), self.spawn_get(name, meta, range)));
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

    /// What its requests have cost so far.
    pub fn stats(&self) -> RemoteStats {
        let c = &self.counters;
        let attempts = c.attempts.load(Ordering::Relaxed);
        let logical = c.logical.load(Ordering::Relaxed);
        let list_pages = c.list_pages.load(Ordering::Relaxed);
        let (took, slowest) = c.slowest.lock().map(|s| s.clone()).unwrap_or_default();
        RemoteStats {
            url: format!("{}/", self.base),
            requests: attempts,
            retries: attempts.saturating_sub(logical + list_pages),
            list_pages,
            bytes_fetched: c.body_bytes.load(Ordering::Relaxed),
            bytes_needed: c.used_bytes(),
            unplanned: c.unplanned.load(Ordering::Relaxed),
            slowest_seconds: took.as_secs_f64(),
            slowest,
        }
    }

    /// The listed object of file `name`.
    fn meta(&self, name: &str) -> Option<ObjectMeta> {
        self.objects.lock().ok()?.get(name).cloned()
    }

    /// `text` with every secret value replaced by `***`.
    pub(crate) fn scrub(&self, text: String) -> String {
        scrub(&self.secrets, text)
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
                    return Err(Stopped::Failed("an I/O task ended without an answer".into()))
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
    ) -> std::result::Result<Bytes, SymbolErrorKind> {
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
                    let (size, etag) = (r.meta.size, r.meta.e_tag.clone());
                    if size != meta.size || (etag.is_some() && etag != meta.e_tag) {
                        return Err(SymbolErrorKind::Changed);
                    }
                    r.bytes().await
                }
                Err(e) => Err(e),
            };
            self.counters.note_time(started.elapsed(), name);
            let why = match got {
                Ok(b) if b.len() as u64 == want => return Ok(b),
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
                Err(e @ object_store::Error::Generic { .. })
                    if e.to_string().contains("range") =>
                {
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

    /// Opens file `name` (listed by this store) for reading.
    pub fn open_file(self: &Arc<Self>, name: &Path) -> std::result::Result<ObjectFile, SymbolErrorKind> {
        let text = name.to_string_lossy();
        let meta = self.meta(&text).ok_or_else(|| SymbolErrorKind::Io {
            op: "opening",
            message: "not in the listing of its store".into(),
        })?;
        Ok(ObjectFile::new(Arc::clone(self), text.into_owned(), meta))
    }
}

/// A GET running on the runtime: its checked bytes arrive on `rx`. Dropping it aborts it.
pub(crate) struct Pending {
    rx: std::sync::mpsc::Receiver<std::result::Result<Bytes, SymbolErrorKind>>,
    _task: Option<AbortOnDrop>,
}

impl Pending {
    /// Waits for the bytes, checking `cancel` between waits.
    pub(crate) fn wait(self, cancel: &Cancel) -> std::result::Result<Bytes, SymbolErrorKind> {
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

/// The client's retry policy: object_store's defaults (10 retries with backoff and jitter, at
/// most 180 s), overridden by the `max_retries` and `retry_timeout` options.
fn retry_config(options: &StorageOptions) -> Result<object_store::RetryConfig> {
    let mut retry = object_store::RetryConfig::default();
    if let Some(v) = options.get("max_retries") {
        retry.max_retries = v.trim().parse().map_err(|_| {
            Error::Config(format!("storage option max_retries={v}: expected a count"))
        })?;
    }
    if let Some(v) = options.get("retry_timeout") {
        retry.retry_timeout = parse_duration(v).ok_or_else(|| {
            Error::Config(format!(
                "storage option retry_timeout={v}: expected a duration (500ms, 30s, 2min)"
            ))
        })?;
    }
    Ok(retry)
}

/// Adds `r` to the sorted, disjoint ranges `v`, merging what overlaps or touches it.
fn merge_range(v: &mut Vec<std::ops::Range<u64>>, r: std::ops::Range<u64>) {
    let i = v.partition_point(|x| x.end < r.start);
    let j = v.partition_point(|x| x.start <= r.end);
    if i == j {
        v.insert(i, r);
        return;
    }
    let merged = v[i].start.min(r.start)..v[j - 1].end.max(r.end);
    v.splice(i..j, std::iter::once(merged));
}

/// `500ms`, `30s`, `2min`, `1h`, or a plain number of seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

/// `text` with each of `secrets` replaced by `***`.
fn scrub(secrets: &[String], mut text: String) -> String {
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if text.contains(s.as_str()) {
            text = text.replace(s.as_str(), "***");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_shapes_parse() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("x"), None);
        let mut o = StorageOptions::new();
        o.insert("requests_in_flight", "8");
        o.insert("request_size", "4MiB");
        let io = IoShape::from_options(&o).expect("shape");
        assert_eq!((io.requests_in_flight, io.request_size), (8, 4 << 20));
        o.insert("request_size", "1KiB");
        assert!(IoShape::from_options(&o).is_err());
    }

    #[test]
    fn used_ranges_merge() {
        let mut v = Vec::new();
        for r in [10..20, 30..40, 18..25, 50..60, 25..30, 0..5, 5..6] {
            merge_range(&mut v, r);
        }
        assert_eq!(v, vec![0..6, 10..40, 50..60]);
        merge_range(&mut v, 0..100);
        assert_eq!(v, vec![0..100]);
    }

    #[test]
    fn secrets_are_scrubbed() {
        let s = vec!["hunter2hunter2".to_string()];
        assert_eq!(
            scrub(&s, "bad key hunter2hunter2!".into()),
            "bad key ***!"
        );
    }
}
