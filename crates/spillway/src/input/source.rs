//! Where a universe's bytes come from: a directory on a local (or shared) disk, or an object
//! store (`input::store`). [`universe`] discovers the symbols either way, and [`open`] opens one
//! of its files, named by a path or by a URL, as an [`Input`]: the fast decoder reads it through
//! [`ReadAt`], arrow-rs and the footer code through a local [`File`] ([`Input::into_file`]).

use std::fs::File;
use std::path::Path;
use std::time::SystemTime;

use crate::cancel::Cancel;
use crate::config::{url_scheme, BuildConfig};
use crate::decode::ReadAt;
use crate::error::{Result, SymbolErrorKind};
use crate::input::discover::{discover, Universe};
#[cfg(feature = "object-store")]
use crate::input::store::{self, ObjectFile};

/// Concurrent footer and time-column reads while planning on object storage, where each waits
/// on a request: latency, not the cores, bounds them.
pub const PLANNING_REQUESTS: usize = 16;

/// What reading files like `path` costs in memory beyond decoding: per reader, the responses its
/// requests in flight may hold, and the client's own memory. `(0, 0)` for a local file.
#[cfg_attr(not(feature = "object-store"), allow(unused_variables))]
pub fn remote_costs(path: &Path) -> (u64, u64) {
    #[cfg(feature = "object-store")]
    if let Some(s) = store::find(path) {
        return (s.io().reader_bytes(), s.fixed_bytes());
    }
    (0, 0)
}

/// What a store's requests cost, as the summary reports it (JSON key `object_storage`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RemoteStats {
    /// The input's URL.
    pub url: String,
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Requests retried: by the client (5xx, 429, timeouts, resets) and by spillway (short bodies).
    pub retries: u64,
    /// Listing pages read.
    pub list_pages: u64,
    /// Response body bytes received, retries included.
    pub bytes_fetched: u64,
    /// Bytes the build used (footers and column chunks), each byte counted once however often
    /// it was read.
    pub bytes_needed: u64,
    /// Reads the read-ahead did not foresee (each one ranged GET, waited for at once).
    pub unplanned: u64,
    /// The slowest request, in seconds.
    pub slowest_seconds: f64,
    /// The object it read.
    pub slowest: String,
}

impl RemoteStats {
    /// One line for the human summary.
    pub fn human(&self) -> String {
        let gb = |b: u64| b as f64 / 1e9;
        format!(
            "object storage: {} requests ({} retries, {} listing pages, {} unplanned), {:.3} GB fetched for {:.3} GB needed ({:.3}x), slowest {:.2}s ({})\n",
            self.requests,
            self.retries,
            self.list_pages,
            self.unplanned,
            gb(self.bytes_fetched),
            gb(self.bytes_needed),
            self.bytes_fetched as f64 / self.bytes_needed.max(1) as f64,
            self.slowest_seconds,
            self.slowest,
        )
    }
}

impl Universe {
    /// What the object store's requests cost so far (`None` for a directory).
    pub fn remote_stats(&self) -> Option<RemoteStats> {
        #[cfg(feature = "object-store")]
        return self.store.as_ref().map(|s| s.stats());
        #[cfg(not(feature = "object-store"))]
        None
    }
}

/// One input file, opened.
pub enum Input {
    /// A local file.
    Local(File),
    /// An object of a store's listing (boxed: it holds its read-ahead state).
    #[cfg(feature = "object-store")]
    Object(Box<ObjectFile>),
}

/// The universe `cfg.input` names: a directory listed, or an object store's prefix listed (the
/// store stays open, for reading its files, as long as the universe lives).
pub fn universe(cfg: &BuildConfig, cancel: &Cancel) -> Result<Universe> {
    if url_scheme(&cfg.input).is_none() {
        return discover(&cfg.input);
    }
    #[cfg(feature = "object-store")]
    {
        let store = store::Store::open(&cfg.input, &cfg.storage, cfg.memory_budget, cancel)?;
        let mut universe = store.discover()?;
        universe.store = Some(store);
        Ok(universe)
    }
    #[cfg(not(feature = "object-store"))]
    {
        let _ = cancel;
        Err(crate::error::Error::Config(format!(
            "--input {}: this spillway was built without the `object-store` feature",
            cfg.input.display()
        )))
    }
}

