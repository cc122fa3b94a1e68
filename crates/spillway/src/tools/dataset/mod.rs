//! A dataset's manifest, `dataset.json`: the commit point of a sharded build, or of a collection
//! of independent files, written last and atomically once every file is in place.
//!
//! A sharded build's (format 1.x) holds the format and version, the build options, the universe
//! (symbol count, names CRC, fingerprint of every file read), the cross-section plan (path and
//! checksum), the schema, and per shard its path (relative to the manifest), rows, bytes,
//! checksum, global symbol codes and time range. A shard's checksum is the CRC-32 of its metadata
//! block, as its trailer stores it: the metadata holds the CRC of every 4 MiB chunk of every
//! column, so it pins every byte, and it costs one read of the trailer to check (`verify` then
//! recomputes the chunks).
//!
//! [`manifest`] checks that the shards belong together before writing it: one universe, one
//! fingerprint, one plan, the same options and schema, and symbol ranges that tile the universe
//! in order. [`collection()`] writes the manifest of independent files with one schema (format
//! 2.x, `"kind": "collection"`: see [`Collection`]). [`verify_dataset`] re-checks either from the
//! files, and every chunk checksum.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cancel::Cancel;
use crate::config::{BuildConfig, StorageOptions};
use crate::error::{Error, Result};
use crate::input::source;
use crate::plan::cs_file::crc_text;
use crate::plan::shard::global;
use crate::publish::{is_url, Place, Scratch};

mod append;
mod collection;
mod commit;
mod compact;
mod files;
mod history_check;
mod timeline;
mod verify;

pub use append::{append, AppendOptions, AppendReport};
pub use collection::{collection, Collection, COLLECTION, COLLECTION_VERSION};
pub use commit::{clean_generations, generation_path, Cleaned};
pub use compact::{compact, CompactOptions, CompactReport};
pub use files::{describe_file, Described};
use files::{dir_of, open_shard, plan_checksum, relative, Places};
pub use history_check::Verdict;
use timeline::{cut_on, time_window};
pub use timeline::{HistoryRecord, SymbolHistory};
pub use verify::{verify_dataset, DatasetReport};

/// How a dataset command reaches its files and commits its manifest.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Options of the object store of URLs (shards, plans, the manifest).
    pub storage: StorageOptions,
    /// Where files fetched from a bucket are kept while they are checked (default: the
    /// temporary directory).
    pub scratch: Option<PathBuf>,
    /// Replace an existing manifest (kept as its generation); without it, an existing manifest
    /// of another dataset is refused.
    pub replace: bool,
}

/// The manifest's `format`.
pub const FORMAT: &str = "spillway-dataset";
/// The manifest version written (a reader refuses another major). 1.2 adds `order`.
pub const VERSION: [u16; 2] = [1, 2];
/// `order` of a dataset cut on symbols.
pub const ORDER_SYMBOL: &str = "symbol";
/// `order` of a dataset cut on time (`--order time --shard I/N`).
pub const ORDER_TIME: &str = "time";
/// Largest manifest read.
pub(crate) const MAX_MANIFEST: u64 = 64 << 20;

/// One column of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaColumn {
    /// Name.
    pub name: String,
    /// `f32`, `f64`, `i64`, `u32`...
    pub dtype: String,
    /// `time`, `symbol`, `target`, `feature`.
    pub role: String,
}

/// One spill file as a manifest lists it: what pins it (length, rows, metadata checksum) and
/// its time range. A collection's entry; a shard's adds its symbol codes ([`ShardEntry`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The spill file, relative to the manifest's directory.
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// File length.
    pub bytes: u64,
    /// `crc32:` of the metadata block (the trailer's `metadata_checksum`).
    pub checksum: String,
    /// Smallest and largest time (ns), `None` for an empty file.
    pub time_range: Option<[i64; 2]>,
}

