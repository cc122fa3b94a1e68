//! Whether the grown universe still holds the history a time-major dataset was built from, so
//! that appending the rows after its last timestamp `T` gives what a rebuild would.
//!
//! Per symbol of the dataset's history (`timeline::HistoryRecord`):
//! - every file it was read from unchanged (path, size, footer CRC): trusted, none of it read;
//! - a file added (a new hive part, a new symbol): its time column is read, and a row at or
//!   before `T` is backfilled history the dataset lacks;
//! - a file changed or gone (a flat `<SYM>.parquet` rewritten nightly): the symbol's rows up to
//!   `T` are built again (the grown universe's plan, filters and all, into a scratch file) and
//!   compared with the recorded rows and digest, window by window as the shards cut them. Where
//!   they differ, the first differing timestamp is found: the first shard whose recorded digest
//!   differs is read (downloaded from a bucket), per timestamp, against the rebuilt rows.
//!
//! A symbol that stopped (delisted) has no rows after `T`: nothing to check beyond its files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::files::{dir_of, join};
use super::timeline::{FileStamp, HistoryRecord};
use super::Manifest;
use crate::cancel::Cancel;
use crate::config::{BuildConfig, RowOrder};
use crate::error::Result;
use crate::input::time::iso;
use crate::plan::time_shard::Timeline;
use crate::publish::{Place, Scratch};
use crate::report::progress::Progress;
use crate::run::execute_cancellable;
use crate::run::history::{per_timestamp, window_digests, Columns};

/// Symbols whose first differing timestamp is looked for (each may read a shard).
const LOCATED: usize = 5;

/// How an append checked the dataset's history.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Whether the dataset records a history.
    pub recorded: bool,
    /// Symbols whose files are all unchanged: trusted.
    pub trusted: usize,
    /// Symbols whose files changed: their rows up to the last timestamp built again and compared.
    pub rebuilt: Vec<String>,
    /// Symbols new to the dataset.
    pub new_symbols: Vec<String>,
    /// What differs, symbol by symbol (empty: the history holds).
    pub problems: Vec<String>,
}

impl Verdict {
    /// A dataset without a recorded history: nothing can be trusted.
    pub fn unrecorded() -> Verdict {
        Verdict {
            problems: vec![
                "it records no history (it was built before spillway kept one), so \
                            its rows up to the last timestamp cannot be checked"
                    .into(),
            ],
            ..Verdict::default()
        }
    }
}

