//! `plan`: from footers and the time column alone, the exact spill layout before any feature is
//! decoded: which symbols are read or skipped, the column union and its types, and for every file
//! its output row range, its column mapping and which decoder reads it.
//!
//! In order: footers (`files`), per-symbol checks and the time scan that orders a symbol's parts
//! by time (`symbols`), the feature union (`features`), what to warn about (`warnings`), the
//! layout with `--max-rows` and the cross-sectional filters (`layout`, `filter`: passes over the
//! time and target columns read by `scan`, bottom-K sampling by `sample`; a shard's `count` runs
//! the same two). `budget` then sizes the pipeline for the plan.

pub mod budget;
pub mod count;
pub mod cs_file;
pub mod files;
pub mod filter;
mod features;
pub mod key;
pub mod layout;
mod sample;
mod scan;
pub mod shard;
mod symbols;
pub(crate) mod time_shard;
mod warnings;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use spill::{Layout, Role};

use crate::cancel::Cancel;
use crate::config::{url_scheme, BuildConfig, OnError};
use crate::decode::{Chunk, Physical};
use crate::error::{Error, Result, SymbolError};
use crate::input::discover::Universe;
use crate::input::schema::TimeKind;

use self::files::{read_footers, time_column, Interner};
use self::filter::{CrossSection, FilterStats};

/// How the fast decoder reads one column of a file: its physical reading, whether it has
/// definition levels, and where its chunks are, one per row group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastColumn {
    /// How stored values become output values.
    pub phys: Physical,
    /// Whether the column has definition levels.
    pub optional: bool,
    /// Its column chunks, one per row group.
    pub chunks: Vec<Chunk>,
}

/// How the fast decoder reads one file: the rows of each row group, and the time column and each
/// value column (`None`: the file lacks it, NaN). The reader needs no footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastPlan {
    /// Rows of each row group.
    pub row_groups: Vec<usize>,
    /// The time column.
    pub time: FastColumn,
    /// Value columns (target first when the output has one), as `read` sends them.
    pub values: Vec<Option<FastColumn>>,
}

impl FastPlan {
    /// Heap bytes this plan holds (for the memory budget).
    pub fn heap_bytes(&self) -> u64 {
        let column = |c: &FastColumn| {
            (std::mem::size_of::<FastColumn>() + c.chunks.len() * std::mem::size_of::<Chunk>())
                as u64
        };
        (self.row_groups.len() * 8) as u64
            + column(&self.time)
            + self.values.iter().flatten().map(column).sum::<u64>()
            + (self.values.len() * std::mem::size_of::<Option<FastColumn>>()) as u64
    }
}

/// One input file and where its rows go.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Code of its symbol (index in the symbol table).
    pub symbol: u32,
    /// The file.
    pub path: PathBuf,
    /// Size when planned.
    pub size: u64,
    /// Modification time when planned.
    pub mtime: Option<SystemTime>,
    /// CRC-32 of its footer when planned.
    pub footer_crc: u32,
    /// Root index and kind of the time column.
    pub time: (u32, TimeKind),
    /// Root index of the target (`None`: NaN).
    pub target: Option<u32>,
    /// Root index of each output feature in this file (`None`: NaN).
    pub features: Vec<Option<u32>>,
    /// Rows in the file.
    pub rows: u64,
    /// Rows whose time is not null.
    pub survivors: u64,
    /// Surviving rows dropped at the start of the file by `--max-rows`.
    pub skip: u64,
    /// First output row.
    pub row_start: u64,
    /// Estimated memory (bytes) a reader holds for this file beyond its slices.
    pub work_bytes: u64,
    /// Memory of its footer once parsed (by the plan, and by arrow-rs when it reads the file).
    pub footer_bytes: u64,
    /// How the fast decoder reads this file; `None`: arrow-rs reads it.
    pub fast: Option<FastPlan>,
    /// Rows this file contributes to the output (after `--max-rows` and the filters).
    pub out: u64,
    /// The latest time in its symbol's earlier files (for sampling keys: [`key::Repeats`]).
    pub earlier_max: Option<i64>,
    /// Rows in its symbol's earlier files.
    pub earlier_rows: u64,
    /// Row groups no output row comes from, with the latest time in each, in file order: a time
    /// shard's outside its window (`time_shard`). The fast decoder passes over them unread.
    pub dead: Vec<(u32, i64)>,
}

/// The rows `--max-rows` drops at the start of a file (of its rows with a time), counted off as
/// they go by: the one place the cut is applied, by the readers and the filter passes alike.
#[derive(Debug, Clone, Copy)]
pub struct Cut(u64);

impl Cut {
    /// The next surviving row: whether it stays (else the cut drops it).
    pub fn keep(&mut self) -> bool {
        let drop = self.0 > 0;
        self.0 -= u64::from(drop);
        !drop
    }

