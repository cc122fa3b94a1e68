//! Time shards (`--order time --shard I/N`): one stretch of the timeline of a time-major
//! dataset, as a spill file whose rows are exactly the single build's rows at those times.
//!
//! Every time shard plans the WHOLE universe as a single build would (footers, time scans, the
//! cross-sectional filters), so all shards share the symbol table, the schema and every row's
//! decision. Whole cross-sections are in one shard, so the filters need no cross-section plan.
//! Then, over the time and target columns only:
//!
//! 1. the rows the build keeps are counted per timestamp (O(distinct timestamps), within half the
//!    memory budget), and the sorted timestamps are cut into `N` contiguous ranges balanced by
//!    those rows (`shard::split`): a pure function of the plan, the same in every shard;
//! 2. each file's rows inside shard `I`'s range are counted (its output rows), and its row
//!    groups without one are marked dead ([`Unit::dead`]): the fast decoder passes over them
//!    unread (in files without null times or a `--max-rows` cut; arrow-rs reads and filters).
//!
//! The readers keep a row when the single build would and its time is in the range
//! ([`CrossSection::within`]), so the shard's symbol-major intermediate holds those rows in the
//! single build's order, and its transposition is the single time-major file's rows at those
//! times: the shards, concatenated in order, are the single time-major file, column by column.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::config::{BuildConfig, Scope};
use crate::error::{Error, Result, SymbolError};
use crate::input::discover::Universe;

use super::cs_file::crc_text;
use super::filter::CrossSection;
use super::scan::{count_rows, scanner, Scan};
use super::shard::{global, split, Scoped, ShardMeta};
use super::{layout, Plan, Unit};

/// Which stretch of the timeline a time shard holds: the `index`-th of `count` ranges of the
/// timestamps with rows (after `after`, for an append).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeCut {
    /// From 0.
    pub index: u32,
    /// At least 1.
    pub count: u32,
    /// Only the timestamps after this one (an append: the dataset's last).
    pub after: Option<i64>,
}

/// The symbol table an append keeps: these names keep their codes; the universe's other
/// symbols follow, in discovery order. And the dataset's time zone.
#[derive(Debug, Clone)]
pub(crate) struct Seed {
    /// The dataset's symbol table.
    pub names: Vec<String>,
    /// The dataset's time zone.
    pub timezone: Option<String>,
}

/// Plans the time shard `cut` of `universe` (see the module docs), with the symbol table
/// `seed` when given (else the single build's).
pub(crate) fn plan(
    universe: &Universe,
    cfg: &BuildConfig,
    cut: &TimeCut,
    seed: Option<&Seed>,
    excluded: &BTreeMap<String, String>,
    cancel: &Cancel,
) -> Result<Plan> {
    Timeline::prepare(universe, cfg, seed, cut.after, excluded, cancel)?.cut(cut, cfg, cancel)
}

/// The single build's plan of a universe, from which time shards are cut.
pub(crate) struct Timeline {
    plan: Plan,
    /// The filters' decisions (no window yet).
    cs: CrossSection,
    names: Vec<String>,
    meta: ShardMeta,
}

