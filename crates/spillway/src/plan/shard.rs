//! Shard builds (`--shard I/N`, `--symbols A..B`): one part of the universe, as a spill file that
//! agrees with every other part.
//!
//! Every shard first reads the footers of the WHOLE universe (no data): they fix what all shards
//! must share, computed the way a single-machine build computes it:
//! - the symbol table: every discovered symbol in discovery's (sorted) order, so a symbol's code
//!   is the same in every shard (symbols of other shards have empty row ranges);
//! - the time column, the feature union (in order of first appearance) and the time zone, so every
//!   shard has the same schema;
//! - per symbol, its planned rows (footer rows, cut by `--max-rows`) and a fingerprint of its files
//!   (relative path, size, footer CRC).
//!
//! Shard `I` of `N` is then the `I`-th of `N` contiguous ranges of the symbol list whose planned
//! rows are closest to `I/N`, `2I/N`... of the total: deterministic, from footers alone. The shard
//! is planned as a build of its own symbols with those shared choices; its cross-sectional
//! filters come from the cross-section plan (`--cs-plan`), checked against the build's options,
//! the universe and the fingerprints of the shard's files.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::ops::Range;

use serde::Serialize;

use crate::cancel::Cancel;
use crate::config::{BuildConfig, RowOrder, Scope};
use crate::error::{Error, Result};
use crate::input::discover::Universe;

use super::cs_file::{self, crc_text, CountOptions, Reader, UniverseId, PLAN_MAGIC};
use super::files::{read_footers, time_column, Interner};
use super::filter::Decided;
use super::{features, symbols, Plan, Skips};

/// What every shard of a universe shares, from its footers.
#[derive(Debug, Clone)]
pub struct Global {
    /// Every discovered symbol, in discovery's order: the global symbol table.
    pub names: Vec<String>,
    /// The time column.
    pub time_col: String,
    /// The features, in output order.
    pub features: Vec<String>,
    /// The time column's zone (that of the first symbol's first file).
    pub timezone: Option<String>,
    /// Per symbol: CRC-32 of its files' relative paths, sizes and footer CRCs (0: unreadable).
    pub fingerprints: Vec<u32>,
    /// Per symbol: footer rows cut by `--max-rows` (0: unreadable).
    pub planned_rows: Vec<u64>,
    /// Symbols left out of the shared choices (the feature union): excluded, or skipped on their
    /// footers under `--on-error skip`, with the reason, sorted by name.
    pub skipped: Vec<super::Skipped>,
}

impl Global {
    /// The universe's identity (symbol count and names).
    pub fn universe(&self) -> UniverseId {
        UniverseId {
            symbols: self.names.len() as u64,
            names: crc_text(cs_file::names_crc(self.names.iter().map(String::as_str))),
        }
    }

    /// CRC-32 of every symbol's name and fingerprint: the whole universe's.
    pub fn fingerprint(&self) -> u32 {
        let mut h = crc32fast::Hasher::new();
        for (n, fp) in self.names.iter().zip(&self.fingerprints) {
            h.update(n.as_bytes());
            h.update(&[0]);
            h.update(&fp.to_le_bytes());
        }
        h.finalize()
    }

    /// The codes `scope` selects.
    pub fn range(&self, scope: &Scope) -> Result<Range<usize>> {
        match scope {
            Scope::Part { index, count } => {
                let parts = split(&self.planned_rows, *count as usize).ok_or_else(|| {
                    Error::Config(format!(
                        "--shard {scope}: {count} shards of {} symbols (at most one shard per symbol)",
                        self.names.len()
                    ))
                })?;
                Ok(parts[*index as usize].clone())
            }
            Scope::Names { from, to } => {
                let at = |n: &Option<String>, open: usize| match n {
                    None => open,
                    Some(n) => self.names.partition_point(|s| s < n),
                };
                let (a, b) = (at(from, 0), at(to, self.names.len()));
                Ok(a..b.max(a))
            }
        }
    }

    /// The options a count of this universe records.
    pub fn count_options(&self, cfg: &BuildConfig) -> CountOptions {
        CountOptions {
            target: cfg.target.clone(),
            time_col: self.time_col.clone(),
            time_unit: cfg.time_unit.map(|u| u.name().to_string()),
            max_rows: cfg.max_rows,
            drop_null_target: cfg.filters.drop_null_target,
            max_cs_samples: cfg.filters.max_cs_samples,
            seed: cfg.filters.seed,
        }
    }
}

