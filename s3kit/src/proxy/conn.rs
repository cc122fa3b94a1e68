//! One client connection of the [`super::Proxy`]: read a request, decide its fault, forward it over
//! the connection's own upstream connection, and send the (possibly damaged) response back.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::http1::{self, Framing, Head};
use super::{Fault, State};

/// Read buffer a side: large enough that a body moves in few system calls.
const BUF: usize = 256 * 1024;

/// One side of a connection: a buffered reader and the writer.
struct Side {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
}

impl Side {
    fn new(stream: TcpStream) -> Side {
        drop(stream.set_nodelay(true));
        let (r, w) = stream.into_split();
        Side {
            r: BufReader::with_capacity(BUF, r),
            w,
        }
    }
}

/// Serves one client connection until either side closes or a fault ends it.
pub(super) async fn serve(client: TcpStream, state: Arc<State>) -> io::Result<()> {
    let mut client = Side::new(client);
    let mut upstream: Option<Side> = None;
    loop {
        let Some(raw) = http1::read_head(&mut client.r).await? else {
            return Ok(());
        };
        let req = http1::parse_request(raw)?;
        let mut body = Vec::new();
        http1::copy_body(&mut client.r, &mut body, req.request_framing()?).await?;
        let fault = state.decide(&req.method, &req.target);
        if !state.latency.is_zero() {
            tokio::time::sleep(state.latency).await;
        }
        match fault {
            Fault::Delay(d) | Fault::Stall(d) => tokio::time::sleep(d).await,
            Fault::Status(code, s3_code) => {
                let head_only = req.method.eq_ignore_ascii_case("HEAD");
                client
                    .w
                    .write_all(&error_response(code, s3_code, &req.target, head_only))
                    .await?;
                if req.close {
                    return Ok(());
                }
                continue;
            }
            _ => {}
        }
        let res = exchange(&mut upstream, state.upstream, &req, &body, &mut client.w).await?;
        let framing = res.response_framing(&req.method)?;
        let Some(up) = upstream.as_mut() else {
            return Ok(());
        };
        match respond(up, &mut client, &res, framing, fault).await? {
            Next::Keep if !(req.close || res.close || framing == Framing::UntilEof) => {}
            Next::Reset => {
                client.w.flush().await?;
                let stream = client
                    .r
                    .into_inner()
                    .reunite(client.w)
                    .map_err(|_| io::Error::other("reunite"))?;
                // Zero linger makes the close an RST instead of a FIN.
                socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            Next::Keep | Next::Close => {
                client.w.shutdown().await?;
                return Ok(());
            }
        }
    }
}

/// What becomes of the connections after a response.
enum Next {
    /// Both can carry another request.
    Keep,
    /// Close the client connection with a FIN.
    Close,
    /// Reset the client connection.
    Reset,
}

/// Sends the response under `fault`.
async fn respond(
    up: &mut Side,
    client: &mut Side,
    res: &Head,
    framing: Framing,
    fault: Fault,
) -> io::Result<Next> {
    let Framing::Length(len) = framing else {
        client.w.write_all(&res.raw).await?;
        http1::copy_body(&mut up.r, &mut client.w, framing).await?;
        return Ok(Next::Keep);
    };
    let upto = |n: usize| len.min(n as u64);
    match fault {
        Fault::ResetAfter(n) => {
            client.w.write_all(&res.raw).await?;
            http1::copy_exact(&mut up.r, &mut client.w, upto(n)).await?;
            Ok(Next::Reset)
        }
        Fault::CloseAfter(n) => {
            client.w.write_all(&res.raw).await?;
            http1::copy_exact(&mut up.r, &mut client.w, upto(n)).await?;
            Ok(Next::Close)
        }
        Fault::LieShort(n) => {
            let short = upto(n);
            client.w.write_all(&res.with_content_length(short)).await?;
            http1::copy_exact(&mut up.r, &mut client.w, short).await?;
            // Drain the rest so the upstream connection stays in step.
            http1::copy_exact(&mut up.r, &mut tokio::io::sink(), len - short).await?;
            Ok(Next::Keep)
        }
        Fault::StallAfter(n, d) => {
            client.w.write_all(&res.raw).await?;
            http1::copy_exact(&mut up.r, &mut client.w, upto(n)).await?;
            client.w.flush().await?;
            tokio::time::sleep(d).await;
            http1::copy_exact(&mut up.r, &mut client.w, len - upto(n)).await?;
            Ok(Next::Keep)
        }
        Fault::Pass | Fault::Delay(_) | Fault::Status(..) | Fault::Stall(_) => {
            client.w.write_all(&res.raw).await?;
            http1::copy_exact(&mut up.r, &mut client.w, len).await?;
            Ok(Next::Keep)
        }
    }
}

/// Sends the request upstream and reads the final response head, forwarding any 1xx heads to the
/// client. A kept-alive upstream connection that turns out closed is reopened once.
async fn exchange(
    upstream: &mut Option<Side>,
    addr: SocketAddr,
    req: &Head,
    body: &[u8],
    client: &mut OwnedWriteHalf,
) -> io::Result<Head> {
    let reused = upstream.is_some();
    match try_exchange(upstream, addr, req, body, client).await {
        Ok(Some(head)) => Ok(head),
        Ok(None) if reused => {
            *upstream = None;
            try_exchange(upstream, addr, req, body, client)
                .await?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed"))
        }
        Err(e) if reused && is_stale(&e) => {
            *upstream = None;
            try_exchange(upstream, addr, req, body, client)
                .await?
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed"))
        }
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "upstream closed",
        )),
        Err(e) => Err(e),
    }
}

fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// One attempt; `Ok(None)` when upstream closed before answering at all.
async fn try_exchange(
    upstream: &mut Option<Side>,
    addr: SocketAddr,
    req: &Head,
    body: &[u8],
    client: &mut OwnedWriteHalf,
) -> io::Result<Option<Head>> {
    if upstream.is_none() {
        *upstream = Some(Side::new(TcpStream::connect(addr).await?));
    }
    let Some(up) = upstream.as_mut() else {
        return Ok(None);
    };
    up.w.write_all(&req.raw).await?;
    up.w.write_all(body).await?;
    loop {
        let Some(raw) = http1::read_head(&mut up.r).await? else {
            return Ok(None);
        };
        let head = http1::parse_response(raw)?;
        if (100..200).contains(&head.status) && head.status != 101 {
            client.write_all(&head.raw).await?;
            continue;
        }
        return Ok(Some(head));
    }
}

/// An S3-style XML error response the proxy answers itself.
fn error_response(code: u16, s3_code: &str, resource: &str, head_only: bool) -> Vec<u8> {
    let reason = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let resource = resource.replace('&', "&amp;").replace('<', "&lt;");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{s3_code}</Code>\
         <Message>injected by the s3kit proxy</Message><Resource>{resource}</Resource>\
         <RequestId>s3kit-proxy</RequestId></Error>"
    );
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
         x-amz-request-id: s3kit-proxy\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
