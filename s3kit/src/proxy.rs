//! [`Proxy`]: an HTTP/1.1-aware TCP proxy that injects deterministic faults (design doc, 12.1).
//!
//! Each client connection gets one upstream connection, kept alive like the client's. For every
//! request the proxy reads the head and `Content-Length` body, picks a [`Fault`] with the first
//! [`Rule`] whose [`Match`] holds, waits the global latency, applies the fault and forwards the
//! response, copying exactly its `Content-Length` bytes (none for `HEAD`, 204 and 304; chunked
//! responses pass through chunk by chunk). Byte-counting faults ([`Fault::ResetAfter`],
//! [`Fault::CloseAfter`], [`Fault::LieShort`], [`Fault::StallAfter`]) apply to `Content-Length`
//! responses only; a chunked response under one of them is passed through unchanged.
//!
//! Matching is deterministic: each rule counts the requests its filters (method, key, data)
//! accept, and `nth` / `share` look only at that count, so a sequential client sees the same faults
//! on every run. Keys are matched against the raw request path (path-style, `/bucket/key`).

mod conn;
mod http1;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

/// What to do to a matched request or its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward unchanged.
    Pass,
    /// Sleep this long before forwarding.
    Delay(Duration),
    /// Answer with this status and an S3 XML error body with this code (e.g. `503, "SlowDown"`,
    /// `500, "InternalError"`), without forwarding.
    Status(u16, &'static str),
    /// Send the response head and this many body bytes, then reset the client connection (RST).
    ResetAfter(usize),
    /// Send the response head and this many body bytes, then close (FIN): a truncated body.
    CloseAfter(usize),
    /// Rewrite `Content-Length` to this many bytes (keeping `Content-Range`) and send only those:
    /// a complete but short response. The connection stays usable.
    LieShort(usize),
    /// Wait this long before the response head.
    Stall(Duration),
    /// Send the head and this many body bytes, wait, then send the rest.
    StallAfter(usize, Duration),
}

/// Which requests a [`Rule`] applies to. All the set conditions must hold; `Match::default()`
/// matches every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Match {
    /// The request method (case-insensitive), e.g. `"GET"`.
    pub method: Option<String>,
    /// A substring of the request path (raw, as sent: `/bucket/key?query`).
    pub key_contains: Option<String>,
    /// Only GETs of object data: a non-empty key and no `uploadId` (not listings, not `ListParts`).
    pub data_only: bool,
    /// Only the n-th request (1-based) that the filters above accept.
    pub nth: Option<u64>,
    /// Only a share of them: `(percent, seed)`, decided by a seeded hash of the rule's count.
    pub share: Option<(u32, u64)>,
}

/// A fault for the requests a [`Match`] selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Which requests.
    pub when: Match,
    /// What to do to them.
    pub then: Fault,
}

/// How many requests got each fault, and in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// All requests read from clients.
    pub requests: u64,
    /// [`Fault::Pass`], including requests no rule matched.
    pub pass: u64,
    /// [`Fault::Delay`].
    pub delay: u64,
    /// [`Fault::Status`].
    pub status: u64,
    /// [`Fault::ResetAfter`].
    pub reset: u64,
    /// [`Fault::CloseAfter`].
    pub close: u64,
    /// [`Fault::LieShort`].
    pub lie_short: u64,
    /// [`Fault::Stall`].
    pub stall: u64,
    /// [`Fault::StallAfter`].
    pub stall_after: u64,
}

/// A running proxy on 127.0.0.1; dropping it shuts it down and joins its thread.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A rule and the number of requests its filters accepted so far.
struct Armed {
    rule: Rule,
    seen: AtomicU64,
}

/// What the connections share.
struct State {
    upstream: SocketAddr,
    latency: Duration,
    rules: Mutex<Arc<Vec<Armed>>>,
    counts: [AtomicU64; 9],
}

