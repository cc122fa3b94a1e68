//! Writes a large spill file and reports write speed and peak RSS (VmHWM).
//!
//! ```text
//! cargo run --release -p spill --example write_bench -- OUT.spill [GIB=4] [COLUMNS=100] [BATCH_ROWS=16384]
//! ```
//! Prints one JSON line: bytes, seconds, MB/s, and VmHWM before and after, in KiB.

use std::time::Instant;

use spill::{ColumnSpec, DType, Layout, Role, SpillWriter, Symbol, WriteOptions};

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .get(1)
        .ok_or("usage: write_bench OUT.spill [GIB] [COLUMNS] [BATCH_ROWS]")?;
    let gib: f64 = args.get(2).map_or(Ok(4.0), |s| s.parse())?;
    let ncols: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let batch: usize = args.get(4).map_or(Ok(16384), |s| s.parse())?;
    let nrows = (gib * (1u64 << 30) as f64 / (4.0 * ncols as f64)) as u64;
    let columns = (0..ncols)
        .map(|i| ColumnSpec::new(format!("f{i:03}"), DType::F32, Role::Feature))
        .collect();
    let symbols = vec![Symbol {
        name: "ALL".into(),
        start: 0,
        stop: nrows,
    }];
    let layout = Layout::new(nrows, columns, symbols)?;
    let hwm0 = vm_hwm_kib();
    let t0 = Instant::now();
    let mut w = SpillWriter::create(out, layout, WriteOptions::default())?;
    let buf: Vec<f32> = (0..batch).map(|i| i as f32).collect();
    let mut row = 0u64;
    while row < nrows {
        let n = (nrows - row).min(batch as u64) as usize;
        for c in 0..ncols {
            w.write(c, row, &buf[..n])?;
        }
        row += n as u64;
    }
    let committed = w.finish(Default::default())?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{{\"bytes\": {}, \"seconds\": {:.3}, \"mb_per_s\": {:.0}, \"vm_hwm_kib_before\": {}, \"vm_hwm_kib\": {}}}",
        committed.file_len,
        secs,
        committed.file_len as f64 / 1e6 / secs,
        hwm0,
        vm_hwm_kib()
    );
    Ok(())
}
