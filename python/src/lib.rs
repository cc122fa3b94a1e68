//! `spillway._native`: the library's build, inspect, verify, export and append, for
//! `spillway/__init__.py`.
//!
//! Options cross as JSON objects whose keys are `BuildOptions`' own (serde, `deny_unknown_fields`),
//! so the binding needs no list of fields: an option the library adds works here at once, and an
//! unknown one is a `TypeError` naming the known ones. Results cross as JSON text (`json.loads` on
//! the Python side). Errors become the exception classes of `spillway.errors`, one per
//! [`ErrorKind`]: `DataError` (exit code 1), `UsageError` (2), `InternalError` (3),
//! `ExcludeError` (4, a `DataError` carrying the symbols a shard found to exclude).

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use pyo3::call::PyCallArgs;
use pyo3::exceptions::{PyKeyboardInterrupt, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use spillway::{BuildOptions, Cancel, Error, ErrorKind};

mod append;
mod cli;
mod read;
mod sharded;

/// How often the waiting thread takes the GIL back to run Python's signal handlers.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The `spillway.errors` class for `kind`, raised with `message`.
pub(crate) fn raise(py: Python<'_>, kind: ErrorKind, message: String) -> PyErr {
    let class = match kind {
        ErrorKind::Usage => "UsageError",
        ErrorKind::Internal => "InternalError",
        ErrorKind::Cancelled => return PyKeyboardInterrupt::new_err(message),
        // Its symbols are read back from the message (after `EXCLUDE_MARKER`).
        ErrorKind::Exclude => "ExcludeError",
        _ => "DataError",
    };
    instance(py, class, (message,))
}

/// `spillway.errors.<class>(*args)` as a `PyErr` (the error of making it, if that fails).
fn instance<'py>(py: Python<'py>, class: &str, args: impl PyCallArgs<'py>) -> PyErr {
    match py
        .import("spillway.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1(args))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A library error as its Python exception, with the whole cause chain in the message; a
/// shard's symbols to exclude ([`Error::Exclude`]) as `ExcludeError(message, symbols, scope)`.
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if let Error::Exclude { scope, skipped } = e {
        let symbols = PyDict::new(py);
        for (symbol, reason) in skipped {
            if let Err(e) = symbols.set_item(symbol, reason) {
                return e;
            }
        }
        return instance(py, "ExcludeError", (msg, symbols, scope.clone()));
    }
    raise(py, e.kind(), msg)
}

/// `BuildOptions` from a JSON object of options (kebab-case keys). Each key is tried alone first,
/// so that an error names its option (the Python keyword, with underscores) and carries no JSON
/// position: an unknown option or a wrong type is a `TypeError`, a bad value (an unknown choice,
/// a negative number) a `UsageError`.
pub(crate) fn options(py: Python<'_>, options_json: &str) -> PyResult<BuildOptions> {
    use serde_json::{Map, Value};
    let map: Map<String, Value> = serde_json::from_str(options_json)
        .map_err(|e| PyTypeError::new_err(format!("options must be a JSON object: {e}")))?;
    for (key, value) in &map {
        let one = Value::Object(Map::from_iter([(key.clone(), value.clone())]));
        if let Err(e) = serde_json::from_value::<BuildOptions>(one) {
            return Err(option_error(py, key, &e.to_string()));
        }
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| PyTypeError::new_err(e.to_string()))
}

/// The exception for option `key` that serde refused with `message` (one key alone, so the
/// message has no position and the field is `key`).
fn option_error(py: Python<'_>, key: &str, message: &str) -> PyErr {
    let name = key.replace('-', "_");
    if message.starts_with("unknown field") {
        let known = message
            .split_once("expected one of ")
            .map(|(_, k)| {
                format!(
                    " (the options are: {})",
                    k.replace('`', "").replace('-', "_")
                )
            })
            .unwrap_or_default();
        return PyTypeError::new_err(format!("unknown option '{name}'{known}"));
    }
    // serde names Rust types; say what a Python caller passes.
    let message = message
        .replace("expected u64", "expected an integer from 0 to 2**64 - 1")
        .replace("expected usize", "expected an integer from 0 to 2**64 - 1")
        .replace("expected u32", "expected an integer from 0 to 2**32 - 1")
        .replace("expected a sequence", "expected a list")
        .replace('`', "");
    let message = format!("option '{name}': {message}");
    if message.contains(": invalid type: ") {
        PyTypeError::new_err(message)
    } else {
        raise(py, ErrorKind::Usage, message)
    }
}

/// Runs `work` on its own thread with the GIL released, taking it back every 50 ms to run
/// Python's signal handlers. When one raises (Ctrl-C: `KeyboardInterrupt`), `cancel` is cancelled,
/// the thread joined (the library removes its temporary file on the way out) and the exception
/// re-raised.
pub(crate) fn run_cancellable<T: Send + 'static>(
    py: Python<'_>,
    cancel: &Cancel,
    work: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = thread::spawn(move || {
        let out = work();
        drop(done_tx);
        out
    });
    // In a Mutex only to be Sync, as detach() requires of what the closure borrows.
    let done_rx = Mutex::new(done_rx);
    loop {
        let waited = py.detach(|| match done_rx.lock() {
            Ok(rx) => rx.recv_timeout(SIGNAL_POLL),
            Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
        });
        if !matches!(waited, Err(mpsc::RecvTimeoutError::Timeout)) {
            break;
        }
        if let Err(interrupt) = py.check_signals() {
            cancel.cancel();
            let _ = py.detach(|| handle.join());
            return Err(interrupt);
        }
    }
    py.detach(|| handle.join())
        .map_err(|_| raise(py, ErrorKind::Internal, "the build thread panicked".into()))
}

