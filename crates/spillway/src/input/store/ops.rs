//! Whole objects, for what spillway keeps in a bucket beside its inputs: datasets (shards, count
//! and plan files, manifests). A HEAD, a small GET, a download streamed to a local file, an
//! upload in parts, a conditional PUT (the manifest's commit), a listing and a DELETE, each
//! waited for from the calling thread like the reads (`Store::wait`: Ctrl-C stops it).
//!
//! Memory: a download holds one frame of the response at a time; an upload holds at most
//! [`PARTS_IN_FLIGHT`] parts of [`PART_SIZE`] bytes, fewer when the store's budget is small (a
//! reader's share of it: see [`IoShape`](super::IoShape)). Multipart uploads leave a marker object
//! (`_spillway-uploads/…` beside the object, hidden from universe listings) for their lifetime,
//! naming the upload id, so that `spillway clean` can abort the uploads of a killed process: no
//! store lists them in a way `object_store` exposes.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as Key;
use object_store::{
    GetOptions, ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::{Stopped, Store};
use crate::error::{Error, Result};

/// Bytes per part of a multipart upload (S3's minimum part is 5 MiB; at most 10,000 parts, so
/// objects past 80 GB get larger parts).
pub const PART_SIZE: u64 = 8 << 20;
/// Parts of one upload sent at once.
pub const PARTS_IN_FLIGHT: usize = 2;
/// Objects up to this size are uploaded with one PUT.
const SINGLE_PUT: u64 = PART_SIZE;
/// Where the markers of multipart uploads in progress are kept, beside their objects.
pub const UPLOADS_DIR: &str = "_spillway-uploads";

/// An object's size and version as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Bytes.
    pub size: u64,
    /// Its ETag, when the store gives one.
    pub e_tag: Option<String>,
    /// Its version, when the store keeps them (GCS's generation: what it replaces by).
    pub version: Option<String>,
}

impl From<&ObjectMeta> for Head {
    fn from(m: &ObjectMeta) -> Head {
        Head {
            size: m.size,
            e_tag: m.e_tag.clone(),
            version: m.version.clone(),
        }
    }
}

/// How a PUT may replace what is there.
#[derive(Debug, Clone)]
pub enum Put {
    /// Only if nothing is there (`If-None-Match: *`).
    Create,
    /// Only if what is there is this version: its ETag (`If-Match`) and, where the store
    /// replaces by version (GCS's generation), its version.
    Replace(Head),
    /// Whatever is there.
    Overwrite,
}

/// A multipart upload in progress, as its marker records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMarker {
    /// The object's URL.
    pub url: String,
    /// The store's upload id.
    pub upload_id: String,
    /// The uploading machine and process.
    pub host: String,
    /// Its pid.
    pub pid: u32,
    /// When it started (Unix seconds).
    pub started: u64,
}

impl Store {
    /// The key of `url`, which must lie under this store's base.
    pub fn key(&self, url: &str) -> Result<Key> {
        let rest = url
            .strip_prefix(&self.base)
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .ok_or_else(|| Error::Internal(format!("{url} is not under {}", self.base)))?;
        let joined = format!("{}{}", self.prefix.as_ref(), rest);
        Key::parse(joined.trim_start_matches('/')).map_err(|e| Error::Remote {
            url: url.to_string(),
            what: format!("not a valid object name: {e}"),
        })
    }

    /// The URL of `key`.
    fn url_of(&self, key: &Key) -> String {
        let rest = key
            .as_ref()
            .strip_prefix(self.prefix.as_ref())
            .unwrap_or(key.as_ref());
        format!("{}/{}", self.base, rest.trim_start_matches('/'))
    }