impl FileEntry {
    /// The first field in which the file `now` differs from this entry, said plainly.
    fn difference(&self, now: &FileEntry) -> Option<String> {
        let range =
            |r: Option<[i64; 2]>| r.map_or("none".into(), |[a, b]| format!("[{a}, {b}] ns"));
        let field = |name: &str, then: String, now: String| {
            (then != now).then(|| format!("{name} is {now}, the manifest says {then}"))
        };
        field(
            "its length",
            format!("{} bytes", self.bytes),
            format!("{} bytes", now.bytes),
        )
        .or_else(|| field("its row count", self.rows.to_string(), now.rows.to_string()))
        .or_else(|| {
            field(
                "its metadata checksum",
                self.checksum.clone(),
                now.checksum.clone(),
            )
        })
        .or_else(|| {
            field(
                "its time range",
                range(self.time_range),
                range(now.time_range),
            )
        })
    }
}

/// One shard as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The spill file, relative to the manifest's directory.
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// File length.
    pub bytes: u64,
    /// `crc32:` of the metadata block (the trailer's `metadata_checksum`).
    pub checksum: String,
    /// Global symbol codes `[start, stop)`.
    pub symbols: [u64; 2],
    /// Smallest and largest time (ns), `None` for an empty shard.
    pub time_range: Option<[i64; 2]>,
}

impl ShardEntry {
    /// The entry of the file `f`, a shard of global symbol codes `symbols`.
    fn new(f: FileEntry, symbols: [u64; 2]) -> ShardEntry {
        ShardEntry {
            path: f.path,
            rows: f.rows,
            bytes: f.bytes,
            checksum: f.checksum,
            symbols,
            time_range: f.time_range,
        }
    }

    /// The file's part of the entry.
    fn file(&self) -> FileEntry {
        FileEntry {
            path: self.path.clone(),
            rows: self.rows,
            bytes: self.bytes,
            checksum: self.checksum.clone(),
            time_range: self.time_range,
        }
    }

    /// The first field in which the shard `now` differs from this entry, said plainly.
    fn difference(&self, now: &ShardEntry) -> Option<String> {
        let codes = |s: [u64; 2]| format!("symbols [{}, {})", s[0], s[1]);
        self.file().difference(&now.file()).or_else(|| {
            (self.symbols != now.symbols).then(|| {
                format!(
                    "its symbol range is {}, the manifest says {}",
                    codes(now.symbols),
                    codes(self.symbols)
                )
            })
        })
    }
}

/// The cross-section plan a dataset was filtered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRef {
    /// Path, relative to the manifest's directory.
    pub path: String,
    /// `crc32:` of the plan.
    pub checksum: String,
}

/// `dataset.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: [u16; 2],
    /// The tool that wrote the shards.
    pub tool: Value,
    /// The build options recorded by every shard (all equal).
    pub options: Value,
    /// Symbol count, names CRC and fingerprint of the universe.
    pub universe: Value,
    /// The plan, when filters needed one.
    pub cs_plan: Option<PlanRef>,
    /// The columns of every shard.
    pub schema: Vec<SchemaColumn>,
    /// Rows of all shards.
    pub nrows: u64,
    /// The shards, in row order: by symbols, or (`order` `"time"`) by time.
    pub shards: Vec<ShardEntry>,
    /// How the shards are cut: [`ORDER_SYMBOL`] (each a range of symbol codes, symbol-major
    /// rows) or [`ORDER_TIME`] (each a range of timestamps, time-major rows, every shard the
    /// whole symbol table). Absent before 1.2: by symbols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// A time-major dataset's history, for appends: per symbol its rows, their digest and its
    /// files, up to the last timestamp (absent for symbol-cut datasets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRecord>,
    /// The manifest's generation: 1 when first written, one more each time it is replaced (the
    /// one replaced is kept as `dataset.g<N>.json`). Absent in 1.0 manifests (generation 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

