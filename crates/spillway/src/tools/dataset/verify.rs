//! `verify` of a dataset: every file against its entry in the manifest (length, metadata
//! checksum, rows, time range; a shard's symbol codes), with `chunks` every chunk checksum, then
//! the files together as the command that wrote the manifest checked them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::files::{dir_of, join, open_shard, plan_checksum, Places};
use super::{
    assemble, bad, chain, collection, parse_any_manifest, Access, AnyManifest, Manifest,
    COLLECTION, MAX_MANIFEST, ORDER_SYMBOL,
};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::publish::{Place, Scratch};

/// What [`verify_dataset`] found.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    /// The manifest.
    pub manifest: PathBuf,
    /// Its kind: `sharded` (a sharded build's) or `collection`.
    pub kind: String,
    /// Rows of all files.
    pub nrows: u64,
    /// Files checked (shards, or a collection's files).
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

/// Checks a whole dataset: the manifest, every file against its entry (length, metadata
/// checksum, rows, time range, a shard's symbols) and together (as [`super::manifest`] or
/// [`super::collection()`] does), a sharded build's plan checksum, and, when `chunks`, every chunk
/// checksum of every file (from a bucket: each downloaded into the scratch directory in turn,
/// checked and removed). Errors only when the manifest itself is bad or cannot be read.
pub fn verify_dataset(
    path: &Path,
    chunks: bool,
    access: &Access,
    cancel: &Cancel,
) -> Result<DatasetReport> {
    let mut places = Places::new(&access.storage, cancel);
    let place = places.of("manifest", path)?;
    let (bytes, _) = place
        .read(path, MAX_MANIFEST)?
        .ok_or_else(|| bad(path, "no such manifest"))?;
    let m = parse_any_manifest(path, &bytes)?;
    let (kind, nrows, files) = match &m {
        AnyManifest::Sharded(m) => ("sharded", m.nrows, m.shards.len()),
        AnyManifest::Collection(c) => (COLLECTION, c.nrows, c.files.len()),
    };
    let mut check = Check {
        dir: dir_of(path),
        places,
        scratch: Scratch::new(access.scratch.as_deref())?,
        chunks,
        report: DatasetReport {
            manifest: path.to_path_buf(),
            kind: kind.into(),
            nrows,
            shards: files,
            chunks: 0,
            problems: Vec::new(),
        },
    };
    match &m {
        AnyManifest::Sharded(m) => sharded(path, m, &mut check)?,
        AnyManifest::Collection(c) => collection::verify(path, c, &mut check)?,
    }
    Ok(check.report)
}

/// A sharded build's shards, plan and the shards together.
fn sharded(path: &Path, m: &Manifest, check: &mut Check) -> Result<()> {
    // Listed in row order: a time-major dataset's history takes its files from the last shard.
    let newest = m.shards.last().map(|e| e.path.clone());
    let open = |place: &Place, p: &Path, rel: String| {
        let last = Some(&rel) == newest.as_ref();
        let mut o = open_shard(place, p, rel)?;
        if !last {
            o.slim();
        }
        Ok(o)
    };
    let opened = check.files(
        "shard",
        &m.shards,
        |e| &e.path,
        open,
        |e, o| e.difference(&o.entry),
    )?;
    let dir = check.dir.clone();
    let report = &mut check.report;
    if let Some(plan) = &m.cs_plan {
        let p = join(&dir, &plan.path);
        let checked = check
            .places
            .of("plan", &p)
            .and_then(|place| plan_checksum(&place, &p, &check.scratch));
        match checked {
            Ok(c) if c == plan.checksum => {}
            Ok(c) => report.problems.push(format!(
                "{}: checksum {c}, the manifest says {}",
                plan.path, plan.checksum
            )),
            Err(e) => report.problems.push(chain(&e)),
        }
    }
    if report.problems.is_empty() {
        let paths: Vec<PathBuf> = m.shards.iter().map(|e| join(&dir, &e.path)).collect();
        match assemble(opened, m.cs_plan.clone(), |i| paths[i].clone()) {
            Ok(again)
                if again.nrows == m.nrows
                    && again.schema == m.schema
                    && again.options == m.options
                    && again.order.as_deref().unwrap_or(ORDER_SYMBOL)
                        == m.order.as_deref().unwrap_or(ORDER_SYMBOL) => {}
            Ok(_) => report.problems.push(format!(
                "{}: its totals, schema, options or order disagree with the shards",
                path.display()
            )),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    Ok(())
}

/// The state of one `verify_dataset`: where the manifest's files are, and what was found.
pub(crate) struct Check<'a> {
    /// The manifest's directory (entries are relative to it).
    pub(crate) dir: PathBuf,
    places: Places<'a>,
    scratch: Scratch,
    chunks: bool,
    /// What was found so far.
    pub(crate) report: DatasetReport,
}

impl Check<'_> {
    /// Opens the file of each of `entries` (named by `rel`; a `what` in errors) with `open`, and
    /// records where `differs` finds it unlike its entry, or (with `chunks`) a damaged chunk.
    /// Returns the files that could be opened.
    pub(crate) fn files<E, O>(
        &mut self,
        what: &str,
        entries: &[E],
        rel: impl Fn(&E) -> &String,
        open: impl Fn(&Place, &Path, String) -> Result<O>,
        differs: impl Fn(&E, &O) -> Option<String>,
    ) -> Result<Vec<O>> {
        let mut opened = Vec::with_capacity(entries.len());
        for e in entries {
            let p = join(&self.dir, rel(e));
            let place = self.places.of(what, &p)?;
            let o = match open(&place, &p, rel(e).clone()) {
                Ok(o) => o,
                Err(err) => {
                    self.report.problems.push(chain(&err));
                    continue;
                }
            };
            let diff = differs(e, &o);
            if let Some(diff) = &diff {
                self.report.problems.push(format!(
                    "{}: the file does not match the manifest: {diff}",
                    p.display()
                ));
            }
            if self.chunks && diff.is_none() {
                self.chunks_of(&place, &p);
            }
            opened.push(o);
        }
        Ok(opened)
    }

    /// Recomputes every chunk checksum of the file `p` (fetched into scratch from a bucket).
    fn chunks_of(&mut self, place: &Place, p: &Path) {
        let report = &mut self.report;
        let copy = place.local_copy(p, &self.scratch);
        match copy.and_then(|c| spill::open(&c.path).map_err(Error::Spill)) {
            Ok(f) => {
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
            Err(err) => report
                .problems
                .push(format!("{}: {}", p.display(), chain(&err))),
        }
    }
}
