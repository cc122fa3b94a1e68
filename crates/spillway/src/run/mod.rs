//! `run`: runs the stages. Discover, check the output path, plan, choose the memory shape, then
//! N reader threads and one writer joined by bounded channels; commit. Under `--on-error skip`, a
//! symbol that fails only while decoding (after planning) stops the attempt; `probe` then decodes
//! the units not yet written, writing nothing, to find every symbol that fails, and the build
//! starts over once without all of them, so the output equals a build of a universe that never
//! had them. `--max-attempts` caps the attempts ([`Error::Attempts`] names what still fails). A
//! shard build does not start over: leaving a symbol out in one shard alone would make it
//! disagree with the others, so it fails with [`Error::Exclude`] (exit code 4) naming the
//! symbols, and its driver excludes them from every count and shard.
//!
//! `inputs` owns what the spill file records of its inputs (and options) and the `--if-changed`
//! check against an existing output.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use spill::{Committed, SpillWriter, WriteMode, WriteOptions};

pub(crate) mod history;
mod inputs;
mod probe;

use crate::cancel::Cancel;
use crate::config::{self, BuildConfig, OnError, RowOrder};
use crate::error::{Error, Result, SymbolError};
use crate::input::convert::Float;
use crate::input::source;
use crate::order::{transpose, Intermediate};
use crate::plan::budget::RETURNED;
use crate::plan::budget::{self, Budget};
use crate::plan::{plan, Plan};
use crate::read::{self, read_unit, Msg, ReadContext, Reader, Source, Spares, Task};
use crate::report::progress::Progress;
use crate::report::rss;
use crate::report::summary::{BuildSummary, Decoders, TransposeStats, WriterStats};
use crate::write::{write_all, WriteFailure};

pub(crate) use self::inputs::{answer, check_output, excluded, judge};
pub use self::inputs::{up_to_date, write_current_summary, UpToDate};

/// What one attempt at writing produced.
struct Run {
    committed: Option<Committed>,
    decoders: Decoders,
    commit_seconds: f64,
    writer: WriterStats,
    reader_wait: Duration,
    transpose: Option<TransposeStats>,
}

enum Failure {
    /// A symbol failed while decoding: skippable.
    Unit(SymbolError),
    /// Anything else.
    Fatal(Error),
}

/// Builds the spill file `cfg` describes and reports what happened.
pub fn build(cfg: &BuildConfig, progress: &Progress) -> Result<BuildSummary> {
    build_with(cfg, progress, &Cancel::new())
}

/// [`build`], stopping with [`Error::Cancelled`] once `cancel` is cancelled.
pub fn build_with(cfg: &BuildConfig, progress: &Progress, cancel: &Cancel) -> Result<BuildSummary> {
    let t0 = Instant::now();
    progress.phase("discovering");
    let universe = source::universe(cfg, cancel)?;
    // Measured after discovery: an object store's client, opened there, is charged by the
    // budget as the store's own memory, not again as planning's.
    let rss_at_start = rss::rss_bytes();
    // Through a symlink, the build writes the file it points to.
    let real = inputs::check_output(cfg, &universe)?;
    let resolved;
    let cfg = if real == cfg.output {
        cfg
    } else {
        resolved = BuildConfig {
            output: real,
            ..cfg.clone()
        };
        &resolved
    };
    let sink = inputs::open_summary(cfg, &universe)?;
    let mut excluded = inputs::excluded(cfg, &universe);
    let mut attempts = 0u32;
    let result = loop {
        attempts += 1;
        progress.phase(&format!("planning {} symbols", universe.symbols.len()));
        let tp = Instant::now();
        let plan = match plan(&universe, cfg, &excluded, cancel) {
            Ok(p) => p,
            Err(e) => break Err(e),
        };
        let plan_seconds = tp.elapsed().as_secs_f64();
        // What planning added to the resident set (the plan, and what the allocator kept of the
        // footers it parsed): the budget charges it if it exceeds the plan's own estimate.
        let retained = rss::rss_bytes()
            .zip(rss_at_start)
            .map_or(0, |(now, start)| now.saturating_sub(start));
        match attempt(&plan, cfg, retained, progress, cancel) {
            Ok((budget, run)) => {
                let wall = t0.elapsed();
                break Ok(summary(
                    &plan,
                    &budget,
                    &run,
                    wall,
                    plan_seconds,
                    attempts as usize,
                ));
            }
            Err(Failure::Unit(e)) if cfg.on_error == OnError::Skip => {
                progress.phase("finding every symbol that fails");
                let failing = match probe::failing(&plan, cfg, e, cancel) {
                    Ok(f) => f,
                    Err(e) => break Err(e),
                };
                let failing: Vec<(String, String)> = failing
                    .into_iter()
                    .map(|(s, e)| (s, e.to_string()))
                    .collect();
                // A shard leaving them out alone would disagree with the other shards (the
                // union, the cross-section): its driver excludes them everywhere.
                if let Some(scope) = &cfg.scope {
                    break Err(Error::Exclude {
                        scope: scope.to_string(),
                        skipped: failing,
                    });
                }
                if attempts >= cfg.max_attempts {
                    break Err(Error::Attempts {
                        attempts,
                        failing,
                        excluded: excluded.into_keys().collect(),
                    });
                }
                excluded.extend(failing);
            }
            Err(Failure::Unit(e)) => break Err(Error::Symbol(e)),
            Err(Failure::Fatal(e)) => break Err(e),
        }
    };
    progress.finish();
    let mut summary = result?;
    summary.object_storage = universe.remote_stats();
    if let Some(sink) = sink {
        sink.write(&summary)?;
    }
    Ok(summary)
}

