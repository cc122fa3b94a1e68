//! `spillway compact`: a time-major dataset's shards (the first build's cut and every append's)
//! merged into fewer, committed as the next manifest generation.
//!
//! 1. The manifest (a path or a URL) and every shard are read and checked as `verify` checks
//!    them (each file against its entry, then together: `timeline::tile`).
//! 2. The shards, in time order, are cut into `--shards` groups of consecutive shards balanced by
//!    rows (`plan::shard::split` of their row counts: a pure function of the manifest).
//! 3. Each group becomes one time shard: its shards' windows are disjoint and increasing, so its
//!    rows are their rows concatenated and its timestamp index their indexes concatenated. Every
//!    column is copied shard after shard with positioned reads through one buffer of [`PIECE`]
//!    bytes, each source chunk's CRC-32 checked as it passes (a damaged shard is refused), into
//!    a `spill::SpillWriter` (checksums, statistics and commit as for any build). Memory does not
//!    depend on the dataset: the buffer, the writer's staging, and the metadata of one group's
//!    shards. In a bucket each shard is fetched into the scratch directory in turn, and the new
//!    shard built there and uploaded.
//! 4. The new shards are one cut: the newest shard's symbol table (codes are kept: every older
//!    table is a prefix of it), tool, options and inputs, no `after`, and per symbol the rows and
//!    digests of their group summed (digests are sums of row hashes, so they add up), the files
//!    the newest cut read. The dataset's history (totals, newest files, last timestamp) is
//!    therefore unchanged, and so is what an append checks against; it is compared before the
//!    commit. The manifest is committed over the generation read, like an append's; the old
//!    shards stay for the generations that name them (`spillway clean --keep-generations`).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use serde_json::{json, Map, Value};
use spill::{ColumnSpec, DType, Element, Layout, Metadata, SpillWriter, Symbol, Timestamps};

use super::commit::{self, Replace};
use super::files::{dir_of, join, open_shard, Places};
use super::timeline::{read_time_dataset, time_window};
use super::{assemble, bad, Access, AnyManifest, Manifest};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::plan::cs_file::crc_text;
use crate::plan::shard::split;
use crate::publish::{Place, Scratch};
use crate::report::progress::Progress;

/// Bytes copied at a time (a power of two, so chunk boundaries fall on piece boundaries or
/// pieces on chunk boundaries).
const PIECE: usize = 4 << 20;

/// How to compact.
#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    /// Shards of the compacted dataset (at least 1, at most the shards it has).
    pub shards: u32,
}

/// What a compaction did.
#[derive(Debug, Clone, Serialize)]
pub struct CompactReport {
    /// The manifest.
    pub manifest: PathBuf,
    /// Its generation now (the one read, when nothing was compacted).
    pub generation: u64,
    /// Whether new shards were written and committed (not when the dataset already was one
    /// cut of that many shards).
    pub compacted: bool,
    /// Shards before.
    pub before: usize,
    /// The new shards, relative to the manifest.
    pub shards: Vec<String>,
    /// Rows of the dataset (unchanged).
    pub rows: u64,
    /// Bytes written (the new shards).
    pub bytes: u64,
    /// Seconds, all told.
    pub seconds: f64,
    /// The process's peak resident set (VmHWM), where the platform reports it.
    pub peak_rss_bytes: Option<u64>,
}

/// One shard of the dataset, as the grouping sees it.
struct Source {
    path: PathBuf,
    rows: u64,
    window: [i64; 2],
    checksum: String,
}

