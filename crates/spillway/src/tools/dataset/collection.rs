//! A collection: independent spill files with one schema (two days built apart, say), read as one
//! dataset, and its manifest ([`Collection`]).
//!
//! Unlike a sharded build's shards, the files need not share a universe, a plan, options or a
//! symbol table: only their columns (names, dtypes and roles, in the same order) and their row
//! order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{dir_of, join, open_file, relative, Member, Places};
use super::verify::Check;
use super::{bad, commit, prepare, Access, AnyManifest, FileEntry, SchemaColumn, FORMAT};
use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// A collection manifest's `kind`.
pub const COLLECTION: &str = "collection";
/// The version of the collection manifests written (a reader refuses another major).
pub const COLLECTION_VERSION: [u16; 2] = [2, 0];

/// `dataset.json` of a collection of independent files with one schema.
///
/// Format 2.0, so that a 1.x reader, which would read the codes of every file against one symbol
/// table, refuses it. It holds `kind: "collection"`, the files' row `order`, their `schema`, the
/// rows of all files (`nrows`), per file what pins it (path relative to the manifest, rows,
/// bytes, metadata checksum, time range: a [`FileEntry`], as a shard's), and `symbols`, the
/// union of the files' symbol tables: names in order of first appearance across the files, in
/// their order. A reader maps each file's codes to the union by name, from the file's own symbol
/// table, so the manifest holds nothing more per file. Rows are numbered across the files in the
/// manifest's order (the order they were given in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// [`FORMAT`].
    pub format: String,
    /// [`COLLECTION_VERSION`].
    pub version: [u16; 2],
    /// [`COLLECTION`].
    pub kind: String,
    /// The files' row order: `symbol` or `time`(-major).
    pub order: String,
    /// The columns of every file.
    pub schema: Vec<SchemaColumn>,
    /// Rows of all files.
    pub nrows: u64,
    /// The files, in the order their rows are numbered.
    pub files: Vec<FileEntry>,
    /// The union symbol table: every file's symbol names, in order of first appearance across
    /// the files in their order.
    pub symbols: Vec<String>,
    /// The manifest's generation, as a sharded build's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
}

/// Checks that `files` (spill files, paths or URLs) have one schema and row order, and commits
/// their collection manifest `output`, files in the order given, as [`super::manifest`] commits
/// a sharded build's (written last, in one request or rename; an existing manifest replaced
/// only with `access.replace`).
pub fn collection(
    files: &[PathBuf],
    output: &Path,
    access: &Access,
    cancel: &Cancel,
) -> Result<Collection> {
    let mut places = Places::new(&access.storage, cancel);
    let inputs: Vec<(&str, &str, &Path)> = files
        .iter()
        .map(|p| ("file", "one of the files", p.as_path()))
        .collect();
    let (out_place, output) = prepare(&mut places, output, &inputs)?;
    let dir = dir_of(&output);
    let mut members = Vec::with_capacity(files.len());
    for p in files {
        let place = places.of("file", p)?;
        members.push(open_file(&place, p, relative(p, &dir))?);
    }
    let c = assemble(members, |i| files[i].clone())?;
    match commit::commit(
        &out_place,
        &output,
        AnyManifest::Collection(c),
        commit::Replace::when(access.replace),
    )? {
        AnyManifest::Collection(c) => Ok(c),
        // `commit` returns the manifest there only when it equals this one.
        AnyManifest::Sharded(_) => Err(Error::Internal(
            "committing a collection returned a sharded manifest".into(),
        )),
    }
}

