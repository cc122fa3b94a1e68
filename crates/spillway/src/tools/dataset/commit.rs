//! Committing a manifest, and its generations.
//!
//! `dataset.json` is written last, in one request (a bucket) or one rename (a directory): the
//! dataset exists once it does. An existing manifest is replaced only when asked (`--replace`,
//! and by appends): the one replaced is kept first as its numbered *generation*
//! (`dataset.g<N>.json`), so that readers which opened it keep a consistent snapshot. Writers
//! are serialised by a conditional PUT in a bucket (`If-None-Match: *` to create,
//! `If-Match: <ETag>` to replace: a writer that lost the race gets a clear error, never a mixed
//! dataset) and by an exclusive `flock` of the dataset's directory on disk. Rewriting the same manifest (a rerun that changed
//! nothing) changes nothing.
//!
//! [`clean_generations`] removes all but the newest generations, and then the files (shards, a
//! collection's files, plans) that only the removed ones named.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::files::{dir_of, join};
use super::{parse_any_manifest, AnyManifest, MAX_MANIFEST};
use crate::error::{Error, Result};
use crate::publish::Place;

/// The generation file of `generation` beside `manifest`: `dataset.json` -> `dataset.g3.json`.
pub fn generation_path(manifest: &Path, generation: u64) -> PathBuf {
    let name = manifest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset.json".into());
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, "json"));
    dir_of(manifest).join(format!("{stem}.g{generation}.{ext}"))
}

/// The generation of a generation file's `name` beside `manifest`, if it is one.
fn generation_of(manifest: &Path, name: &str) -> Option<u64> {
    let own = manifest.file_name()?.to_string_lossy().into_owned();
    let (stem, ext) = own.rsplit_once('.').unwrap_or((&own, "json"));
    let n = name.strip_prefix(&format!("{stem}.g"))?;
    n.strip_suffix(&format!(".{ext}"))?.parse().ok()
}

fn exists(path: &Path, what: String) -> Error {
    Error::ManifestExists {
        path: path.to_path_buf(),
        what,
    }
}

/// The manifest as written: pretty JSON and a newline.
fn encode(m: &AnyManifest) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(m).map_err(|e| Error::Internal(e.to_string()))?;
    v.push(b'\n');
    Ok(v)
}

/// What a commit may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replace {
    /// Nothing: another dataset's manifest there is refused.
    No,
    /// Any manifest there (kept as its generation).
    Any,
    /// Only generation `N` (an append's base): another writer's newer one is refused.
    Generation(u64),
}

impl Replace {
    /// `Any` when asked (`--replace`), else `No`.
    pub(crate) fn when(asked: bool) -> Replace {
        if asked {
            Replace::Any
        } else {
            Replace::No
        }
    }
}

/// Commits `m` as the manifest `output` in `place` (see the module docs); returns it with its
/// generation set.
pub(crate) fn commit(
    place: &Place,
    output: &Path,
    mut m: AnyManifest,
    replace: Replace,
) -> Result<AnyManifest> {
    #[cfg(feature = "object-store")]
    if let Some(store) = place.store() {
        let url = output.to_string_lossy();
        let (generation, there) = match store.get_bytes(&url, None, MAX_MANIFEST)? {
            None => (1, None),
            Some((bytes, head)) => {
                let old = parse_any_manifest(output, &bytes)?;
                match decide(output, &old, &m, replace)? {
                    None => return Ok(old),
                    Some(g) => {
                        keep_generation(place, output, &old, &bytes)?;
                        if head.e_tag.is_none() && head.version.is_none() {
                            return Err(exists(
                                output,
                                "the store gives no ETag or version to replace it safely".into(),
                            ));
                        }
                        (g, Some(head))
                    }
                }
            }
        };
        m.set_generation(Some(generation));
        let mode = match there {
            None => crate::publish::place::Put::Create,
            Some(e) => crate::publish::place::Put::Replace(e),
        };
        return match store.put(&url, bytes::Bytes::from(encode(&m)?), mode)? {
            Ok(_) => Ok(m),
            Err(()) => Err(Error::Dataset {
                path: output.to_path_buf(),
                what: "another writer committed this manifest while this one ran; nothing was \
                       replaced: check the dataset and run again"
                    .into(),
            }),
        };
    }
    let _ = place;
    // Writers on one machine (or one NFS mount with flock) take turns on the directory itself:
    // no lock file is left beside the dataset.
    let dir = dir_of(output);
    let lock = std::fs::File::open(&dir).map_err(|e| Error::io("opening", &dir, e))?;
    lock.lock().map_err(|e| Error::io("locking", &dir, e))?;
    let local = Place::local();
    let generation = match local.read(output, MAX_MANIFEST)? {
        None => 1,
        Some((bytes, _)) => {
            let old = parse_any_manifest(output, &bytes)?;
            match decide(output, &old, &m, replace)? {
                None => return Ok(old),
                Some(g) => {
                    keep_generation(&local, output, &old, &bytes)?;
                    g
                }
            }
        }
    };
    m.set_generation(Some(generation));
    let bytes = encode(&m)?;
    let io = crate::output::writing(output);
    crate::output::write_atomic(output, |w| {
        std::io::Write::write_all(w, &bytes).map_err(&io)
    })?;
    Ok(m)
}

