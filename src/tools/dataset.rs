//! A sharded dataset's manifest, `dataset.json`: the commit point of a sharded build, written
//! last and atomically once every shard is in place.
//!
//! It holds the format and version, the build options, the universe (symbol count, names CRC,
//! fingerprint of every file read), the cross-section plan (path and checksum), the schema, and
//! per shard its path (relative to the manifest), rows, bytes, checksum, global symbol codes and
//! time range. A shard's checksum is the CRC-32 of its metadata block, as its trailer stores it:
//! the metadata holds the CRC of every 4 MiB chunk of every column, so it pins every byte, and it
//! costs one read of the trailer to check (`verify` then recomputes the chunks).
//!
//! [`manifest`] checks that the shards belong together before writing it: one universe, one
//! fingerprint, one plan, the same options and schema, and symbol ranges that tile the universe
//! in order. [`verify_dataset`] re-checks all of that from the files, and every chunk checksum.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cancel::Cancel;
use crate::config::BuildConfig;
use crate::error::{Error, Result};
use crate::input::source;
use crate::plan::cs_file::{self, crc_text, Reader, PLAN_MAGIC};
use crate::plan::shard::global;

use crate::output::{self, parent, write_atomic, writing};

/// The manifest's `format`.
pub const FORMAT: &str = "spillway-dataset";
/// The manifest version written (a reader refuses another major).
pub const VERSION: [u16; 2] = [1, 0];
/// Largest manifest read.
const MAX_MANIFEST: u64 = 64 << 20;

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
    /// The first field in which the file `now` differs from this entry, said plainly.
    fn difference(&self, now: &ShardEntry) -> Option<String> {
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
            let codes = |s: [u64; 2]| format!("symbols [{}, {})", s[0], s[1]);
            field("its symbol range", codes(self.symbols), codes(now.symbols))
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
    /// The shards, in symbol order.
    pub shards: Vec<ShardEntry>,
}

/// What one shard says of itself.
struct Opened {
    entry: ShardEntry,
    shard: Value,
    tool: Value,
    options: Value,
    schema: Vec<SchemaColumn>,
}

