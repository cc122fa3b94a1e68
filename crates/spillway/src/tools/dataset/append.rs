//! `spillway append`: a time-major dataset grows by the rows after its last timestamp, as new
//! time shards and the next manifest generation, without rebuilding what it holds.
//!
//! 1. The manifest (a path or a URL) gives the build options, the last timestamp `T`, the
//!    history and, from the newest shard, the symbol table: its symbols keep their codes, new
//!    ones follow (`plan::time_shard::Seed`).
//! 2. The grown universe is planned as a single time-major build would plan it (footers, time
//!    scans, filters), so the rows after `T` are exactly a rebuild's (`history` checks that the
//!    rows up to `T` still are the dataset's: see `history_check`).
//! 3. Those rows are cut into `--shards` time shards after `T`, built beside the manifest (or in
//!    the scratch directory and uploaded), then the manifest of the old and new shards is
//!    committed as the next generation, only over the generation this append read (a
//!    conditional PUT in a bucket, a `flock` on disk): a concurrent writer makes it fail, never
//!    mix. Readers that opened the old generation keep it (`dataset.g<N>.json`).
//!
//! `--rebuild` takes the grown universe whole instead: new time shards of every timestamp, with
//! the dataset's codes kept, committed the same way (the old shards stay for the generations
//! that name them; `spillway clean --keep-generations` removes them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Value};

use super::commit::{self, Replace};
use super::files::{dir_of, join, open_shard, Places};
use super::history_check::{check, Verdict};
use super::timeline::read_time_dataset;
use super::{assemble, bad, Access, AnyManifest};
use crate::cancel::Cancel;
use crate::config::{BuildConfig, BuildOptions};
use crate::error::{Error, Result};
use crate::input::source;
use crate::plan::time_shard::{Seed, TimeCut, Timeline};
use crate::publish::Scratch;
use crate::report::progress::Progress;
use crate::report::summary::BuildSummary;
use crate::run::execute_cancellable;

/// How to append.
#[derive(Debug, Clone, Copy)]
pub struct AppendOptions {
    /// Time shards to cut the new rows into (at least 1).
    pub shards: u32,
    /// Take the grown universe whole (all timestamps, new shards) when its history differs
    /// from the dataset's, instead of refusing.
    pub rebuild: bool,
    /// Build only this one of the new shards and commit nothing (one task of a cluster's
    /// append; the driver then commits with `commit_only`).
    pub only: Option<u32>,
    /// Build nothing: commit the new shards built before (by `only` tasks), which must be there.
    pub commit_only: bool,
}

/// What an append did.
#[derive(Debug, Clone, Serialize)]
pub struct AppendReport {
    /// The manifest.
    pub manifest: PathBuf,
    /// Its generation now (the one read, when nothing was appended).
    pub generation: u64,
    /// The dataset's last timestamp before the append (ns).
    pub after: i64,
    /// The dataset's last timestamp now.
    pub last: i64,
    /// The new shards, relative to the manifest (all of them, also with `only`).
    pub shards: Vec<String>,
    /// Rows added (every row, after `--rebuild`; only shard `only`'s with `only`).
    pub rows: u64,
    /// Whether the whole dataset was rebuilt (`--rebuild` and a history that differs).
    pub rebuilt: bool,
    /// How the history was checked.
    pub history: Verdict,
    /// Seconds, all told.
    pub seconds: f64,
    /// The shards' build summaries.
    #[serde(skip)]
    pub builds: Vec<BuildSummary>,
}

