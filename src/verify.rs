//! `spillway verify FILE`: structure (on open) and every chunk checksum (in parallel); in a
//! time-major file, also that every row of each timestamp's range holds that time.

use std::path::{Path, PathBuf};

use std::time::Instant;

use serde_json::json;

use crate::options::Remote;
use crate::out::{note, outln};

/// Arguments of `spillway verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spill file, or dataset manifest (dataset.json, a path or a URL), to check.
    file: PathBuf,
    /// Print the result as one JSON object on stdout (also when the file cannot be opened).
    #[arg(long)]
    json: bool,
    /// A dataset in a bucket: also download every shard (one at a time, into --scratch) and
    /// check every chunk. Without it, a bucket's shards are checked by size and metadata
    /// checksum (a read of each shard's end); local shards always get every check.
    #[arg(long)]
    deep: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Why a path cannot be verified before any byte is read: it does not exist, or is not a file.
fn not_a_file(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some(format!(
            "{} is a directory, not a spill file",
            path.display()
        )),
        Ok(_) => None,
        Err(e) => Some(format!("{}: {e}", path.display())),
    }
}

/// Exit 0 when the structure and every checksum hold; otherwise print what is wrong and exit 1.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let t0 = Instant::now();
    let path = &args.file;
    if crate::manifest::is_manifest(path) {
        let chunks = args.deep || !spillway::publish::is_url(path);
        return crate::manifest::verify(path, args.json, chunks, &args.remote);
    }
    if spillway::publish::is_url(path) {
        return Err(crate::out::Usage(format!(
            "{}: verify reads a spill file on disk, or a dataset manifest (dataset.json) in a \
             bucket",
            path.display()
        ))
        .into());
    }
    let opened = match not_a_file(path) {
        Some(why) => Err(why),
        None => spill::open(path)
            .map_err(|e| format!("{}: not a valid spill file: {e}", path.display())),
    };
    let f = match opened {
        Ok(f) => f,
        Err(why) => {
            if args.json {
                outln!("{}", json!({"file": path, "ok": false, "error": why}))?;
            }
            note!("spillway: {why}\n");
            return Ok(1);
        }
    };
    let report = f.verify();
    // The index is checked against the time column only once the column's bytes are known good.
    let index_error = match (f.order(), report.is_ok()) {
        (spill::Order::Time, true) => f.verify_time_index().err().map(|e| e.to_string()),
        _ => None,
    };
    let ok = report.is_ok() && index_error.is_none();
    let timestamps = f.timestamps().map(|t| t.len());
    let secs = t0.elapsed().as_secs_f64();
    if args.json {
        let damaged: Vec<_> = report
            .damaged
            .iter()
            .map(|d| {
                json!({"column": d.column, "chunk": d.chunk, "rows": [d.rows.start, d.rows.end],
                       "stored": d.stored, "actual": d.actual})
            })
            .collect();
        let out = json!({
            "file": path, "ok": ok, "nrows": f.nrows(), "columns": f.columns().len(),
            "symbols": f.symbols().len(), "bytes": f.file_len(), "chunks": report.chunks,
            "order": f.order().name(), "timestamps": timestamps,
            "time_index_error": index_error, "seconds": secs, "damaged": damaged,
        });
        outln!("{out}")?;
    } else if ok {
        outln!(
            "ok: {}: {} rows, {} columns, {} symbols{}, {} bytes; {} chunks verified in {:.2}s",
            path.display(),
            f.nrows(),
            f.columns().len(),
            f.symbols().len(),
            timestamps.map_or(String::new(), |t| format!(
                ", time-major ({t} timestamps, index checked)"
            )),
            f.file_len(),
            report.chunks,
            secs
        )?;
    }
    if ok {
        return Ok(0);
    }
    if let Some(e) = index_error {
        note!(
            "spillway: {}: the timestamp index does not match the time column: {e}\n",
            path.display()
        );
        return Ok(1);
    }
    note!(
        "spillway: {}: {} of {} chunks damaged:\n",
        path.display(),
        report.damaged.len(),
        report.chunks
    );
    for d in report.damaged.iter().take(20) {
        note!(
            "  column {:?} rows [{}, {}) (stored crc {:#010x}, computed {:#010x})\n",
            d.column,
            d.rows.start,
            d.rows.end,
            d.stored,
            d.actual
        );
    }
    if report.damaged.len() > 20 {
        note!("  ... and {} more\n", report.damaged.len() - 20);
    }
    Ok(1)
}
