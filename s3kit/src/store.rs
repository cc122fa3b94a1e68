//! The `s3s::S3` implementation the server runs: `s3s_fs::FileSystem` with GET, HEAD, the listing's
//! ETags and the PUT preconditions replaced (design doc, section 10.1).
//!
//! s3s-fs hashes the whole file with MD5 on every GET and HEAD, ignores `If-Match` on GET and lists
//! objects without ETags. Here the ETag is an identity, `"<len:x>-<mtime_ns:x>-<ino:x>"`, taken
//! from `stat`: S3 ETags are opaque, and all a reader needs is that it changes when the object is
//! rewritten. Everything else is delegated to s3s-fs unchanged.

mod uploads;

use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use s3s::dto::*;
use s3s::stream::{ByteStream, RemainingLength};
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result, StdError, S3};
use s3s_fs::FileSystem;

/// Bytes read from the file per body chunk. Large enough that the blocking-pool hop of each
/// `tokio::fs` read is amortised; small enough that many requests in flight cost little memory.
const CHUNK: usize = 1 << 20;

/// A hook run (with the object's file path) before the first GET of a key ending with a suffix.
pub type GetHook = Box<dyn FnOnce(&Path) + Send>;

/// Request counters and hooks, shared between the store (in the server thread) and [`crate::Server`].
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) gets: AtomicU64,
    pub(crate) data_gets: AtomicU64,
    pub(crate) lists: AtomicU64,
    pub(crate) heads: AtomicU64,
    pub(crate) puts: AtomicU64,
    pub(crate) hooks: Mutex<Vec<(String, GetHook)>>,
}

impl Shared {
    /// Takes the first hook whose suffix ends `key`, if any, so that it runs once.
    fn take_hook(&self, key: &str) -> Option<GetHook> {
        let mut hooks = self.hooks.lock().unwrap_or_else(PoisonError::into_inner);
        let at = hooks
            .iter()
            .position(|(suffix, _)| key.ends_with(suffix.as_str()))?;
        Some(hooks.remove(at).1)
    }
}

/// The S3 implementation: s3s-fs plus our GET, HEAD, listing ETags and PUT preconditions.
pub(crate) struct Store {
    fs: FileSystem,
    /// The canonical root, as s3s-fs resolves it: buckets are its subdirectories.
    root: PathBuf,
    /// Max keys a listing page.
    page: i32,
    shared: Arc<Shared>,
    /// Serialises the check-and-write of conditional PUTs and multipart completions.
    write_lock: tokio::sync::Mutex<()>,
}

