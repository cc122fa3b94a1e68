//! Arbitrary bytes as one symbol's `.parquet` file beside a valid one: discovery, footer reading,
//! planning (time scan included) and, when a plan comes out, the whole build. Every outcome must
//! be Ok or an error; a panic anywhere (ours or the parquet crate's, which `guard` turns into an
//! error) is a finding.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let d = PathBuf::from(base).join(format!("spillway-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(d.join("u")).expect("fuzz dir");
        let good = include_bytes!("../seeds/parquet_file/good.parquet");
        std::fs::write(d.join("u/A.parquet"), good).expect("seed");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let d = dir();
    let _ = std::fs::write(d.join("u/B.parquet"), data);
    for on_error in [
        spillway::config::OnError::Fail,
        spillway::config::OnError::Skip,
    ] {
        let cfg = spillway::BuildOptions {
            input: Some(d.join("u")),
            output: Some(d.join("o.spill")),
            target: Some("target".into()),
            on_error: Some(on_error),
            threads: Some(1),
            ..Default::default()
        }
        .resolve()
        .expect("config");
        let _ = spillway::build(&cfg, &spillway::Progress::hidden());
    }
});