/// `n` contiguous ranges of `weights`' indices, each at least one long, cut where the running
/// total is closest to `i/n` of the whole (`None` when there are fewer items than shards).
pub fn split(weights: &[u64], n: usize) -> Option<Vec<Range<usize>>> {
    let len = weights.len();
    if n == 0 || n > len {
        return None;
    }
    let mut prefix = Vec::with_capacity(len + 1);
    prefix.push(0u128);
    for &w in weights {
        prefix.push(prefix[prefix.len() - 1] + u128::from(w));
    }
    let total = prefix[len];
    let mut cuts = vec![0usize];
    for i in 1..n {
        // The cut j (prefix[j] rows before it) nearest to i/n of the total, leaving at least one
        // item for every range before and after.
        let (lo, hi) = (cuts[i - 1] + 1, len - (n - i));
        let goal = total * i as u128;
        let dist = |j: usize| (prefix[j] * n as u128).abs_diff(goal);
        let first_over = lo + prefix[lo..=hi].partition_point(|&p| p * (n as u128) < goal);
        let best = [first_over.saturating_sub(1), first_over]
            .into_iter()
            .filter(|j| (lo..=hi).contains(j))
            .min_by_key(|&j| (dist(j), j))
            .unwrap_or(lo);
        cuts.push(best);
    }
    cuts.push(len);
    Some(cuts.windows(2).map(|w| w[0]..w[1]).collect())
}

/// The shared choices of a shard build of `universe` (see the module docs).
pub fn global(universe: &Universe, cfg: &BuildConfig, cancel: &Cancel) -> Result<Global> {
    global_excluding(universe, cfg, &BTreeMap::new(), cancel)
}

/// [`global`], leaving the symbols in `excluded` out of the shared choices (their footers still
/// count in the fingerprints and planned rows, so the shards' cut never moves).
pub fn global_excluding(
    universe: &Universe,
    cfg: &BuildConfig,
    excluded: &BTreeMap<String, String>,
    cancel: &Cancel,
) -> Result<Global> {
    let mut skips = Skips {
        policy: cfg.on_error,
        list: Vec::new(),
    };
    for e in &universe.broken {
        skips.fail(e.clone())?;
    }
    for (symbol, reason) in excluded {
        skips.skip(symbol.clone(), reason.clone());
    }
    let names = Interner::default();
    let mut fingerprints = Vec::with_capacity(universe.symbols.len());
    let mut planned_rows = Vec::with_capacity(universe.symbols.len());
    let mut read = Vec::new();
    let footers = super::on_planning_pool(cfg, || read_footers(&universe.symbols, &names, cancel));
    for (sym, files) in footers? {
        match files {
            Ok(files) => {
                let mut fp = crc32fast::Hasher::new();
                for f in &files {
                    let rel = f.path.strip_prefix(&cfg.input).unwrap_or(&f.path);
                    fp.update(rel.as_os_str().as_encoded_bytes());
                    fp.update(&f.size.to_le_bytes());
                    fp.update(&f.footer_crc.to_le_bytes());
                }
                fingerprints.push(fp.finalize());
                let rows: u64 = files.iter().map(|f| f.rows).sum();
                planned_rows.push(cfg.max_rows.map_or(rows, |m| m.min(rows)));
                if !excluded.contains_key(&sym.name) {
                    read.push((sym, files));
                }
            }
            Err(e) => {
                fingerprints.push(0);
                planned_rows.push(0);
                skips.fail(e)?;
            }
        }
    }
    let firsts = read.iter().filter_map(|(_, f)| f.first());
    let time_col = time_column(cfg.time_col.as_deref(), firsts, &names);
    let cands = symbols::check_and_scan(read, cfg, &time_col, &names, &mut skips, cancel, false)?;
    let (cands, features) = features::choose(cands, cfg, &time_col, &names, &mut skips, true)?;
    let Some(first) = cands.first() else {
        let mut list = skips.list;
        list.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        return Err(Error::NothingToBuild {
            skipped: list.into_iter().map(|s| (s.symbol, s.reason)).collect(),
        });
    };
    let timezone = first
        .files
        .first()
        .zip(first.time.first())
        .and_then(|(f, &(root, _))| f.columns.get(root as usize))
        .and_then(|col| col.timezone)
        .map(|id| names.get(id).to_string());
    Ok(Global {
        names: universe.symbols.iter().map(|s| s.name.clone()).collect(),
        time_col,
        features: features
            .iter()
            .map(|&id| names.get(id).to_string())
            .collect(),
        timezone,
        fingerprints,
        planned_rows,
        skipped: super::cs_file::normalize_skipped(skips.list),
    })
}

/// What a shard records of itself in its build metadata (`"shard"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardMeta {
    /// `I/N` or `A..B`, as given.
    pub scope: String,
    /// Global codes of its symbols, `[start, stop)`.
    pub symbols: [u64; 2],
    /// The universe.
    pub universe: UniverseId,
    /// `crc32:` of every symbol's name and file fingerprint.
    pub fingerprint: String,
    /// `crc32:` of the cross-section plan, when one decided the filters.
    pub cs_plan: Option<String>,
    /// A time shard's (`--order time --shard I/N`) first and last timestamps (ns); `None` for a
    /// shard cut on symbols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<[i64; 2]>,
    /// An appended time shard's: the last timestamp of the dataset it was appended to (its
    /// cut is of the rows after it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
}