/// Executes `plan` once, as planned: no re-planning, so a symbol failing mid-decode is an error
/// whatever `--on-error` says. For callers that plan themselves (and for tests of what happens
/// when files change between planning and reading).
pub fn execute_plan(plan: &Plan, cfg: &BuildConfig, progress: &Progress) -> Result<BuildSummary> {
    execute_cancellable(plan, cfg, progress, &Cancel::new())
}

/// [`execute_plan`], stopped by `cancel`.
pub(crate) fn execute_cancellable(
    plan: &Plan,
    cfg: &BuildConfig,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<BuildSummary> {
    let t0 = Instant::now();
    let result = match attempt(plan, cfg, 0, progress, cancel) {
        Ok((budget, run)) => Ok(summary(plan, &budget, &run, t0.elapsed(), 0.0, 1)),
        Err(Failure::Unit(e)) => Err(Error::Symbol(e)),
        Err(Failure::Fatal(e)) => Err(e),
    };
    progress.finish();
    result
}

fn attempt(
    plan: &Plan,
    cfg: &BuildConfig,
    retained: u64,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<(Budget, Run), Failure> {
    let budget = budget::choose(cfg, plan, retained).map_err(Failure::Fatal)?;
    room_for(plan, cfg).map_err(Failure::Fatal)?;
    progress.begin(plan);
    // A time-major build streams into a hidden symbol-major intermediate, then transposes it;
    // the guard removes the intermediate however this attempt ends.
    let staging = match (cfg.order, cfg.decode_only) {
        (RowOrder::Time, false) => Some(Intermediate::beside(&cfg.output).map_err(Failure::Fatal)?),
        _ => None,
    };
    let run = if plan.float32 {
        execute::<f32>(plan, cfg, staging.as_ref(), &budget, progress, cancel)
    } else {
        execute::<f64>(plan, cfg, staging.as_ref(), &budget, progress, cancel)
    };
    // Whatever failed once the caller cancelled (a reader stopping mid-unit, say) is the
    // cancellation; the writers' drops have removed the temporary files.
    match run {
        Err(_) if cancel.is_cancelled() => Err(Failure::Fatal(Error::Cancelled)),
        run => Ok((budget, run?)),
    }
}

/// Refuses a build whose output's filesystem lacks room for it, before anything is written: the
/// data and a bound on its metadata, twice for a time-major build (its intermediate).
fn room_for(plan: &Plan, cfg: &BuildConfig) -> Result<()> {
    if cfg.decode_only {
        return Ok(());
    }
    let l = &plan.layout;
    // The metadata is JSON: per symbol its name and range, per column its description and a
    // checksum per chunk. Twice the sum of generous sizes of each bounds it.
    let symbols: u64 = l.symbols().iter().map(|s| s.name.len() as u64 + 64).sum();
    let columns: u64 = (0..l.columns().len())
        .map(|i| {
            512 + l.columns()[i].name.len() as u64 + l.length(i).div_ceil(l.chunk_bytes()) * 32
        })
        .sum();
    let file = l.data_end() + 2 * (64 << 10) + 2 * (symbols + columns);
    let copies = if cfg.order == RowOrder::Time { 2 } else { 1 };
    let dir = crate::output::parent(&cfg.output);
    let what = format!("the output {}", cfg.output.display());
    let place = format!("--output's directory {}", dir.display());
    crate::output::room(&dir, file * copies, &place, &what)
}

fn summary(
    plan: &Plan,
    budget: &Budget,
    run: &Run,
    wall: Duration,
    plan_seconds: f64,
    attempts: usize,
) -> BuildSummary {
    let summary = BuildSummary::new(
        plan,
        budget,
        run.committed.as_ref(),
        run.decoders,
        run.writer,
        run.reader_wait,
        wall,
        (plan_seconds, run.commit_seconds),
        attempts,
    );
    match &run.transpose {
        Some(t) => summary.with_transpose(t.clone()),
        None => summary,
    }
}

fn write_mode(mode: config::WriteMode) -> WriteMode {
    match mode {
        config::WriteMode::Auto => WriteMode::Auto,
        config::WriteMode::Mmap => WriteMode::Mmap,
        config::WriteMode::Direct => WriteMode::Direct,
    }
}

fn execute<O: Float>(
    plan: &Plan,
    cfg: &BuildConfig,
    staging: Option<&Intermediate>,
    budget: &Budget,
    progress: &Progress,
    user_cancel: &Cancel,
) -> Result<Run, Failure> {
    let spill_error = |e: spill::Error| Failure::Fatal(Error::Spill(e));
    let opts = WriteOptions::default()
        .with_memory(budget.writer_memory)
        .with_mode(write_mode(cfg.write_mode));
    let dest = staging.map_or(cfg.output.as_path(), |s| s.path());
    let mut writer = match cfg.decode_only {
        true => None,
        false => Some(SpillWriter::create(dest, plan.layout.clone(), opts).map_err(spill_error)?),
    };

    let cancel = AtomicBool::new(false);
    let next = Mutex::new(0usize);
    let reader_wait_ns = AtomicU64::new(0);
    let (fast_files, arrow_files) = (AtomicU64::new(0), AtomicU64::new(0));
    // Announcements (task, reader), in task order. A reader is at most `capacity` messages ahead
    // of the writer and announces a task before decoding it, so each has at most `capacity + 1`
    // tasks announced and unwritten; a full channel only makes a reader wait, never the writer
    // (the readers of the unit being written never need to announce before they are done).
    let (assign_tx, assign_rx) = bounded::<(u32, usize)>(budget.readers * (budget.capacity + 1));
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..budget.readers)
        .map(|_| bounded::<Msg<O>>(budget.capacity))
        .unzip();
    // Written slices' buffers go back to their reader (the budget counts them).
    let (ret_txs, ret_rxs): (Vec<_>, Vec<_>) = (0..budget.readers)
        .map(|_| bounded(budget.capacity + RETURNED))
        .unzip();
    let columns = plan.column_names();
    // Every unit's value columns are split among the readers (tasks), so that they all decode
    // the unit the writer is writing, and none waits on a full channel for the writer to reach
    // its own unit.
    let groups = budget.readers.min(plan.value_columns()).max(1);
    let ctx = ReadContext {
        target: plan.has_target(),
        batch_rows: budget.batch_rows,
        cancel: &cancel,
        user_cancel,
        filters: plan.filters.as_deref(),
        columns: &columns,
        groups,
    };
    let ctx = &ctx;
    let tasks = plan.units.len() * groups;

    let outcome = std::thread::scope(|s| {
        let mut spawn_error = None;
        for (r, (tx, recycled)) in txs.into_iter().zip(ret_rxs).enumerate() {
            let assign_tx = assign_tx.clone();
            let (cancel, next, reader_wait_ns) = (&cancel, &next, &reader_wait_ns);
            let (fast_files, arrow_files) = (&fast_files, &arrow_files);
            let reader = std::thread::Builder::new().name(format!("spillway-read-{r}"));
            let spawned = reader.spawn_scoped(s, move || {
                let mut waited = Duration::ZERO;
                let mut state = Reader::default();
                let mut spares = Spares::new(recycled);
                loop {
                    // Take the next task and announce it, atomically, so announcements are in
                    // task order (the writer reads them in that order).
                    let t = {
                        let mut g = next.lock().unwrap_or_else(|p| p.into_inner());
                        if *g >= tasks
                            || cancel.load(Ordering::Relaxed)
                            || user_cancel.is_cancelled()
                            || assign_tx.send((*g as u32, r)).is_err()
                        {
                            break;
                        }
                        *g += 1;
                        *g - 1
                    };
                    if t + 1 < tasks {
                        let next = Task {
                            unit: ((t + 1) / groups) as u32,
                            group: (t + 1) % groups,
                        };
                        read::warm(next, &plan.units[(t + 1) / groups], ctx);
                    }
                    let (u, group) = (t / groups, t % groups);
                    let unit = &plan.units[u];
                    let symbol = &plan.layout.symbols()[unit.symbol as usize].name;
                    let mut send = |m: Msg<O>| {
                        let t = Instant::now();
                        let ok = tx.send(m).is_ok();
                        waited += t.elapsed();
                        ok
                    };
                    let task = Task {
                        unit: u as u32,
                        group,
                    };
                    match read_unit(task, unit, symbol, ctx, &mut state, &mut spares, &mut send) {
                        // Files are counted by their first task.
                        Ok(_) if group > 0 => 0,
                        Ok(Source::Fast) => fast_files.fetch_add(1, Ordering::Relaxed),
                        Ok(Source::Arrow) => arrow_files.fetch_add(1, Ordering::Relaxed),
                        Err(error) => {
                            let _ = tx.send(Msg::Failed {
                                unit: u as u32,
                                error,
                            });
                            break;
                        }
                    };
                }
                reader_wait_ns.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
            });
            if let Err(e) = spawned {
                spawn_error = Some(e);
                break;
            }
        }
        drop(assign_tx);
        let result = match spawn_error {
            Some(e) => Err(WriteFailure::Spawn(e)),
            None => write_all(
                plan,
                groups,
                writer.as_mut(),
                &assign_rx,
                &rxs,
                &ret_txs,
                progress,
            ),
        };
        if result.is_err() {
            cancel.store(true, Ordering::Relaxed);
        }
        // Readers blocked on a full channel see the writer gone and stop.
        drop(rxs);
        drop(assign_rx);
        result
    });
    let stats = match outcome {
        Ok(stats) => stats,
        Err(WriteFailure::Unit(e)) => return Err(Failure::Unit(e)),
        Err(WriteFailure::Spill(e)) => return Err(spill_error(e)),
        Err(WriteFailure::Protocol(m)) => {
            return Err(Failure::Fatal(Error::Internal(m)));
        }
        Err(WriteFailure::Spawn(source)) => return Err(Failure::Fatal(Error::Spawn { source })),
    };
    user_cancel.check().map_err(Failure::Fatal)?;
    let mut history = None;
    let (writer, transpose) = match (writer, staging) {
        (Some(w), Some(staging)) => {
            // The intermediate is committed like any spill file (so it is validated when
            // opened), under its hidden name, with no build metadata.
            w.finish(Default::default()).map_err(spill_error)?;
            // A time shard records each symbol's rows (for appends), read from it.
            if plan.shard.as_ref().is_some_and(|s| s.time.is_some()) {
                history = Some(
                    history::digest(staging.path(), &plan.layout, user_cancel)
                        .map_err(Failure::Fatal)?,
                );
            }
            let (w, t) = transpose(
                plan,
                staging,
                &cfg.output,
                budget,
                opts,
                cfg.cs_transform,
                progress,
                user_cancel,
            )
            .map_err(Failure::Fatal)?;
            (Some(w), Some(t))
        }
        (w, _) => (w, None),
    };
    progress.phase("committing");
    // The last moment to stop: once renamed, the output is complete.
    user_cancel.check().map_err(Failure::Fatal)?;
    let tc = Instant::now();
    let committed = match writer {
        Some(w) => {
            let mut meta = inputs::build_metadata(plan, cfg);
            if let Some(h) = history {
                meta.insert("history".into(), h.to_json(&plan.units, &cfg.input));
            }
            Some(w.finish(meta).map_err(spill_error)?)
        }
        None => None,
    };
    Ok(Run {
        committed,
        decoders: Decoders {
            fast: fast_files.load(Ordering::Relaxed),
            arrow: arrow_files.load(Ordering::Relaxed),
        },
        commit_seconds: tc.elapsed().as_secs_f64(),
        writer: stats,
        reader_wait: Duration::from_nanos(reader_wait_ns.load(Ordering::Relaxed)),
        transpose,
    })
}
