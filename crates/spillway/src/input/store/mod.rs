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
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use object_store::multipart::MultipartStore;
use object_store::path::Path as Key;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreScheme};

use crate::cancel::Cancel;
use crate::config::{StorageOptions, OWN_KEYS};
use crate::error::{Error, Result, SymbolErrorKind};
use crate::input::source::RemoteStats;

mod count;
mod list;
mod object;
mod ops;
mod request;

pub(crate) use count::Counters;
pub use ops::{host_name, Head, Put, UploadMarker, UPLOADS_DIR};
pub(crate) use request::{Pending, Stopped};

pub use object::ObjectFile;

/// Default ranged GETs each reader keeps running ahead of its decoder, and bytes per GET: on M
/// through a 20 ms delay proxy, 4 x 2 MiB took 11.3 s, 8 x 2 MiB 9.3 s, 4 x 4 MiB 9.2 s,
/// 8 x 4 MiB 8.8 s, 16 x 2 MiB 8.8 s; with no added latency all are within noise (8.0-8.7 s,
/// CPU-bound with the server on the same 2 cores). 8 x 4 MiB: the fewest requests of the fastest
/// (GETs are billed), 32 MiB a reader charged to the budget.
pub const REQUESTS_IN_FLIGHT: usize = 8;
/// Default bytes per ranged GET (see [`REQUESTS_IN_FLIGHT`]).
pub const REQUEST_SIZE: u64 = 4 << 20;
/// Memory the client itself holds (runtime, connection pool, TLS), charged to the budget.
pub const CLIENT_BYTES: u64 = 8 << 20;
/// Footers kept for the objects' later readers (the time scan, the filter passes, arrow-rs), at
/// most: a small budget keeps less ([`Store::footer_cache`]).
const FOOTER_CACHE: u64 = 8 << 20;
/// First requests of upcoming tasks started ahead (each one request).
const WARM: usize = 2;
/// The bytes of a file's end read at once for its footer (one more read when it is larger).
pub const FOOTER_TAIL: u64 = 64 << 10;

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

    /// The shape the options ask for; where they are silent, the defaults, cut to fit a small
    /// `budget`: a reader's requests take at most an eighth of it (64 MiB: 4 x 2 MiB).
    pub fn from_options(options: &StorageOptions, budget: u64) -> Result<IoShape> {
        let share = (budget / 8).clamp(1 << 20, REQUESTS_IN_FLIGHT as u64 * REQUEST_SIZE);
        let size = match share {
            s if s >= 16 << 20 => REQUEST_SIZE,
            s if s >= 4 << 20 => 2 << 20,
            _ => 1 << 20,
        };
        let requests_in_flight = match options.get("requests_in_flight") {
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n @ 1..=256) => n,
                _ => {
                    return Err(Error::Config(format!(
                        "storage option requests_in_flight={v}: expected 1 to 256"
                    )))
                }
            },
            None => (share / size).max(1) as usize,
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
            None => size,
        };
        Ok(IoShape {
            requests_in_flight,
            request_size,
        })
    }
}

/// One opened object store: a bucket and a prefix, the client, its runtime and its listing.
pub struct Store {
    rt: Option<tokio::runtime::Runtime>,
    os: Arc<dyn ObjectStore>,
    /// The same client, for uploads whose id must be known to abort them later (`ops`).
    multipart: Arc<dyn MultipartStore>,
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

impl Store {
    /// Opens the store of `input` (a URL checked by the config) with `options` over the
    /// environment. No request is sent yet. `cancel` stops every wait of this store.
    /// Its requests and caches fit `budget` (see [`IoShape::from_options`]).
    pub fn open(
        input: &Path,
        options: &StorageOptions,
        budget: u64,
        cancel: &Cancel,
    ) -> Result<Arc<Store>> {
        let store = Store::open_for("--input", input, options, budget, cancel)?;
        if let Ok(mut open) = OPEN.lock() {
            open.push(Arc::downgrade(&store));
        }
        Ok(store)
    }

