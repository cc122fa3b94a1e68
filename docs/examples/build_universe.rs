// Generate a synthetic universe of parquet files with `spillway::gen`, then build it into one
// spill file with `spillway::build`, in this process: the library the `spillway` command runs.

use std::error::Error;

use spillway::gen::{generate, GenOptions};
use spillway::{BuildOptions, Progress};

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;

    // A universe: DIR/S0000.parquet ..., a shared 5-minute time grid, a target that the features
    // f001, f006 and f011 explain a quarter of.
    let mut universe = GenOptions::default();
    universe.output = dir.path().join("universe");
    universe.symbols = 8;
    universe.rows = 5_000;
    universe.features = 12;
    universe.signal = 0.25;
    let made = generate(&universe)?;
    println!("generated {} files, {} rows", made.files, made.rows);

    // The build: options as the CLI's flags (or a TOML file), resolved and checked in one place.
    let mut opts = BuildOptions::default();
    opts.input = Some(universe.output.clone());
    opts.output = Some(dir.path().join("train.spill"));
    opts.target = Some("target".into());
    opts.memory_budget = Some("256MiB".into());
    let config = opts.resolve()?;
    let summary = spillway::build(&config, &Progress::hidden())?;
    println!(
        "wrote {} rows of {} symbols",
        summary.rows, summary.symbols_read
    );

    // The file opens with the `spill` crate, which checks every chunk's checksum on request.
    let f = spill::open(dir.path().join("train.spill"))?;
    assert_eq!(f.nrows(), summary.rows);
    assert!(f.verify().is_ok());
    Ok(())
}