fn bad(path: &Path, what: impl Into<String>) -> Error {
    Error::Dataset {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// The trailer's `metadata_checksum` of a spill file (SPEC.md: trailer bytes 40..44).
fn metadata_crc(path: &Path, len: u64) -> Result<u32> {
    let file = File::open(path).map_err(|e| bad(path, format!("cannot open: {e}")))?;
    let mut b = [0u8; 4];
    file.read_exact_at(&mut b, len.saturating_sub(64) + 40)
        .map_err(|e| bad(path, format!("cannot read the trailer: {e}")))?;
    Ok(u32::from_le_bytes(b))
}

fn open_shard(path: &Path, rel: String) -> Result<Opened> {
    let f = spill::open(path).map_err(|e| bad(path, format!("not a valid spill file: {e}")))?;
    let build = f.build_metadata();
    let shard = build
        .get("shard")
        .cloned()
        .ok_or_else(|| bad(path, "it is not a shard (built without --shard)"))?;
    let symbols = shard
        .get("symbols")
        .and_then(|v| serde_json::from_value::<[u64; 2]>(v.clone()).ok())
        .ok_or_else(|| bad(path, "its shard metadata has no symbol range"))?;
    let schema = f
        .columns()
        .iter()
        .map(|c| SchemaColumn {
            name: c.name.clone(),
            dtype: c.dtype.name().to_string(),
            role: c.role.name().to_string(),
        })
        .collect();
    let time = f.columns().first().map(|c| c.stats);
    let int = |s: Option<spill::Scalar>| match s {
        Some(spill::Scalar::Int(v)) => Some(v),
        _ => None,
    };
    let time_range = time.and_then(|s| Some([int(s.min)?, int(s.max)?]));
    Ok(Opened {
        entry: ShardEntry {
            path: rel,
            rows: f.nrows(),
            bytes: f.file_len(),
            checksum: crc_text(metadata_crc(path, f.file_len())?),
            symbols,
            time_range,
        },
        tool: build.get("tool").cloned().unwrap_or(Value::Null),
        options: build.get("options").cloned().unwrap_or(Value::Null),
        shard,
        schema,
    })
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

/// The checksum of the plan at `path` (read whole, checked).
fn plan_checksum(path: &Path) -> Result<String> {
    let err = |e: cs_file::CsFileError| Error::CsFile {
        path: path.to_path_buf(),
        source: e,
    };
    let file = File::open(path).map_err(|e| err(e.into()))?;
    let len = file.metadata().map_err(|e| err(e.into()))?.len();
    let (mut r, v) = Reader::open(
        std::io::BufReader::new(file),
        len,
        PLAN_MAGIC,
        "cross-section plan",
    )
    .map_err(err)?;
    let h = cs_file::plan_header(v).map_err(err)?;
    r.fingerprints(h.universe.symbols).map_err(err)?;
    while r.next_threshold(h.universe.symbols).map_err(err)?.is_some() {}
    Ok(crc_text(r.finish().map_err(err)?))
}

/// `path` relative to `dir` when it is inside it, else absolute.
fn relative(path: &Path, dir: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (p, d) = (abs(path), abs(dir));
    p.strip_prefix(&d)
        .unwrap_or(&p)
        .to_string_lossy()
        .into_owned()
}

/// Checks that `shards` (spill files built with `--shard`) form one dataset filtered by `cs_plan`,
/// and writes the manifest `output` atomically (see the module docs).
pub fn manifest(shards: &[PathBuf], cs_plan: Option<&Path>, output: &Path) -> Result<Manifest> {
    for p in shards {
        crate::input::regular_file("shard", p)?;
    }
    if let Some(p) = cs_plan {
        crate::input::regular_file("--cs-plan", p)?;
    }
    let mut reads: Vec<(&str, &Path)> = shards
        .iter()
        .map(|p| ("one of the shards", p.as_path()))
        .collect();
    reads.extend(cs_plan.map(|p| ("the --cs-plan file", p)));
    // Through a symlink, the manifest is written where the link points, and shard paths are
    // relative to that directory.
    let output = &output::check("--output", output, &reads)?;
    let dir = parent(output);
    let mut opened = shards
        .iter()
        .map(|p| open_shard(p, relative(p, &dir)))
        .collect::<Result<Vec<_>>>()?;
    opened.sort_by_key(|o| o.entry.symbols[0]);
    let plan = match cs_plan {
        Some(p) => Some(PlanRef {
            path: relative(p, &dir),
            checksum: plan_checksum(p)?,
        }),
        None => None,
    };
    let m = assemble(opened, plan, |i| shards[i].clone())?;
    let io = writing(output);
    write_atomic(output, |w| {
        serde_json::to_writer_pretty(&mut *w, &m).map_err(|e| io(e.into()))?;
        std::io::Write::write_all(w, b"\n").map_err(&io)
    })?;
    Ok(m)
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
        if key(o) != key(first) {
            return Err(bad(
                &p,
                format!(
                    "it is a shard of another universe (or of changed files) than {}",
                    first.entry.path
                ),
            ));
        }
        if o.options != first.options || o.schema != first.schema || o.tool != first.tool {
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
        let [a, b] = o.entry.symbols;
        if a != at {
            return Err(bad(&p, format!("its symbols start at {a}, the shards before end at {at} (a shard is missing or repeated)")));
        }
        at = b;
    }
    if at != total {
        return Err(bad(
            &path_of(opened.len() - 1),
            format!("the shards cover symbols [0, {at}) of {total}: a shard is missing"),
        ));
    }
    let mut universe = universe;
    if let Some(u) = universe.as_object_mut() {
        u.insert(
            "fingerprint".into(),
            first
                .shard
                .get("fingerprint")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    Ok(Manifest {
        format: FORMAT.into(),
        version: VERSION,
        tool: first.tool.clone(),
        options: first.options.clone(),
        universe,
        cs_plan: plan,
        schema: first.schema.clone(),
        nrows: opened.iter().map(|o| o.entry.rows).sum(),
        shards: opened.into_iter().map(|o| o.entry).collect(),
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
    let len = std::fs::metadata(path)
        .map_err(|e| bad(path, format!("cannot read: {e}")))?
        .len();
    if len > MAX_MANIFEST {
        return Err(bad(
            path,
            format!("{len} bytes is too large for a manifest"),
        ));
    }
    let text = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| bad(path, format!("not a dataset manifest: {e}")))?;
    if m.format != FORMAT || m.version[0] != VERSION[0] {
        return Err(bad(
            path,
            format!(
                "format {:?} version {:?} is not {FORMAT} {}.x",
                m.format, m.version, VERSION[0]
            ),
        ));
    }
    Ok(m)
}

/// What [`verify_dataset`] found.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    /// The manifest.
    pub manifest: PathBuf,
    /// Rows of all shards.
    pub nrows: u64,
    /// Shards checked.
    pub shards: usize,
    /// Chunk checksums recomputed.
    pub chunks: u64,
    /// Every problem found (empty: the dataset is intact).
    pub problems: Vec<String>,
}

impl DatasetReport {
    /// Whether the dataset is intact.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a whole dataset: the manifest, every shard against its entry (length, metadata
/// checksum, rows, symbols) and together (as [`manifest`] does), the plan's checksum, and, when
/// `chunks`, every chunk checksum of every shard. Errors only when the manifest itself is bad.
pub fn verify_dataset(path: &Path, chunks: bool) -> Result<DatasetReport> {
    let m = read_manifest(path)?;
    let dir = parent(path);
    let mut report = DatasetReport {
        manifest: path.to_path_buf(),
        nrows: m.nrows,
        shards: m.shards.len(),
        chunks: 0,
        problems: Vec::new(),
    };
    let mut opened = Vec::new();
    for e in &m.shards {
        let p = dir.join(&e.path);
        let o = match open_shard(&p, e.path.clone()) {
            Ok(o) => o,
            Err(err) => {
                report.problems.push(chain(&err));
                continue;
            }
        };
        if let Some(diff) = e.difference(&o.entry) {
            report.problems.push(format!(
                "{}: the file does not match the manifest: {diff}",
                p.display()
            ));
        }
        if chunks {
            if let Ok(f) = spill::open(&p) {
                let r = f.verify();
                report.chunks += r.chunks;
                for d in r.damaged.iter().take(5) {
                    report.problems.push(format!(
                        "{}: column {:?} rows [{}, {}) is damaged",
                        p.display(),
                        d.column,
                        d.rows.start,
                        d.rows.end
                    ));
                }
            }
        }
        opened.push(o);
    }
    if let Some(plan) = &m.cs_plan {
        match plan_checksum(&dir.join(&plan.path)) {
            Ok(c) if c == plan.checksum => {}
            Ok(c) => report.problems.push(format!(
                "{}: checksum {c}, the manifest says {}",
                plan.path, plan.checksum
            )),
            Err(e) => report.problems.push(chain(&e)),
        }
    }
    if report.problems.is_empty() {
        let paths: Vec<PathBuf> = m.shards.iter().map(|e| dir.join(&e.path)).collect();
        match assemble(opened, m.cs_plan.clone(), |i| paths[i].clone()) {
            Ok(again)
                if again.nrows == m.nrows
                    && again.schema == m.schema
                    && again.options == m.options => {}
            Ok(_) => report.problems.push(format!(
                "{}: its totals, schema or options disagree with the shards",
                path.display()
            )),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    Ok(report)
}