/// Checks the history `h` of the dataset `m` (manifest at `manifest`, in `place`) against the
/// grown universe's `timeline` (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    manifest: &Path,
    m: &Manifest,
    h: &HistoryRecord,
    timeline: &Timeline,
    cfg: &BuildConfig,
    place: &Place,
    scratch: &Scratch,
    cancel: &Cancel,
) -> Result<Verdict> {
    let plan = timeline.plan();
    let after = h.last;
    let mut v = Verdict {
        recorded: true,
        ..Verdict::default()
    };
    let rel = |p: &Path| {
        p.strip_prefix(&cfg.input)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let names: Vec<&str> = plan
        .layout
        .symbols()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let mut current: Vec<Vec<(FileStamp, usize)>> = vec![Vec::new(); names.len()];
    for (i, u) in plan.units.iter().enumerate() {
        current[u.symbol as usize].push(((rel(&u.path), u.size, u.footer_crc), i));
    }
    let (mut changed, mut added) = (BTreeSet::new(), Vec::new());
    for (code, files) in current.iter().enumerate() {
        let recorded = h.symbols.get(code).map_or(&[][..], |s| &s.files[..]);
        if code >= h.symbols.len() && !files.is_empty() {
            v.new_symbols.push(names[code].to_string());
        }
        let now: BTreeSet<&FileStamp> = files.iter().map(|(f, _)| f).collect();
        if recorded.iter().any(|f| !now.contains(f)) {
            changed.insert(code as u32);
            v.rebuilt.push(names[code].to_string());
            continue;
        }
        if code < h.symbols.len() {
            v.trusted += 1;
        }
        let old: BTreeSet<&str> = recorded.iter().map(|f| f.0.as_str()).collect();
        added.extend(
            files
                .iter()
                .filter(|(f, _)| !old.contains(f.0.as_str()))
                .map(|&(_, i)| i),
        );
    }

    // Files the dataset was not built from: their rows must all be after `after`.
    let earliest = timeline.earliest_until(&added, after, cancel)?;
    let mut backfilled: BTreeMap<u32, i64> = BTreeMap::new();
    for (&i, first) in added.iter().zip(earliest) {
        if let Some(t) = first {
            let e = backfilled.entry(plan.units[i].symbol).or_insert(t);
            *e = (*e).min(t);
        }
    }
    for (code, t) in backfilled {
        v.problems.push(format!(
            "{}: rows at or before the dataset's last timestamp ({}) in files it was not built from, the first at {} (backfilled history)",
            names[code as usize],
            iso(after),
            iso(t)
        ));
    }
    if !changed.is_empty() {
        v.problems.extend(rebuilt(
            manifest, m, h, timeline, cfg, place, scratch, &changed, cancel,
        )?);
    }
    Ok(v)
}

/// Builds the rows up to the last timestamp of the symbols `changed` again and compares them
/// with the dataset's: what differs, with the first differing timestamp of the first few.
#[allow(clippy::too_many_arguments)]
fn rebuilt(
    manifest: &Path,
    m: &Manifest,
    h: &HistoryRecord,
    timeline: &Timeline,
    cfg: &BuildConfig,
    place: &Place,
    scratch: &Scratch,
    changed: &BTreeSet<u32>,
    cancel: &Cancel,
) -> Result<Vec<String>> {
    let plan = timeline.within([i64::MIN, h.last], |u| changed.contains(&u.symbol), cancel)?;
    let tmp = scratch.temp("history-check.spill")?;
    let check = BuildConfig {
        output: tmp.to_path_buf(),
        order: RowOrder::Symbol,
        cs_transform: None,
        ..cfg.clone()
    };
    execute_cancellable(&plan, &check, &Progress::hidden(), cancel)?;
    let cols = Columns::of_layout(&tmp, &plan.layout)?;
    let windows: Vec<[i64; 2]> = m.shards.iter().filter_map(|s| s.time_range).collect();
    let dir = dir_of(manifest);
    let mut problems = Vec::new();
    for &code in changed {
        let sym = &plan.layout.symbols()[code as usize];
        let name = &h.symbols[code as usize].name;
        let now = window_digests(&cols, sym.start..sym.stop, &windows, cancel)?;
        let (outside, first_outside) = now[windows.len()];
        let rows: u64 = now.iter().map(|w| w.0).sum();
        let digest = now[..windows.len()]
            .iter()
            .fold(0u64, |a, w| a.wrapping_add(w.1));
        let recorded = &h.symbols[code as usize];
        if outside == 0 && rows == recorded.rows && format!("{digest:016x}") == recorded.digest {
            continue;
        }
        let at = if problems.len() < LOCATED {
            locate(
                &dir,
                m,
                place,
                scratch,
                code,
                &now,
                &cols,
                sym.start..sym.stop,
                cancel,
            )?
        } else {
            None
        };
        let at = match (outside > 0, at) {
            (true, Some(t)) => format!(", first at {}", iso(t.min(first_outside as i64))),
            (true, None) => format!(", first at {}", iso(first_outside as i64)),
            (false, Some(t)) => format!(", first at {}", iso(t)),
            (false, None) => String::new(),
        };
        problems.push(format!(
            "{name}: its files changed and its rows up to the dataset's last timestamp differ ({} rows in the dataset, {rows} in the universe{at})",
            recorded.rows
        ));
    }
    Ok(problems)
}

/// The first timestamp at which symbol `code`'s rows in the dataset differ from the rebuilt
/// ones (`rows` of `cols`, per shard window `now`): in the first shard whose recorded rows or
/// digest differ, compared timestamp by timestamp. `None` when no shard differs.
#[allow(clippy::too_many_arguments)]
fn locate(
    dir: &Path,
    m: &Manifest,
    place: &Place,
    scratch: &Scratch,
    code: u32,
    now: &[(u64, u64)],
    cols: &Columns,
    rows: std::ops::Range<u64>,
    cancel: &Cancel,
) -> Result<Option<i64>> {
    for (k, shard) in m.shards.iter().enumerate() {
        let path = join(dir, &shard.path);
        let Some((_, _, meta)) = place.describe(&path)? else {
            continue;
        };
        let h = meta.build.get("history");
        let at = |key: &str| {
            h.and_then(|h| h.get(key))
                .and_then(Value::as_array)
                .and_then(|a| a.get(code as usize).cloned())
        };
        let then_rows = at("rows").and_then(|v| v.as_u64()).unwrap_or(0);
        let then_digest = at("digests").and_then(|v| v.as_str().map(str::to_string));
        if then_rows == now[k].0 && then_digest.as_deref() == Some(&format!("{:016x}", now[k].1)) {
            continue;
        }
        let Some(window) = shard.time_range else {
            continue;
        };
        let copy = place.local_copy(&path, scratch)?;
        let there = Columns::of_metadata(&copy.path, &meta)?;
        let then = per_timestamp(&there, 0..meta.nrows, code, window, cancel)?;
        let again = per_timestamp(cols, rows.clone(), code, window, cancel)?;
        let times: BTreeSet<&i64> = then.keys().chain(again.keys()).collect();
        let first = times.into_iter().find(|t| then.get(t) != again.get(t));
        // Only the order of rows within one timestamp differs: name the window's start.
        return Ok(Some(first.copied().unwrap_or(window[0])));
    }
    Ok(None)
}
