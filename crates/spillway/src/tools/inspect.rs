//! `inspect`: what a build would see, without decoding a feature: from the footers, symbols, rows,
//! the column union with its types and how many symbols have each, symbols missing the target, and
//! the estimated output size and peak memory; from the time (and target) columns, through the
//! build's own plan, the symbols whose time goes backwards or repeats and what the filters would
//! remove; whether an existing output is current (`--if-changed` would skip the build); and what
//! a time-major build (`--order time`) would cost beyond a symbol-major one.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cancel::Cancel;
use crate::config::{BuildConfig, Decoder, OnError};
use crate::error::{Error, Result};
use crate::input::schema::{excluded_by_name, Kind};
use crate::input::source;
use crate::plan::budget::{choose, choose_for, planning_threads, Budget, Shape};
use crate::plan::files::{read_footers, time_column, Interner, FOOTER_EXPANSION};
use crate::plan::filter::FilterStats;
use crate::plan::layout::work_bytes;
use crate::plan::on_planning_pool;
use crate::plan::{plan, Disorder, Skipped};
use crate::report::rss;
use crate::report::summary::TransposeMemory;
use crate::run::{up_to_date, UpToDate};

/// One column of the union.
#[derive(Debug, Clone, Serialize)]
pub struct UnionColumn {
    /// Name.
    pub name: String,
    /// Symbols that have it.
    pub symbols: usize,
    /// Type name -> symbols with that type.
    pub types: BTreeMap<String, usize>,
    /// Whether a build would use it as a feature (numeric somewhere, not time/target/excluded).
    pub feature: bool,
}

/// What a time-major build (`--order time`) would cost beyond a symbol-major one: the
/// transposition of a symbol-major intermediate (see `order`).
#[derive(Debug, Clone, Serialize)]
pub struct TimeMajorEstimate {
    /// Extra disk: the intermediate, as large as the output, beside it until the build ends.
    pub intermediate_bytes: u64,
    /// Spill bytes written and read: the intermediate written, read back (every column once,
    /// the time column twice more) and the output written.
    pub io_bytes: u64,
    /// `io_bytes` over the output's size (a symbol-major build: 1).
    pub io_amplification: f64,
    /// Windows the transposition would gather.
    pub windows: u64,
    /// Runs its merge would cut the rows into (stretches whose time only rises or only falls), at
    /// most (see `Disorder::runs`); `None` when planning failed.
    pub runs: Option<u64>,
    /// The most runs the merge may hold under the budget.
    pub max_runs: u64,
    /// Why the build would refuse to transpose (too many runs), as the build would say it.
    pub refusal: Option<String>,
    /// The transposition's memory split and bound.
    pub memory: TransposeMemory,
}

/// The inspection report.
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// Symbols found.
    pub symbols: usize,
    /// Files.
    pub files: usize,
    /// Rows from the footers (before null times and `--max-rows` are dropped).
    pub rows: u64,
    /// Input bytes.
    pub input_bytes: u64,
    /// The time column a build would use.
    pub time_column: String,
    /// Columns in order of first appearance.
    pub columns: Vec<UnionColumn>,
    /// Symbols whose files lack the target (a build skips them).
    pub symbols_missing_target: Vec<String>,
    /// Symbols whose footers cannot be read.
    pub unreadable: Vec<Skipped>,
    /// Estimated spill file size in bytes (an upper bound: null times are not yet dropped).
    pub estimated_output_bytes: u64,
    /// The memory shape a build would choose, with its bound.
    pub estimated_budget: Option<Budget>,
    /// Why no shape fits the budget, if none does.
    pub budget_error: Option<String>,
    /// The extra cost of `--order time` (when a shape fits the budget).
    pub time_major: Option<TimeMajorEstimate>,
    /// With filter options: what the filters would remove, the distinct timestamps and the memory
    /// of the filter passes.
    pub filter_stats: Option<FilterStats>,
    /// Symbols whose time goes backwards or repeats once their parts are in time order.
    pub time_disorder: Option<Disorder>,
    /// Why the build's plan (time scan, filters) could not be made, if it could not.
    pub plan_error: Option<String>,
    /// Whether the output named by the options exists and is current for these inputs and
    /// options (`None`: no output was named).
    pub output: Option<UpToDate>,
}

