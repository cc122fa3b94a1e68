//! What a spill file records of how it was made, and `--if-changed`.
//!
//! The build metadata holds the tool, the options that change the output, and the inputs: a
//! fingerprint (relative path, size and footer checksum of every file read) and a stamp of every
//! file read: relative path, size, modification time (ns) and the CRC-32 of its footer bytes.
//! Skipped symbols leave no trace, so that a build that skips a symbol equals a build of the
//! universe without it.
//!
//! An output is current when it opens as a complete spill file, was made by this version and
//! [`SEMANTICS_VERSION`] with the same options, every file it read is unchanged, and every symbol
//! it did not read would be skipped again (planned alone under `--on-error skip`; under `fail` a
//! symbol it did not read is a change, so the build runs and fails on it). A shard also checks
//! that the universe's footers and its own symbol range (and cross-section plan) are those it was
//! cut from, and looks only at its own symbols. Then a rebuild would produce the same bytes, and
//! `--if-changed` skips it. Stamping costs a `stat` and one read of each file's footer bytes. For
//! a universe in object storage, the listing gives each object's size, last-modified time and
//! ETag (the ETags recorded in `inputs.etags`, beside the URL in `inputs.source`), and a footer is
//! one ranged GET: no column data is read.
//!
//! What a stamp cannot see: a file rewritten with the same size, the same footer and the same
//! modification time (`cp -p`, `rsync -a` of other content). [`Freshness::Content`]
//! (`--if-changed=content`) also records and compares a CRC-32 of every file's bytes, at the
//! cost of reading every input once more.
//!
//! Also the check of the output path made before any work ([`check_output`]).

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::cancel::Cancel;
use crate::config::url_scheme;
use crate::config::{BuildConfig, Freshness, OnError, RowOrder, Scope};
use crate::decode::ReadAt;
use crate::error::{Error, Result};
use crate::input::discover::Universe;
use crate::input::footer::footer_crc;
use crate::input::source::{self, Input};
use crate::output;
use crate::plan::cs_file::crc_text;
use crate::plan::shard::{self, ShardMeta};
use crate::plan::{plan, Plan};
use crate::report::sink::SummarySink;
use crate::report::summary::CurrentSummary;
use crate::report::tool::{SEMANTICS_VERSION, TOOL};

/// One input file's identity: `[relative path, size, modification time in ns since the epoch,
/// CRC-32 of its footer bytes]` (null where there is no readable footer), and with
/// [`Freshness::Content`] a fifth element, `"crc32:…"` of the file's bytes.
type FileStamp = Value;

/// The stamp of `files`, sorted by relative path, and for objects their ETags (`[relative
/// path, ETag]`, sorted; empty for local files).
fn stamp<'a>(
    cfg: &BuildConfig,
    files: impl Iterator<Item = &'a Path>,
) -> (Vec<FileStamp>, Vec<Value>) {
    let content = cfg.freshness == Freshness::Content;
    let mut stamps: Vec<(String, FileStamp, Option<String>)> = files
        .map(|path| {
            let rel = path.strip_prefix(&cfg.input).unwrap_or(path);
            let rel = rel.to_string_lossy().into_owned();
            let Ok(input) = source::open(path) else {
                return (rel.clone(), json!([rel, 0, null, null]), None);
            };
            let id = input.identity().ok();
            let size = id.map_or(0, |(size, _)| size);
            let mtime = id
                .and_then(|(_, t)| t)
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            let etag = input.etag().map(str::to_string);
            let hash = content.then(|| content_crc(&input, size).ok());
            let crc = input
                .into_file(None)
                .ok()
                .and_then(|file| footer_crc(&file, size).ok())
                .map(|(crc, _)| crc);
            let mut v = json!([rel, size, mtime, crc]);
            if let (Some(hash), Some(a)) = (hash, v.as_array_mut()) {
                a.push(json!(hash.map(|c| format!("crc32:{c:08x}"))));
            }
            (rel, v, etag)
        })
        .collect();
    stamps.sort_by(|a, b| a.0.cmp(&b.0));
    let etags = stamps
        .iter()
        .filter_map(|(rel, _, e)| Some(json!([rel, e.as_ref()?])))
        .collect();
    (stamps.into_iter().map(|(_, v, _)| v).collect(), etags)
}