impl Store {
    /// A store over `root` (which must exist) with `page` keys a listing page.
    pub(crate) fn new(root: &Path, page: i32, shared: Arc<Shared>) -> io::Result<Store> {
        let fs = FileSystem::new(root).map_err(|e| io::Error::other(format!("s3s-fs: {e:?}")))?;
        let root = root.canonicalize()?;
        Ok(Store {
            fs,
            root,
            page: page.max(1),
            shared,
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The file of `bucket/key`, refusing names that would leave the bucket.
    fn object_path(&self, bucket: &str, key: &str) -> S3Result<PathBuf> {
        let bucket_ok =
            !bucket.is_empty() && !bucket.contains(['/', '\\']) && bucket != "." && bucket != "..";
        if !bucket_ok {
            return Err(s3_error!(InvalidBucketName));
        }
        let rel = Path::new(key);
        if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(s3_error!(InvalidArgument, "unsupported key"));
        }
        Ok(self.root.join(bucket).join(rel))
    }

    /// `NoSuchBucket` when the bucket directory is missing, else `NoSuchKey`.
    fn missing(&self, bucket: &str, err: io::Error) -> S3Error {
        if self.root.join(bucket).is_dir() {
            s3_error!(err, NoSuchKey)
        } else {
            s3_error!(err, NoSuchBucket)
        }
    }

    /// Our ETag of the regular file at `path`, or `None` when there is none.
    async fn current_etag(path: &Path) -> Option<String> {
        let meta = tokio::fs::metadata(path).await.ok()?;
        meta.is_file().then(|| etag_of(&meta))
    }
}

/// The identity ETag (without quotes) of a file: size, mtime in nanoseconds and inode, in hex.
pub(crate) fn etag_of(meta: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    let (mtime_ns, ino) = {
        use std::os::unix::fs::MetadataExt;
        let ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        (ns, meta.ino())
    };
    #[cfg(not(unix))]
    let (mtime_ns, ino) = {
        let since = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        (since.map_or(0, |d| d.as_nanos() as i128), 0u64)
    };
    format!("{:x}-{mtime_ns:x}-{ino:x}", meta.len())
}

/// What a request's `If-Match` / `If-None-Match` say about an object with ETag `current`.
#[derive(Debug, PartialEq, Eq)]
enum Precondition {
    /// Serve (or write) it.
    Holds,
    /// `If-Match` failed, or `If-None-Match` matched on a write: 412.
    Failed,
    /// `If-None-Match` matched on a read: 304.
    NotModified,
}

/// Evaluates the conditions (RFC 9110 section 13.2.2: `If-Match` first).
fn precondition(
    current: Option<&str>,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    write: bool,
) -> Precondition {
    let matches = |cond: &ETagCondition| match (cond, current) {
        (_, None) => false,
        (ETagCondition::Any, Some(_)) => true,
        (ETagCondition::ETag(tag), Some(cur)) => tag.value() == cur,
    };
    if if_match.is_some_and(|c| !matches(c)) {
        return Precondition::Failed;
    }
    if if_none_match.is_some_and(matches) {
        return if write {
            Precondition::Failed
        } else {
            Precondition::NotModified
        };
    }
    Precondition::Holds
}

/// A 304 carrying the ETag. s3s ignores `S3Response::status` for GetObject, so a 304 goes out
/// as an error (hyper sends no body with a 304).
fn not_modified(etag: &str) -> S3Error {
    let mut err = s3_error!(NotModified);
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
        headers.insert(http::header::ETAG, value);
    }
    err.set_headers(headers);
    err
}

fn internal(err: io::Error) -> S3Error {
    s3_error!(err, InternalError)
}

fn to_i64(n: u64) -> S3Result<i64> {
    i64::try_from(n).map_err(|_| s3_error!(InternalError, "length out of range"))
}

/// A file body of a known length, so s3s sends `Content-Length` instead of chunks. Read with
/// `pread` on the blocking pool straight into each chunk (tokio's `File` reads through a buffer
/// of its own: a second copy, which made the server the slowest part of the benchmark).
struct ExactBody {
    file: Arc<std::fs::File>,
    pos: u64,
    end: u64,
    remaining: usize,
    reading: Option<tokio::task::JoinHandle<io::Result<Bytes>>>,
}

impl Stream for ExactBody {
    type Item = Result<Bytes, StdError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.reading.is_none() {
            if self.pos >= self.end {
                return Poll::Ready(None);
            }
            let (file, pos) = (Arc::clone(&self.file), self.pos);
            let n = (self.end - pos).min(CHUNK as u64) as usize;
            self.reading = Some(tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; n];
                file.read_exact_at(&mut buf, pos)?;
                Ok(Bytes::from(buf))
            }));
        }
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        match std::future::Future::poll(Pin::new(reading), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(done) => {
                self.reading = None;
                match done {
                    Ok(Ok(bytes)) => {
                        self.pos += bytes.len() as u64;
                        self.remaining = self.remaining.saturating_sub(bytes.len());
                        Poll::Ready(Some(Ok(bytes)))
                    }
                    Ok(Err(e)) => Poll::Ready(Some(Err(Box::new(e)))),
                    Err(e) => Poll::Ready(Some(Err(Box::new(e)))),
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

impl ByteStream for ExactBody {
    fn remaining_length(&self) -> RemainingLength {
        RemainingLength::new_exact(self.remaining)
    }
}

/// The file, its metadata and our ETag, for GET and HEAD.
struct Opened {
    file: tokio::fs::File,
    meta: std::fs::Metadata,
    etag: String,
}

impl Store {
    async fn open(&self, bucket: &str, key: &str) -> S3Result<Opened> {
        let path = self.object_path(bucket, key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| self.missing(bucket, e))?;
        let meta = file.metadata().await.map_err(internal)?;
        if !meta.is_file() {
            return Err(s3_error!(NoSuchKey));
        }
        let etag = etag_of(&meta);
        Ok(Opened { file, meta, etag })
    }

    /// Checks and strips a write's conditions against our ETag; the caller holds `write_lock`.
    async fn check_write(
        &self,
        bucket: &str,
        key: &str,
        if_match: &mut Option<ETagCondition>,
        if_none_match: &mut Option<ETagCondition>,
    ) -> S3Result<PathBuf> {
        let path = self.object_path(bucket, key)?;
        let current = Store::current_etag(&path).await;
        let (m, n) = (if_match.take(), if_none_match.take());
        match precondition(current.as_deref(), m.as_ref(), n.as_ref(), true) {
            Precondition::Holds => Ok(path),
            _ => Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            )),
        }
    }
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.shared.gets.fetch_add(1, Ordering::Relaxed);
        let input = req.input;
        if let Some(hook) = self.shared.take_hook(&input.key) {
            hook(&self.object_path(&input.bucket, &input.key)?);
        }
        let Opened { file, meta, etag } = self.open(&input.bucket, &input.key).await?;
        let last_modified = meta.modified().ok().map(Timestamp::from);
        match precondition(
            Some(&etag),
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            false,
        ) {
            Precondition::Holds => {}
            Precondition::Failed => return Err(s3_error!(PreconditionFailed)),
            Precondition::NotModified => return Err(not_modified(&etag)),
        }
        let len = meta.len();
        let (range, content_range) = match &input.range {
            None => (0..len, None),
            Some(r) => {
                let r = r.check(len)?;
                let cr = format!("bytes {}-{}/{len}", r.start, r.end - 1);
                (r, Some(cr))
            }
        };
        let n = range.end - range.start;
        if n > 0 || input.range.is_some() {
            self.shared.data_gets.fetch_add(1, Ordering::Relaxed);
        }
        let remaining =
            usize::try_from(n).map_err(|_| s3_error!(InternalError, "range too large"))?;
        let body = ExactBody {
            file: Arc::new(file.into_std().await),
            pos: range.start,
            end: range.end,
            remaining,
            reading: None,
        };
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::new(body)),
            accept_ranges: Some("bytes".to_owned()),
            content_length: Some(to_i64(n)?),
            content_range,
            e_tag: Some(ETag::Strong(etag)),
            last_modified,
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.shared.heads.fetch_add(1, Ordering::Relaxed);
        let input = req.input;
        let Opened { meta, etag, .. } = self.open(&input.bucket, &input.key).await?;
        let last_modified = meta.modified().ok().map(Timestamp::from);
        match precondition(
            Some(&etag),
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            false,
        ) {
            Precondition::Holds => {}
            Precondition::Failed => return Err(s3_error!(PreconditionFailed)),
            Precondition::NotModified => return Err(not_modified(&etag)),
        }
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".to_owned()),
            content_length: Some(to_i64(meta.len())?),
            e_tag: Some(ETag::Strong(etag)),
            last_modified,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        mut req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.shared.lists.fetch_add(1, Ordering::Relaxed);
        let asked = req.input.max_keys.unwrap_or(1000);
        req.input.max_keys = Some(asked.min(self.page));
        let bucket = req.input.bucket.clone();
        let mut res = self.fs.list_objects_v2(req).await?;
        for object in res.output.contents.iter_mut().flatten() {
            let Some(key) = object.key.as_deref() else {
                continue;
            };
            if let Ok(path) = self.object_path(&bucket, key) {
                object.e_tag = Store::current_etag(&path).await.map(ETag::Strong);
            }
        }
        Ok(res)
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.shared.lists.fetch_add(1, Ordering::Relaxed);
        self.fs.list_objects(req).await
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.shared.puts.fetch_add(1, Ordering::Relaxed);
        let _guard = self.write_lock.lock().await;
        let input = &mut req.input;
        let path = self
            .check_write(
                &input.bucket,
                &input.key,
                &mut input.if_match,
                &mut input.if_none_match,
            )
            .await?;
        let mut res = self.fs.put_object(req).await?;
        if let Some(etag) = Store::current_etag(&path).await {
            res.output.e_tag = Some(ETag::Strong(etag));
        }
        Ok(res)
    }

    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let _guard = self.write_lock.lock().await;
        let input = &mut req.input;
        let path = self
            .check_write(
                &input.bucket,
                &input.key,
                &mut input.if_match,
                &mut input.if_none_match,
            )
            .await?;
        let mut res = self.fs.complete_multipart_upload(req).await?;
        if let Some(future) = res.output.future.take() {
            res.output = future.await?;
        }
        if let Some(etag) = Store::current_etag(&path).await {
            res.output.e_tag = Some(ETag::Strong(etag));
        }
        Ok(res)
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.shared.lists.fetch_add(1, Ordering::Relaxed);
        uploads::list(&self.root, req.input)
            .await
            .map(S3Response::new)
    }

    // Delegated to s3s-fs unchanged.

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.fs.copy_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.shared.puts.fetch_add(1, Ordering::Relaxed);
        self.fs.upload_part(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> ETagCondition {
        ETagCondition::ETag(ETag::Strong(s.to_owned()))
    }

    #[test]
    fn preconditions() {
        use Precondition::*;
        assert_eq!(precondition(Some("a"), Some(&tag("a")), None, false), Holds);
        assert_eq!(
            precondition(Some("a"), Some(&tag("b")), None, false),
            Failed
        );
        assert_eq!(
            precondition(None, Some(&ETagCondition::Any), None, true),
            Failed
        );
        assert_eq!(
            precondition(Some("a"), None, Some(&tag("a")), false),
            NotModified
        );
        assert_eq!(
            precondition(Some("a"), None, Some(&ETagCondition::Any), true),
            Failed
        );
        assert_eq!(
            precondition(None, None, Some(&ETagCondition::Any), true),
            Holds
        );
        assert_eq!(precondition(Some("a"), None, Some(&tag("b")), false), Holds);
    }
}