/// Inspects `cfg.input` (only the input, target, time column, features, float32, max-rows and
/// budget options matter).
pub fn inspect(cfg: &BuildConfig) -> Result<InspectReport> {
    // Measured from here, as a build measures from its start (a little more, so the prediction
    // errs on the side of refusing).
    let rss_at_start = rss::rss_bytes();
    let cancel = Cancel::new();
    let universe = source::universe(cfg, &cancel)?;
    let names = Interner::default();
    let footers: Vec<_> =
        on_planning_pool(cfg, || read_footers(&universe.symbols, &names, &cancel))?
            .into_iter()
            .map(|(s, files)| (s.name.clone(), files))
            .collect();
    let mut unreadable: Vec<Skipped> = universe
        .broken
        .iter()
        .map(|e| Skipped {
            symbol: e.symbol.clone(),
            reason: e.to_string(),
        })
        .collect();
    let firsts = footers
        .iter()
        .filter_map(|(_, f)| f.as_ref().ok().and_then(|f| f.first()));
    let time = time_column(cfg.time_col.as_deref(), firsts, &names);
    let mut order: Vec<u32> = Vec::new();
    let mut union: BTreeMap<u32, (usize, BTreeMap<String, usize>, bool)> = BTreeMap::new();
    let (mut rows, mut bytes, mut files, mut longest, mut max_work) =
        (0u64, 0u64, 0usize, 0u64, (0u64, Default::default()));
    let mut missing_target = Vec::new();
    let mut arrow_decoding = false;
    let mut largest_footer = 0u64;
    for (symbol, result) in &footers {
        let infos = match result {
            Ok(f) => f,
            Err(e) => {
                unreadable.push(Skipped {
                    symbol: symbol.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        let mut sym_rows = 0;
        for f in infos {
            files += 1;
            bytes += f.size;
            sym_rows += f.rows;
            // A file the fast decoder may not read whole (the projection is not known here).
            let arrow = cfg.decoder == Decoder::Arrow
                || f.columns.iter().any(|c| {
                    c.kind != Kind::Other && c.fast_value.is_none() && c.fast_time.is_none()
                });
            arrow_decoding |= arrow;
            let numeric: Vec<Option<u32>> = f
                .columns
                .iter()
                .filter(|c| c.kind != Kind::Other)
                .map(|c| Some(c.root))
                .collect();
            let work = work_bytes(f, !arrow, u32::MAX, &numeric);
            largest_footer = largest_footer.max(f.footer_len * FOOTER_EXPANSION);
            if work > max_work.0 {
                max_work = (work, f.path.clone());
            }
            for c in &f.columns {
                let entry = union.entry(c.name).or_insert_with(|| {
                    order.push(c.name);
                    (0, BTreeMap::new(), false)
                });
                if seen.insert(c.name) {
                    entry.0 += 1;
                    *entry.1.entry(names.get(c.dtype).to_string()).or_default() += 1;
                }
                entry.2 |= c.kind == Kind::Numeric;
            }
        }
        let sym_rows = cfg.max_rows.map_or(sym_rows, |m| m.min(sym_rows));
        rows += sym_rows;
        longest = longest.max(sym_rows);
        if let Some(t) = &cfg.target {
            if names.lookup(t).is_none_or(|id| !seen.contains(&id)) {
                missing_target.push(symbol.clone());
            }
        }
    }
    let columns: Vec<UnionColumn> = order
        .iter()
        .map(|&id| {
            let (symbols, types, numeric) = union.remove(&id).unwrap_or_default();
            let name = names.get(id).to_string();
            let feature = match &cfg.features {
                Some(list) => list.contains(&name),
                None => {
                    numeric
                        && name != time
                        && Some(&name) != cfg.target.as_ref()
                        && !excluded_by_name(&name)
                }
            };
            UnionColumn {
                name,
                symbols,
                types,
                feature,
            }
        })
        .collect();
    let features = columns.iter().filter(|c| c.feature).count();
    let value_columns = features + usize::from(cfg.target.is_some());
    let size = if cfg.float32 { 4 } else { 8 };
    let align = |b: u64| b.div_ceil(spill::ALIGN) * spill::ALIGN;
    let estimated_output_bytes = spill::HEADER_LEN
        + align(rows * 8)
        + align(rows * 4)
        + value_columns as u64 * align(rows * size)
        + 64 * (value_columns as u64 + 2)
        + 64 * footers.len() as u64;
    let remote = universe
        .symbols
        .first()
        .and_then(|s| s.files.first())
        .map_or((0, 0), |f| crate::input::source::remote_costs(f));
    let shape = Shape {
        units: files,
        value_columns,
        float32: cfg.float32,
        max_work,
        longest_rows: longest,
        held_bytes: planning_threads(remote.1 > 0) as u64 * largest_footer,
        arrow_decoding,
        remote,
    };
    let budget_of = |r: Result<Budget>| match r {
        Ok(b) => Ok((Some(b), None)),
        Err(e @ Error::Budget { .. }) => Ok((None, Some(e.to_string()))),
        Err(e) => Err(e),
    };
    let (mut estimated_budget, mut budget_error) = budget_of(choose_for(cfg, &shape))?;
    // The build's own plan, skipping what fails: the time scan's disorder and the filters. When
    // it plans, the budget is chosen from it as the build chooses it, charging what planning
    // left resident as the build does.
    let skip = BuildConfig {
        on_error: OnError::Skip,
        ..cfg.clone()
    };
    let (filter_stats, time_disorder, plan_error) =
        match plan(&universe, &skip, &Default::default(), &cancel) {
            Ok(p) => {
                let retained = rss::rss_bytes()
                    .zip(rss_at_start)
                    .map_or(0, |(now, start)| now.saturating_sub(start));
                (estimated_budget, budget_error) = budget_of(choose(cfg, &p, retained))?;
                (
                    cfg.filters.active().then_some(p.filter_stats),
                    Some(p.disorder),
                    None,
                )
            }
            Err(e) => (None, None, Some(e.to_string())),
        };
    let time_major = estimated_budget.as_ref().map(|b| {
        // The stream pass leaves some of its memory with the allocator: assume half its bound.
        let (in_use, ncols) = (b.bound_bytes / 2, value_columns + 2);
        let cap = crate::order::max_runs(b, ncols, in_use);
        let runs = time_disorder.as_ref().map(|d| d.runs);
        let over = runs
            .filter(|&r| r > cap as u64)
            .map(|r| usize::try_from(r).unwrap_or(usize::MAX));
        let fitting = runs.map_or(0, |r| usize::try_from(r).unwrap_or(usize::MAX).min(cap));
        let memory = crate::order::memory(b, rows, ncols, in_use, fitting);
        let refusal = over.map(|runs| {
            Error::OrderRuns {
                runs,
                max: cap,
                budget: b.budget_bytes,
            }
            .to_string()
        });
        let out = estimated_output_bytes.max(1);
        let io_bytes = 3 * out + 2 * rows * 8;
        TimeMajorEstimate {
            intermediate_bytes: out,
            io_bytes,
            io_amplification: io_bytes as f64 / out as f64,
            windows: rows.div_ceil(memory.window_rows.max(1)),
            runs,
            max_runs: cap as u64,
            refusal,
            memory,
        }
    });
    let output = match cfg.output.as_os_str().is_empty() {
        true => None,
        false => Some(up_to_date(cfg)?),
    };
    Ok(InspectReport {
        symbols: universe.symbols.len(),
        files,
        rows,
        input_bytes: bytes,
        time_column: time,
        columns,
        symbols_missing_target: missing_target,
        unreadable,
        estimated_output_bytes,
        estimated_budget,
        budget_error,
        time_major,
        filter_stats,
        time_disorder,
        plan_error,
        output,
    })
}