/// Opens input file `path` (a local path, or the URL of an object a store open in this process
/// listed).
pub fn open(path: &Path) -> std::result::Result<Input, SymbolErrorKind> {
    if url_scheme(path).is_none() {
        return File::open(path)
            .map(Input::Local)
            .map_err(|e| SymbolErrorKind::Io {
                op: "opening",
                message: e.to_string(),
            });
    }
    #[cfg(feature = "object-store")]
    {
        let store = store::find(path).ok_or_else(|| SymbolErrorKind::Io {
            op: "opening",
            message: "no object store is open for this URL".into(),
        })?;
        store.open_file(path).map(|o| Input::Object(Box::new(o)))
    }
    #[cfg(not(feature = "object-store"))]
    Err(SymbolErrorKind::Io {
        op: "opening",
        message: "this spillway was built without the `object-store` feature".into(),
    })
}

impl Input {
    /// Size and modification time: the file's, or the object's as listed.
    pub fn identity(&self) -> std::io::Result<(u64, Option<SystemTime>)> {
        match self {
            Input::Local(f) => {
                let m = f.metadata()?;
                Ok((m.len(), m.modified().ok()))
            }
            #[cfg(feature = "object-store")]
            Input::Object(o) => Ok(o.identity()),
        }
    }

    /// The object's ETag (`None` for a local file).
    pub fn etag(&self) -> Option<&str> {
        match self {
            Input::Local(_) => None,
            #[cfg(feature = "object-store")]
            Input::Object(o) => o.etag(),
        }
    }

    /// A local file arrow-rs and the footer code can read: the file itself, or for an object a
    /// sparse temporary file holding its footer and the column chunks of `roots` (`None`: the
    /// footer only).
    #[cfg_attr(not(feature = "object-store"), allow(unused_variables))]
    pub fn into_file(self, roots: Option<&[usize]>) -> std::result::Result<File, SymbolErrorKind> {
        match self {
            Input::Local(f) => Ok(f),
            #[cfg(feature = "object-store")]
            Input::Object(o) => o.stage(roots),
        }
    }

    /// Declares the byte runs the fast decoder reads next, in phases (see
    /// [`ObjectFile::expect`]): an object fetches them ahead, a local file needs nothing.
    #[cfg_attr(not(feature = "object-store"), allow(unused_variables))]
    pub fn expect(&self, phases: Vec<Vec<std::ops::Range<u64>>>) {
        match self {
            Input::Local(_) => {}
            #[cfg(feature = "object-store")]
            Input::Object(o) => o.expect(phases),
        }
    }

    /// Starts the first request of what `phases` will read, for a task not started yet (an
    /// object only).
    #[cfg_attr(not(feature = "object-store"), allow(unused_variables))]
    pub fn warm(&self, phases: &[Vec<std::ops::Range<u64>>]) {
        #[cfg(feature = "object-store")]
        if let Input::Object(o) = self {
            o.warm(phases);
        }
    }

    /// Whether this is an object (bytes come by request).
    pub fn is_remote(&self) -> bool {
        !matches!(self, Input::Local(_))
    }
}

impl ReadAt for Input {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Input::Local(f) => std::os::unix::fs::FileExt::read_exact_at(f, buf, offset),
            #[cfg(feature = "object-store")]
            Input::Object(o) => o.read_exact_at(buf, offset),
        }
    }

    #[cfg_attr(not(feature = "object-store"), allow(unused_variables))]
    fn read_limit(&self, offset: u64) -> Option<u64> {
        match self {
            Input::Local(_) => None,
            #[cfg(feature = "object-store")]
            Input::Object(o) => o.read_limit(offset),
        }
    }
}
