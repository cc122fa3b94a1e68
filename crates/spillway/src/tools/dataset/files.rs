//! A dataset's files wherever they are: shards described from their header and tail alone (a
//! footer read, in a bucket: never the data), plans checked, names made relative to the
//! manifest, and one client per bucket for all of them ([`Places`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::{bad, Access, FileEntry, Opened, SchemaColumn, ShardEntry};
use crate::cancel::Cancel;
use crate::config::StorageOptions;
use crate::error::{Error, Result};
use crate::plan::cs_file::{self, crc_text, Reader, PLAN_MAGIC};
use crate::publish::place::root_of;
use crate::publish::{is_url, Place, Scratch};

/// The places of a command's files, one client per bucket.
pub(crate) struct Places<'a> {
    storage: &'a StorageOptions,
    cancel: &'a Cancel,
    open: HashMap<String, Place>,
}

impl<'a> Places<'a> {
    pub(crate) fn new(storage: &'a StorageOptions, cancel: &'a Cancel) -> Places<'a> {
        Places {
            storage,
            cancel,
            open: HashMap::new(),
        }
    }

    /// Where `path` is (named `flag` in errors).
    pub(crate) fn of(&mut self, flag: &str, path: &Path) -> Result<Place> {
        let key = match is_url(path) {
            true => root_of(&path.to_string_lossy()).to_string(),
            false => String::new(),
        };
        if let Some(p) = self.open.get(&key) {
            return Ok(p.clone());
        }
        let p = Place::of(flag, path, self.storage, self.cancel)?;
        self.open.insert(key, p.clone());
        Ok(p)
    }
}

/// What any spill file says of itself, from its header and end alone: its entry (named `rel`),
/// build metadata, schema, row order and symbol names. What shards and collections share.
pub(crate) struct Member {
    pub(crate) entry: FileEntry,
    pub(crate) build: serde_json::Map<String, Value>,
    pub(crate) schema: Vec<SchemaColumn>,
    pub(crate) order: spill::Order,
    pub(crate) symbols: Vec<String>,
}

/// What the spill file at `path` says of itself, its entry named `rel` (a footer read).
pub(crate) fn open_file(place: &Place, path: &Path, rel: String) -> Result<Member> {
    let (len, trailer, meta) = place
        .describe(path)?
        .ok_or_else(|| bad(path, "the file is missing"))?;
    let schema = meta
        .columns
        .iter()
        .map(|c| SchemaColumn {
            name: c.name.clone(),
            dtype: c.dtype.name().to_string(),
            role: c.role.name().to_string(),
        })
        .collect();
    let int = |s: Option<spill::Scalar>| match s {
        Some(spill::Scalar::Int(v)) => Some(v),
        _ => None,
    };
    let time = meta.columns.first().map(|c| c.stats);
    let time_range = time.and_then(|s| Some([int(s.min)?, int(s.max)?]));
    Ok(Member {
        entry: FileEntry {
            path: rel,
            rows: meta.nrows,
            bytes: len,
            checksum: crc_text(trailer.metadata_checksum),
            time_range,
        },
        symbols: meta.symbols.into_iter().map(|s| s.name).collect(),
        build: meta.build,
        schema,
        order: meta.order,
    })
}

/// What the shard at `path` says of itself, its entry named `rel` (see [`open_file`]).
pub(crate) fn open_shard(place: &Place, path: &Path, rel: String) -> Result<Opened> {
    let m = open_file(place, path, rel)?;
    let shard = m
        .build
        .get("shard")
        .cloned()
        .ok_or_else(|| bad(path, "it is not a shard (built without --shard)"))?;
    let symbols = shard
        .get("symbols")
        .and_then(|v| serde_json::from_value::<[u64; 2]>(v.clone()).ok())
        .ok_or_else(|| bad(path, "its shard metadata has no symbol range"))?;
    Ok(Opened {
        entry: ShardEntry::new(m.entry, symbols),
        tool: m.build.get("tool").cloned().unwrap_or(Value::Null),
        options: m.build.get("options").cloned().unwrap_or(Value::Null),
        history: m.build.get("history").cloned(),
        stamp: m.build.get("inputs").and_then(|i| i.get("stamp")).cloned(),
        shard,
        schema: m.schema,
        names: m.symbols,
    })
}

/// The checksum of the plan at `path` (read whole, checked; fetched into `scratch` from a
/// bucket).
pub(crate) fn plan_checksum(place: &Place, path: &Path, scratch: &Scratch) -> Result<String> {
    let copy = place.local_copy(path, scratch)?;
    let local = copy.path.as_path();
    let err = |e: cs_file::CsFileError| Error::CsFile {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::File::open(local).map_err(|e| err(e.into()))?;
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

/// `path` relative to `dir` when it is inside it, else absolute (a URL as it is).
pub(crate) fn relative(path: &Path, dir: &Path) -> String {
    if is_url(path) || is_url(dir) {
        let (p, d) = (path.to_string_lossy(), dir.to_string_lossy());
        let d = format!("{}/", d.trim_end_matches('/'));
        return p.strip_prefix(&d).unwrap_or(&p).to_string();
    }
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (p, d) = (abs(path), abs(dir));
    p.strip_prefix(&d)
        .unwrap_or(&p)
        .to_string_lossy()
        .into_owned()
}

/// The directory of `path` (a URL's "directory" too).
pub(crate) fn dir_of(path: &Path) -> PathBuf {
    crate::output::parent(path)
}

/// `rel` (as a manifest stores it) under `dir`.
pub(crate) fn join(dir: &Path, rel: &str) -> PathBuf {
    if is_url(Path::new(rel)) || Path::new(rel).is_absolute() {
        return PathBuf::from(rel);
    }
    dir.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_relative_to_a_manifest() {
        let d = Path::new("s3://b/train/day");
        assert_eq!(
            relative(Path::new("s3://b/train/day/s-0.spill"), d),
            "s-0.spill"
        );
        assert_eq!(relative(Path::new("s3://b/x.spill"), d), "s3://b/x.spill");
        assert_eq!(
            join(d, "s-0.spill"),
            PathBuf::from("s3://b/train/day/s-0.spill")
        );
        assert_eq!(dir_of(Path::new("s3://b/train/day/dataset.json")), d);
        assert_eq!(root_of("s3://b/train/day"), "s3://b");
        assert_eq!(root_of("az://c"), "az://c");
    }
}

/// What a spill file says of itself, read from its header and end alone ([`describe_file`]).
#[derive(Debug, Clone, Serialize)]
pub struct Described {
    /// Its length.
    pub bytes: u64,
    /// `crc32:` of its metadata block (a manifest's `checksum`).
    pub checksum: String,
    /// Rows.
    pub nrows: u64,
    /// Its build metadata (options, shard, tool, semantics version...).
    pub metadata: serde_json::Map<String, Value>,
}

/// What the spill file at `path` (a path or a URL) says of itself, checked (header, trailer,
/// metadata checksum) but without reading its data: one or two reads of its end in a bucket.
pub fn describe_file(path: &Path, access: &Access, cancel: &Cancel) -> Result<Described> {
    let place = Place::of("spill file", path, &access.storage, cancel)?;
    let (bytes, trailer, meta) = place
        .describe(path)?
        .ok_or_else(|| bad(path, "no such file"))?;
    Ok(Described {
        bytes,
        checksum: crc_text(trailer.metadata_checksum),
        nrows: meta.nrows,
        metadata: meta.build,
    })
}