/// A plan's view of the shard it builds.
#[derive(Debug)]
pub(crate) struct Scoped {
    /// The global symbol table.
    pub names: Vec<String>,
    /// The time zone every shard writes.
    pub timezone: Option<String>,
    /// The cross-section decided by the plan.
    pub decided: Option<Decided>,
    /// What the shard records.
    pub meta: ShardMeta,
    /// Codes by name when `names` is not sorted (a table seeded by an append); `None`: binary
    /// search.
    pub codes: Option<std::collections::HashMap<String, u32>>,
}

impl Scoped {
    /// The global code of `name`.
    pub fn code(&self, name: &str) -> Result<u32> {
        let missing = || Error::Internal(format!("symbol {name} is not in the global table"));
        match &self.codes {
            Some(codes) => codes.get(name).copied().ok_or_else(missing),
            None => self
                .names
                .binary_search_by(|n| n.as_str().cmp(name))
                .map(|i| i as u32)
                .map_err(|_| missing()),
        }
    }
}

/// Plans the shard `scope` of `universe` (see the module docs).
pub(super) fn plan(
    universe: &Universe,
    cfg: &BuildConfig,
    scope: &Scope,
    excluded: &BTreeMap<String, String>,
    cancel: &Cancel,
) -> Result<Plan> {
    if let (RowOrder::Time, Scope::Part { index, count }) = (cfg.order, scope) {
        let cut = super::time_shard::TimeCut {
            index: *index,
            count: *count,
            after: None,
        };
        return super::time_shard::plan(universe, cfg, &cut, None, excluded, cancel);
    }
    // What every shard leaves out: the excluded symbols, those the counts skipped (recorded in
    // the plan), and those skipped on their footers (every shard reads every footer).
    let mut excluded = excluded.clone();
    if let Some(path) = &cfg.cs_plan {
        for s in plan_skipped(path)? {
            excluded.entry(s.symbol).or_insert(s.reason);
        }
    }
    let g = global_excluding(universe, cfg, &excluded, cancel)?;
    for s in &g.skipped {
        excluded
            .entry(s.symbol.clone())
            .or_insert_with(|| s.reason.clone());
    }
    let range = g.range(scope)?;
    let decided = match &cfg.cs_plan {
        Some(path) => Some(load(path, cfg, &g, range.clone())?),
        None if cfg.filters.needs_table() => {
            return Err(Error::Config(
                "a shard build with --min-cs or --max-cs-samples needs --cs-plan (from `spillway count` and `spillway plan-cs`): the cross-section spans every shard".into(),
            ))
        }
        None => None,
    };
    let plan = plan_part(universe, cfg, scope, &g, range, decided, &excluded, cancel)?;
    // A symbol of this shard skipped only here (its time column, say, read by no other shard)
    // would leave this shard's choices unlike the others': unless the features are pinned, the
    // driver must exclude it everywhere (a count under `--on-error skip` finds these first).
    let local: Vec<(String, String)> = plan
        .skipped
        .iter()
        .filter(|s| !excluded.contains_key(&s.symbol))
        .map(|s| (s.symbol.clone(), s.reason.clone()))
        .collect();
    if !local.is_empty() && cfg.features.is_none() {
        return Err(Error::Exclude {
            scope: scope.to_string(),
            skipped: local,
        });
    }
    Ok(plan)
}

/// The symbols the cross-section plan at `path` says every shard leaves out (its header only;
/// [`load`] checks the whole file).
fn plan_skipped(path: &std::path::Path) -> Result<Vec<super::Skipped>> {
    let file_err = |source| Error::CsFile {
        path: path.to_path_buf(),
        source,
    };
    crate::input::regular_file("--cs-plan", path)?;
    let file = std::fs::File::open(path).map_err(|e| file_err(e.into()))?;
    let len = file.metadata().map_err(|e| file_err(e.into()))?.len();
    let (_, v) = Reader::open(BufReader::new(file), len, PLAN_MAGIC, "cross-section plan")
        .map_err(file_err)?;
    Ok(cs_file::plan_header(v).map_err(file_err)?.skipped)
}