/// Builds a spill file. `options_json`: a JSON object of `BuildOptions` (kebab-case keys, as in
/// the TOML config), laid over the `config` file's. `summary` (else the config's `summary`):
/// where the library also writes the summary as JSON, as the CLI's `--summary` (checked before
/// the build: never the output nor a file the build reads; `-` is Python's `sys.stdout`);
/// `quiet` (else the config's `quiet`) turns the progress bar off. Returns the build summary as
/// JSON.
#[pyfunction]
#[pyo3(signature = (options_json, config=None, progress=false, summary=None, quiet=None))]
fn build(
    py: Python<'_>,
    options_json: &str,
    config: Option<PathBuf>,
    progress: bool,
    summary: Option<PathBuf>,
    quiet: Option<bool>,
) -> PyResult<String> {
    let mut flags = options(py, options_json)?;
    flags.summary = summary.or(flags.summary);
    let (file, file_quiet) = match &config {
        Some(path) => BuildOptions::load(path).map_err(|e| to_py(py, &e))?,
        None => Default::default(),
    };
    let mut cfg = file.merge(flags).resolve().map_err(|e| to_py(py, &e))?;
    cfg.config_file = config;
    // `-` is the caller's sys.stdout (a notebook's is not the process's standard output).
    let to_stdout = cfg.summary.as_deref() == Some(Path::new("-"));
    if to_stdout {
        cfg.summary = None;
    }
    let quiet = quiet.or(file_quiet).unwrap_or(false);
    let cancel = Cancel::new();
    let worker = cancel.clone();
    let result = run_cancellable(py, &cancel, move || {
        spillway::publish::build(
            &cfg,
            &spillway_cli::progress::progress(progress && !quiet),
            &worker,
        )
    })?;
    let summary = result.map_err(|e| to_py(py, &e))?;
    let internal = |e: serde_json::Error| raise(py, ErrorKind::Internal, e.to_string());
    if to_stdout {
        let mut pretty = serde_json::to_string_pretty(&summary).map_err(internal)?;
        pretty.push('\n');
        py.import("sys")?
            .getattr("stdout")?
            .call_method1("write", (pretty,))?;
    }
    serde_json::to_string(&summary).map_err(internal)
}