/// Merges the shards of the time-major dataset `manifest` into `how.shards` time shards and
/// commits them as its next generation (see the module docs).
pub fn compact(
    manifest: &Path,
    how: &CompactOptions,
    access: &Access,
    progress: &Progress,
    cancel: &Cancel,
) -> Result<CompactReport> {
    let t0 = Instant::now();
    if how.shards == 0 {
        return Err(Error::Config("--shards must be at least 1".into()));
    }
    let mut places = Places::new(&access.storage, cancel);
    let (place, m) = read_time_dataset(
        &mut places,
        manifest,
        "compact merges the time shards of a dataset built with `spillway build --order time --shard I/N` and grown by `spillway append`; a dataset cut on symbols has no timeline to merge along",
    )?;
    let base = m.generation.unwrap_or(1);
    let dir = dir_of(manifest);

    // The shards as the manifest names them, each checked against its entry, then together.
    progress.phase("compact: checking the shards");
    let (sources, one_cut, with_history) = {
        let mut opened = Vec::with_capacity(m.shards.len());
        for (i, e) in m.shards.iter().enumerate() {
            let p = join(&dir, &e.path);
            let mut o = open_shard(&place, &p, e.path.clone())?;
            if let Some(diff) = e.difference(&o.entry) {
                return Err(bad(
                    &p,
                    format!("it changed since the manifest was written: {diff}"),
                ));
            }
            // The dataset's history takes its files from the newest shard alone: the others'
            // (every file of the universe, as each cut read it) would only fill the memory.
            if i + 1 < m.shards.len() {
                o.stamp = None;
                if let Some(h) = o.history.as_mut().and_then(Value::as_object_mut) {
                    h.remove("files");
                }
            }
            opened.push(o);
        }
        let mut sources = Vec::with_capacity(opened.len());
        for (o, e) in opened.iter().zip(&m.shards) {
            let path = join(&dir, &e.path);
            let window = time_window(o)
                .ok_or_else(|| bad(&path, "it records no time window (not a time shard)"))?;
            sources.push(Source {
                path,
                rows: e.rows,
                window,
                checksum: e.checksum.clone(),
            });
        }
        let one_cut = opened.iter().all(|o| o.shard.get("after").is_none());
        let with_history = opened.iter().all(|o| o.history.is_some());
        let paths: Vec<PathBuf> = sources.iter().map(|s| s.path.clone()).collect();
        let again = assemble(opened, m.cs_plan.clone(), |i| paths[i].clone())?;
        same_dataset(manifest, &m, &again)?;
        (sources, one_cut, with_history)
    };

    let n = how.shards as usize;
    let mut report = CompactReport {
        manifest: manifest.to_path_buf(),
        generation: base,
        compacted: false,
        before: sources.len(),
        shards: Vec::new(),
        rows: m.nrows,
        bytes: 0,
        seconds: 0.0,
        peak_rss_bytes: None,
    };
    if one_cut && sources.len() == n {
        report.shards = m.shards.iter().map(|s| s.path.clone()).collect();
        report.seconds = t0.elapsed().as_secs_f64();
        report.peak_rss_bytes = crate::report::rss::peak_rss_bytes();
        return Ok(report);
    }
    let rows: Vec<u64> = sources.iter().map(|s| s.rows).collect();
    let groups = split(&rows, n).ok_or_else(|| {
        Error::Config(format!(
            "--shards {n}: the dataset has {} shards; compact merges them into fewer (at most {})",
            sources.len(),
            sources.len()
        ))
    })?;

    // The newest shard: the symbol table, schema and build metadata every new shard takes.
    let newest = sources
        .last()
        .ok_or_else(|| bad(manifest, "it lists no shard"))?;
    let (_, _, newest_meta) = place
        .describe(&newest.path)?
        .ok_or_else(|| bad(&newest.path, "the file is missing"))?;
    let template = Template::of(&newest.path, &newest_meta, with_history)?;

    let generation = base + 1;
    let key = {
        let mut h = crc32fast::Hasher::new();
        h.update(&base.to_le_bytes());
        h.update(&(n as u64).to_le_bytes());
        for s in &sources {
            h.update(s.checksum.as_bytes());
        }
        h.finalize()
    };
    let scratch = Scratch::new(access.scratch.as_deref())?;
    let mut written = Written {
        place: place.clone(),
        files: Vec::new(),
        keep: false,
    };
    for (i, group) in groups.iter().enumerate() {
        let name = format!("compact-g{generation}-{i:05}-of-{n:05}-{key:08x}.spill");
        if m.shards.iter().any(|s| s.path == name) {
            return Err(bad(
                manifest,
                format!("it already names {name}: the dataset is not the one this compaction read"),
            ));
        }
        progress.phase(&format!(
            "compact: writing shard {i}/{n} from {} shards",
            group.len()
        ));
        let target = join(&dir, &name);
        let group = &sources[group.clone()];
        let scope = format!("{i}/{n}");
        let len = if place.is_remote() {
            let tmp = scratch.temp(&name)?;
            let len = write_group(&place, &scratch, group, &template, &scope, &tmp, cancel)?;
            progress.phase(&format!("uploading {}", target.display()));
            written.files.push(target.clone());
            place.upload(&tmp, &target)?;
            len
        } else {
            crate::output::check("--output", &target, &[])?;
            written.files.push(target.clone());
            write_group(&place, &scratch, group, &template, &scope, &target, cancel)?
        };
        report.bytes += len;
        report.shards.push(name);
    }

    // The new manifest, checked as `manifest` checks any: one cut, the same rows and history.
    progress.phase("compact: committing the manifest");
    let mut opened = Vec::with_capacity(report.shards.len());
    for name in &report.shards {
        opened.push(open_shard(&place, &join(&dir, name), name.clone())?);
    }
    let paths: Vec<PathBuf> = report.shards.iter().map(|s| join(&dir, s)).collect();
    let merged = assemble(opened, m.cs_plan.clone(), |i| paths[i].clone())?;
    if merged.nrows != m.nrows || merged.schema != m.schema || merged.history != m.history {
        return Err(Error::Internal(format!(
            "{}: the compacted shards disagree with the dataset (rows, schema or history); \
             nothing was committed",
            manifest.display()
        )));
    }
    let committed = commit::commit(
        &place,
        manifest,
        AnyManifest::Sharded(merged),
        Replace::Generation(base),
    )?;
    written.keep = true;
    report.generation = committed.generation().unwrap_or(generation);
    report.compacted = true;
    report.seconds = t0.elapsed().as_secs_f64();
    report.peak_rss_bytes = crate::report::rss::peak_rss_bytes();
    Ok(report)
}

