//! The writer's resident memory does not grow with the file: a heavy test, run by
//! `scripts/test-heavy.sh` (`cargo test --release -p spill -- --ignored writer_memory`).

use spill::{ColumnSpec, DType, Layout, Role, SpillWriter, Symbol, WriteOptions};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "heavy: writes 4 GiB; run by scripts/test-heavy.sh"]
fn writer_memory_stays_bounded_for_a_4_gib_file() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let ncols = 100usize;
    let nrows = (4u64 << 30) / (4 * ncols as u64);
    let cols = (0..ncols)
        .map(|i| ColumnSpec::new(format!("f{i}"), DType::F32, Role::Feature))
        .collect();
    let layout = Layout::new(
        nrows,
        cols,
        vec![Symbol {
            name: "S".into(),
            start: 0,
            stop: nrows,
        }],
    )
    .expect("layout");
    let buf: Vec<f32> = (0..16384).map(|i| i as f32).collect();
    // Reset the peak so that only the write counts.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let base = status_kib("VmRSS:");
    let t0 = std::time::Instant::now();
    let mut w = SpillWriter::create(
        dir.path().join("big.spill"),
        layout,
        WriteOptions::default(),
    )
    .expect("create");
    let mut row = 0;
    while row < nrows {
        let n = (nrows - row).min(buf.len() as u64) as usize;
        for c in 0..ncols {
            w.write(c, row, &buf[..n]).expect("write");
        }
        row += n as u64;
    }
    let done = w.finish(Default::default()).expect("commit");
    let secs = t0.elapsed().as_secs_f64();
    let hwm = status_kib("VmHWM:");
    eprintln!(
        "wrote {} bytes in {secs:.2}s ({:.0} MB/s); VmRSS before {base} KiB, VmHWM {hwm} KiB",
        done.file_len,
        done.file_len as f64 / 1e6 / secs
    );
    assert!(hwm < 64 * 1024, "VmHWM {hwm} KiB is not under 64 MiB");
}