/// Inspects an input directory from its footers (and, with filter options, its time columns).
/// `options_json` as for [`build`] (no output needed). Returns the report as JSON.
#[pyfunction]
fn inspect(py: Python<'_>, options_json: &str) -> PyResult<String> {
    let cfg = options(py, options_json)?
        .resolve_to_inspect()
        .map_err(|e| to_py(py, &e))?;
    let report = py
        .detach(|| spillway::inspect(&cfg))
        .map_err(|e| to_py(py, &e))?;
    serde_json::to_string(&report).map_err(|e| raise(py, ErrorKind::Internal, e.to_string()))
}

/// Opens `path` and recomputes every chunk checksum (in parallel, without the GIL). Returns
/// `(ok, nrows, columns, symbols, chunks, damaged)` with `damaged` a list of
/// `(column, chunk, row_start, row_stop, stored, actual)`; a file that does not open is a
/// `DataError`.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn verify(
    py: Python<'_>,
    path: PathBuf,
) -> PyResult<(
    bool,
    u64,
    usize,
    usize,
    u64,
    Vec<(String, u64, u64, u64, u32, u32)>,
)> {
    let checked = py.detach(|| {
        spill::open(&path).map(|f| {
            let r = f.verify();
            let damaged = r
                .damaged
                .iter()
                .map(|d| {
                    (
                        d.column.clone(),
                        d.chunk,
                        d.rows.start,
                        d.rows.end,
                        d.stored,
                        d.actual,
                    )
                })
                .collect::<Vec<_>>();
            (
                r.is_ok(),
                f.nrows(),
                f.columns().len(),
                f.symbols().len(),
                r.chunks,
                damaged,
            )
        })
    });
    checked.map_err(|e| {
        raise(
            py,
            ErrorKind::Data,
            format!("{}: not a valid spill file: {e}", path.display()),
        )
    })
}

/// Streams a spill file to Parquet or Arrow IPC (`format`: "parquet", "arrow", or None for the
/// extension of `to`), without the GIL. Returns the export report as JSON.
#[pyfunction]
#[pyo3(signature = (path, to, columns=None, start=None, stop=None, nan_as_null=false, format=None))]
#[allow(clippy::too_many_arguments)]
fn export(
    py: Python<'_>,
    path: PathBuf,
    to: PathBuf,
    columns: Option<Vec<String>>,
    start: Option<u64>,
    stop: Option<u64>,
    nan_as_null: bool,
    format: Option<String>,
) -> PyResult<String> {
    use spillway::export::{ExportOptions, Format};
    let format = match format.as_deref() {
        None => None,
        Some("parquet") => Some(Format::Parquet),
        Some("arrow") => Some(Format::Arrow),
        Some(other) => {
            let msg = format!("format must be 'parquet' or 'arrow', not {other:?}");
            return Err(raise(py, ErrorKind::Usage, msg));
        }
    };
    let rows =
        (start.is_some() || stop.is_some()).then(|| start.unwrap_or(0)..stop.unwrap_or(u64::MAX));
    if let Some(r) = &rows {
        if r.end < r.start {
            return Err(raise(
                py,
                ErrorKind::Usage,
                "rows: stop is before start".into(),
            ));
        }
    }
    let opts = ExportOptions {
        columns,
        rows,
        nan_as_null,
        format,
    };
    let report = py
        .detach(|| spillway::export::export(&path, &to, &opts))
        .map_err(|e| to_py(py, &e))?;
    serde_json::to_string(&report).map_err(|e| raise(py, ErrorKind::Internal, e.to_string()))
}

/// The library's version (the `spillway` crate's).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SEMANTICS_VERSION", spillway::SEMANTICS_VERSION)?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add_function(wrap_pyfunction!(read::read_rows, m)?)?;
    m.add_function(wrap_pyfunction!(read::take_rows, m)?)?;
    m.add_function(wrap_pyfunction!(cli::cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(append::append, m)?)?;
    sharded::register(m)?;
    Ok(())
}