/// What one shard says of itself.
pub(crate) struct Opened {
    entry: ShardEntry,
    shard: Value,
    tool: Value,
    options: Value,
    schema: Vec<SchemaColumn>,
    /// Its symbol table.
    names: Vec<String>,
    /// A time shard's `history` and its inputs' `stamp` (see `timeline`).
    history: Option<Value>,
    stamp: Option<Value>,
}

impl Opened {
    /// Drops what only the newest shard's copy is read for (`timeline::history`): the inputs'
    /// stamp and the history's files. Each cut's shards list every file of the universe, so
    /// keeping them for every shard of a dataset grown by many appends would take memory
    /// growing with appends times files.
    fn slim(&mut self) {
        self.stamp = None;
        if let Some(h) = self.history.as_mut().and_then(Value::as_object_mut) {
            h.remove("files");
        }
    }
}

fn bad(path: &Path, what: impl Into<String>) -> Error {
    Error::Dataset {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// An error with its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

/// Where the manifest `output` goes, checked before anything is read: its place, and the path
/// it is written at (through a symlink, where the link points: entries are relative to that
/// directory). `inputs` are the files it is made of, `(flag, what, path)`: a local one must be
/// a regular file (`flag` names it in errors) and is never the output (`what` names it then).
fn prepare(
    places: &mut Places,
    output: &Path,
    inputs: &[(&str, &str, &Path)],
) -> Result<(Place, PathBuf)> {
    let place = places.of("--output", output)?;
    if place.is_remote() {
        return Ok((place, output.to_path_buf()));
    }
    let local: Vec<_> = inputs.iter().filter(|(_, _, p)| !is_url(p)).collect();
    for (flag, _, p) in &local {
        crate::input::regular_file(flag, p)?;
    }
    let reads: Vec<(&str, &Path)> = local.iter().map(|(_, what, p)| (*what, *p)).collect();
    let real = crate::output::check("--output", output, &reads)?;
    Ok((place, real))
}

/// Checks that `shards` (spill files built with `--shard`) form one dataset filtered by `cs_plan`,
/// and commits the manifest `output` (see `commit`: written last, in one request or rename;
/// an existing one replaced only with `access.replace`). Any of them may be URLs.
pub fn manifest(
    shards: &[PathBuf],
    cs_plan: Option<&Path>,
    output: &Path,
    access: &Access,
    cancel: &Cancel,
) -> Result<Manifest> {
    let mut places = Places::new(&access.storage, cancel);
    let mut inputs: Vec<(&str, &str, &Path)> = shards
        .iter()
        .map(|p| ("shard", "one of the shards", p.as_path()))
        .collect();
    inputs.extend(cs_plan.map(|p| ("--cs-plan", "the --cs-plan file", p)));
    let (out_place, output) = prepare(&mut places, output, &inputs)?;
    let dir = dir_of(&output);
    let mut opened = Vec::with_capacity(shards.len());
    for p in shards {
        let place = places.of("shard", p)?;
        opened.push(open_shard(&place, p, relative(p, &dir))?);
    }
    // Row order: symbol shards by their first code, time shards by their first time.
    opened.sort_by_key(|o| (o.entry.symbols[0], time_window(o).map(|[a, _]| a)));
    let plan = match cs_plan {
        Some(p) => {
            let scratch = Scratch::new(access.scratch.as_deref())?;
            let place = places.of("--cs-plan", p)?;
            Some(PlanRef {
                path: relative(p, &dir),
                checksum: plan_checksum(&place, p, &scratch)?,
            })
        }
        None => None,
    };
    let m = assemble(opened, plan, |i| shards[i].clone())?;
    match commit::commit(
        &out_place,
        &output,
        AnyManifest::Sharded(m),
        commit::Replace::when(access.replace),
    )? {
        AnyManifest::Sharded(m) => Ok(m),
        // `commit` returns the manifest there only when it equals this one.
        AnyManifest::Collection(_) => Err(Error::Internal(
            "committing a sharded manifest returned a collection".into(),
        )),
    }
}

/// The manifest of `opened` (in symbol order), after checking they belong together.
fn assemble(
    opened: Vec<Opened>,
    plan: Option<PlanRef>,
    path_of: impl Fn(usize) -> PathBuf,
) -> Result<Manifest> {
    let Some(first) = opened.first() else {
        return Err(Error::Config("a dataset needs at least one shard".into()));
    };
    let key = |o: &Opened| {
        (
            o.shard.get("universe").cloned(),
            o.shard.get("fingerprint").cloned(),
        )
    };
    let universe = first.shard.get("universe").cloned().unwrap_or(Value::Null);
    let total = universe.get("symbols").and_then(Value::as_u64).unwrap_or(0);
    let mut at = 0;
    for (i, o) in opened.iter().enumerate() {
        let p = PathBuf::from(&o.entry.path);
        let p = if p.is_absolute() { p } else { path_of(i) };
        // A time-major dataset grows by appends: each cut of shards is of its own universe
        // and may be of a newer spillway (`timeline::tile` checks them cut by cut).
        let time = time_window(first).is_some();
        if key(o) != key(first) && !time {
            return Err(bad(
                &p,
                format!(
                    "it is a shard of another universe (or of changed files) than {}",
                    first.entry.path
                ),
            ));
        }
        if o.options != first.options || o.schema != first.schema || (o.tool != first.tool && !time)
        {
            return Err(bad(
                &p,
                format!(
                    "it was built with other options, schema or tool than {}",
                    first.entry.path
                ),
            ));
        }
        let recorded = o.shard.get("cs_plan").and_then(Value::as_str);
        let wanted = plan.as_ref().map(|p| p.checksum.as_str());
        if recorded != wanted {
            return Err(bad(
                &p,
                format!(
                    "it was filtered by cross-section plan {}, the dataset's is {}",
                    recorded.unwrap_or("(none)"),
                    wanted.unwrap_or("(none)")
                ),
            ));
        }
        if time_window(o).is_some() != time_window(first).is_some() {
            return Err(bad(
                &p,
                format!(
                    "it is cut on {}, {} on {}: one dataset is cut one way",
                    cut_on(o),
                    first.entry.path,
                    cut_on(first)
                ),
            ));
        }
        if time_window(o).is_none() {
            let [a, b] = o.entry.symbols;
            if a != at {
                return Err(bad(&p, format!("its symbols start at {a}, the shards before end at {at} (a shard is missing or repeated)")));
            }
            at = b;
        }
    }
    let (order, history) = match time_window(first) {
        Some(_) => {
            timeline::tile(&opened, &path_of)?;
            (ORDER_TIME, timeline::history(&opened, &path_of)?)
        }
        None if at != total => {
            return Err(bad(
                &path_of(opened.len() - 1),
                format!("the shards cover symbols [0, {at}) of {total}: a shard is missing"),
            ))
        }
        None => (ORDER_SYMBOL, None),
    };
    // A time-major dataset's universe and tool are its newest cut's.
    let newest = opened.last().unwrap_or(first);
    let universe = match history {
        Some(_) => newest.shard.get("universe").cloned().unwrap_or(Value::Null),
        None => universe,
    };
    let mut universe = universe;
    if let Some(u) = universe.as_object_mut() {
        u.insert(
            "fingerprint".into(),
            newest
                .shard
                .get("fingerprint")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    Ok(Manifest {
        format: FORMAT.into(),
        version: VERSION,
        tool: newest.tool.clone(),
        options: first.options.clone(),
        universe,
        cs_plan: plan,
        schema: first.schema.clone(),
        nrows: opened.iter().map(|o| o.entry.rows).sum(),
        shards: opened.into_iter().map(|o| o.entry).collect(),
        order: Some(order.into()),
        history,
        generation: None,
    })
}

/// The universe `cfg.input` as its shards record it: `{"symbols", "names", "fingerprint"}` (the
/// fingerprint covers every file's relative path, size and footer CRC). Reads every footer.
pub fn universe(cfg: &BuildConfig) -> Result<Value> {
    let cancel = Cancel::new();
    let g = global(&source::universe(cfg, &cancel)?, cfg, &cancel)?;
    let u = g.universe();
    Ok(serde_json::json!({
        "symbols": u.symbols,
        "names": u.names,
        "fingerprint": crc_text(g.fingerprint()),
    }))
}

/// Reads and parses a manifest (capped, typed; another major version refused).
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let (bytes, _) = Place::local()
        .read(path, MAX_MANIFEST)
        .map_err(|e| bad(path, format!("cannot read: {e}")))?
        .ok_or_else(|| bad(path, "no such manifest"))?;
    parse_manifest(path, &bytes)
}

/// Parses the sharded dataset's manifest `bytes` read from `path` (named in errors): typed,
/// another major version refused (and a collection's: see [`parse_any_manifest`]). Untrusted
/// bytes: a bad manifest is an error, never a panic.
pub fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<Manifest> {
    match parse_any_manifest(path, bytes)? {
        AnyManifest::Sharded(m) => Ok(m),
        AnyManifest::Collection(_) => Err(bad(
            path,
            format!(
                "it is the manifest of a collection of independent files (kind {COLLECTION:?}), \
                 not of a sharded build"
            ),
        )),
    }
}

/// A manifest of either kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AnyManifest {
    /// A sharded build's (format 1.x, no `kind`).
    Sharded(Manifest),
    /// A collection of independent files' (format 2.x, `"kind": "collection"`).
    Collection(Collection),
}

impl AnyManifest {
    /// Its generation (`None`: never committed, or a 1.0 manifest, generation 1).
    pub fn generation(&self) -> Option<u64> {
        match self {
            AnyManifest::Sharded(m) => m.generation,
            AnyManifest::Collection(c) => c.generation,
        }
    }

    fn set_generation(&mut self, generation: Option<u64>) {
        match self {
            AnyManifest::Sharded(m) => m.generation = generation,
            AnyManifest::Collection(c) => c.generation = generation,
        }
    }

    /// The files it names, as it names them (relative to its directory): the spill files, then
    /// the plan.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            AnyManifest::Sharded(m) => m
                .shards
                .iter()
                .map(|s| s.path.as_str())
                .chain(m.cs_plan.iter().map(|p| p.path.as_str()))
                .collect(),
            AnyManifest::Collection(c) => c.files.iter().map(|f| f.path.as_str()).collect(),
        }
    }
}