/// Appends to the time-major dataset whose manifest is `manifest` the rows after its last
/// timestamp from the universe `user.input` (see the module docs). `user` carries the input and
/// the resources (threads, memory budget, decoder...); the options that decide rows are the
/// dataset's, and any other is refused. `Error::NothingToAppend` when no row is new.
pub fn append(
    manifest: &Path,
    user: BuildOptions,
    how: &AppendOptions,
    access: &Access,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<AppendReport> {
    let t0 = Instant::now();
    if how.shards == 0 {
        return Err(Error::Config("--shards must be at least 1".into()));
    }
    if let Some(i) = how.only.filter(|&i| i >= how.shards) {
        return Err(Error::Config(format!(
            "--only {i}: there are {} new shards (0 to {})",
            how.shards,
            how.shards - 1
        )));
    }
    if how.only.is_some() && how.commit_only {
        return Err(Error::Config(
            "--only builds a shard and --commit commits them: give one".into(),
        ));
    }
    let mut places = Places::new(&access.storage, cancel);
    let (place, m) = read_time_dataset(
        &mut places,
        manifest,
        "append adds shards cut on time; build the dataset with `spillway build --order time --shard I/N` and `spillway manifest`",
    )?;
    let base = m.generation.unwrap_or(1);
    let dir = dir_of(manifest);
    let newest = m
        .shards
        .last()
        .ok_or_else(|| bad(manifest, "it lists no shard"))?;
    let newest_path = join(&dir, &newest.path);
    let (_, _, meta) = place
        .describe(&newest_path)?
        .ok_or_else(|| bad(&newest_path, "the file is missing"))?;
    let seed = Seed {
        names: meta.symbols.iter().map(|s| s.name.clone()).collect(),
        timezone: meta.columns.first().and_then(|c| c.timezone.clone()),
    };
    let after = newest
        .time_range
        .map(|[_, b]| b)
        .ok_or_else(|| bad(&newest_path, "it records no time range"))?;
    let mut cfg = config(manifest, user, &m.options)?;
    cfg.output = dir.join("append.spill");

    progress.phase("append: planning the grown universe");
    let universe = source::universe(&cfg, cancel)?;
    let timeline = Timeline::prepare(
        &universe,
        &cfg,
        Some(&seed),
        Some(after),
        &BTreeMap::new(),
        cancel,
    )?;
    let features: Vec<&str> = m
        .schema
        .iter()
        .filter(|c| c.role == "feature")
        .map(|c| c.name.as_str())
        .collect();
    let now: Vec<&str> = timeline
        .plan()
        .features
        .iter()
        .map(String::as_str)
        .collect();
    if now != features {
        return Err(Error::History {
            path: manifest.to_path_buf(),
            what: feature_change(&features, &now),
        });
    }
    let scratch = Scratch::new(access.scratch.as_deref())?;
    let verdict = match &m.history {
        Some(h) => check(manifest, &m, h, &timeline, &cfg, &place, &scratch, cancel)?,
        None => Verdict::unrecorded(),
    };
    let rebuild = !verdict.problems.is_empty();
    if rebuild && !how.rebuild {
        return Err(Error::History {
            path: manifest.to_path_buf(),
            what: verdict.problems.join("; "),
        });
    }

    // The new shards, named for the generation they make and for what they hold.
    let generation = base + 1;
    let cut_after = (!rebuild).then_some(after);
    let key = {
        let mut h = crc32fast::Hasher::new();
        h.update(&after.to_le_bytes());
        h.update(timeline.fingerprint().as_bytes());
        h.update(&[u8::from(rebuild)]);
        h.finalize()
    };
    let n = how.shards;
    let mut names = Vec::new();
    let mut builds = Vec::new();
    for i in 0..n {
        let name = format!("time-g{generation}-{i:05}-of-{n:05}-{key:08x}.spill");
        if m.shards.iter().any(|s| s.path == name) {
            return Err(bad(
                manifest,
                format!("it already names {name}: the dataset is not the one this append read"),
            ));
        }
        names.push(name.clone());
        if how.commit_only || how.only.is_some_and(|o| o != i) {
            continue;
        }
        let cut = TimeCut {
            index: i,
            count: n,
            after: cut_after,
        };
        progress.phase(&format!("append: building time shard {i}/{n}"));
        let plan = timeline.cut(&cut, &cfg, cancel)?;
        let target = join(&dir, &name);
        let summary = if place.is_remote() {
            let tmp = scratch.temp(&name)?;
            let mut c = cfg.clone();
            c.output = tmp.to_path_buf();
            let s = execute_cancellable(&plan, &c, progress, cancel)?;
            progress.phase(&format!("uploading {}", target.display()));
            place.upload(&tmp, &target)?;
            s
        } else {
            let mut c = cfg.clone();
            crate::output::check("--output", &target, &[])?;
            c.output = target.clone();
            execute_cancellable(&plan, &c, progress, cancel)?
        };
        builds.push(summary);
    }
    let rows = builds.iter().map(|b| b.rows).sum();
    if how.only.is_some() {
        return Ok(AppendReport {
            manifest: manifest.to_path_buf(),
            generation: base,
            after,
            last: after,
            shards: names,
            rows,
            rebuilt: rebuild,
            history: verdict,
            seconds: t0.elapsed().as_secs_f64(),
            builds,
        });
    }

    // The manifest of the old shards (unless rebuilt) and the new ones, checked together.
    progress.phase("append: committing the manifest");
    let kept = if rebuild { &[][..] } else { &m.shards[..] };
    let mut opened = Vec::new();
    for e in kept {
        let o = open_shard(&place, &join(&dir, &e.path), e.path.clone())?;
        if let Some(diff) = e.difference(&o.entry) {
            return Err(bad(
                &join(&dir, &e.path),
                format!("it changed since the manifest was written: {diff}"),
            ));
        }
        opened.push(o);
    }
    for name in &names {
        opened.push(open_shard(&place, &join(&dir, name), name.clone())?);
    }
    let paths: Vec<PathBuf> = opened.iter().map(|o| join(&dir, &o.entry.path)).collect();
    let grown = assemble(opened, None, |i| paths[i].clone())?;
    let rows = match how.commit_only {
        true => grown.nrows - kept.iter().map(|e| e.rows).sum::<u64>(),
        false => rows,
    };
    let last = grown.history.as_ref().map_or(after, |h| h.last);
    let committed = commit::commit(
        &place,
        manifest,
        AnyManifest::Sharded(grown),
        Replace::Generation(base),
    )?;
    Ok(AppendReport {
        manifest: manifest.to_path_buf(),
        generation: committed.generation().unwrap_or(generation),
        after,
        last,
        shards: names,
        rows,
        rebuilt: rebuild,
        history: verdict,
        seconds: t0.elapsed().as_secs_f64(),
        builds,
    })
}

/// The build configuration of an append: the dataset's recorded options (`recorded`, which
/// decide rows) over `user`'s input and resources. `--max-rows` (a cut from the end of the data)
/// cannot grow, and is refused.
fn config(manifest: &Path, user: BuildOptions, recorded: &Value) -> Result<BuildConfig> {
    let refused = |what: &str| {
        Error::Config(format!("append takes the dataset's {what}; give only --input and resources (threads, memory, decoder)"))
    };
    let rows_options = [
        user.target.is_some() || user.no_target.is_some(),
        user.features.is_some(),
        user.time_col.is_some() || user.time_unit.is_some(),
        user.max_rows.is_some() || user.no_float32.is_some(),
        user.drop_null_target.is_some() || user.min_cs.is_some(),
        user.max_cs_samples.is_some() || user.seed.is_some(),
        user.shard.is_some() || user.symbols.is_some() || user.cs_plan.is_some(),
        user.order.is_some() || user.cs_transform.is_some() || user.output.is_some(),
    ];
    if rows_options.iter().any(|&b| b) {
        return Err(refused(
            "options that decide rows (target, features, filters, order...)",
        ));
    }
    if !recorded["max_rows"].is_null() {
        return Err(bad(
            manifest,
            "it was built with --max-rows, which cuts each symbol's first rows: a dataset that \
             grows at its end cannot keep that cut (rebuild it without --max-rows to append)",
        ));
    }
    let f = &recorded["filters"];
    let mut o = json!({
        "target": recorded["target"],
        "features": recorded["features"],
        "time-col": recorded["time_col"],
        "no-float32": !recorded["float32"].as_bool().unwrap_or(true),
        "drop-null-target": f["drop_null_target"],
        "min-cs": f["min_cs"],
        "max-cs-samples": f["max_cs_samples"],
        "seed": f["seed"],
        "order": "time",
    });
    if recorded["target"].is_null() {
        o["no-target"] = json!(true);
    }
    for (from, to) in [("time_unit", "time-unit"), ("cs_transform", "cs-transform")] {
        if !recorded[from].is_null() {
            o[to] = recorded[from].clone();
        }
    }
    let d: BuildOptions = serde_json::from_value(o).map_err(|e| {
        bad(
            manifest,
            format!("its recorded options cannot be read back: {e}"),
        )
    })?;
    BuildOptions {
        target: d.target,
        no_target: d.no_target,
        features: d.features,
        time_col: d.time_col,
        time_unit: d.time_unit,
        no_float32: d.no_float32,
        drop_null_target: d.drop_null_target,
        min_cs: d.min_cs,
        max_cs_samples: d.max_cs_samples,
        seed: d.seed,
        order: d.order,
        cs_transform: d.cs_transform,
        output: Some(PathBuf::from("append.spill")),
        ..user
    }
    .resolve()
}

/// How the feature union changed, said plainly.
fn feature_change(was: &[&str], now: &[&str]) -> String {
    let added: Vec<&&str> = now.iter().filter(|f| !was.contains(f)).collect();
    let gone: Vec<&&str> = was.iter().filter(|f| !now.contains(f)).collect();
    if added.is_empty() && gone.is_empty() {
        return format!("the universe's features are the dataset's in another order ({now:?}, the dataset has {was:?})");
    }
    format!("the universe's features changed: added {added:?}, gone {gone:?} (a dataset keeps one schema)")
}