/// CRC-32 of a file's (or an object's) bytes, read 1 MiB at a time.
fn content_crc(input: &Input, size: u64) -> std::io::Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(buf.len() as u64) as usize;
        input.read_exact_at(&mut buf[..n], at)?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize())
}

/// The build metadata stored in the spill file: only what does not vary between identical runs,
/// and nothing a skipped symbol could change (skips are reported in the summary instead).
pub(crate) fn build_metadata(plan: &Plan, cfg: &BuildConfig) -> Map<String, Value> {
    let (stamp, etags) = stamp(cfg, plan.units.iter().map(|u| u.path.as_path()));
    let mut m = Map::new();
    m.insert("tool".into(), json!(TOOL));
    m.insert("semantics_version".into(), json!(SEMANTICS_VERSION));
    m.insert("options".into(), cfg.output_options());
    m.insert(
        "inputs".into(),
        json!({
            "files": plan.units.len(),
            "bytes": plan.input_bytes,
            "fingerprint": format!("crc32:{:08x}", plan.fingerprint),
            "stamp": stamp,
        }),
    );
    // Provenance of a universe in object storage: its URL and the ETags of the objects read.
    if url_scheme(&cfg.input).is_some() {
        if let Some(inputs) = m.get_mut("inputs").and_then(Value::as_object_mut) {
            let url = cfg.input.to_string_lossy();
            inputs.insert(
                "source".into(),
                json!(format!("{}/", url.trim_end_matches('/'))),
            );
            inputs.insert("etags".into(), json!(etags));
        }
    }
    // A shard's identity: which symbols of which universe, and the plan that filtered them.
    if let Some(shard) = &plan.shard {
        m.insert("shard".into(), json!(shard));
    }
    m
}

/// Whether an output is current for its inputs and options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpToDate {
    /// The output.
    pub path: PathBuf,
    /// Whether a build would produce it again byte for byte (`--if-changed` skips the build).
    pub current: bool,
    /// Why, in a few words.
    pub reason: String,
}

/// Checks whether `cfg.output` is current (see the module docs). Errors only when the input
/// cannot be listed; an output that is missing or damaged is simply not current.
pub fn up_to_date(cfg: &BuildConfig) -> Result<UpToDate> {
    // A FIFO or a device is refused before it is opened (opening a FIFO waits for a writer).
    if std::fs::metadata(&cfg.output).is_ok_and(|m| !m.is_file()) {
        output::check("--output", &cfg.output, &[])?;
    }
    match spill::open(&cfg.output) {
        Ok(f) => judge(cfg, f.build_metadata()),
        Err(e)
            if e.io_error()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
        {
            Ok(answer(cfg, false, "it does not exist".into()))
        }
        Err(e) => Ok(answer(
            cfg,
            false,
            format!("it does not open as a spill file: {e}"),
        )),
    }
}

/// The answer for `cfg`'s output.
pub(crate) fn answer(cfg: &BuildConfig, current: bool, reason: String) -> UpToDate {
    UpToDate {
        path: cfg.output.clone(),
        current,
        reason,
    }
}