/// Plans the symbols `range` of `universe` as shard `scope`, with the shared choices `g` and the
/// cross-section `decided` (with its plan's checksum) when filters need one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan_part(
    universe: &Universe,
    cfg: &BuildConfig,
    scope: &Scope,
    g: &Global,
    range: Range<usize>,
    decided: Option<(Decided, u32)>,
    excluded: &BTreeMap<String, String>,
    cancel: &Cancel,
) -> Result<Plan> {
    let sub = Universe {
        symbols: universe.symbols[range.clone()].to_vec(),
        broken: universe.broken.clone(),
        ..Universe::default()
    };
    let shared = BuildConfig {
        time_col: Some(g.time_col.clone()),
        features: Some(g.features.clone()),
        ..cfg.clone()
    };
    let (decided, crc) = match decided {
        Some((d, crc)) => (Some(d), Some(crc_text(crc))),
        None => (None, None),
    };
    let scoped = Scoped {
        meta: ShardMeta {
            scope: scope.to_string(),
            symbols: [range.start as u64, range.end as u64],
            universe: g.universe(),
            fingerprint: crc_text(g.fingerprint()),
            cs_plan: crc,
            time: None,
            after: None,
        },
        names: g.names.clone(),
        timezone: g.timezone.clone(),
        decided,
        codes: None,
    };
    super::plan_in(&sub, &shared, excluded, Some(&scoped), cancel)
}

/// The `crc32:` text of the cross-section plan at `path`, as a shard built with it records it
/// (the plan is read and checked as a build would).
pub(crate) fn plan_crc(
    path: &std::path::Path,
    cfg: &BuildConfig,
    g: &Global,
    range: Range<usize>,
) -> Result<String> {
    load(path, cfg, g, range).map(|(_, crc)| crc_text(crc))
}

/// Loads the cross-section plan at `path` for the shard `range` of `g`, refusing one made with
/// other options, for another universe, or before the shard's files changed.
fn load(
    path: &std::path::Path,
    cfg: &BuildConfig,
    g: &Global,
    range: Range<usize>,
) -> Result<(Decided, u32)> {
    let file_err = |source| Error::CsFile {
        path: path.to_path_buf(),
        source,
    };
    let mismatch = |what: String| Error::CsMismatch {
        path: path.to_path_buf(),
        what,
    };
    crate::input::regular_file("--cs-plan", path)?;
    let file = std::fs::File::open(path).map_err(|e| file_err(e.into()))?;
    let len = file.metadata().map_err(|e| file_err(e.into()))?.len();
    // The table costs about 24 bytes a timestamp, and a record is 21 bytes on disk.
    let table = Decided::table_bytes(len / cs_file::PLAN_RECORD);
    if table > cfg.memory_budget / 2 {
        return Err(Error::FilterMemory(format!(
            "--cs-plan {}: its table needs about {} MiB, over half the memory budget; raise --memory-budget",
            path.display(),
            table >> 20
        )));
    }
    let (mut r, v) = Reader::open(BufReader::new(file), len, PLAN_MAGIC, "cross-section plan")
        .map_err(file_err)?;
    let h = cs_file::plan_header(v).map_err(file_err)?;
    let mine = g.count_options(cfg);
    if let Some((name, plan, build)) = h.options.difference(&mine) {
        return Err(mismatch(format!(
            "it was made with {name} {plan}, this build has {build}"
        )));
    }
    if h.min_cs.max(1) != cfg.filters.min_cs.max(1) {
        return Err(mismatch(format!(
            "it was made with --min-cs {}, this build has {}",
            h.min_cs, cfg.filters.min_cs
        )));
    }
    if h.universe != g.universe() {
        return Err(mismatch(format!(
            "it is of another universe ({} symbols, names {}; this one: {} symbols, names {})",
            h.universe.symbols,
            h.universe.names,
            g.names.len(),
            g.universe().names
        )));
    }
    let fps = r.fingerprints(h.universe.symbols).map_err(file_err)?;
    for i in range {
        if fps[i] != g.fingerprints[i] {
            return Err(mismatch(format!(
                "the files of symbol {} changed since they were counted",
                g.names[i]
            )));
        }
    }
    let mut d = Decided {
        distinct: h.distinct,
        sampled: h.sampled,
        ..Decided::default()
    };
    while let Some((t, th)) = r.next_threshold(h.universe.symbols).map_err(file_err)? {
        d.times.push(t);
        d.thresholds.push((th != cs_file::KEEP_ALL).then_some(th));
    }
    let crc = r.finish().map_err(file_err)?;
    Ok((d, crc))
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splits_are_contiguous_balanced_and_never_empty() {
        let w = [10, 10, 10, 10, 10, 10];
        assert_eq!(split(&w, 2), Some(vec![0..3, 3..6]));
        assert_eq!(split(&w, 3), Some(vec![0..2, 2..4, 4..6]));
        assert_eq!(split(&[100, 1, 1, 1, 1], 2), Some(vec![0..1, 1..5]));
        assert_eq!(split(&[0, 0, 0], 3), Some(vec![0..1, 1..2, 2..3]));
        assert_eq!(split(&[5, 5], 3), None);
        assert_eq!(split(&[1, 2, 3], 1).map(|v| v.len()), Some(1));
    }
}
