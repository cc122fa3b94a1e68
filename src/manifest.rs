//! `spillway manifest`: the manifest of a sharded dataset (`dataset.json`), or with
//! `--collection` of independent files with one schema, written last and in one step once the
//! files are in place (on disk or in a bucket); and `spillway verify dataset.json`.

use std::path::{Path, PathBuf};

use spillway::dataset::{self, Access};
use spillway::Cancel;

use crate::options::Remote;
use crate::out::{note, outln};

/// Arguments of `spillway manifest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shards (spill files built with --shard; paths or URLs), in any order; with
    /// --collection, the files, in the order their rows are numbered.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// The cross-section plan they were built with.
    #[arg(long)]
    cs_plan: Option<PathBuf>,
    /// The files are independent spill files with one schema (the same columns, dtypes, roles
    /// and order; two days built apart, say), not the shards of one build: their symbol tables
    /// may differ, and the manifest records their union.
    #[arg(long, conflicts_with = "cs_plan")]
    collection: bool,
    /// The manifest to write (a path or a URL); shard paths are stored relative to its
    /// directory.
    #[arg(long)]
    output: PathBuf,
    /// Replace an existing manifest of another dataset there (it is kept as
    /// `dataset.g<N>.json`). Without it, an existing manifest is refused (exit 2), unless it
    /// describes the same dataset.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    remote: Remote,
}

/// Writes the manifest.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let access = Access {
        storage: args.remote.storage()?,
        scratch: args.remote.scratch.clone(),
        replace: args.replace,
    };
    if args.collection {
        let c = dataset::collection(&args.shards, &args.output, &access, &Cancel::new())?;
        note!(
            "wrote {}: a collection of {} files, {} rows, {} symbols, generation {}\n",
            args.output.display(),
            c.files.len(),
            c.nrows,
            c.symbols.len(),
            c.generation.unwrap_or(1)
        );
        return Ok(0);
    }
    let m = dataset::manifest(
        &args.shards,
        args.cs_plan.as_deref(),
        &args.output,
        &access,
        &Cancel::new(),
    )?;
    note!(
        "wrote {}: {} shards, {} rows, generation {}\n",
        args.output.display(),
        m.shards.len(),
        m.nrows,
        m.generation.unwrap_or(1)
    );
    Ok(0)
}

/// Whether `path` looks like a manifest rather than a spill file: a JSON object, or a URL
/// ending in `.json`.
pub fn is_manifest(path: &Path) -> bool {
    use std::io::Read;
    if spillway::publish::is_url(path) {
        return path.extension().is_some_and(|e| e == "json");
    }
    let mut b = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok_and(|_| b[0] == b'{')
}

/// `spillway verify dataset.json`: every shard against the manifest, the plan, and with
/// `chunks` every chunk checksum (from a bucket, `--deep`: each shard downloaded in turn).
pub fn verify(path: &Path, json: bool, chunks: bool, remote: &Remote) -> anyhow::Result<u8> {
    let access = Access {
        storage: remote.storage()?,
        scratch: remote.scratch.clone(),
        replace: false,
    };
    let r = match dataset::verify_dataset(path, chunks, &access, &Cancel::new()) {
        Ok(r) => r,
        Err(e) => {
            // With --json, stdout holds one JSON object whatever happens.
            if json {
                let error = format!("{:#}", anyhow::Error::from(e));
                outln!(
                    "{}",
                    serde_json::json!({"file": path, "ok": false, "error": error})
                )?;
                note!("spillway: {error}\n");
                return Ok(1);
            }
            return Err(e.into());
        }
    };
    if json {
        outln!("{}", serde_json::to_string(&r)?)?;
    } else if r.is_ok() {
        let checked = match chunks {
            true => format!("{} chunks verified", r.chunks),
            false => "sizes and metadata checksums verified (--deep: every chunk)".into(),
        };
        let files = match r.kind == dataset::COLLECTION {
            true => "files of a collection",
            false => "shards",
        };
        outln!(
            "ok: {}: {} {files}, {} rows; {checked}",
            path.display(),
            r.shards,
            r.nrows,
        )?;
    }
    for p in &r.problems {
        note!("spillway: {p}\n");
    }
    Ok(if r.is_ok() { 0 } else { 1 })
}