/// Checks that the shards (`again`, assembled from them) are the dataset the manifest `m`
/// describes.
fn same_dataset(manifest: &Path, m: &Manifest, again: &Manifest) -> Result<()> {
    if again.nrows != m.nrows || again.schema != m.schema || again.history != m.history {
        return Err(bad(
            manifest,
            "its totals, schema or history disagree with its shards: run `spillway verify` on it",
        ));
    }
    Ok(())
}

/// The new shards written so far: removed unless the manifest naming them was committed.
struct Written {
    place: Place,
    files: Vec<PathBuf>,
    keep: bool,
}

impl Drop for Written {
    fn drop(&mut self) {
        if !self.keep {
            for f in &self.files {
                let _ = self.place.delete(f);
            }
        }
    }
}

/// What every new shard takes from the newest shard.
struct Template {
    /// Its columns (the dataset's schema, with the time zone).
    columns: Vec<ColumnSpec>,
    /// Its symbol table.
    names: Vec<String>,
    chunk_bytes: u64,
    /// `tool`, `semantics_version`, `options`, `inputs`.
    build: Map<String, Value>,
    /// Its `shard` record (scope, time and `after` are each new shard's own).
    shard: Map<String, Value>,
    /// Its `history.files`, when every shard records a history.
    files: Option<Value>,
}

impl Template {
    /// What the newest shard (`meta`, at `path`) gives every new shard; its history's files
    /// only `with_history` (every shard of the dataset records a history).
    fn of(path: &Path, meta: &Metadata, with_history: bool) -> Result<Template> {
        let mut build = Map::new();
        for key in ["tool", "semantics_version", "options", "inputs"] {
            if let Some(v) = meta.build.get(key) {
                build.insert(key.into(), v.clone());
            }
        }
        let mut shard = meta
            .build
            .get("shard")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| bad(path, "it is not a shard (built without --shard)"))?;
        shard.remove("after");
        let files = match with_history {
            true => Some(
                meta.build
                    .get("history")
                    .and_then(|h| h.get("files"))
                    .cloned()
                    .ok_or_else(|| bad(path, "its recorded history has no files"))?,
            ),
            false => None,
        };
        Ok(Template {
            columns: meta
                .columns
                .iter()
                .map(|c| {
                    ColumnSpec::new(&c.name, c.dtype, c.role).with_timezone(c.timezone.clone())
                })
                .collect(),
            names: meta.symbols.iter().map(|s| s.name.clone()).collect(),
            chunk_bytes: meta.chunk_bytes,
            build,
            shard,
            files,
        })
    }

    /// The build metadata of the new shard `scope` of `group`, whose recorded histories summed
    /// are `history` (rows and digests per symbol code).
    fn build(
        &self,
        scope: &str,
        group: &[Source],
        history: Option<(Vec<u64>, Vec<u64>)>,
    ) -> Map<String, Value> {
        let mut shard = self.shard.clone();
        shard.insert("scope".into(), json!(scope));
        shard.insert("symbols".into(), json!([0, self.names.len()]));
        let first = group.first().map_or(0, |s| s.window[0]);
        let last = group.last().map_or(0, |s| s.window[1]);
        shard.insert("time".into(), json!([first, last]));
        let mut build = self.build.clone();
        build.insert("shard".into(), Value::Object(shard));
        if let (Some(files), Some((rows, digests))) = (&self.files, history) {
            build.insert(
                "history".into(),
                json!({
                    "rows": rows,
                    "digests": digests.iter().map(|d| format!("{d:016x}")).collect::<Vec<_>>(),
                    "files": files,
                }),
            );
        }
        build
    }
}

