//! [`Server`]: the S3 endpoint on 127.0.0.1, run by a tokio runtime in a background thread.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, PoisonError};
use std::thread::JoinHandle;

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tempfile::TempDir;
use tokio::sync::oneshot;

use crate::store::{GetHook, Shared, Store};

/// The access key the server accepts by default.
pub const KEY: &str = "s3kit-key";
/// The secret key the server accepts by default.
pub const SECRET: &str = "s3kit-secret-0123456789";

/// How to start a [`Server`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The directory served: each subdirectory is a bucket. `None` (the default) is a new
    /// temporary directory owned and removed by the [`Server`].
    pub root: Option<PathBuf>,
    /// Max keys a listing page (1000 by default, as S3); requests asking for more get this many.
    pub page: i32,
    /// The one `(access key, secret key)` pair accepted, checked with SigV4. `None` accepts only
    /// unsigned requests (and is what plain-HTTP tests use). Default: `Some((KEY, SECRET))`.
    pub auth: Option<(String, String)>,
    /// The port on 127.0.0.1 to listen on; 0 (the default) picks a free one.
    pub port: u16,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            root: None,
            page: 1000,
            auth: Some((KEY.to_owned(), SECRET.to_owned())),
            port: 0,
        }
    }
}

/// An S3 server on 127.0.0.1 serving a directory; dropping it shuts it down and joins its thread.
pub struct Server {
    addr: SocketAddr,
    root: PathBuf,
    auth: Option<(String, String)>,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Held only to remove the temporary root on drop (after the thread has stopped).
    _temp: Option<TempDir>,
}

impl Server {
    /// Binds 127.0.0.1, starts serving `opts.root` (or a new temporary directory) and returns once
    /// the socket is listening.
    pub fn start(opts: Options) -> io::Result<Server> {
        let (temp, root) = match opts.root {
            Some(root) => {
                std::fs::create_dir_all(&root)?;
                (None, root)
            }
            None => {
                let temp = tempfile::Builder::new().prefix("s3kit-").tempdir()?;
                let root = temp.path().to_path_buf();
                (Some(temp), root)
            }
        };
        let root = root.canonicalize()?;
        let shared = Arc::new(Shared::default());
        let store = Store::new(&root, opts.page, Arc::clone(&shared))?;
        let mut builder = S3ServiceBuilder::new(store);
        if let Some((key, secret)) = &opts.auth {
            builder.set_auth(SimpleAuth::from_single(key.clone(), secret.as_str()));
        }
        let service = builder.build();
        let listener = std::net::TcpListener::bind(("127.0.0.1", opts.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread = spawn_serving("s3kit-server", listener, move |listener| {
            serve(listener, service, shutdown_rx)
        })?;
        Ok(Server {
            addr,
            root,
            auth: opts.auth,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
            _temp: temp,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory served (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `bucket`, created if missing, so tests can write objects straight into it.
    ///
    /// # Panics
    /// If the directory cannot be created (a test fixture failure).
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        let dir = self.root.join(bucket);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("s3kit: creating bucket directory {}: {e}", dir.display());
        }
        dir
    }

    /// The environment a client needs (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION=us-east-1`, `AWS_ALLOW_HTTP=true`). Without auth, the
    /// keys are the default ones and `AWS_SKIP_SIGNATURE=true` is added.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let (key, secret) = self
            .auth
            .clone()
            .unwrap_or_else(|| (KEY.to_owned(), SECRET.to_owned()));
        let mut env = vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ];
        if self.auth.is_none() {
            env.push(("AWS_SKIP_SIGNATURE", "true".to_owned()));
        }
        env
    }

    /// GetObject requests received (including failed and 304 ones).
    pub fn gets(&self) -> u64 {
        self.shared.gets.load(Ordering::Relaxed)
    }

    /// GetObject requests served with a body of more than 0 bytes or with a `Range`.
    pub fn data_gets(&self) -> u64 {
        self.shared.data_gets.load(Ordering::Relaxed)
    }

    /// Listing requests (ListObjectsV2, ListObjects, ListMultipartUploads).
    pub fn lists(&self) -> u64 {
        self.shared.lists.load(Ordering::Relaxed)
    }

    /// HeadObject requests.
    pub fn heads(&self) -> u64 {
        self.shared.heads.load(Ordering::Relaxed)
    }

    /// PutObject and UploadPart requests.
    pub fn puts(&self) -> u64 {
        self.shared.puts.load(Ordering::Relaxed)
    }

    /// Runs `hook` with the object's file path before the first GET of a key ending with
    /// `key_suffix` is served (for example, to replace the object mid-build). Each hook runs once.
    pub fn on_first_get(&self, key_suffix: &str, hook: GetHook) {
        let mut hooks = self
            .shared
            .hooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        hooks.push((key_suffix.to_owned(), hook));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}

/// Accepts connections until `shutdown` fires; each is served by hyper's HTTP/1 with keep-alive.
async fn serve(
    listener: tokio::net::TcpListener,
    service: s3s::service::S3Service,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                drop(stream.set_nodelay(true));
                let service = service.clone();
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service);
                    drop(conn.await);
                });
            }
            _ = &mut shutdown => break,
        }
    }
}

/// Runs `serve` on `listener` in a thread of its own named `name`, on a 2-worker tokio runtime;
/// returns once the listener is registered with the runtime, or with what stopped it.
pub(crate) fn spawn_serving<F, Fut>(
    name: &str,
    listener: std::net::TcpListener,
    serve: F,
) -> io::Result<JoinHandle<()>>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (ready_tx, ready_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                drop(ready_tx.send(Ok(())));
                serve(listener).await;
            });
        })?;
    ready_rx
        .recv()
        .map_err(|_| io::Error::other(format!("{name} thread exited while starting")))??;
    Ok(thread)
}
