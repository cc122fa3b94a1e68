//! `publish`: outputs bound for object storage. A build whose `--output` (or `--cs-plan`) is a
//! URL runs on local files: the plan is fetched into the scratch directory, the spill file is
//! built there (refused up front when the scratch filesystem lacks room for it), uploaded in
//! parts with bounded memory, its size checked in the store, and the local copy removed. The
//! object appears whole or not at all: an upload completes in one request, and a failed one is
//! aborted (a killed one is found by `spillway clean`).
//!
//! [`place`] owns where files are (a directory or a bucket) and the scratch directory; the
//! sharded build's tools and the dataset manifest use it for their own inputs and outputs.

use std::path::{Path, PathBuf};

use crate::cancel::Cancel;
use crate::config::{BuildConfig, StorageOptions};
use crate::error::{Error, Result};
use crate::report::progress::Progress;
use crate::report::summary::BuildSummary;
use crate::run::{answer, build_with, judge, UpToDate};

pub mod place;
#[cfg(feature = "object-store")]
mod uploads;

/// `500ms`, `30s`, `2min`, `1h`, or a plain number of seconds.
#[cfg(feature = "object-store")]
pub use crate::input::store::parse_duration;
pub use place::{is_url, LocalCopy, Place, Scratch};
#[cfg(feature = "object-store")]
pub use uploads::{clean_uploads, Uploads};

/// [`build_with`], for an output or plan that may be a URL (see the module docs).
pub fn build(cfg: &BuildConfig, progress: &Progress, cancel: &Cancel) -> Result<BuildSummary> {
    let remote_plan = cfg.cs_plan.as_deref().is_some_and(is_url);
    if !is_url(&cfg.output) && !remote_plan {
        return build_with(cfg, progress, cancel);
    }
    let scratch = Scratch::new(cfg.scratch.as_deref())?;
    let mut local = cfg.clone();
    let _plan = fetch_plan(&mut local, cancel)?;
    if !is_url(&cfg.output) {
        return build_with(&local, progress, cancel);
    }
    let place = Place::within(
        "--output",
        &cfg.output,
        &cfg.storage,
        cfg.memory_budget,
        cancel,
    )?;
    let url = cfg.output.to_string_lossy().into_owned();
    let name = url.rsplit('/').next().filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| {
        Error::Config(format!(
            "--output {url}: name an object, not a prefix ending in /"
        ))
    })?;
    let tmp = scratch.temp(name)?;
    local.output = tmp.to_path_buf();
    let mut summary = build_with(&local, progress, cancel)?;
    progress.phase(&format!("uploading {url}"));
    place.upload(&tmp, &cfg.output)?;
    drop(tmp);
    summary.output = cfg.output.clone();
    Ok(summary)
}

/// [`up_to_date`](crate::up_to_date), for an output (and plan) that may be URLs: a bucket's
/// output is judged from what its end records (one or two ranged GETs), the plan fetched into
/// the scratch directory to be compared.
pub fn up_to_date(cfg: &BuildConfig, cancel: &Cancel) -> Result<UpToDate> {
    if !is_url(&cfg.output) {
        return crate::up_to_date(cfg);
    }
    let place = Place::of("--output", &cfg.output, &cfg.storage, cancel)?;
    let meta = match place.describe(&cfg.output) {
        Ok(Some((_, _, meta))) => meta,
        Ok(None) => return Ok(answer(cfg, false, "it does not exist".into())),
        Err(e @ Error::Dataset { .. }) => return Ok(answer(cfg, false, e.to_string())),
        Err(e) => return Err(e),
    };
    let mut local = cfg.clone();
    let _plan = fetch_plan(&mut local, cancel)?;
    judge(&local, &meta.build)
}

/// A `--cs-plan` URL of `cfg` fetched into the scratch directory, `cfg` pointed at the copy
/// (removed when the returned copy is dropped).
fn fetch_plan(cfg: &mut BuildConfig, cancel: &Cancel) -> Result<Option<LocalCopy>> {
    let Some(p) = cfg.cs_plan.clone().filter(|p| is_url(p)) else {
        return Ok(None);
    };
    let scratch = Scratch::new(cfg.scratch.as_deref())?;
    let copy = Place::of("--cs-plan", &p, &cfg.storage, cancel)?.local_copy(&p, &scratch)?;
    cfg.cs_plan = Some(copy.path.clone());
    Ok(Some(copy))
}

/// Runs `make` on a local path for `output`: `output` itself, or, for a URL, a file in the
/// scratch directory that is uploaded as `output` once `make` succeeds (and removed either way).
/// For the small outputs of the sharded build (count and plan files).
pub fn deliver<T>(
    output: &Path,
    storage: &StorageOptions,
    scratch: Option<&Path>,
    cancel: &Cancel,
    make: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    if !is_url(output) {
        return make(output);
    }
    let place = Place::of("--output", output, storage, cancel)?;
    let url = output.to_string_lossy();
    let name = url.rsplit('/').next().unwrap_or("output");
    let tmp = Scratch::new(scratch)?.temp(name)?;
    let made = make(&tmp)?;
    place.upload(&tmp, output)?;
    Ok(made)
}

/// Local copies of `paths` (URLs fetched into the scratch directory), named `flag` in errors.
pub fn fetch_all(
    flag: &str,
    paths: &[PathBuf],
    storage: &StorageOptions,
    scratch: Option<&Path>,
    cancel: &Cancel,
) -> Result<Vec<LocalCopy>> {
    let scratch = Scratch::new(scratch)?;
    let mut place: Option<Place> = None;
    paths
        .iter()
        .map(|p| {
            if !is_url(p) {
                return Place::local().local_copy(p, &scratch);
            }
            let pl = match &place {
                Some(pl) => pl.clone(),
                None => place.insert(Place::of(flag, p, storage, cancel)?).clone(),
            };
            pl.local_copy(p, &scratch)
        })
        .collect()
}
