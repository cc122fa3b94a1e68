//! Arbitrary bytes as one symbol's `.parquet` file beside a valid one, built twice: with the fast
//! decoder where the file allows it (`Decoder::Auto`) and with arrow-rs alone (`Decoder::Arrow`).
//! Where both builds succeed, the spill files must be identical; a panic in spillway's decoder
//! (an `ErrorKind::Internal` error) is a finding too. Batch size and `--max-rows` come from a
//! hash of the input, so row selections start and end inside pages.
//!
//! When only one build fails, nothing panics (the fast decoder's missing checks are known, see
//! issue 13); set `SPILLWAY_FUZZ_ONESIDED=DIR` to keep such inputs in DIR with both outcomes.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spillway::config::Decoder;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let d = PathBuf::from(base).join(format!("spillway-fuzz-dec-{}", std::process::id()));
        std::fs::create_dir_all(d.join("u")).expect("fuzz dir");
        let good = include_bytes!("../seeds/decoders/v1-plain.parquet");
        std::fs::write(d.join("u/A.parquet"), good).expect("seed");
        d
    })
}

fn build(d: &Path, decoder: Decoder, hash: u64) -> Result<Vec<u8>, spillway::Error> {
    let out = d.join(format!("{decoder:?}.spill"));
    let mut cfg = spillway::BuildOptions {
        input: Some(d.join("u")),
        output: Some(out.clone()),
        target: Some("target".into()),
        threads: Some(1),
        batch_rows: Some(1 + (hash % 61) as usize),
        max_rows: (hash >> 8 & 3 == 0).then_some(hash >> 16 & 63),
        ..Default::default()
    }
    .resolve()
    .expect("config");
    cfg.decoder = decoder;
    spillway::build(&cfg, &spillway::Progress::hidden())?;
    Ok(std::fs::read(&out).expect("read the spill file"))
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    if std::fs::write(d.join("u/B.parquet"), data).is_err() {
        return;
    }
    // FNV-1a: the same input always gets the same options.
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let fast = build(d, Decoder::Auto, hash);
    if let Err(e) = &fast {
        assert!(
            e.kind() != spillway::ErrorKind::Internal,
            "spillway's decoder failed: {e}"
        );
    }
    let arrow = build(d, Decoder::Arrow, hash);
    match (&fast, &arrow) {
        (Ok(f), Ok(a)) => assert!(f == a, "the decoders disagree on a file both accept"),
        (Err(_), Err(_)) => {}
        _ => {
            if let Some(keep) = std::env::var_os("SPILLWAY_FUZZ_ONESIDED") {
                let keep = PathBuf::from(keep);
                let _ = std::fs::create_dir_all(&keep);
                let _ = std::fs::write(keep.join(format!("{hash:016x}.parquet")), data);
                let outcome = |r: &Result<Vec<u8>, spillway::Error>| match r {
                    Ok(_) => "ok".to_string(),
                    Err(e) => e.to_string(),
                };
                let note = format!("fast: {}\narrow: {}\n", outcome(&fast), outcome(&arrow));
                let _ = std::fs::write(keep.join(format!("{hash:016x}.txt")), note);
            }
        }
    }
});
