//! The sharded build's building blocks for `spillway.dataset` and `spillway.ray`: `count`,
//! `plan_cs`, `manifest`, `verify_dataset` and `universe`, each without the GIL, results as JSON.

use std::path::PathBuf;

use pyo3::prelude::*;
use spillway::{dataset, Cancel, ErrorKind, PlanCsOptions};

use crate::{options, raise, run_cancellable, to_py};

fn json<T: serde::Serialize>(py: Python<'_>, v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| raise(py, ErrorKind::Internal, e.to_string()))
}

/// Counts one shard (`options_json`: BuildOptions with `shard` or `symbols` and `output`).
/// Returns the count summary as JSON; Ctrl-C cancels.
#[pyfunction]
fn count(py: Python<'_>, options_json: &str) -> PyResult<String> {
    let cfg = options(py, options_json)?
        .resolve()
        .map_err(|e| to_py(py, &e))?;
    let cancel = Cancel::new();
    let worker = cancel.clone();
    let result = run_cancellable(py, &cancel, move || spillway::count(&cfg, &worker))?;
    json(py, &result.map_err(|e| to_py(py, &e))?)
}

/// Merges count files into a cross-section plan (or, `merge_only`, one count file).
#[pyfunction]
#[pyo3(signature = (counts, output, min_cs=0, max_cs_samples=None, seed=0, merge_only=false))]
fn plan_cs(
    py: Python<'_>,
    counts: Vec<PathBuf>,
    output: PathBuf,
    min_cs: u64,
    max_cs_samples: Option<u64>,
    seed: u64,
    merge_only: bool,
) -> PyResult<String> {
    let opts = PlanCsOptions {
        output,
        min_cs,
        max_cs_samples,
        seed,
        merge_only,
    };
    let summary = py
        .detach(|| spillway::plan_cs(&counts, &opts))
        .map_err(|e| to_py(py, &e))?;
    json(py, &summary)
}

/// Checks that `shards` form one dataset and writes the manifest `output` atomically; returns it.
#[pyfunction]
#[pyo3(signature = (shards, output, cs_plan=None))]
fn manifest(
    py: Python<'_>,
    shards: Vec<PathBuf>,
    output: PathBuf,
    cs_plan: Option<PathBuf>,
) -> PyResult<String> {
    let m = py
        .detach(|| dataset::manifest(&shards, cs_plan.as_deref(), &output))
        .map_err(|e| to_py(py, &e))?;
    json(py, &m)
}

/// Checks a whole dataset (every chunk checksum when `chunks`); returns the report.
#[pyfunction]
#[pyo3(signature = (path, chunks=true))]
fn verify_dataset(py: Python<'_>, path: PathBuf, chunks: bool) -> PyResult<String> {
    let r = py
        .detach(|| dataset::verify_dataset(&path, chunks))
        .map_err(|e| to_py(py, &e))?;
    json(py, &r)
}

/// The universe's identity as shards record it (reads every footer).
#[pyfunction]
fn universe(py: Python<'_>, options_json: &str) -> PyResult<String> {
    let mut opts = options(py, options_json)?;
    opts.output.get_or_insert_with(|| PathBuf::from("(none)"));
    let cfg = opts.resolve().map_err(|e| to_py(py, &e))?;
    let u = py
        .detach(|| dataset::universe(&cfg))
        .map_err(|e| to_py(py, &e))?;
    json(py, &u)
}

/// Adds these functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(count, m)?)?;
    m.add_function(wrap_pyfunction!(plan_cs, m)?)?;
    m.add_function(wrap_pyfunction!(manifest, m)?)?;
    m.add_function(wrap_pyfunction!(verify_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(universe, m)?)?;
    Ok(())
}
