//! A time-major dataset's shards along its timeline, and its history.
//!
//! A time-major dataset is a sequence of *cuts*: the first build's `--order time --shard I/N`
//! shards, then each append's shards (`after` = the last timestamp of the dataset it grew). Each
//! cut is one universe at one moment, so its shards share a universe identity and a tool; a cut
//! appended after `T` follows a cut ending at `T`. Symbol codes only grow: each shard's table
//! starts with the table of the shard before.
//!
//! The manifest's [`HistoryRecord`] says, per symbol, what the dataset holds of it up to its last
//! timestamp: rows and the sum of the shards' row digests (`run::history`), and the files it was
//! read from (path relative to the universe, size, footer CRC) as the newest cut saw them. An
//! append trusts a symbol whose files are all unchanged, and rebuilds the history of the others
//! to compare it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::files::Places;
use super::{bad, parse_manifest, Manifest, Opened, MAX_MANIFEST, ORDER_TIME};
use crate::error::Result;
use crate::publish::Place;

/// Reads the time-major dataset's manifest at `manifest` (a path or a URL), with its place;
/// another dataset is refused, `why` saying what the command does with time shards.
pub(super) fn read_time_dataset(
    places: &mut Places<'_>,
    manifest: &Path,
    why: &str,
) -> Result<(Place, Manifest)> {
    let place = places.of("DATASET", manifest)?;
    let (bytes, _) = place
        .read(manifest, MAX_MANIFEST)?
        .ok_or_else(|| bad(manifest, "no such manifest"))?;
    let m = parse_manifest(manifest, &bytes)?;
    if m.order.as_deref() != Some(ORDER_TIME) {
        return Err(bad(
            manifest,
            format!("it is not a time-major dataset (order \"time\"): {why}"),
        ));
    }
    Ok((place, m))
}

/// A time shard's first and last timestamps (`--order time --shard I/N`), from its metadata.
pub(super) fn time_window(o: &Opened) -> Option<[i64; 2]> {
    serde_json::from_value(o.shard.get("time")?.clone()).ok()
}

/// The last timestamp of the dataset an appended shard grew (`None`: a first build's shard).
fn after(o: &Opened) -> Option<i64> {
    o.shard.get("after").and_then(Value::as_i64)
}

/// How the shard `o` is cut, said plainly.
pub(super) fn cut_on(o: &Opened) -> &'static str {
    match time_window(o) {
        Some(_) => "time (--order time --shard)",
        None => "symbols",
    }
}

/// Checks that the time shards `opened` (in manifest order) are cuts along the timeline: each
/// cut shards `0..N` of one `I/N`, of one universe and tool, the first a build's and each next
/// one appended after the last timestamp of the cuts before; windows in order, codes kept.
pub(super) fn tile(opened: &[Opened], path_of: &impl Fn(usize) -> PathBuf) -> Result<()> {
    let path = |i: usize| {
        let p = PathBuf::from(&opened[i].entry.path);
        if p.is_absolute() {
            p
        } else {
            path_of(i)
        }
    };
    let mut last: Option<i64> = None;
    let mut i = 0;
    while i < opened.len() {
        let (cut_after, head) = (after(&opened[i]), &opened[i]);
        let n = opened[i..]
            .iter()
            .take_while(|o| after(o) == cut_after)
            .count();
        match (cut_after, last) {
            (Some(a), None) => {
                return Err(bad(&path(i), format!("it was appended after {a} ns, but no shard of the dataset's first build is given")));
            }
            (Some(a), Some(l)) if a != l => {
                return Err(bad(&path(i), format!("it was appended after {a} ns, but the shards before end at {l} ns (a shard is missing, or of another dataset)")));
            }
            _ => {}
        }
        for k in 0..n {
            let (o, p) = (&opened[i + k], path(i + k));
            let scope = o.shard.get("scope").and_then(Value::as_str).unwrap_or("");
            let of = scope.split_once('/').map_or("", |(_, n)| n);
            if of != n.to_string() {
                return Err(bad(
                    &p,
                    format!("it is time shard {scope}, of {of} shards; {n} are given (a shard is missing, or one of another cut is given)"),
                ));
            }
            if scope != format!("{k}/{n}") {
                return Err(bad(
                    &p,
                    format!("it is time shard {scope}; in time order, shard {k}/{n} belongs here (a shard is repeated)"),
                ));
            }
            let same = |key: &str| o.shard.get(key) == head.shard.get(key);
            if !same("universe") || !same("fingerprint") || o.tool != head.tool {
                return Err(bad(
                    &p,
                    format!(
                        "it is of another universe, files or tool than {}, a shard of the same cut",
                        head.entry.path
                    ),
                ));
            }
            if i + k > 0 && !o.names.starts_with(&opened[i + k - 1].names) {
                return Err(bad(
                    &p,
                    "its symbol table does not extend the shard's before (codes must be kept)",
                ));
            }
            let [a, b] = time_window(o).unwrap_or([i64::MIN, i64::MIN]);
            if let Some(l) = last.filter(|&l| a <= l) {
                return Err(bad(
                    &p,
                    format!(
                        "its times start at {a} ns, not after the shard before (ending at {l} ns)"
                    ),
                ));
            }
            last = Some(b);
        }
        i += n;
    }
    Ok(())
}

