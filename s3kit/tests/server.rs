//! The server over plain HTTP: ranges, preconditions, listing pages, ETags, the hook, uploads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use s3kit::raw::{self, ByteRange, Conn};

use crate::{pattern, put, server};

#[test]
fn ranged_get_gives_exact_bytes() {
    let server = server(1000);
    put(&server, "u/a.bin", b"0123456789");
    let mut conn = Conn::connect(server.addr()).unwrap();

    let res = conn.get("/bkt/u/a.bin", &[("range", "bytes=2-4")]).unwrap();
    assert_eq!(
        (res.status, res.body.as_slice()),
        (206, &b"234"[..]),
        "{}",
        res.text()
    );
    assert_eq!(res.header("content-range"), Some("bytes 2-4/10"));
    assert_eq!(res.header("content-length"), Some("3"));
    assert!(res.header("last-modified").is_some());
    let etag = res.header("etag").unwrap();
    assert!(etag.starts_with("\"a-") && etag.ends_with('"'), "{etag}");

    let suffix = conn.get("/bkt/u/a.bin", &[("range", "bytes=-3")]).unwrap();
    assert_eq!((suffix.status, suffix.body.as_slice()), (206, &b"789"[..]));
    let open = conn.get("/bkt/u/a.bin", &[("range", "bytes=7-")]).unwrap();
    assert_eq!(open.header("content-range"), Some("bytes 7-9/10"));
    assert_eq!(open.body, b"789");
    let whole = conn.get("/bkt/u/a.bin", &[]).unwrap();
    assert_eq!(
        (whole.status, whole.body.as_slice()),
        (200, &b"0123456789"[..])
    );
    let beyond = conn.get("/bkt/u/a.bin", &[("range", "bytes=20-")]).unwrap();
    assert_eq!(beyond.status, 416, "{}", beyond.text());
    let missing = conn.get("/bkt/u/none.bin", &[]).unwrap();
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("NoSuchKey"));

    assert_eq!((server.gets(), server.data_gets()), (6, 4));
}

#[test]
fn preconditions_on_get_and_put() {
    let server = server(1000);
    put(&server, "a.bin", b"0123456789");
    let mut conn = Conn::connect(server.addr()).unwrap();
    let etag = conn
        .request("HEAD", "/bkt/a.bin", &[], &[])
        .unwrap()
        .header("etag")
        .unwrap()
        .to_owned();
    assert_eq!(server.heads(), 1);
    let expected_heads = 2;

    let wrong = conn
        .get(
            "/bkt/a.bin",
            &[("if-match", "\"nope\""), ("range", "bytes=0-1")],
        )
        .unwrap();
    assert_eq!(wrong.status, 412, "{}", wrong.text());
    assert!(wrong.text().contains("PreconditionFailed"));
    let right = conn
        .get("/bkt/a.bin", &[("if-match", &etag), ("range", "bytes=0-1")])
        .unwrap();
    assert_eq!((right.status, right.body.as_slice()), (206, &b"01"[..]));
    let cached = conn.get("/bkt/a.bin", &[("if-none-match", &etag)]).unwrap();
    assert_eq!((cached.status, cached.body.len()), (304, 0));
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    let head_cached = conn
        .request("HEAD", "/bkt/a.bin", &[("if-none-match", &etag)], &[])
        .unwrap();
    assert_eq!(head_cached.status, 304);

    let exists = conn
        .request("PUT", "/bkt/a.bin", &[("if-none-match", "*")], b"x")
        .unwrap();
    assert_eq!(exists.status, 412, "{}", exists.text());
    let stale = conn
        .request("PUT", "/bkt/a.bin", &[("if-match", "\"nope\"")], b"x")
        .unwrap();
    assert_eq!(stale.status, 412);
    let ok = conn
        .request("PUT", "/bkt/a.bin", &[("if-match", &etag)], b"new")
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    let new_etag = ok.header("etag").unwrap();
    assert!(
        new_etag.starts_with("\"3-") && new_etag != etag,
        "{new_etag}"
    );
    assert_eq!(conn.get("/bkt/a.bin", &[]).unwrap().body, b"new");
    assert_eq!((server.puts(), server.heads()), (3, expected_heads));
}