    /// Of the next `n` surviving rows, how many the cut drops (all from the front).
    pub fn drop_front(&mut self, n: u64) -> u64 {
        let k = self.0.min(n);
        self.0 -= k;
        k
    }
}

impl Unit {
    /// The `--max-rows` cut of this file.
    pub fn cut(&self) -> Cut {
        Cut(self.skip)
    }

    /// Rows this file contributes to the output.
    pub fn out_rows(&self) -> u64 {
        self.out
    }

    /// The latest time in row group `g` when no output row comes from it ([`Unit::dead`]).
    pub fn dead_group(&self, g: usize) -> Option<i64> {
        let at = self.dead.partition_point(|&(d, _)| (d as usize) < g);
        self.dead
            .get(at)
            .and_then(|&(d, max)| (d as usize == g).then_some(max))
    }

    /// Whether some times are null (the reader must then filter rows).
    pub fn has_null_times(&self) -> bool {
        self.survivors != self.rows
    }

    /// The value columns' roots as the reader emits them: the target (when the output has one),
    /// then the features.
    pub fn value_roots(&self, with_target: bool) -> Vec<Option<u32>> {
        with_target
            .then_some(self.target)
            .into_iter()
            .chain(self.features.iter().copied())
            .collect()
    }
}

/// A symbol left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// The symbol.
    pub symbol: String,
    /// Why (with the file where there is one).
    pub reason: String,
}

/// Symbols whose time, once their parts are in order, goes backwards or repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Disorder {
    /// How many symbols.
    pub symbols: usize,
    /// The first few of them (in symbol order), with how many of their rows are not after the
    /// row before.
    pub first: Vec<(String, u64)>,
    /// The runs a time-major build's merge would cut every symbol's rows into (stretches whose
    /// time only rises or only falls), at most: counted file by file, before filters (a file
    /// boundary or a row filtered out never makes more runs). 0 when the times were not scanned.
    pub runs: u64,
}

/// How many disordered symbols [`Disorder`] names.
const DISORDER_NAMED: usize = 5;

/// The complete plan of a build.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The spill layout: columns, rows, symbol ranges.
    pub layout: Layout,
    /// Output time column name.
    pub time_col: String,
    /// Feature names in output order.
    pub features: Vec<String>,
    /// Whether values are float32.
    pub float32: bool,
    /// Files in output order.
    pub units: Vec<Unit>,
    /// Symbols left out.
    pub skipped: Vec<Skipped>,
    /// Symbols whose time goes backwards or repeats.
    pub disorder: Disorder,
    /// What planning warns about (a target-like feature, time zones mixed across symbols).
    pub warnings: Vec<String>,
    /// Input bytes of the files read.
    pub input_bytes: u64,
    /// Combined CRC-32 of every file's path, size and footer bytes.
    pub fingerprint: u32,
    /// Memory of the largest footer once parsed (planning parses one per thread at a time; the
    /// allocator keeps that memory for the rest of the build).
    pub largest_footer: u64,
    /// The cross-sectional filters' decisions, when filters are on.
    pub filters: Option<Arc<CrossSection>>,
    /// What the filters removed.
    pub filter_stats: FilterStats,
    /// The shard this plan builds (`--shard`, `--symbols`), with the global symbol table.
    pub shard: Option<shard::ShardMeta>,
}

impl Plan {
    /// Output value columns (target, if any, then features).
    pub fn value_columns(&self) -> usize {
        self.layout.columns().len() - 2
    }

    /// Heap bytes the plan holds through the build (units, their column maps and fast plans).
    pub fn heap_bytes(&self) -> u64 {
        let units: u64 = self
            .units
            .iter()
            .map(|u| {
                (std::mem::size_of::<Unit>()
                    + u.path.as_os_str().len()
                    + u.features.len() * std::mem::size_of::<Option<u32>>()
                    + u.dead.len() * std::mem::size_of::<(u32, i64)>()) as u64
                    + u.fast.as_ref().map_or(0, FastPlan::heap_bytes)
            })
            .sum();
        units
            + self
                .layout
                .symbols()
                .iter()
                .map(|s| 64 + s.name.len() as u64)
                .sum::<u64>()
    }

    /// Rows of the files read, before any row is dropped.
    pub fn input_rows(&self) -> u64 {
        self.units.iter().map(|u| u.survivors).sum()
    }

    /// The output's column names, in order (what the readers name in their errors).
    pub fn column_names(&self) -> Vec<String> {
        self.layout
            .columns()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// Whether there is a target column.
    pub fn has_target(&self) -> bool {
        self.layout
            .columns()
            .get(2)
            .is_some_and(|c| c.role == Role::Target)
    }
}

/// Collects the symbols a build leaves out: under `--on-error fail` the first one is the error.
struct Skips {
    policy: OnError,
    list: Vec<Skipped>,
}

impl Skips {
    fn fail(&mut self, e: SymbolError) -> Result<()> {
        if self.policy == OnError::Fail {
            return Err(Error::Symbol(e));
        }
        self.skip(e.symbol.clone(), e.to_string());
        Ok(())
    }