impl Proxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream`, adding `latency` to every
    /// request.
    pub fn start(upstream: SocketAddr, rules: Vec<Rule>, latency: Duration) -> io::Result<Proxy> {
        Proxy::start_on(0, upstream, rules, latency)
    }

    /// As [`Proxy::start`], on 127.0.0.1:`port` (0 picks a free one).
    pub fn start_on(
        port: u16,
        upstream: SocketAddr,
        rules: Vec<Rule>,
        latency: Duration,
    ) -> io::Result<Proxy> {
        let state = Arc::new(State {
            upstream,
            latency,
            rules: Mutex::new(Arc::new(arm(rules))),
            counts: Default::default(),
        });
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread_state = Arc::clone(&state);
        let thread = crate::server::spawn_serving("s3kit-proxy", listener, move |listener| {
            accept_loop(listener, thread_state, shutdown_rx)
        })?;
        Ok(Proxy {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the rules (their counts start again from zero) for the requests that follow.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *self
            .state
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(arm(rules));
    }

    /// How many requests got each fault so far.
    pub fn counts(&self) -> FaultCounts {
        let c = |i: usize| self.state.counts[i].load(Ordering::Relaxed);
        FaultCounts {
            requests: c(0),
            pass: c(1),
            delay: c(2),
            status: c(3),
            reset: c(4),
            close: c(5),
            lie_short: c(6),
            stall: c(7),
            stall_after: c(8),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}

fn arm(rules: Vec<Rule>) -> Vec<Armed> {
    rules
        .into_iter()
        .map(|rule| Armed {
            rule,
            seen: AtomicU64::new(0),
        })
        .collect()
}

impl State {
    /// The fault for a request (counted), from the first rule that selects it.
    fn decide(&self, method: &str, target: &str) -> Fault {
        let rules = Arc::clone(&self.rules.lock().unwrap_or_else(PoisonError::into_inner));
        let fault = rules
            .iter()
            .find(|armed| armed.selects(method, target))
            .map_or(Fault::Pass, |armed| armed.rule.then);
        let slot = match fault {
            Fault::Pass => 1,
            Fault::Delay(_) => 2,
            Fault::Status(..) => 3,
            Fault::ResetAfter(_) => 4,
            Fault::CloseAfter(_) => 5,
            Fault::LieShort(_) => 6,
            Fault::Stall(_) => 7,
            Fault::StallAfter(..) => 8,
        };
        self.counts[0].fetch_add(1, Ordering::Relaxed);
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        fault
    }
}

impl Armed {
    /// Whether the rule applies; counts the request when its filters accept it.
    fn selects(&self, method: &str, target: &str) -> bool {
        let when = &self.rule.when;
        if when
            .method
            .as_deref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(method))
        {
            return false;
        }
        if when
            .key_contains
            .as_deref()
            .is_some_and(|k| !target.contains(k))
        {
            return false;
        }
        if when.data_only && !is_data_get(method, target) {
            return false;
        }
        let k = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if when.nth.is_some_and(|n| n != k) {
            return false;
        }
        if let Some((percent, seed)) = when.share {
            return mix(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 100 < u64::from(percent);
        }
        true
    }
}

/// A GET of object data: `/bucket/key` with a non-empty key and no `uploadId` parameter.
fn is_data_get(method: &str, target: &str) -> bool {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let key = path
        .trim_start_matches('/')
        .split_once('/')
        .map_or("", |(_, key)| key);
    method.eq_ignore_ascii_case("GET") && !key.is_empty() && !query.contains("uploadId")
}

/// splitmix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                tokio::spawn(async move { drop(conn::serve(stream, state).await) });
            }
            _ = &mut shutdown => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_gets() {
        assert!(is_data_get("GET", "/bkt/u/a.parquet"));
        assert!(!is_data_get("GET", "/bkt?list-type=2&prefix=u%2F"));
        assert!(!is_data_get("GET", "/bkt/"));
        assert!(!is_data_get("HEAD", "/bkt/u/a.parquet"));
        assert!(!is_data_get("GET", "/bkt/k?uploadId=1"));
    }

    #[test]
    fn nth_and_share_are_deterministic() {
        let armed = |when| Armed {
            rule: Rule {
                when,
                then: Fault::Pass,
            },
            seen: AtomicU64::new(0),
        };
        let third = armed(Match {
            nth: Some(3),
            ..Match::default()
        });
        let hits: Vec<bool> = (0..5).map(|_| third.selects("GET", "/b/k")).collect();
        assert_eq!(hits, [false, false, true, false, false]);
        let run = || {
            let share = armed(Match {
                share: Some((20, 7)),
                ..Match::default()
            });
            (0..1000).filter(|_| share.selects("GET", "/b/k")).count()
        };
        let n = run();
        assert_eq!(n, run());
        assert!((150..250).contains(&n), "{n}");
    }
}