/// Adds the rows and digests per symbol code that the shard `meta` (at `path`) records to
/// `rows` and `digests` (the newest table's length: an older table is shorter, its later codes
/// have none there).
fn add_history(path: &Path, meta: &Metadata, rows: &mut [u64], digests: &mut [u64]) -> Result<()> {
    let wrong = || bad(path, "its recorded history does not match its symbol table");
    let h = meta.build.get("history").ok_or_else(wrong)?;
    let r: Vec<u64> = serde_json::from_value(h["rows"].clone()).map_err(|_| wrong())?;
    let d: Vec<String> = serde_json::from_value(h["digests"].clone()).map_err(|_| wrong())?;
    if r.len() != meta.symbols.len() || d.len() != r.len() || r.len() > rows.len() {
        return Err(wrong());
    }
    for (code, (r, d)) in r.iter().zip(&d).enumerate() {
        rows[code] += r;
        let d = u64::from_str_radix(d, 16).map_err(|_| wrong())?;
        digests[code] = digests[code].wrapping_add(d);
    }
    Ok(())
}

/// Writes the shards `group` (in time order) as one time shard `scope` at `out` (a local path);
/// returns its length.
fn write_group(
    place: &Place,
    scratch: &Scratch,
    group: &[Source],
    template: &Template,
    scope: &str,
    out: &Path,
    cancel: &Cancel,
) -> Result<u64> {
    let nsym = template.names.len();
    let mut history = template
        .files
        .as_ref()
        .map(|_| (vec![0u64; nsym], vec![0u64; nsym]));
    let mut metas = Vec::with_capacity(group.len());
    for s in group {
        let (_, trailer, mut meta) = place
            .describe(&s.path)?
            .ok_or_else(|| bad(&s.path, "the file is missing"))?;
        if crc_text(trailer.metadata_checksum) != s.checksum || meta.nrows != s.rows {
            return Err(bad(
                &s.path,
                "it changed while the dataset was being compacted",
            ));
        }
        same_columns(&s.path, &meta, template)?;
        if let Some((rows, digests)) = &mut history {
            add_history(&s.path, &meta, rows, digests)?;
        }
        // From here the copy needs the columns and the index alone. A shard's build metadata
        // lists every file its cut read (`inputs.stamp`): kept for every shard of a dataset grown
        // by many appends to a hive universe, it would grow with the square of the appends.
        meta.build = Map::new();
        meta.symbols = Vec::new();
        metas.push(meta);
    }
    let nrows: u64 = group.iter().map(|s| s.rows).sum();
    let counts = metas
        .iter()
        .flat_map(|m| m.timestamps.iter().flat_map(|t| t.iter()))
        .map(|(t, rows)| (t, rows.end - rows.start));
    let timestamps = Timestamps::from_counts(counts)?;
    let mut symbols: Vec<Symbol> = template
        .names
        .iter()
        .map(|name| Symbol {
            name: name.clone(),
            start: nrows,
            stop: nrows,
        })
        .collect();
    // Ranges that tile the rows (`with_time_order` drops them).
    if let Some(s) = symbols.first_mut() {
        s.start = 0;
    }
    let layout = Layout::new(nrows, template.columns.clone(), symbols)?
        .with_chunk_bytes(template.chunk_bytes)?
        .with_time_order(timestamps)?;
    let build = template.build(scope, group, history);
    let mut w = SpillWriter::create(out, layout, spill::WriteOptions::default())?;
    let mut buf = vec![0u64; PIECE / 8];
    let mut at = 0;
    for (s, meta) in group.iter().zip(&metas) {
        let copy = place.local_copy(&s.path, scratch)?;
        copy_shard(&mut w, &copy.path, &s.path, meta, at, &mut buf, cancel)?;
        at += meta.nrows;
    }
    cancel.check()?;
    Ok(w.finish(build)?.file_len)
}

