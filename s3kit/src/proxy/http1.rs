//! Just enough HTTP/1.1 for the proxy: read and parse a message head, and copy a body by its
//! framing (`Content-Length`, chunked, or until end of stream).

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest message head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most header lines parsed.
const MAX_HEADERS: usize = 128;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Exactly this many bytes (0 for no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes (responses without a length only).
    UntilEof,
}

/// A parsed message head, with the raw bytes it was read from.
#[derive(Debug)]
pub(super) struct Head {
    /// The head as received, ending in `\r\n\r\n`.
    pub(super) raw: Vec<u8>,
    /// Request: the method. Response: empty.
    pub(super) method: String,
    /// Request: the target (`/bucket/key?query`). Response: empty.
    pub(super) target: String,
    /// Response: the status code. Request: 0.
    pub(super) status: u16,
    /// The headers, names lower-cased.
    pub(super) headers: Vec<(String, Vec<u8>)>,
    /// Whether the connection ends after this message (`Connection: close`, or HTTP/1.0).
    pub(super) close: bool,
}

impl Head {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn content_length(&self) -> io::Result<Option<u64>> {
        let Some(v) = self.header("content-length") else {
            return Ok(None);
        };
        let n = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        n.map(Some).ok_or_else(|| invalid("bad Content-Length"))
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding").is_some_and(|v| {
            String::from_utf8_lossy(v)
                .to_ascii_lowercase()
                .contains("chunked")
        })
    }

    /// A request body's framing (requests without a length have none).
    pub(super) fn request_framing(&self) -> io::Result<Framing> {
        if self.chunked() {
            return Ok(Framing::Chunked);
        }
        Ok(Framing::Length(self.content_length()?.unwrap_or(0)))
    }

    /// A response body's framing, given the request's method.
    pub(super) fn response_framing(&self, method: &str) -> io::Result<Framing> {
        if method.eq_ignore_ascii_case("HEAD")
            || self.status == 204
            || self.status == 304
            || self.status < 200
        {
            return Ok(Framing::Length(0));
        }
        if self.chunked() {
            return Ok(Framing::Chunked);
        }
        Ok(self
            .content_length()?
            .map_or(Framing::UntilEof, Framing::Length))
    }

    /// The head again, with `Content-Length` replaced by `len`.
    pub(super) fn with_content_length(&self, len: u64) -> Vec<u8> {
        let end = self.raw.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
        let mut out = self.raw[..end + 2].to_vec();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            if name == "content-length" {
                out.extend_from_slice(len.to_string().as_bytes());
            } else {
                out.extend_from_slice(value);
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// Reads a head up to `\r\n\r\n`. `Ok(None)` when the stream ends before its first byte.
pub(super) async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let searched = head.len().saturating_sub(3);
        let got = buf.len();
        head.extend_from_slice(buf);
        if let Some(pos) = head[searched..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = searched + pos + 4;
            r.consume(got - (head.len() - end));
            head.truncate(end);
            return Ok(Some(head));
        }
        r.consume(got);
        if head.len() > MAX_HEAD {
            return Err(invalid("message head too large"));
        }
    }
}

fn headers_of(parsed: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    parsed
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect()
}

fn wants_close(version: Option<u8>, headers: &[(String, Vec<u8>)]) -> bool {
    let connection = headers
        .iter()
        .find(|(n, _)| n == "connection")
        .map(|(_, v)| v.to_ascii_lowercase());
    match connection {
        Some(v) if v.windows(5).any(|w| w == b"close") => true,
        Some(v) if v.windows(10).any(|w| w == b"keep-alive") => false,
        _ => version == Some(0),
    }
}

/// Parses a request head.
pub(super) fn parse_request(raw: Vec<u8>) -> io::Result<Head> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    if !req
        .parse(&raw)
        .map_err(|e| invalid(&e.to_string()))?
        .is_complete()
    {
        return Err(invalid("incomplete request head"));
    }
    let method = req.method.unwrap_or_default().to_owned();
    let target = req.path.unwrap_or_default().to_owned();
    let headers = headers_of(req.headers);
    let close = wants_close(req.version, &headers);
    Ok(Head {
        raw,
        method,
        target,
        status: 0,
        headers,
        close,
    })
}

/// Parses a response head.
pub(super) fn parse_response(raw: Vec<u8>) -> io::Result<Head> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut slots);
    if !res
        .parse(&raw)
        .map_err(|e| invalid(&e.to_string()))?
        .is_complete()
    {
        return Err(invalid("incomplete response head"));
    }
    let status = res.code.unwrap_or_default();
    let headers = headers_of(res.headers);
    let close = wants_close(res.version, &headers);
    Ok(Head {
        raw,
        method: String::new(),
        target: String::new(),
        status,
        headers,
        close,
    })
}

/// Copies exactly `n` bytes; a stream that ends early is `UnexpectedEof`.
pub(super) async fn copy_exact<R, W>(r: &mut R, w: &mut W, mut n: u64) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    while n > 0 {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let take = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        w.write_all(&buf[..take]).await?;
        r.consume(take);
        n -= take as u64;
    }
    Ok(())
}

/// Copies everything until the reader ends.
pub(super) async fn copy_to_eof<R, W>(r: &mut R, w: &mut W) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        let got = buf.len();
        w.write_all(buf).await?;
        r.consume(got);
    }
}

/// Reads one CRLF-terminated line (capped) and forwards it; returns it.
async fn pass_line<R, W>(r: &mut R, w: &mut W) -> io::Result<Vec<u8>>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(8 * 1024)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 || !line.ends_with(b"\n") {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    w.write_all(&line).await?;
    Ok(line)
}

/// Copies a chunked body, chunk by chunk, through its last chunk and trailers.
pub(super) async fn copy_chunked<R, W>(r: &mut R, w: &mut W) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let line = pass_line(r, w).await?;
        let text = String::from_utf8_lossy(&line);
        let size = text.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, then the empty line.
            while pass_line(r, w).await?.as_slice() != b"\r\n" {}
            return Ok(());
        }
        copy_exact(r, w, size + 2).await?;
    }
}

/// Copies a body by its framing.
pub(super) async fn copy_body<R, W>(r: &mut R, w: &mut W, framing: Framing) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Length(n) => copy_exact(r, w, n).await,
        Framing::Chunked => copy_chunked(r, w).await,
        Framing::UntilEof => copy_to_eof(r, w).await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn heads_and_chunks() {
        let wire =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nrest"
                .to_vec();
        let mut r = &wire[..];
        let head = parse_response(read_head(&mut r).await.unwrap().unwrap()).unwrap();
        assert_eq!(
            (head.status, head.response_framing("GET").unwrap()),
            (200, Framing::Chunked)
        );
        let mut out = Vec::new();
        copy_chunked(&mut r, &mut out).await.unwrap();
        assert_eq!(out, b"3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(r, b"rest");

        let raw = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/99\r\n\r\n";
        let head = parse_response(raw.to_vec()).unwrap();
        assert_eq!(head.response_framing("HEAD").unwrap(), Framing::Length(0));
        let short = String::from_utf8(head.with_content_length(4)).unwrap();
        assert_eq!(short, "HTTP/1.1 206 Partial Content\r\ncontent-length: 4\r\ncontent-range: bytes 0-9/99\r\n\r\n");
    }
}
