// Read a spill file with the `spill` crate: columns and the feature matrix as zero-copy views of
// the mapping, a time window, and an epoch of shuffled row-major training batches.
//
// `main` first builds a small file with `spillway` (as `build_universe.rs` does); `train_on` is
// what a training job does with any spill file.

use std::error::Error;
use std::path::Path;

fn train_on(path: &Path) -> Result<(), Box<dyn Error>> {
    let f = spill::open(path)?; // maps the file and validates its structure: O(metadata)
    let y: &[f32] = f.column("target")?; // one column, zero-copy, page aligned
    let x = f.features::<f32>()?; // every feature as ONE strided 2-D view
    println!(
        "{} rows x {} features, {} symbols",
        x.nrows(),
        x.ncols(),
        f.symbols().len()
    );
    for s in f.symbols().iter().take(2) {
        println!("{}: rows [{}, {})", s.name, s.start, s.stop);
    }

    // The rows of a time window, per symbol: here the last fifth of the timeline.
    let time: &[i64] = f.column("ts")?;
    let (t0, t1) = (time.iter().min().copied(), time.iter().max().copied());
    let (Some(t0), Some(t1)) = (t0, t1) else {
        return Err("the file has no rows".into());
    };
    let cut = t0 + (t1 - t0) / 5 * 4;
    let valid = f.time_ranges(cut, t1 + 1)?;

    // An epoch: batches of 4096 rows x features (row-major), blocks of 16384 rows in an order
    // shuffled by the seed, pages released behind the reader; the same batches as Python's.
    let opts = spill::BatchOptions::new(4096)
        .shuffle_blocks(16_384, 7)
        .drop_behind(true);
    let (mut rows, mut labelled) = (0, 0);
    for batch in f.batches::<f32>(opts)? {
        let labels = batch.y.as_deref().unwrap_or_default();
        assert_eq!(batch.x.len(), batch.nrows() * batch.ncols);
        rows += batch.nrows();
        labelled += labels.iter().filter(|v| !v.is_nan()).count();
    }
    assert_eq!(rows, y.len());
    let held_out: u64 = valid.iter().map(|r| r.end - r.start).sum();
    println!("epoch: {rows} rows, {labelled} labelled; {held_out} rows after the cut");
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let mut universe = spillway::gen::GenOptions::default();
    universe.output = dir.path().join("universe");
    universe.symbols = 4;
    universe.rows = 20_000;
    universe.features = 8;
    spillway::gen::generate(&universe)?;
    // Every other option at its default (BuildOptions, as in build_universe.rs, sets the rest).
    let output = dir.path().join("train.spill");
    let config = spillway::BuildConfig::new(&universe.output, &output, Some("target"))?;
    spillway::build(&config, &spillway::Progress::hidden())?;
    train_on(&output)
}