/// Against the manifest there, `old`: `None` when `new` is the same dataset (nothing to write),
/// else the generation `new` gets, or the refusal when `replace` was not asked.
fn decide(
    output: &Path,
    old: &AnyManifest,
    new: &AnyManifest,
    replace: Replace,
) -> Result<Option<u64>> {
    let g = old.generation().unwrap_or(1);
    if let Replace::Generation(base) = replace {
        if base != g {
            return Err(Error::Dataset {
                path: output.to_path_buf(),
                what: format!(
                    "another writer committed generation {g} since this append read generation \
                     {base}; nothing was replaced: run the append again"
                ),
            });
        }
    }
    let mut same = new.clone();
    same.set_generation(old.generation());
    if &same == old {
        return Ok(None);
    }
    if replace == Replace::No {
        return Err(exists(
            output,
            format!(
                "a dataset manifest (generation {g}) is already there; pass --replace \
                 (replace=True) to replace it (it is kept as {})",
                generation_path(output, g).display()
            ),
        ));
    }
    Ok(Some(g + 1))
}

/// Keeps `old` (its `bytes`) as its generation file before it is replaced.
fn keep_generation(place: &Place, output: &Path, old: &AnyManifest, bytes: &[u8]) -> Result<()> {
    let path = generation_path(output, old.generation().unwrap_or(1));
    #[cfg(feature = "object-store")]
    if let Some(store) = place.store() {
        let url = path.to_string_lossy();
        let put = crate::publish::place::Put::Overwrite;
        store
            .put(&url, bytes::Bytes::copy_from_slice(bytes), put)?
            .map_err(|()| Error::Internal(format!("{url}: an unconditional PUT conflicted")))?;
        return Ok(());
    }
    let _ = place;
    let io = crate::output::writing(&path);
    crate::output::write_atomic(&path, |w| std::io::Write::write_all(w, bytes).map_err(&io))
}

/// What [`clean_generations`] removed (or would).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Cleaned {
    /// Generation files.
    pub generations: Vec<PathBuf>,
    /// Files (shards, plans) no kept manifest names.
    pub files: Vec<PathBuf>,
}

/// Removes the generations of `manifest` older than the newest `keep`, then the files (shards,
/// plans) that only they named; the current manifest and the kept generations lose nothing.
/// `dry_run`: only say what would go.
pub fn clean_generations(
    place: &Place,
    manifest: &Path,
    keep: usize,
    dry_run: bool,
) -> Result<Cleaned> {
    let dir = dir_of(manifest);
    let mut generations: Vec<(u64, PathBuf)> = place
        .list(&dir)?
        .into_iter()
        .filter_map(|n| Some((generation_of(manifest, &n)?, dir.join(n))))
        .collect();
    generations.sort_by_key(|g| std::cmp::Reverse(g.0));
    let files_of = |path: &Path| -> Result<BTreeSet<PathBuf>> {
        let (bytes, _) = place
            .read(path, MAX_MANIFEST)?
            .ok_or_else(|| Error::Dataset {
                path: path.to_path_buf(),
                what: "gone while cleaning".into(),
            })?;
        let m = parse_any_manifest(path, &bytes)?;
        Ok(m.paths().into_iter().map(|p| join(&dir, p)).collect())
    };
    let mut live = files_of(manifest)?;
    for (_, p) in generations.iter().take(keep) {
        live.extend(files_of(p)?);
    }
    let mut out = Cleaned::default();
    for (_, p) in generations.iter().skip(keep) {
        let files = files_of(p)?;
        if !dry_run {
            place.delete(p)?; // the manifest first: no generation names a missing shard
        }
        out.generations.push(p.clone());
        for f in files.difference(&live) {
            if !out.files.contains(f) {
                if !dry_run {
                    place.delete(f)?;
                }
                out.files.push(f.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_names() {
        let m = Path::new("/d/dataset.json");
        assert_eq!(generation_path(m, 3), PathBuf::from("/d/dataset.g3.json"));
        assert_eq!(generation_of(m, "dataset.g12.json"), Some(12));
        assert_eq!(generation_of(m, "dataset.json"), None);
        assert_eq!(generation_of(m, "dataset.gx.json"), None);
        let u = Path::new("s3://b/t/dataset.json");
        assert_eq!(
            generation_path(u, 1),
            PathBuf::from("s3://b/t/dataset.g1.json")
        );
    }
}
