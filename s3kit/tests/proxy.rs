//! The proxy's faults, against a server without auth.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use s3kit::raw::Conn;
use s3kit::{Fault, Match, Proxy, Rule, Server};

use crate::{pattern, put, server};

/// A server holding `bkt/a.bin` (100 kB) and a proxy in front of it with `rules`.
fn setup(rules: Vec<Rule>) -> (Server, Proxy) {
    let server = server(1000);
    put(&server, "a.bin", &pattern(100_000));
    let proxy = Proxy::start(server.addr(), rules, Duration::ZERO).unwrap();
    (server, proxy)
}

fn data(then: Fault) -> Rule {
    Rule {
        when: Match {
            data_only: true,
            ..Match::default()
        },
        then,
    }
}

#[test]
fn passes_through_with_keep_alive() {
    let (server, proxy) = setup(Vec::new());
    let mut conn = Conn::connect(proxy.addr()).unwrap();
    for _ in 0..3 {
        let res = conn.get("/bkt/a.bin", &[("range", "bytes=10-19")]).unwrap();
        assert_eq!((res.status, res.body.as_slice()), (206, &pattern(20)[10..]));
    }
    assert_eq!(
        conn.request("HEAD", "/bkt/a.bin", &[], &[])
            .unwrap()
            .header("content-length"),
        Some("100000")
    );
    assert_eq!(conn.get("/bkt?list-type=2", &[]).unwrap().status, 200);
    assert_eq!(conn.get("/bkt/a.bin", &[]).unwrap().body, pattern(100_000));
    assert_eq!((proxy.counts().requests, proxy.counts().pass), (6, 6));
    assert_eq!(server.gets(), 4);
}

#[test]
fn delay_adds_latency() {
    let (_server, proxy) = setup(vec![data(Fault::Delay(Duration::from_millis(300)))]);
    let mut conn = Conn::connect(proxy.addr()).unwrap();
    let started = Instant::now();
    assert_eq!(
        conn.get("/bkt/a.bin", &[("range", "bytes=0-0")])
            .unwrap()
            .status,
        206
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(proxy.counts().delay, 1);

    let slow = Proxy::start(_server.addr(), Vec::new(), Duration::from_millis(200)).unwrap();
    let started = Instant::now();
    assert_eq!(
        Conn::connect(slow.addr())
            .unwrap()
            .get("/bkt?list-type=2", &[])
            .unwrap()
            .status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn status_is_answered_without_forwarding() {
    let nth = Match {
        data_only: true,
        nth: Some(1),
        ..Match::default()
    };
    let (server, proxy) = setup(vec![Rule {
        when: nth,
        then: Fault::Status(503, "SlowDown"),
    }]);
    let mut conn = Conn::connect(proxy.addr()).unwrap();
    let res = conn.get("/bkt/a.bin", &[("range", "bytes=0-9")]).unwrap();
    assert_eq!(res.status, 503);
    assert!(
        res.text().contains("<Code>SlowDown</Code>"),
        "{}",
        res.text()
    );
    assert_eq!(server.gets(), 0);
    // The same connection carries on, and the rule fired only once.
    assert_eq!(
        conn.get("/bkt/a.bin", &[("range", "bytes=0-9")])
            .unwrap()
            .status,
        206
    );
    assert_eq!(
        (server.gets(), proxy.counts().status, proxy.counts().pass),
        (1, 1, 1)
    );

    proxy.set_rules(vec![Rule {
        when: Match::default(),
        then: Fault::Status(500, "InternalError"),
    }]);
    let res = conn.get("/bkt?list-type=2", &[]).unwrap();
    assert_eq!(res.status, 500);
    assert!(res.text().contains("InternalError"));
}

#[test]
fn lie_short_gives_a_short_complete_body() {
    let (_server, proxy) = setup(vec![data(Fault::LieShort(3))]);
    let mut conn = Conn::connect(proxy.addr()).unwrap();
    let res = conn
        .get("/bkt/a.bin", &[("range", "bytes=100-199")])
        .unwrap();
    assert_eq!(
        (res.status, res.body.as_slice()),
        (206, &pattern(103)[100..])
    );
    assert_eq!(res.header("content-range"), Some("bytes 100-199/100000"));
    proxy.set_rules(Vec::new());
    let next = conn.get("/bkt/a.bin", &[("range", "bytes=0-9")]).unwrap();
    assert_eq!(
        (next.status, next.body.as_slice()),
        (206, &pattern(10)[..]),
        "connection still in step"
    );
    assert_eq!(proxy.counts().lie_short, 1);
}

#[test]
fn reset_after_gives_a_connection_error() {
    let (_server, proxy) = setup(vec![data(Fault::ResetAfter(1000))]);
    let mut conn = Conn::connect(proxy.addr()).unwrap();
    let err = conn.get("/bkt/a.bin", &[]).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
    assert_eq!(proxy.counts().reset, 1);
}

#[test]
fn close_after_truncates_the_body() {
    let (_server, proxy) = setup(vec![data(Fault::CloseAfter(1000))]);
    let mut conn = Conn::connect(proxy.addr()).unwrap();
    let err = conn.get("/bkt/a.bin", &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err:?}");
    assert!(err.to_string().contains("after 1000 of 100000"), "{err}");
}

#[test]
fn stalls_hold_the_response() {
    let stall = Duration::from_millis(200);
    let (_server, proxy) = setup(vec![data(Fault::StallAfter(10, stall))]);
    let mut conn = Conn::connect(proxy.addr()).unwrap();
    let started = Instant::now();
    assert_eq!(conn.get("/bkt/a.bin", &[]).unwrap().body, pattern(100_000));
    assert!(started.elapsed() >= stall);
    proxy.set_rules(vec![data(Fault::Stall(Duration::from_secs(5)))]);
    conn.set_timeout(Some(Duration::from_millis(100))).unwrap();
    let err = conn.get("/bkt/a.bin", &[]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    assert_eq!((proxy.counts().stall_after, proxy.counts().stall), (1, 1));
}
