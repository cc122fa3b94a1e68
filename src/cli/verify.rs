//! `spillway verify FILE`: structure (on open) and every chunk checksum (in parallel).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

/// Arguments of `spillway verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spill file to check.
    file: PathBuf,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when the structure and every checksum hold; otherwise print what is wrong and exit 1.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let t0 = Instant::now();
    let path = &args.file;
    let f =
        spill::open(path).with_context(|| format!("{}: not a valid spill file", path.display()))?;
    let report = f.verify();
    let secs = t0.elapsed().as_secs_f64();
    if args.json {
        let damaged: Vec<_> = report
            .damaged
            .iter()
            .map(|d| {
                serde_json::json!({"column": d.column, "chunk": d.chunk, "rows": [d.rows.start, d.rows.end],
                                   "stored": d.stored, "actual": d.actual})
            })
            .collect();
        let out = serde_json::json!({
            "file": path, "ok": report.is_ok(), "nrows": f.nrows(), "columns": f.columns().len(),
            "symbols": f.symbols().len(), "bytes": f.file_len(), "chunks": report.chunks,
            "seconds": secs, "damaged": damaged,
        });
        println!("{out}");
    } else if report.is_ok() {
        println!(
            "ok: {}: {} rows, {} columns, {} symbols, {} bytes; {} chunks verified in {:.2}s",
            path.display(),
            f.nrows(),
            f.columns().len(),
            f.symbols().len(),
            f.file_len(),
            report.chunks,
            secs
        );
    }
    if report.is_ok() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "spillway: {}: {} of {} chunks damaged:",
        path.display(),
        report.damaged.len(),
        report.chunks
    );
    for d in report.damaged.iter().take(20) {
        eprintln!(
            "  column {:?} rows [{}, {}) (stored crc {:#010x}, computed {:#010x})",
            d.column, d.rows.start, d.rows.end, d.stored, d.actual
        );
    }
    if report.damaged.len() > 20 {
        eprintln!("  ... and {} more", report.damaged.len() - 20);
    }
    Ok(ExitCode::FAILURE)
}