    /// A failed operation on `url` as an error naming it, secrets scrubbed.
    fn op_error(&self, url: &str, op: &str, e: &object_store::Error) -> Error {
        let mut text = self.scrub(e.to_string());
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            let cause = self.scrub(s.to_string());
            if !text.contains(&cause) {
                text.push_str(": ");
                text.push_str(&cause);
            }
            src = s.source();
        }
        Error::Remote {
            url: url.to_string(),
            what: format!("{op} failed: {text}"),
        }
    }

    /// Waits for `fut`; a stop as the error it is.
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T> {
        self.wait(fut).map_err(|s| match s {
            Stopped::Cancelled => Error::Cancelled,
            Stopped::Failed(m) => Error::Internal(m),
        })
    }

    /// The size and ETag of `url`; `None` when there is no such object.
    pub fn head(&self, url: &str) -> Result<Option<Head>> {
        let (os, key) = (Arc::clone(&self.os), self.key(url)?);
        match self.run(async move { os.head(&key).await })? {
            Ok(m) => Ok(Some(Head::from(&m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.op_error(url, "HEAD", &e)),
        }
    }

    /// The bytes of `url` (of `range`, if given), refused when longer than `max`: manifests,
    /// trailers and metadata blocks. `None` when there is no such object.
    pub fn get_bytes(
        &self,
        url: &str,
        range: Option<std::ops::Range<u64>>,
        max: u64,
    ) -> Result<Option<(Bytes, Head)>> {
        let (os, key) = (Arc::clone(&self.os), self.key(url)?);
        let want = range.as_ref().map(|r| r.end - r.start);
        let got = self.run(async move {
            let r = os
                .get_opts(&key, GetOptions::new().with_range(range))
                .await?;
            let head = Head::from(&r.meta);
            if want.is_none() && head.size > max {
                return Ok(Err(head));
            }
            Ok(Ok((r.bytes().await?, head)))
        })?;
        match got {
            Ok(Ok((bytes, head))) => match want {
                Some(n) if bytes.len() as u64 != n => Err(Error::Remote {
                    url: url.to_string(),
                    what: format!("a short read: {} of {n} bytes", bytes.len()),
                }),
                _ => Ok(Some((bytes, head))),
            },
            Ok(Err(head)) => Err(Error::Remote {
                url: url.to_string(),
                what: format!("{} bytes: more than the {max} expected here", head.size),
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.op_error(url, "GET", &e)),
        }
    }

    /// Downloads `url` into `dest` (created or truncated), streamed: one frame in memory at a
    /// time. It must be `expect` bytes long when that is given (object_store resumes an
    /// interrupted body only from the same ETag). Returns what was downloaded.
    pub fn download(&self, url: &str, dest: &Path, expect: Option<u64>) -> Result<Head> {
        let (os, key) = (Arc::clone(&self.os), self.key(url)?);
        let io = |e: std::io::Error| Error::io("writing", dest, e);
        let mut file = std::fs::File::create(dest).map_err(io)?;
        let mut writer = file.try_clone().map_err(io)?;
        let got = self.run(async move {
            let r = os.get_opts(&key, GetOptions::new()).await?;
            let head = Head::from(&r.meta);
            let mut stream = r.into_stream();
            let mut written = 0u64;
            while let Some(frame) = stream.next().await {
                let frame = frame?;
                written += frame.len() as u64;
                if let Err(e) = writer.write_all(&frame) {
                    return Ok(Err(e));
                }
            }
            Ok(Ok((head, written)))
        })?;
        let (head, written) = match got {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(io(e)),
            Err(e) => return Err(self.op_error(url, "download", &e)),
        };
        file.flush().map_err(io)?;
        let expected = expect.unwrap_or(head.size);
        if written != expected || head.size != expected {
            return Err(Error::Remote {
                url: url.to_string(),
                what: format!(
                    "downloaded {written} bytes of an object of {} bytes; expected {expected}",
                    head.size
                ),
            });
        }
        Ok(head)
    }

    /// Uploads the local file `src` as `url`: one PUT when small, else a multipart upload of
    /// [`PART_SIZE`] parts, [`PARTS_IN_FLIGHT`] at a time, with a marker for `spillway clean`
    /// while it runs, aborted on failure. Then checks that the object has the file's length.
    pub fn upload(&self, src: &Path, url: &str) -> Result<Head> {
        let file = std::fs::File::open(src).map_err(|e| Error::io("opening", src, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading the size of", src, e))?
            .len();
        let key = self.key(url)?;
        if len <= SINGLE_PUT {
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, 0)
                .map_err(|e| Error::io("reading", src, e))?;
            self.put(url, Bytes::from(buf), Put::Overwrite)?
                .map_err(|_| Error::Internal(format!("{url}: an unconditional PUT conflicted")))?;
        } else {
            self.upload_parts(file, len, url, key)?;
        }
        match self.head(url)? {
            Some(h) if h.size == len => Ok(h),
            Some(h) => Err(Error::Remote {
                url: url.to_string(),
                what: format!("uploaded {len} bytes, the store holds {}", h.size),
            }),
            None => Err(Error::Remote {
                url: url.to_string(),
                what: "uploaded, but the store does not have it".into(),
            }),
        }
    }

    fn upload_parts(&self, file: std::fs::File, len: u64, url: &str, key: Key) -> Result<()> {
        let mp = Arc::clone(&self.multipart);
        let k = key.clone();
        let id = self
            .run(async move { mp.create_multipart(&k).await })?
            .map_err(|e| self.op_error(url, "starting a multipart upload", &e))?;
        let marker = self.marker_url(url, &id)?;
        let record = UploadMarker {
            url: url.to_string(),
            upload_id: id.clone(),
            host: host_name(),
            pid: std::process::id(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let json = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
        let sent = self
            .put(&marker, Bytes::from(json), Put::Overwrite)
            .and_then(|_| self.send_parts(file, len, url, &key, &id));
        if sent.is_err() {
            let _ = self.abort_upload(url, &id);
        }
        let _ = self.delete(&marker);
        sent
    }

    fn send_parts(
        &self,
        file: std::fs::File,
        len: u64,
        url: &str,
        key: &Key,
        id: &str,
    ) -> Result<()> {
        let part = PART_SIZE.max(len.div_ceil(10_000).next_multiple_of(1 << 20));
        let count = len.div_ceil(part) as usize;
        // The parts held at once fit a reader's share of the budget, as its GETs do.
        let in_flight = ((self.io.reader_bytes() / part) as usize).clamp(1, PARTS_IN_FLIGHT);
        let (mp, key, id) = (Arc::clone(&self.multipart), key.clone(), id.to_string());
        let file = Arc::new(file);
        let done = self.run(async move {
            let parts = futures::stream::iter(0..count)
                .map(|i| {
                    let (mp, key, id, file) = (&mp, &key, &id, Arc::clone(&file));
                    async move {
                        let start = i as u64 * part;
                        let mut buf = vec![0u8; part.min(len - start) as usize];
                        file.read_exact_at(&mut buf, start).map_err(|e| {
                            object_store::Error::Generic {
                                store: "local file",
                                source: Box::new(e),
                            }
                        })?;
                        mp.put_part(key, id, i, PutPayload::from(buf)).await
                    }
                })
                .buffered(in_flight)
                .try_collect::<Vec<_>>()
                .await?;
            mp.complete_multipart(&key, &id, parts).await
        })?;
        done.map(|_| ())
            .map_err(|e| self.op_error(url, "a multipart upload", &e))
    }

    /// Aborts the multipart upload `id` of `url` (gone already is fine).
    pub fn abort_upload(&self, url: &str, id: &str) -> Result<()> {
        let (mp, key, id) = (Arc::clone(&self.multipart), self.key(url)?, id.to_string());
        match self.run(async move { mp.abort_multipart(&key, &id).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.op_error(url, "aborting a multipart upload", &e)),
        }
    }

    /// The marker of upload `id` of `url`: `_spillway-uploads/<name>.<hash of id>` beside it.
    fn marker_url(&self, url: &str, id: &str) -> Result<String> {
        let (dir, name) = url.rsplit_once('/').ok_or_else(|| Error::Remote {
            url: url.to_string(),
            what: "not an object URL".into(),
        })?;
        let hash = crc32fast::hash(id.as_bytes());
        Ok(format!("{dir}/{UPLOADS_DIR}/{name}.{hash:08x}.json"))
    }

    /// PUTs `bytes` as `url` in one request, as `mode` allows. `Ok(Err(()))`: the condition
    /// failed (something is there, or not the version named).
    pub fn put(&self, url: &str, bytes: Bytes, mode: Put) -> Result<std::result::Result<Head, ()>> {
        let (os, key) = (Arc::clone(&self.os), self.key(url)?);
        let size = bytes.len() as u64;
        let mode = match mode {
            Put::Create => PutMode::Create,
            Put::Overwrite => PutMode::Overwrite,
            Put::Replace(head) => PutMode::Update(UpdateVersion {
                e_tag: head.e_tag,
                version: head.version,
            }),
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self.run(async move { os.put_opts(&key, PutPayload::from(bytes), opts).await })? {
            Ok(r) => Ok(Ok(Head {
                size,
                e_tag: r.e_tag,
                version: r.version,
            })),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Err(())),
            Err(e) => Err(self.op_error(url, "PUT", &e)),
        }
    }

    /// Every object under `url` (a directory URL), as (URL, head), in key order.
    pub fn list_under(&self, url: &str) -> Result<Vec<(String, Head)>> {
        let (os, key) = (Arc::clone(&self.os), self.key(url)?);
        let listed = self.run(async move {
            let prefix = (!key.as_ref().is_empty()).then_some(key);
            os.list(prefix.as_ref())
                .try_collect::<Vec<ObjectMeta>>()
                .await
        })?;
        let mut out: Vec<(String, Head)> = listed
            .map_err(|e| self.op_error(url, "listing", &e))?
            .iter()
            .map(|m| (self.url_of(&m.location), Head::from(m)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Deletes `url` (gone already is fine).
    pub fn delete(&self, url: &str) -> Result<()> {
        let (os, key) = (Arc::clone(&self.os), self.key(url)?);
        match self.run(async move { os.delete(&key).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.op_error(url, "DELETE", &e)),
        }
    }
}

/// This machine's name, for upload markers.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
