//! s3kit's tests, in one binary: the server over plain HTTP, and the proxy's faults.

#![allow(clippy::unwrap_used)]

mod proxy;
mod server;

use s3kit::{Options, Server};

/// A server without auth (so plain unsigned HTTP works) and `page` keys a listing page.
pub fn server(page: i32) -> Server {
    Server::start(Options {
        auth: None,
        page,
        ..Options::default()
    })
    .unwrap()
}

/// Writes `bkt/key` straight into the server's directory.
pub fn put(server: &Server, key: &str, bytes: &[u8]) {
    let path = server.bucket_dir("bkt").join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `n` bytes of a repeating pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}
