//! A minimal blocking HTTP/1.1 client over `TcpStream` (keep-alive, no signing, no TLS), for tests
//! against a server without auth and for [`get_ranges`], the benchmark's raw-GET baseline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A response: status, headers (names lower-cased) and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One kept-alive connection.
pub struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    host: String,
}

impl Conn {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let w = TcpStream::connect(addr)?;
        w.set_nodelay(true)?;
        let r = BufReader::with_capacity(256 * 1024, w.try_clone()?);
        Ok(Conn {
            r,
            w,
            host: addr.to_string(),
        })
    }

    /// Sets the read timeout (`None`: wait for ever).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.w.set_read_timeout(timeout)
    }

    /// Sends a request (`path` is the raw target, e.g. `/bkt/key?x=1`) and reads the whole
    /// response. A body shorter than its `Content-Length` is `UnexpectedEof`.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let (status, headers) = self.exchange(method, path, headers, body)?;
        let mut out = Vec::new();
        self.read_body(method, status, &headers, &mut out)?;
        Ok(Response {
            status,
            headers,
            body: out,
        })
    }

    /// A GET with the given headers.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
        self.request("GET", path, headers, &[])
    }

    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(u16, Vec<(String, String)>)> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.host);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "PUT" | "POST") {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        self.w.write_all(head.as_bytes())?;
        self.w.write_all(body)?;
        loop {
            let (status, headers) = self.read_head()?;
            if !(100..200).contains(&status) {
                return Ok((status, headers));
            }
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.r.by_ref().take(64 * 1024).read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_head(&mut self) -> io::Result<(u16, Vec<(String, String)>)> {
        let status_line = self.read_line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                return Ok((status, headers));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("bad header {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }

    /// Reads the body into `out`; returns its length.
    fn read_body<W: Write>(
        &mut self,
        method: &str,
        status: u16,
        headers: &[(String, String)],
        out: &mut W,
    ) -> io::Result<u64> {
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        if method == "HEAD" || status == 204 || status == 304 {
            return Ok(0);
        }
        if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            let mut total = 0;
            loop {
                let line = self.read_line()?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size, 16)
                    .map_err(|_| invalid(format!("bad chunk {line:?}")))?;
                if size == 0 {
                    while !self.read_line()?.is_empty() {}
                    return Ok(total);
                }
                self.copy_exact(size, out)?;
                self.read_line()?;
                total += size;
            }
        }
        match get("content-length") {
            Some(len) => {
                let len: u64 = len
                    .parse()
                    .map_err(|_| invalid(format!("bad content-length {len:?}")))?;
                self.copy_exact(len, out)?;
                Ok(len)
            }
            None => io::copy(&mut self.r, out),
        }
    }

    fn copy_exact<W: Write>(&mut self, n: u64, out: &mut W) -> io::Result<()> {
        let copied = io::copy(&mut self.r.by_ref().take(n), out)?;
        if copied < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body ended after {copied} of {n} bytes"),
            ));
        }
        Ok(())
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One request on a new connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    Conn::connect(addr)?.request(method, path, headers, body)
}

/// The socket address of an endpoint such as `http://127.0.0.1:9000` (or `host:port`).
pub fn addr_of(endpoint: &str) -> io::Result<SocketAddr> {
    let hostport = endpoint
        .strip_prefix("http://")
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    hostport
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid(format!("no address for {endpoint:?}")))
}

/// Percent-encodes an object key for a request path (everything but unreserved bytes and `/`).
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A byte range of an object: `start..end`, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByteRange {
    /// The object key.
    pub key: String,
    /// The first byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Parses `[{"key": ..., "start": u64, "end": u64}, ...]` (end exclusive).
pub fn parse_ranges(json: &str) -> io::Result<Vec<ByteRange>> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    let items = value
        .as_array()
        .ok_or_else(|| invalid("ranges: expected a JSON array".into()))?;
    items
        .iter()
        .map(|item| {
            let key = item.get("key").and_then(|v| v.as_str());
            let start = item.get("start").and_then(|v| v.as_u64());
            let end = item.get("end").and_then(|v| v.as_u64());
            match (key, start, end) {
                (Some(key), Some(start), Some(end)) if start < end => Ok(ByteRange {
                    key: key.to_owned(),
                    start,
                    end,
                }),
                _ => Err(invalid(format!("ranges: bad item {item}"))),
            }
        })
        .collect()
}

/// What [`get_ranges`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Wall time from the first connection to the last byte.
    pub seconds: f64,
    /// Body bytes received.
    pub bytes: u64,
    /// Requests made.
    pub requests: u64,
}

/// Fetches every range of `bucket` from the server at `addr` with unsigned ranged GETs, at most
/// `concurrency` in flight, each worker on its own kept-alive connection. Fails on any status but
/// 206 or a body of the wrong length.
pub fn get_ranges(
    addr: SocketAddr,
    bucket: &str,
    ranges: &[ByteRange],
    concurrency: usize,
) -> io::Result<Report> {
    let next = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let started = Instant::now();
    let workers = concurrency.clamp(1, ranges.len().max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> io::Result<()> {
                    let mut conn = Conn::connect(addr)?;
                    loop {
                        let Some(range) = ranges.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return Ok(());
                        };
                        let got = fetch(&mut conn, bucket, range)?;
                        bytes.fetch_add(got, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(io::Error::other("get-ranges worker panicked")))
        })
    })?;
    Ok(Report {
        seconds: started.elapsed().as_secs_f64(),
        bytes: bytes.into_inner(),
        requests: ranges.len() as u64,
    })
}

/// One ranged GET, its body discarded; returns its length.
fn fetch(conn: &mut Conn, bucket: &str, range: &ByteRange) -> io::Result<u64> {
    let path = format!("/{bucket}/{}", encode_key(&range.key));
    let header = format!("bytes={}-{}", range.start, range.end - 1);
    let (status, headers) = conn.exchange("GET", &path, &[("range", &header)], &[])?;
    if status != 206 {
        let mut body = Vec::new();
        conn.read_body("GET", status, &headers, &mut body)?;
        return Err(io::Error::other(format!(
            "GET {path} {header}: status {status}: {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let got = conn.read_body("GET", status, &headers, &mut io::sink())?;
    if got != range.end - range.start {
        return Err(io::Error::other(format!(
            "GET {path} {header}: {got} bytes"
        )));
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ranges() {
        assert_eq!(
            encode_key("u/symbol=ÄPF/a b.parquet"),
            "u/symbol%3D%C3%84PF/a%20b.parquet"
        );
        let ranges = parse_ranges(r#"[{"key": "a", "start": 0, "end": 4}]"#).expect("parses");
        assert_eq!(
            ranges,
            [ByteRange {
                key: "a".into(),
                start: 0,
                end: 4
            }]
        );
        assert!(parse_ranges(r#"[{"key": "a", "start": 4, "end": 4}]"#).is_err());
    }
}