/// Checks that the shard at `path` has the columns (names, dtypes, roles, in order) and a
/// prefix of the symbol table of the newest shard.
fn same_columns(path: &Path, meta: &Metadata, template: &Template) -> Result<()> {
    let same = meta.columns.len() == template.columns.len()
        && meta
            .columns
            .iter()
            .zip(&template.columns)
            .all(|(a, b)| a.name == b.name && a.dtype == b.dtype && a.role == b.role);
    if !same {
        return Err(bad(path, "its columns are not the newest shard's"));
    }
    let prefix = meta.symbols.len() <= template.names.len()
        && meta
            .symbols
            .iter()
            .zip(&template.names)
            .all(|(s, n)| &s.name == n);
    if !prefix {
        return Err(bad(
            path,
            "its symbol table does not begin the newest shard's (codes must be kept)",
        ));
    }
    Ok(())
}

/// Copies every column of the shard `meta` (read from the local file `local`, named `named` in
/// errors) into `w` from row `at`, through `buf`, checking each chunk's CRC-32 as it passes.
fn copy_shard(
    w: &mut SpillWriter,
    local: &Path,
    named: &Path,
    meta: &Metadata,
    at: u64,
    buf: &mut [u64],
    cancel: &Cancel,
) -> Result<()> {
    let file = File::open(local).map_err(|e| Error::io("opening", named, e))?;
    let chunk = meta.chunk_bytes;
    for (c, col) in meta.columns.iter().enumerate() {
        let size = col.dtype.size();
        let (mut done, mut k) = (0u64, 0usize);
        let mut crc = crc32fast::Hasher::new();
        while done < col.length {
            cancel.check()?;
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut *buf);
            let n = (col.length - done).min(bytes.len() as u64) as usize;
            let bytes = &mut bytes[..n];
            file.read_exact_at(bytes, col.offset + done)
                .map_err(|e| Error::io("reading", named, e))?;
            // The piece, cut at chunk boundaries: each chunk's CRC is checked once it ends.
            let mut off = 0usize;
            while off < n {
                let end = ((k as u64 + 1) * chunk).min(col.length);
                let take = (end - (done + off as u64)).min((n - off) as u64) as usize;
                crc.update(&bytes[off..off + take]);
                off += take;
                if done + off as u64 == end {
                    let got = std::mem::replace(&mut crc, crc32fast::Hasher::new()).finalize();
                    if col.checksums.get(k) != Some(&got) {
                        let rows = [k as u64 * chunk / size, end / size];
                        return Err(bad(
                            named,
                            format!(
                                "column {:?} rows [{}, {}) is damaged (chunk {k}: its CRC-32 is \
                                 {got:08x}, the file records another): nothing was compacted; \
                                 `spillway verify --deep` lists the damage",
                                col.name, rows[0], rows[1]
                            ),
                        ));
                    }
                    k += 1;
                }
            }
            put(w, c, at + done / size, col.dtype, bytes)?;
            done += n as u64;
        }
    }
    Ok(())
}

/// Writes `bytes` (values of `dtype`, 8-byte aligned) to column `col` of `w` from row `row`.
fn put(w: &mut SpillWriter, col: usize, row: u64, dtype: DType, bytes: &[u8]) -> Result<()> {
    fn typed<T: Element>(w: &mut SpillWriter, col: usize, row: u64, bytes: &[u8]) -> Result<()> {
        Ok(w.write::<T>(col, row, bytemuck::cast_slice(bytes))?)
    }
    match dtype {
        DType::F32 => typed::<f32>(w, col, row, bytes),
        DType::F64 => typed::<f64>(w, col, row, bytes),
        DType::I64 => typed::<i64>(w, col, row, bytes),
        DType::I32 => typed::<i32>(w, col, row, bytes),
        DType::U32 => typed::<u32>(w, col, row, bytes),
        DType::U8 => typed::<u8>(w, col, row, bytes),
        other => Err(Error::Internal(format!(
            "compact: no copy for dtype {other:?}"
        ))),
    }
}