/// One file of a symbol, as the history records it: `[path relative to the universe, size,
/// footer CRC-32]`.
pub type FileStamp = (String, u64, u32);

/// What a time-major dataset holds of one symbol up to its last timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SymbolHistory {
    /// The symbol (its code is its place in the list).
    pub name: String,
    /// Its rows in the dataset.
    pub rows: u64,
    /// The sum of its rows' digests (16 hex digits; see `run::history`).
    pub digest: String,
    /// Its files as the newest cut read them.
    pub files: Vec<FileStamp>,
}

/// A time-major dataset's history (the manifest's `history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// The dataset's last timestamp (ns): what an append adds is after it.
    pub last: i64,
    /// Per symbol code.
    pub symbols: Vec<SymbolHistory>,
}

/// The history of the time shards `opened` (tiled, in order): rows and digests summed over the
/// shards, files from the newest. `None` when a shard records none (built before histories).
pub(super) fn history(
    opened: &[Opened],
    path_of: &impl Fn(usize) -> PathBuf,
) -> Result<Option<HistoryRecord>> {
    let Some(newest) = opened.last() else {
        return Ok(None);
    };
    let names = &newest.names;
    let (mut rows, mut digests) = (vec![0u64; names.len()], vec![0u64; names.len()]);
    for (i, o) in opened.iter().enumerate() {
        let Some(h) = &o.history else { return Ok(None) };
        let wrong = || {
            bad(
                &path_of(i),
                "its recorded history does not match its symbol table",
            )
        };
        let r: Vec<u64> = serde_json::from_value(h["rows"].clone()).map_err(|_| wrong())?;
        let d: Vec<String> = serde_json::from_value(h["digests"].clone()).map_err(|_| wrong())?;
        if r.len() != o.names.len() || d.len() != o.names.len() {
            return Err(wrong());
        }
        for (code, (r, d)) in r.iter().zip(&d).enumerate() {
            let d = u64::from_str_radix(d, 16).map_err(|_| wrong())?;
            rows[code] += r;
            digests[code] = digests[code].wrapping_add(d);
        }
    }
    let n = opened.len() - 1;
    let wrong = || bad(&path_of(n), "its recorded files do not match its inputs");
    let stamp: Vec<Value> = newest
        .stamp
        .as_ref()
        .and_then(|s| s.as_array().cloned())
        .ok_or_else(wrong)?;
    let files: Vec<Vec<usize>> = newest
        .history
        .as_ref()
        .and_then(|h| serde_json::from_value(h["files"].clone()).ok())
        .filter(|f: &Vec<Vec<usize>>| f.len() == names.len())
        .ok_or_else(wrong)?;
    let file = |i: usize| -> Option<FileStamp> {
        let s = stamp.get(i)?;
        Some((
            s.get(0)?.as_str()?.to_string(),
            s.get(1)?.as_u64()?,
            u32::try_from(s.get(3)?.as_u64()?).ok()?,
        ))
    };
    let mut symbols = Vec::with_capacity(names.len());
    for (code, name) in names.iter().enumerate() {
        symbols.push(SymbolHistory {
            name: name.clone(),
            rows: rows[code],
            digest: format!("{:016x}", digests[code]),
            files: files[code]
                .iter()
                .map(|&i| file(i))
                .collect::<Option<_>>()
                .ok_or_else(wrong)?,
        });
    }
    let last = time_window(newest).map_or(i64::MIN, |[_, b]| b);
    Ok(Some(HistoryRecord { last, symbols }))
}