impl Timeline {
    /// Plans `universe` as a single time-major build (its table seeded by `seed`), recording
    /// `after` in the shards it cuts.
    pub(crate) fn prepare(
        universe: &Universe,
        cfg: &BuildConfig,
        seed: Option<&Seed>,
        after: Option<i64>,
        excluded: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> Result<Timeline> {
        // The universe's identity, as every shard of it records it (symbol shards too).
        let g = global(universe, cfg, cancel)?;
        let meta = ShardMeta {
            scope: String::new(),
            symbols: [0, 0],
            universe: g.universe(),
            fingerprint: crc_text(g.fingerprint()),
            cs_plan: None,
            time: None,
            after,
        };
        let scoped = seed.map(|s| seeded(universe, s, meta.clone()));
        let mut plan = super::plan_in(universe, cfg, excluded, scoped.as_ref(), cancel)?;
        let names: Vec<String> = plan
            .layout
            .symbols()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let cs = plan
            .filters
            .take()
            .map_or_else(CrossSection::none, Arc::unwrap_or_clone);
        Ok(Timeline {
            plan,
            cs,
            names,
            meta,
        })
    }

    /// The whole universe's plan (every file, its rows as a single build keeps them).
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The universe's fingerprint, as its shards record it.
    pub(crate) fn fingerprint(&self) -> &str {
        &self.meta.fingerprint
    }

    /// Per file of `units` (indices into the plan's), its earliest time at or before `t` among
    /// the rows a build reads (a time, past the `--max-rows` cut), if any: reading only the
    /// time column.
    pub(crate) fn earliest_until(
        &self,
        units: &[usize],
        t: i64,
        cancel: &Cancel,
    ) -> Result<Vec<Option<i64>>> {
        let scan = scanner(&self.names, cancel);
        let found = units
            .par_iter()
            .map(|&i| {
                let mut first: Option<i64> = None;
                scan(&self.plan.units[i], &mut |time, _, _| {
                    if time <= t {
                        first = Some(first.map_or(time, |f| f.min(time)));
                    }
                })?;
                Ok(first)
            })
            .collect::<Result<Vec<_>, SymbolError>>()?;
        cancel.check()?;
        Ok(found)
    }

    /// The time shard `cut`: the timestamps with rows (after `cut.after`) counted, cut into
    /// `cut.count` ranges balanced by rows, and the plan restricted to range `cut.index`.
    pub(crate) fn cut(&self, cut: &TimeCut, cfg: &BuildConfig, cancel: &Cancel) -> Result<Plan> {
        let scope = Scope::Part {
            index: cut.index,
            count: cut.count,
        };
        let scan = scanner(&self.names, cancel);
        let (cs, after) = (&self.cs, cut.after);
        let keep = |u: &Unit, t: i64, ok, tag, cursor: &mut usize| {
            after.is_none_or(|a| t > a) && cs.keep(t, ok, u.symbol, tag, cursor)
        };
        let what = format!("--order time --shard {scope}");
        let units = &self.plan.units;
        let counts = count_rows(units, &keep, cfg.memory_budget / 2, &scan, &what)?;
        cancel.check()?;
        let mut table: Vec<(i64, u32)> = counts.into_iter().collect();
        table.sort_unstable();
        if let (Some(after), true) = (after, table.is_empty()) {
            return Err(Error::NothingToAppend { after });
        }
        let weights: Vec<u64> = table.iter().map(|&(_, n)| u64::from(n)).collect();
        let parts = split(&weights, cut.count as usize).ok_or_else(|| {
            Error::Config(format!(
                "--shard {scope}: {} time shards of {} timestamps with rows (at most one shard per timestamp)",
                cut.count,
                table.len()
            ))
        })?;
        let part = &parts[cut.index as usize];
        let window = [table[part.start].0, table[part.end - 1].0];
        drop(table);
        let mut plan = self.within(window, |_| true, cancel)?;
        plan.shard = Some(ShardMeta {
            scope: scope.to_string(),
            symbols: [0, self.names.len() as u64],
            time: Some(window),
            after: cut.after,
            ..self.meta.clone()
        });
        Ok(plan)
    }

    /// The plan of the rows in `window` (`[first, last]` ns) of the files `take` keeps: each
    /// file's rows there counted, its row groups without one marked dead.
    pub(crate) fn within(
        &self,
        window: [i64; 2],
        take: impl Fn(&Unit) -> bool,
        cancel: &Cancel,
    ) -> Result<Plan> {
        let scan = scanner(&self.names, cancel);
        let cs = self.cs.clone().within(window);
        let mut plan = self.plan.clone();
        plan.units.retain(|u| take(u));
        plan.units
            .par_iter_mut()
            .try_for_each(|u| restrict(u, &cs, &scan))?;
        cancel.check()?;
        let columns = plan.layout.columns().to_vec();
        plan.layout = layout::place(&mut plan.units, self.names.clone(), columns)?;
        plan.filters = Some(Arc::new(cs));
        Ok(plan)
    }
}

/// The planning view of a table seeded by `seed`: its names first, the universe's others after.
fn seeded(universe: &Universe, seed: &Seed, meta: ShardMeta) -> Scoped {
    let mut names = seed.names.clone();
    let mut codes: HashMap<String, u32> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as u32))
        .collect();
    for s in &universe.symbols {
        if !codes.contains_key(&s.name) {
            codes.insert(s.name.clone(), names.len() as u32);
            names.push(s.name.clone());
        }
    }
    Scoped {
        names,
        timezone: seed.timezone.clone(),
        decided: None,
        meta,
        codes: Some(codes),
    }
}

/// Sets `unit`'s output rows to those `cs` keeps, and its dead row groups: those without one,
/// where the fast decoder can pass over a row group knowing only its latest time (no null
/// times, no `--max-rows` cut: the k-th scanned row is then the file's row k).
fn restrict(unit: &mut Unit, cs: &CrossSection, scan: &Scan<'_>) -> Result<(), SymbolError> {
    let groups = match &unit.fast {
        Some(f) if !unit.has_null_times() && unit.skip == 0 => f.row_groups.clone(),
        _ => Vec::new(),
    };
    // Per row group: whether a row stays, and its latest time.
    let mut live = vec![false; groups.len()];
    let mut latest = vec![i64::MIN; groups.len()];
    let (mut out, mut cursor) = (0u64, 0usize);
    let (mut g, mut end, mut row) = (0usize, groups.first().copied().unwrap_or(0), 0usize);
    scan(unit, &mut |t, ok, tag| {
        let kept = cs.keep(t, ok, unit.symbol, tag, &mut cursor);
        out += u64::from(kept);
        if !groups.is_empty() {
            while row >= end && g + 1 < groups.len() {
                g += 1;
                end += groups[g];
            }
            live[g] |= kept;
            latest[g] = latest[g].max(t);
            row += 1;
        }
    })?;
    unit.out = out;
    unit.dead = (0..groups.len())
        .filter(|&g| !live[g] && groups[g] > 0)
        .map(|g| (g as u32, latest[g]))
        .collect();
    Ok(())
}