    /// [`open`](Self::open) for the URL given as `flag` (an input, an output, a dataset):
    /// errors name the flag. Not registered for [`find`]: only inputs are read by name.
    pub fn open_for(
        flag: &str,
        input: &Path,
        options: &StorageOptions,
        budget: u64,
        cancel: &Cancel,
    ) -> Result<Arc<Store>> {
        let text = input.to_string_lossy();
        let usage = |what: String| Error::Config(format!("{flag} {text}: {what}"));
        let url = url::Url::parse(&text).map_err(|e| usage(e.to_string()))?;
        let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(|e| usage(e.to_string()))?;
        let io = IoShape::from_options(options, budget)?;
        let counters = Arc::new(Counters::default());
        let retry = retry_config(options)?;
        let connector = count::Counting::new(Arc::clone(&counters));
        let mut secrets: Vec<String> = options.secrets().map(str::to_string).collect();
        secrets.extend(std::env::vars().filter_map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            let cloud = ["aws_", "google_", "azure_"]
                .iter()
                .any(|p| k.starts_with(p));
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
        // The builders share no trait: the same steps for each. The environment first, the URL's
        // bucket over it, then the options (an unknown key is a usage error naming it).
        macro_rules! build {
            ($builder:ty, $key:ty, $store:literal) => {{
                let mut b = <$builder>::from_env().with_url(url.as_str());
                for (k, v) in options.iter().filter(|(k, _)| !own(k)) {
                    let key: $key = k.parse().map_err(|_| unknown($store, k))?;
                    b = b.with_config(key, v);
                }
                b.with_retry(retry)
                    .with_http_connector(connector)
                    .build()
                    .map(|s| {
                        let s = Arc::new(s);
                        (
                            Arc::clone(&s) as Arc<dyn ObjectStore>,
                            s as Arc<dyn MultipartStore>,
                        )
                    })
            }};
        }
        use object_store::{aws, azure, gcp};
        type Clients = (Arc<dyn ObjectStore>, Arc<dyn MultipartStore>);
        let built: object_store::Result<Clients> = match scheme {
            ObjectStoreScheme::AmazonS3 => {
                build!(aws::AmazonS3Builder, aws::AmazonS3ConfigKey, "S3")
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                build!(gcp::GoogleCloudStorageBuilder, gcp::GoogleConfigKey, "GCS")
            }
            ObjectStoreScheme::MicrosoftAzure => {
                build!(azure::MicrosoftAzureBuilder, azure::AzureConfigKey, "Azure")
            }
            _ => return Err(usage("not an object store URL".into())),
        };
        let scrub = |s: String| scrub(&secrets, s);
        let (os, multipart) = built.map_err(|e| usage(scrub(e.to_string())))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("spillway-io")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("starting the I/O runtime: {e}")))?;
        // The input as written (not the URL's percent-encoded path), so that names relative to
        // it (fingerprints, stamps) are those of the same files on disk.
        let base = text.trim_end_matches('/').to_string();
        let store = Arc::new(Store {
            rt: Some(rt),
            os,
            multipart,
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
        Ok(store)
    }

    /// How reads are shaped.
    pub fn io(&self) -> IoShape {
        self.io
    }

    /// Memory the store holds beyond its readers' requests: the client, the footer cache and
    /// the requests started ahead.
    pub fn fixed_bytes(&self) -> u64 {
        CLIENT_BYTES + self.footer_cache() + WARM as u64 * self.io.request_size
    }

    /// Bytes of footers kept: [`FOOTER_CACHE`], or less for a small budget (a quarter of a
    /// reader's requests).
    fn footer_cache(&self) -> u64 {
        FOOTER_CACHE.min(self.io.reader_bytes() / 4)
    }

    /// The cached footer of `name`: where it starts, its bytes.
    pub(crate) fn cached_footer(&self, name: &str) -> Option<(u64, Bytes)> {
        self.footers.lock().ok()?.map.get(name).cloned()
    }

    /// Keeps the footer of `name`, dropping the oldest beyond the cache's size.
    pub(crate) fn keep_footer(&self, name: &str, start: u64, bytes: Bytes) {
        let Ok(mut c) = self.footers.lock() else {
            return;
        };
        let len = bytes.len() as u64;
        let cap = self.footer_cache();
        if len > cap / 4 || c.map.contains_key(name) {
            return;
        }
        while c.bytes + len > cap {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some((_, b)) = c.map.remove(&old) {
                c.bytes -= b.len() as u64;
            }
        }
        c.map.insert(name.to_string(), (start, bytes));
        c.order.push_back(name.to_string());
        c.bytes += len;
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

    /// Opens file `name` (listed by this store) for reading.
    pub fn open_file(
        self: &Arc<Self>,
        name: &Path,
    ) -> std::result::Result<ObjectFile, SymbolErrorKind> {
        let text = name.to_string_lossy();
        let meta = self.meta(&text).ok_or_else(|| SymbolErrorKind::Io {
            op: "opening",
            message: "not in the listing of its store".into(),
        })?;
        Ok(ObjectFile::new(Arc::clone(self), text.into_owned(), meta))
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

/// `500ms`, `30s`, `2min`, `1h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
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
        let io = IoShape::from_options(&o, 256 << 20).expect("shape");
        assert_eq!((io.requests_in_flight, io.request_size), (8, 4 << 20));
        o.insert("request_size", "1KiB");
        assert!(IoShape::from_options(&o, 256 << 20).is_err());
        let fit = |budget: u64| {
            let io = IoShape::from_options(&StorageOptions::new(), budget).expect("shape");
            (io.requests_in_flight, io.request_size >> 20)
        };
        assert_eq!(fit(256 << 20), (8, 4));
        assert_eq!(fit(1 << 30), (8, 4));
        assert_eq!(fit(64 << 20), (4, 2));
        assert_eq!(fit(16 << 20), (2, 1));
    }

    #[test]
    fn secrets_are_scrubbed() {
        let s = vec!["hunter2hunter2".to_string()];
        assert_eq!(scrub(&s, "bad key hunter2hunter2!".into()), "bad key ***!");
    }
}