/// Parses the manifest `bytes` read from `path` (named in errors), of either kind: 1.x is a
/// sharded build's, 2.x carries its `kind` (`collection`); another major or kind is refused.
/// Untrusted bytes: a bad manifest is an error, never a panic.
pub fn parse_any_manifest(path: &Path, bytes: &[u8]) -> Result<AnyManifest> {
    /// What decides how the rest is read.
    #[derive(Deserialize)]
    struct Head {
        format: String,
        version: [u16; 2],
        #[serde(default)]
        kind: Option<String>,
    }
    let not = |e: serde_json::Error| bad(path, format!("not a dataset manifest: {e}"));
    let h: Head = serde_json::from_slice(bytes).map_err(not)?;
    let kind = h.kind.as_deref();
    let ours = h.format == FORMAT;
    if ours && h.version[0] == VERSION[0] {
        return Ok(AnyManifest::Sharded(
            serde_json::from_slice(bytes).map_err(not)?,
        ));
    }
    if ours && h.version[0] == COLLECTION_VERSION[0] && kind == Some(COLLECTION) {
        return Ok(AnyManifest::Collection(
            serde_json::from_slice(bytes).map_err(not)?,
        ));
    }
    Err(bad(
        path,
        format!(
            "format {:?} version {:?}{} is not {FORMAT} {}.x (a sharded build's) or {}.x of \
             kind {COLLECTION:?}",
            h.format,
            h.version,
            kind.map_or(String::new(), |k| format!(" kind {k:?}")),
            VERSION[0],
            COLLECTION_VERSION[0]
        ),
    ))
}