/// Whether an output whose build metadata is `build` is current for `cfg` (see [`up_to_date`]);
/// for outputs read otherwise than whole (a bucket's, from its end).
pub(crate) fn judge(cfg: &BuildConfig, build: &serde_json::Map<String, Value>) -> Result<UpToDate> {
    let answer = |current: bool, reason: String| answer(cfg, current, reason);
    let semantics = build
        .get("semantics_version")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    if semantics != SEMANTICS_VERSION {
        return Ok(answer(
            false,
            format!(
                "it was made with output semantics {semantics}, this spillway writes {SEMANTICS_VERSION}"
            ),
        ));
    }
    if build.get("tool") != Some(&json!(TOOL)) {
        return Ok(answer(
            false,
            format!(
                "it was made by {}",
                build.get("tool").unwrap_or(&Value::Null)
            ),
        ));
    }
    if build.get("options") != Some(&cfg.output_options()) {
        return Ok(answer(false, "it was made with other options".into()));
    }
    let Some(then) = build
        .get("inputs")
        .and_then(|i| i.get("stamp"))
        .and_then(Value::as_array)
    else {
        return Ok(answer(false, "it records no input stamp".into()));
    };
    let read: HashSet<&str> = then
        .iter()
        .filter_map(|e| e.get(0).and_then(Value::as_str))
        .collect();
    let universe = source::universe(cfg, &Cancel::new())?;
    // A shard: cut from the same universe, the same range, the same cross-section plan?
    let range = match &cfg.scope {
        None => 0..universe.symbols.len(),
        Some(scope) => match same_shard(&universe, cfg, scope, build.get("shard")) {
            Ok(range) => range,
            Err(why) => return Ok(answer(false, why)),
        },
    };
    if cfg.freshness == Freshness::Content && then.iter().any(|s| s.get(4).is_none()) {
        return Ok(answer(
            false,
            "it records no content hashes (it was not built with --if-changed=content)".into(),
        ));
    }
    let rel = |p: &Path| {
        p.strip_prefix(&cfg.input)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let files_read = universe
        .symbols
        .iter()
        .flat_map(|s| &s.files)
        .filter(|f| read.contains(rel(f).as_str()))
        .map(PathBuf::as_path);
    // A file that records content hashes is compared on them whatever was asked (`inspect`
    // too); a stamp of another freshness compares on what both record.
    let recorded = then.iter().all(|s| s.get(4).is_some()) && !then.is_empty();
    let (now, width) = if recorded || cfg.freshness == Freshness::Content {
        let content = BuildConfig {
            freshness: Freshness::Content,
            ..cfg.clone()
        };
        (stamp(&content, files_read), 5)
    } else {
        (stamp(cfg, files_read), 4)
    };
    let ((now, etags), was) = (now, build.get("inputs").and_then(|i| i.get("etags")));
    let cut = |v: &Value| json!(v.as_array().map(|a| &a[..a.len().min(width)]));
    if then.len() != now.len() || then.iter().zip(&now).any(|(a, b)| cut(a) != cut(b)) {
        return Ok(answer(false, describe_change(then, &now)));
    }
    if let Some(was) = was.and_then(Value::as_array) {
        if let Some(old) = was.iter().find(|e| !etags.contains(e)) {
            let name = old.get(0).and_then(Value::as_str).unwrap_or("?");
            return Ok(answer(false, format!("{name} changed (its ETag)")));
        }
    }
    // Symbols of its range it did not read: skipped then, and skipped again now?
    let others = Universe {
        symbols: universe
            .symbols
            .into_iter()
            .skip(range.start)
            .take(range.len())
            .filter(|s| s.files.iter().any(|f| !read.contains(rel(f).as_str())))
            .collect(),
        broken: universe.broken,
        ..Universe::default()
    };
    if let Some(first) = others.symbols.first().map(|s| s.name.clone()) {
        let new = match cfg.on_error {
            OnError::Fail => Some(first),
            OnError::Skip => {
                // Planned alone, as a whole build of just them: would they fail again?
                let skip = BuildConfig {
                    on_error: OnError::Skip,
                    scope: None,
                    cs_plan: None,
                    filters: Default::default(),
                    ..cfg.clone()
                };
                match plan(&others, &skip, &Default::default(), &Cancel::new()) {
                    Err(Error::NothingToBuild { .. }) => None,
                    Ok(p) => p.layout.symbols().first().map(|s| s.name.clone()),
                    Err(_) => Some(first),
                }
            }
        };
        if let Some(name) = new {
            return Ok(answer(false, format!("symbol {name} is new")));
        }
    }
    Ok(answer(
        true,
        format!(
            "its {} input files and its options are unchanged",
            then.len()
        ),
    ))
}

/// The first difference between the recorded stamp and today's, for the message.
fn describe_change(then: &[Value], now: &[Value]) -> String {
    let path = |v: &Value| v.get(0).and_then(Value::as_str).unwrap_or("?").to_string();
    let now: std::collections::HashMap<String, &Value> = now.iter().map(|v| (path(v), v)).collect();
    for old in then {
        let name = path(old);
        let Some(new) = now.get(&name) else {
            return format!("{name} is gone");
        };
        let differs = |i: usize| old.get(i) != new.get(i);
        let what = if differs(1) {
            "its size"
        } else if differs(3) {
            "its footer"
        } else if differs(2) {
            "its modification time"
        } else if new.get(4).is_some() && differs(4) {
            "its content"
        } else {
            continue;
        };
        return format!("{name} changed ({what})");
    }
    "its input files changed (one is new)".into()
}

/// The symbol range of the shard `scope` when the file's recorded `shard` identity is today's:
/// the same universe (every symbol's name and footers), the same range, the same plan. Else why
/// not.
fn same_shard(
    universe: &Universe,
    cfg: &BuildConfig,
    scope: &Scope,
    recorded: Option<&Value>,
) -> std::result::Result<Range<usize>, String> {
    let Some(recorded) = recorded else {
        return Err("it is not a shard".into());
    };
    let g = shard::global(universe, cfg, &Cancel::new()).map_err(|e| format!("planning: {e}"))?;
    // A time shard reads every symbol; its window follows from the files, which the stamps
    // compare.
    let time = cfg.order == RowOrder::Time;
    let range = match time {
        true => 0..universe.symbols.len(),
        false => g.range(scope).map_err(|e| e.to_string())?,
    };
    let cs_plan = match &cfg.cs_plan {
        Some(p) => Some(shard::plan_crc(p, cfg, &g, range.clone()).map_err(|e| e.to_string())?),
        None => None,
    };
    let now = ShardMeta {
        scope: scope.to_string(),
        symbols: [range.start as u64, range.end as u64],
        universe: g.universe(),
        fingerprint: crc_text(g.fingerprint()),
        cs_plan,
        time: None,
        after: None,
    };
    let field = |k: &str| recorded.get(k).cloned().unwrap_or(Value::Null);
    let now = json!(now);
    for (key, what) in [
        ("universe", "the universe's symbols changed"),
        (
            "fingerprint",
            "a file of the universe changed (size or footer)",
        ),
        ("scope", "it is another shard"),
        ("symbols", "the shard's symbol range moved"),
        ("cs_plan", "the cross-section plan changed"),
    ] {
        if time && key == "symbols" {
            continue;
        }
        if time != recorded.get("time").is_some() {
            return Err("it is a shard cut the other way (on time, or on symbols)".into());
        }
        if field(key) != now[key] {
            return Err(what.into());
        }
    }
    Ok(range)
}

/// What a build reads besides its output, for the output checks: every input file, the config
/// file and the cross-section plan, each with what it is.
fn reads<'a>(cfg: &'a BuildConfig, universe: &'a Universe) -> Vec<(&'static str, &'a Path)> {
    let mut reads: Vec<(&str, &Path)> = universe
        .symbols
        .iter()
        .flat_map(|s| &s.files)
        .map(|f| ("one of the input files", f.as_path()))
        .collect();
    reads.extend(cfg.config_file.as_deref().map(|p| ("the --config file", p)));
    reads.extend(cfg.cs_plan.as_deref().map(|p| ("the --cs-plan file", p)));
    reads
}