    fn skip(&mut self, symbol: String, reason: String) {
        self.list.push(Skipped { symbol, reason });
    }
}

/// Plans a build of `universe`, leaving out the symbols in `excluded` (known to fail while
/// decoding) as if they were not there.
pub fn plan(
    universe: &Universe,
    cfg: &BuildConfig,
    excluded: &BTreeMap<String, String>,
    cancel: &Cancel,
) -> Result<Plan> {
    match &cfg.scope {
        Some(scope) => shard::plan(universe, cfg, scope, excluded, cancel),
        None => plan_in(universe, cfg, excluded, None, cancel),
    }
}

/// [`plan`], of a shard when `scoped` (its symbols only, with the global symbol table).
fn plan_in(
    universe: &Universe,
    cfg: &BuildConfig,
    excluded: &BTreeMap<String, String>,
    scoped: Option<&shard::Scoped>,
    cancel: &Cancel,
) -> Result<Plan> {
    let mut skips = Skips {
        policy: cfg.on_error,
        list: Vec::new(),
    };
    for e in universe
        .broken
        .iter()
        .filter(|e| !excluded.contains_key(&e.symbol))
    {
        skips.fail(e.clone())?;
    }
    for (symbol, reason) in excluded {
        skips.skip(symbol.clone(), reason.clone());
    }
    let names = Interner::default();

    // 1. Footers, in parallel; a symbol fails with its first bad file.
    let kept = universe
        .symbols
        .iter()
        .filter(|s| !excluded.contains_key(&s.name))
        .collect::<Vec<_>>();
    let mut read = Vec::new();
    for (sym, files) in on_planning_pool(cfg, || read_footers(kept, &names, cancel))? {
        match files {
            Ok(files) => read.push((sym, files)),
            Err(e) => skips.fail(e)?,
        }
    }

    // 2. The time column's name, then per-symbol checks from the footers and the time scan,
    //    which orders each symbol's parts by time.
    let firsts = read.iter().filter_map(|(_, f)| f.first());
    let time_col = time_column(cfg.time_col.as_deref(), firsts, &names);
    let cands = on_planning_pool(cfg, || {
        symbols::check_and_scan(read, cfg, &time_col, &names, &mut skips, cancel, true)
    })?;

    // 3. Features: the given list, or the union of numeric columns of the symbols read.
    let known = scoped.is_none();
    let (cands, features) = features::choose(cands, cfg, &time_col, &names, &mut skips, known)?;
    // A shard whose symbols are all skipped is an empty file: the other shards still stand.
    if cands.is_empty() && scoped.is_none() {
        let mut list = skips.list;
        list.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        return Err(Error::NothingToBuild {
            skipped: list.into_iter().map(|s| (s.symbol, s.reason)).collect(),
        });
    }
    let mut skipped = skips.list;
    skipped.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    let disorder = disorder(&cands);
    let warnings = warnings::warnings(&cands, &features, &names);

    // 4. Units, the filters, the layout.
    let mut plan = on_planning_pool(cfg, || {
        layout::build(cfg, cands, features, &names, time_col, scoped, cancel)
    })?;
    plan.skipped = skipped;
    plan.disorder = disorder;
    plan.warnings = warnings;
    Ok(plan)
}

/// Runs `f`, and the parallel work it starts, on a pool of
/// [`PLANNING_REQUESTS`](crate::input::source::PLANNING_REQUESTS) threads when `cfg`'s universe
/// is in object storage: there each footer, time scan and filter scan waits on requests, so
/// latency, not the cores, bounds how many run at once.
pub(crate) fn on_planning_pool<T: Send>(cfg: &BuildConfig, f: impl FnOnce() -> T + Send) -> T {
    let pool = url_scheme(&cfg.input).is_some().then(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(crate::input::source::PLANNING_REQUESTS)
            .thread_name(|i| format!("spillway-plan-{i}"))
            .build()
    });
    match pool {
        Some(Ok(pool)) => pool.install(f),
        _ => f(),
    }
}

/// The symbols whose times go backwards or repeat, in symbol order.
fn disorder(cands: &[symbols::Candidate<'_>]) -> Disorder {
    let bad: Vec<(String, u64)> = cands
        .iter()
        .filter(|c| c.disorder > 0)
        .map(|c| (c.sym.name.clone(), c.disorder))
        .collect();
    Disorder {
        symbols: bad.len(),
        first: bad.into_iter().take(DISORDER_NAMED).collect(),
        runs: cands
            .iter()
            .flat_map(|c| &c.scans)
            .map(|s| s.runs.runs())
            .sum(),
    }
}