/// The manifest of `members` (in their order; the `i`th named `path_of(i)` in errors), after
/// checking that they share one schema and order and that none is listed twice.
fn assemble(members: Vec<Member>, path_of: impl Fn(usize) -> PathBuf) -> Result<Collection> {
    let Some(first) = members.first() else {
        return Err(Error::Config("a collection needs at least one file".into()));
    };
    let name = path_of(0).display().to_string();
    let refuse = |i: usize, column: Option<String>, what: String| Error::CollectionSchema {
        path: path_of(i),
        first: path_of(0),
        column,
        what,
    };
    for (i, m) in members.iter().enumerate().skip(1) {
        if let Some((column, what)) = schema_difference(&first.schema, &m.schema, &name) {
            return Err(refuse(i, Some(column), what));
        }
        if m.order != first.order {
            let what = format!(
                "its rows are {}-major, those of {name} {}-major",
                m.order.name(),
                first.order.name()
            );
            return Err(refuse(i, None, what));
        }
        if let Some(j) = members[..i]
            .iter()
            .position(|o| o.entry.path == m.entry.path)
        {
            return Err(bad(
                &path_of(i),
                format!("it is listed twice (as file {j} and {i}) in one collection"),
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut symbols = Vec::new();
    for s in members.iter().flat_map(|m| &m.symbols) {
        if seen.insert(s.as_str()) {
            symbols.push(s.clone());
        }
    }
    Ok(Collection {
        format: FORMAT.into(),
        version: COLLECTION_VERSION,
        kind: COLLECTION.into(),
        order: first.order.name().into(),
        schema: first.schema.clone(),
        nrows: members.iter().map(|m| m.entry.rows).sum(),
        files: members.into_iter().map(|m| m.entry).collect(),
        symbols,
        generation: None,
    })
}

/// The first column in which `other` differs from `first` (the columns of the file `name`), by
/// position: its name, and how it differs, said plainly.
fn schema_difference(
    first: &[SchemaColumn],
    other: &[SchemaColumn],
    name: &str,
) -> Option<(String, String)> {
    let show = |c: &SchemaColumn| format!("{:?} ({}, {})", c.name, c.dtype, c.role);
    (0..first.len().max(other.len())).find_map(|i| match (first.get(i), other.get(i)) {
        (Some(a), Some(b)) if a != b => Some((
            b.name.clone(),
            format!(
                "its column {i} is {}, where {name} has {}",
                show(b),
                show(a)
            ),
        )),
        (None, Some(b)) => Some((
            b.name.clone(),
            format!(
                "it has an extra column {} (column {i}) that {name} lacks",
                show(b)
            ),
        )),
        (Some(a), None) => Some((
            a.name.clone(),
            format!("it lacks column {} (column {i}) that {name} has", show(a)),
        )),
        _ => None,
    })
}

/// `verify_dataset` of a collection: every file against its entry, then the files together
/// against the manifest's schema, order, union symbol table and rows.
pub(crate) fn verify(path: &Path, c: &Collection, check: &mut Check) -> Result<()> {
    let members = check.files(
        "file",
        &c.files,
        |e| &e.path,
        open_file,
        |e, m| e.difference(&m.entry),
    )?;
    if !check.report.problems.is_empty() {
        return Ok(());
    }
    let paths: Vec<PathBuf> = c.files.iter().map(|e| join(&check.dir, &e.path)).collect();
    match assemble(members, |i| paths[i].clone()) {
        Ok(again)
            if again.schema == c.schema
                && again.order == c.order
                && again.symbols == c.symbols
                && again.nrows == c.nrows => {}
        Ok(_) => check.report.problems.push(format!(
            "{}: its schema, order, symbols or row count disagree with the files",
            path.display()
        )),
        Err(e) => check.report.problems.push(e.to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, dtype: &str, role: &str) -> SchemaColumn {
        SchemaColumn {
            name: name.into(),
            dtype: dtype.into(),
            role: role.into(),
        }
    }

    #[test]
    fn the_first_differing_column_is_named() {
        let a = vec![col("ts", "i64", "time"), col("f0", "f64", "feature")];
        let diff = |a: &[SchemaColumn], b: &[SchemaColumn]| schema_difference(a, b, "a.spill");
        assert_eq!(diff(&a, &a), None);
        let mut extra = a.clone();
        extra.push(col("x", "f32", "feature"));
        let (c, what) = diff(&a, &extra).expect("differs");
        assert_eq!(c, "x");
        assert!(
            what.contains("extra column \"x\" (f32, feature) (column 2) that a.spill lacks"),
            "{what}"
        );
        let (c, what) = diff(&extra, &a).expect("differs");
        assert_eq!(c, "x");
        assert!(what.contains("lacks column \"x\""), "{what}");
        let retyped = vec![col("ts", "i64", "time"), col("f0", "f32", "feature")];
        let (c, what) = diff(&a, &retyped).expect("differs");
        assert_eq!(c, "f0");
        assert!(
            what.contains("is \"f0\" (f32, feature), where a.spill has \"f0\" (f64, feature)"),
            "{what}"
        );
        let swapped = vec![col("f0", "f64", "feature"), col("ts", "i64", "time")];
        assert_eq!(diff(&a, &swapped).expect("differs").0, "f0");
    }

    #[test]
    fn collections_parse_as_their_kind_and_sharded_readers_refuse_them() {
        use super::super::{parse_any_manifest, parse_manifest};
        let p = Path::new("dataset.json");
        let c = serde_json::json!({
            "format": FORMAT, "version": [2, 0], "kind": "collection", "order": "symbol",
            "schema": [{"name": "ts", "dtype": "i64", "role": "time"}], "nrows": 3,
            "files": [{"path": "a.spill", "rows": 3, "bytes": 100, "checksum": "crc32:00000000",
                       "time_range": [1, 2]}],
            "symbols": ["A", "B"], "generation": 2,
        });
        let bytes = serde_json::to_vec(&c).expect("json");
        match parse_any_manifest(p, &bytes).expect("a collection") {
            AnyManifest::Collection(m) => {
                assert_eq!(m.symbols, ["A", "B"]);
                assert_eq!(
                    serde_json::to_value(AnyManifest::Collection(m)).expect("json"),
                    c
                );
            }
            other => panic!("read as {other:?}"),
        }
        let e = parse_manifest(p, &bytes).expect_err("not a sharded manifest");
        assert!(
            e.to_string().contains("collection of independent files"),
            "{e}"
        );
        for (version, kind) in [("[3, 0]", "collection"), ("[2, 0]", "other")] {
            let other = String::from_utf8(bytes.clone())
                .expect("utf-8")
                .replace("[2,0]", version)
                .replace("\"collection\"", &format!("{kind:?}"));
            let e = parse_any_manifest(p, other.as_bytes()).expect_err("refused");
            assert!(e.to_string().contains("is not spillway-dataset 1.x"), "{e}");
        }
    }
}