/// Refuses, before any work, an output that is not a regular file (a directory, a device, a
/// FIFO), that is any file the build reads (an input, the config file, the cross-section plan),
/// or whose directory does not exist (see [`crate::output`]). Returns the path to write: the
/// output, or the file a symlink there points to.
pub(crate) fn check_output(cfg: &BuildConfig, universe: &Universe) -> Result<PathBuf> {
    output::check("--output", &cfg.output, &reads(cfg, universe))
}

/// Opens the summary destination, if any: not the output, not anything the build reads.
pub(crate) fn open_summary(cfg: &BuildConfig, universe: &Universe) -> Result<Option<SummarySink>> {
    let Some(path) = &cfg.summary else {
        return Ok(None);
    };
    let mut reads = reads(cfg, universe);
    reads.push(("the --output file", &cfg.output));
    SummarySink::open(path, &reads).map(Some)
}

/// Writes the summary of a build that `--if-changed` found current (nothing built) to
/// `cfg.summary`, if set.
pub fn write_current_summary(cfg: &BuildConfig, current: &UpToDate) -> Result<()> {
    let universe = source::universe(cfg, &Cancel::new())?;
    if let Some(sink) = open_summary(cfg, &universe)? {
        sink.write(&CurrentSummary::new(
            current.path.clone(),
            current.reason.clone(),
        ))?;
    }
    Ok(())
}

/// The symbols `--exclude` names that `universe` has (a name it lacks excludes nothing), each
/// with its reason.
pub(crate) fn excluded(
    cfg: &BuildConfig,
    universe: &Universe,
) -> std::collections::BTreeMap<String, String> {
    cfg.exclude
        .iter()
        .filter(|name| universe.symbols.iter().any(|s| &s.name == *name))
        .map(|name| (name.clone(), "excluded (--exclude)".to_string()))
        .collect()
}
