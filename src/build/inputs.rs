//! What a spill file records of how it was made, and `--if-changed`.
//!
//! The build metadata holds the tool, the options that change the output, and the inputs: a
//! fingerprint (relative path, size and footer checksum of every file read) and a stamp of every
//! file read: relative path, size, modification time (ns) and the CRC-32 of its footer bytes.
//! Skipped symbols leave no trace, so that a build that skips a symbol equals a build of the
//! universe without it.
//!
//! An output is current when it opens as a complete spill file, was made by this version with the
//! same options, every file it read is unchanged, and every symbol it did not read would be
//! skipped again (planned alone under `--on-error skip`; under `fail` a symbol it did not read is
//! a change, so the build runs and fails on it). Then a rebuild would produce the same bytes, and
//! `--if-changed` skips it. Stamping costs a `stat` and one read of each file's footer bytes.
//!
//! Also the checks of the output path made before any work: not a directory, not one of the
//! inputs, in a directory that exists.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::cancel::Cancel;
use crate::config::{BuildConfig, OnError};
use crate::error::{Error, Result};
use crate::input::discover::{discover, Universe};
use crate::input::footer::footer_crc;
use crate::plan::{plan, Plan};

/// The tool that writes spill files, as recorded in them.
const TOOL: &str = concat!("spillway ", env!("CARGO_PKG_VERSION"));

/// One input file's identity: relative path, size, modification time in ns since the epoch, and
/// the CRC-32 of its footer bytes (`None` where there is no readable footer).
pub(crate) type FileStamp = (String, u64, Option<u64>, Option<u32>);

/// The stamp of `files`, sorted by relative path.
pub(crate) fn stamp<'a>(
    cfg: &BuildConfig,
    files: impl Iterator<Item = &'a Path>,
) -> Vec<FileStamp> {
    let mut stamps: Vec<FileStamp> = files
        .map(|path| {
            let rel = path.strip_prefix(&cfg.input).unwrap_or(path);
            let rel = rel.to_string_lossy().into_owned();
            let Ok(file) = File::open(path) else {
                return (rel, 0, None, None);
            };
            let meta = file.metadata().ok();
            let size = meta.as_ref().map_or(0, |m| m.len());
            let mtime = meta
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            let crc = footer_crc(&file, size).ok().map(|(crc, _)| crc);
            (rel, size, mtime, crc)
        })
        .collect();
    stamps.sort_by(|a, b| a.0.cmp(&b.0));
    stamps
}

/// The build metadata stored in the spill file: only what does not vary between identical runs,
/// and nothing a skipped symbol could change (skips are reported in the summary instead).
pub(crate) fn build_metadata(plan: &Plan, cfg: &BuildConfig) -> Map<String, Value> {
    let stamp = stamp(cfg, plan.units.iter().map(|u| u.path.as_path()));
    let mut m = Map::new();
    m.insert("tool".into(), json!(TOOL));
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
    let answer = |current: bool, reason: String| UpToDate {
        path: cfg.output.clone(),
        current,
        reason,
    };
    let file = match spill::open(&cfg.output) {
        Ok(f) => f,
        Err(e)
            if e.io_error()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
        {
            return Ok(answer(false, "it does not exist".into()))
        }
        Err(e) => {
            return Ok(answer(
                false,
                format!("it does not open as a spill file: {e}"),
            ))
        }
    };
    let build = file.build_metadata();
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
    let universe = discover(&cfg.input)?;
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
    let now = serde_json::to_value(stamp(cfg, files_read)).unwrap_or(Value::Null);
    if Some(then) != now.as_array() {
        return Ok(answer(false, describe_change(then, &now)));
    }
    // Symbols it did not read: skipped then, and skipped again now?
    let others = Universe {
        symbols: universe
            .symbols
            .into_iter()
            .filter(|s| s.files.iter().any(|f| !read.contains(rel(f).as_str())))
            .collect(),
        broken: universe.broken,
    };
    if let Some(first) = others.symbols.first().map(|s| s.name.clone()) {
        let new = match cfg.on_error {
            OnError::Fail => Some(first),
            OnError::Skip => {
                let skip = BuildConfig {
                    on_error: OnError::Skip,
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
fn describe_change(then: &[Value], now: &Value) -> String {
    let path = |v: &Value| v.get(0).and_then(Value::as_str).unwrap_or("?").to_string();
    let now: std::collections::HashMap<String, &Value> = now
        .as_array()
        .map(|a| a.iter().map(|v| (path(v), v)).collect())
        .unwrap_or_default();
    for old in then {
        let name = path(old);
        match now.get(&name) {
            None => return format!("{name} is gone"),
            Some(new) if *new != old => {
                let what = match (old.get(1) != new.get(1), old.get(3) != new.get(3)) {
                    (true, _) => "its size",
                    (false, true) => "its footer",
                    (false, false) => "its modification time",
                };
                return format!("{name} changed ({what})");
            }
            Some(_) => {}
        }
    }
    "its inputs changed".into()
}

/// Refuses, before any work, an output that is a directory, one of the input files, or in a
/// directory that does not exist.
pub(crate) fn check_output(cfg: &BuildConfig, universe: &Universe) -> Result<()> {
    let out = &cfg.output;
    let bad = |why: String| {
        Err(Error::OutputPath(format!(
            "--output {}: {why}",
            out.display()
        )))
    };
    if out.is_dir() {
        return bad("is a directory".into());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return bad(format!("directory {} does not exist", parent.display()));
    }
    let Some(name) = out.file_name() else {
        return bad("has no file name".into());
    };
    // Compare real paths: `./u/A.parquet`, `u/../u/A.parquet` and a symlink are the same file.
    let Ok(real) = parent.canonicalize().map(|p| p.join(name)) else {
        return Ok(());
    };
    let real = real.canonicalize().unwrap_or(real);
    for f in universe.symbols.iter().flat_map(|s| &s.files) {
        if f.canonicalize().is_ok_and(|f| f == real) {
            return bad(format!("is one of the input files ({})", f.display()));
        }
    }
    Ok(())
}
