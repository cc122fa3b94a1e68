//! `spillway._native`: the library's build, inspect, verify and export, for `spillway/__init__.py`.
//!
//! Options cross as JSON objects whose keys are `BuildOptions`' own (serde, `deny_unknown_fields`),
//! so the binding needs no list of fields: an option the library adds works here at once, and an
//! unknown one is a `TypeError` naming the known ones. Results cross as JSON text (`json.loads` on
//! the Python side). Errors become the exception classes of `spillway.errors`, one per
//! [`ErrorKind`]: `DataError` (exit code 1), `UsageError` (2), `InternalError` (3).

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyKeyboardInterrupt, PyTypeError, PyValueError};
use pyo3::prelude::*;
use spillway::{BuildOptions, Cancel, Error, ErrorKind, Progress};

mod sharded;

/// How often the waiting thread takes the GIL back to run Python's signal handlers.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The `spillway.errors` class for `kind`, raised with `message`.
pub(crate) fn raise(py: Python<'_>, kind: ErrorKind, message: String) -> PyErr {
    let class = match kind {
        ErrorKind::Usage => "UsageError",
        ErrorKind::Internal => "InternalError",
        ErrorKind::Cancelled => return PyKeyboardInterrupt::new_err(message),
        _ => "DataError",
    };
    match py
        .import("spillway.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((message,)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A library error as its Python exception, with the whole cause chain in the message.
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
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
        spillway::publish::build(&cfg, &Progress::new(progress && !quiet), &worker)
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

/// The transposition of [`gather_rows`] works in tiles of 64 rows x 16 columns: 4 KiB of source
/// (16 runs of 256 bytes) and 4 KiB of destination (64 runs of 64 bytes, one cache line each), so
/// both stay in L1 and every destination line is written whole.
const TILE_ROWS: usize = 64;
const TILE_COLS: usize = 16;

/// Copies rows `[start, start + rows)` of `src`, a 2-D float32 buffer of shape `(nrows, k)` with any
/// non-negative strides (a spill file's feature view is column-major at a constant stride), into
/// rows `[at, at + rows)` of `dst`, a writable C-contiguous float32 array of shape `(n, k)`.
/// This is the transposition `SpillFile.batches` spends its time in: numpy does it element by
/// element with a page-sized stride (under 1 GB/s); tiled here, without the GIL, it runs at memory
/// speed.
#[pyfunction]
fn gather_rows(
    py: Python<'_>,
    dst: &Bound<'_, PyAny>,
    at: usize,
    src: &Bound<'_, PyAny>,
    start: usize,
    rows: usize,
) -> PyResult<()> {
    let d = PyBuffer::<f32>::get(dst)?;
    let s = PyBuffer::<f32>::get(src)?;
    if d.readonly() || d.dimensions() != 2 || !d.is_c_contiguous() {
        return Err(PyTypeError::new_err(
            "dst must be a writable C-contiguous 2-D float32 array",
        ));
    }
    if s.dimensions() != 2 || s.suboffsets().is_some() {
        return Err(PyTypeError::new_err(
            "src must be a 2-D float32 buffer without suboffsets",
        ));
    }
    let (n, k) = (d.shape()[0], d.shape()[1]);
    let (src_rows, src_cols) = (s.shape()[0], s.shape()[1]);
    let (rs, cs) = (s.strides()[0], s.strides()[1]);
    let fits = |a: usize, len: usize| a.checked_add(rows).is_some_and(|e| e <= len);
    if src_cols != k || !fits(at, n) || !fits(start, src_rows) {
        return Err(PyValueError::new_err(format!(
            "cannot copy {rows} rows from row {start} of a ({src_rows}, {src_cols}) source to row \
             {at} of a ({n}, {k}) destination"
        )));
    }
    let (Ok(rs), Ok(cs)) = (usize::try_from(rs), usize::try_from(cs)) else {
        return Err(PyValueError::new_err("src strides must not be negative"));
    };
    if rows == 0 || k == 0 {
        return Ok(());
    }
    // Raw addresses cross into the GIL-free closure; the buffers `d` and `s` (and so the
    // exports that keep the memory valid) live until this function returns.
    let (dp, sp) = (d.buf_ptr() as usize, s.buf_ptr() as usize);
    py.detach(move || {
        let (dp, sp) = (dp as *mut f32, sp as *const u8);
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let r1 = (r0 + TILE_ROWS).min(rows);
            for c0 in (0..k).step_by(TILE_COLS) {
                let c1 = (c0 + TILE_COLS).min(k);
                for r in r0..r1 {
                    for j in c0..c1 {
                        // SAFETY: the buffer protocol guarantees that `s` describes valid memory
                        // for every index within its shape at its strides, and `start + r <
                        // src_rows`, `j < k == src_cols` were checked above; the read tolerates
                        // any alignment. `d` is a writable C-contiguous (n, k) float32 buffer and
                        // `at + r < n`, `j < k`, so the element is inside it. Python cannot free
                        // or resize either buffer while we hold their exports (`d`, `s`), and they
                        // do not overlap (`dst` is a fresh array the reader allocated).
                        unsafe {
                            let v = std::ptr::read_unaligned(
                                sp.add((start + r) * rs + j * cs) as *const f32
                            );
                            dp.add((at + r) * k + j).write(v);
                        }
                    }
                }
            }
        }
    });
    Ok(())
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
    m.add_function(wrap_pyfunction!(gather_rows, m)?)?;
    sharded::register(m)?;
    Ok(())
}
