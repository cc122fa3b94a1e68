//! `spillway demo`: the main job end to end on a built-in synthetic universe: generate, build,
//! verify, print the summary. Everything goes to a temporary directory unless `--dir` is given.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use spillway::config::BuildOptions;
use spillway::gen::{demo_paths, generate, GenOptions};
use spillway::progress::Progress;

/// Arguments of `spillway demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Symbols in the demo universe.
    #[arg(long, default_value_t = 16)]
    symbols: usize,
    /// Rows of the longest symbol.
    #[arg(long, default_value_t = 75_000)]
    rows: usize,
    /// Features.
    #[arg(long, default_value_t = 100)]
    features: usize,
    /// Keep the universe and the spill file here (default: a temporary directory, removed).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Runs the demo.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    let (universe, output) = demo_paths(&dir);
    eprintln!(
        "1/3 generating {} symbols x {} rows x {} features into {}",
        a.symbols,
        a.rows,
        a.features,
        universe.display()
    );
    let g = GenOptions {
        output: universe.clone(),
        symbols: a.symbols,
        rows: a.rows,
        features: a.features,
        ..Default::default()
    };
    let r = generate(&g).context("generating the demo universe")?;
    eprintln!(
        "    {} files, {:.1} MiB",
        r.files,
        r.bytes as f64 / (1u64 << 20) as f64
    );
    eprintln!("2/3 building {}", output.display());
    let cfg = BuildOptions {
        input: Some(universe),
        output: Some(output.clone()),
        target: Some("target".into()),
        ..Default::default()
    }
    .resolve()?;
    let summary = spillway::build(&cfg, &Progress::new(true))?;
    eprint!("{}", summary.human());
    eprintln!("3/3 verifying");
    let f = spill::open(&output).with_context(|| format!("opening {}", output.display()))?;
    let report = f.verify();
    anyhow::ensure!(
        report.is_ok(),
        "{}: {} damaged chunks",
        output.display(),
        report.damaged.len()
    );
    let x = f.features::<f32>()?;
    eprintln!(
        "ok: {} rows x {} features as one zero-copy view; {} chunks verified",
        x.nrows(),
        x.ncols(),
        report.chunks
    );
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}
