//! One epoch of shuffled training batches over a spill file, as a Rust trainer would read it:
//! per-feature means over the epoch (checked against the means stored in the file, format 1.1),
//! rows/s (overall and in the batch iterator alone) and the peak resident set.
//!
//! ```text
//! cargo run --release -p spill --example batches -- FILE.spill [BATCH_ROWS=4096] [BLOCK_ROWS=65536] [SEED=0]
//! ```

use std::time::Instant;

use spill::{Batch, BatchOptions, Role};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: batches FILE.spill [BATCH_ROWS] [BLOCK_ROWS] [SEED]")?;
    let batch_rows: usize = args.get(2).map_or(Ok(4096), |s| s.parse())?;
    let block_rows: u64 = args.get(3).map_or(Ok(65536), |s| s.parse())?;
    let seed: u64 = args.get(4).map_or(Ok(0), |s| s.parse())?;

    let f = spill::open(path)?;
    let features = f.columns_with_role(Role::Feature);
    let opts = BatchOptions::new(batch_rows)
        .shuffle_blocks(block_rows, seed)
        .with_symbols()
        .drop_behind(true);
    let t0 = Instant::now();
    let mut batches = f.batches::<f32>(opts)?;
    let nbatches = batches.len();
    // Per-feature sums (f64) and counts of the finite values.
    let k = features.len();
    let (mut sum, mut count) = (vec![0f64; k], vec![0u64; k]);
    let mut batch = Batch::default();
    let (mut rows, mut in_batches) = (0u64, 0f64);
    loop {
        let t = Instant::now();
        if !batches.next_into(&mut batch) {
            break;
        }
        in_batches += t.elapsed().as_secs_f64();
        for r in 0..batch.nrows() {
            for ((s, c), &v) in sum.iter_mut().zip(&mut count).zip(batch.row(r)) {
                let finite = v.is_finite();
                *s += if finite { f64::from(v) } else { 0.0 };
                *c += u64::from(finite);
            }
        }
        rows += batch.nrows() as u64;
    }
    let secs = t0.elapsed().as_secs_f64();

    let mut worst = 0f64;
    for (j, &ci) in features.iter().enumerate() {
        let c = &f.columns()[ci];
        let mean = (count[j] > 0).then(|| sum[j] / count[j] as f64);
        if let (Some(m), Some(stored), Some(std)) = (mean, c.stats.mean, c.stats.std) {
            worst = worst.max((m - stored).abs() / std.max(f64::MIN_POSITIVE));
        }
        if j < 5 {
            println!(
                "{:>24}  epoch mean {:?}  stored mean {:?}",
                c.name, mean, c.stats.mean
            );
        }
    }
    println!(
        "{rows} rows x {k} features in {nbatches} batches of {batch_rows} (blocks of {block_rows}) \
         in {secs:.2}s: {:.0} rows/s ({:.0} rows/s and {:.0} MB/s in the batch iterator alone); \
         peak RSS {} MiB; largest |epoch mean - stored mean| / std: {worst:.1e}",
        rows as f64 / secs,
        rows as f64 / in_batches,
        (rows * k as u64 * 4) as f64 / 1e6 / in_batches,
        vm_hwm_kib() / 1024
    );
    Ok(())
}