#[test]
fn listing_pages_with_etags() {
    let server = server(2);
    for i in 0..5 {
        put(&server, &format!("u/{i}.bin"), &pattern(10 + i));
    }
    let mut conn = Conn::connect(server.addr()).unwrap();
    let mut keys = 0;
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            None => "/bkt?list-type=2&prefix=u%2F".to_owned(),
            Some(t) => format!(
                "/bkt?list-type=2&prefix=u%2F&continuation-token={}",
                raw::encode_key(t)
            ),
        };
        let res = conn.get(&path, &[]).unwrap();
        let xml = res.text();
        assert_eq!(res.status, 200, "{xml}");
        let page = xml.matches("<Key>").count();
        assert!(page <= 2, "{xml}");
        assert_eq!(xml.matches("<ETag>").count(), page, "{xml}");
        assert_eq!(xml.matches("<LastModified>").count(), page, "{xml}");
        keys += page;
        token = between(&xml, "<NextContinuationToken>", "</NextContinuationToken>");
        assert_eq!(
            xml.contains("<IsTruncated>true</IsTruncated>"),
            token.is_some(),
            "{xml}"
        );
        if token.is_none() {
            break;
        }
    }
    assert_eq!((keys, server.lists()), (5, 3));
}

fn between(text: &str, open: &str, close: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(text[start..end].to_owned())
}

#[test]
fn etag_changes_when_rewritten() {
    let server = server(1000);
    put(&server, "a.bin", b"0123456789");
    let path = server.bucket_dir("bkt").join("a.bin");
    let etag = |s: &s3kit::Server| {
        raw::request(s.addr(), "HEAD", "/bkt/a.bin", &[], &[])
            .unwrap()
            .header("etag")
            .unwrap()
            .to_owned()
    };
    let first = etag(&server);
    assert_eq!(first, etag(&server), "stable while unchanged");
    // Same size, new file renamed over it (a new inode).
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, b"abcdefghij").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let second = etag(&server);
    assert_ne!(first, second);
    // Same size, rewritten in place (a new mtime).
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&path, b"ABCDEFGHIJ").unwrap();
    assert_ne!(second, etag(&server));
}

#[test]
fn hook_fires_once_before_the_first_get() {
    let server = server(1000);
    put(&server, "u/S0003.parquet", b"old!");
    put(&server, "u/S0004.parquet", b"keep");
    let fired = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&fired);
    server.on_first_get(
        "S0003.parquet",
        Box::new(move |path| {
            seen.fetch_add(1, Ordering::SeqCst);
            std::fs::write(path, b"new!").unwrap();
        }),
    );
    let mut conn = Conn::connect(server.addr()).unwrap();
    assert_eq!(conn.get("/bkt/u/S0004.parquet", &[]).unwrap().body, b"keep");
    assert_eq!(fired.load(Ordering::SeqCst), 0);
    assert_eq!(conn.get("/bkt/u/S0003.parquet", &[]).unwrap().body, b"new!");
    std::fs::write(server.bucket_dir("bkt").join("u/S0003.parquet"), b"3rd!").unwrap();
    assert_eq!(conn.get("/bkt/u/S0003.parquet", &[]).unwrap().body, b"3rd!");
    assert_eq!(fired.load(Ordering::SeqCst), 1);
}

#[test]
fn multipart_uploads_are_listed() {
    let server = server(1000);
    server.bucket_dir("bkt");
    let mut conn = Conn::connect(server.addr()).unwrap();
    let created = conn
        .request("POST", "/bkt/u/big.bin?uploads", &[], &[])
        .unwrap();
    assert_eq!(created.status, 200, "{}", created.text());
    let id = between(&created.text(), "<UploadId>", "</UploadId>").unwrap();
    let listed = conn.get("/bkt?uploads", &[]).unwrap();
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(
        listed
            .text()
            .contains(&format!("<UploadId>{id}</UploadId>")),
        "{}",
        listed.text()
    );
    assert!(listed.text().contains("<Key>u/big.bin</Key>"));
    let aborted = conn
        .request("DELETE", &format!("/bkt/u/big.bin?uploadId={id}"), &[], &[])
        .unwrap();
    assert_eq!(aborted.status, 204, "{}", aborted.text());
    assert!(!conn
        .get("/bkt?uploads", &[])
        .unwrap()
        .text()
        .contains("<UploadId>"));
}

#[test]
fn get_ranges_fetches_every_byte() {
    let server = server(1000);
    put(&server, "u/a.bin", &pattern(100_000));
    put(&server, "u/b c.bin", &pattern(5_000));
    let ranges = raw::parse_ranges(
        r#"[{"key": "u/a.bin", "start": 0, "end": 60000}, {"key": "u/a.bin", "start": 60000, "end": 100000},
            {"key": "u/b c.bin", "start": 10, "end": 20}]"#,
    )
    .unwrap();
    let report = raw::get_ranges(server.addr(), "bkt", &ranges, 2).unwrap();
    assert_eq!((report.bytes, report.requests), (100_010, 3));
    let bad = [ByteRange {
        key: "u/none".into(),
        start: 0,
        end: 1,
    }];
    assert!(raw::get_ranges(server.addr(), "bkt", &bad, 1).is_err());
}
