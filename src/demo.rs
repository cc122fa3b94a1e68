//! `spillway demo`: the main job end to end on a built-in synthetic universe: generate, build,
//! verify, print the build's summary. Everything goes to a temporary directory unless `--dir` is
//! given.
//!
//! The build runs as a child process (this same command line, `spillway build`: see
//! [`crate::relaunch`]), so the peak memory it reports is the build's own, not the generator's
//! that ran before it in this process.

use std::path::PathBuf;

use anyhow::Context;
use spillway::gen::{demo_paths, generate, GenOptions};

use crate::options::Size;
use crate::out::{note, outln};

/// Arguments of `spillway demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    size: Size,
    /// Keep the universe and the spill file here (default: a temporary directory, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Runs the demo.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    let (universe, output) = demo_paths(&dir);
    note!(
        "1/3 generating {} symbols x {} rows x {} features into {}\n",
        a.size.symbols,
        a.size.rows,
        a.size.features,
        universe.display()
    );
    let g = GenOptions {
        output: universe.clone(),
        symbols: a.size.symbols,
        rows: a.size.rows,
        features: a.size.features,
        replace: true,
        ..Default::default()
    };
    let r = generate(&g).context("generating the demo universe")?;
    note!(
        "    {} files, {:.1} MiB\n",
        r.files,
        r.bytes as f64 / (1u64 << 20) as f64
    );
    note!("2/3 building {}\n", output.display());
    let mut build = crate::relaunch()?;
    let status = build
        .arg("build")
        .arg("--input")
        .arg(&universe)
        .arg("--output")
        .arg(&output)
        .args(["--target", "target"])
        .status()
        .with_context(|| format!("running {build:?}"))?;
    if !status.success() {
        anyhow::bail!("the build failed ({status})");
    }
    note!("3/3 verifying\n");
    let f = spill::open(&output).with_context(|| format!("opening {}", output.display()))?;
    let report = f.verify();
    anyhow::ensure!(
        report.is_ok(),
        "{}: {} damaged chunks",
        output.display(),
        report.damaged.len()
    );
    let x = f.features::<f32>()?;
    outln!(
        "ok: {} rows x {} features as one zero-copy view; {} chunks verified",
        x.nrows(),
        x.ncols(),
        report.chunks
    )?;
    Ok(0)
}
