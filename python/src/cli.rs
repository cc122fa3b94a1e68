//! The wheel's `spillway` command: `spillway._cli` calls [`cli_main`] with `sys.argv`, which runs
//! `spillway_cli::status`, the same code as the cargo binary's `main`.

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs the `spillway` command line `argv` (program name first) without the GIL, and returns its
/// exit code. `relaunch` is how it runs itself as a child process (`python -m spillway`). It
/// installs the same signal handlers as the cargo binary (a build stops cleanly on SIGINT,
/// SIGTERM or SIGHUP and returns 128 + N); usage errors, `--help` and `--version` print and exit
/// the process, as clap does.
#[pyfunction]
pub(crate) fn cli_main(py: Python<'_>, argv: Vec<OsString>, relaunch: Vec<OsString>) -> u8 {
    spillway_cli::set_relaunch(relaunch);
    py.detach(|| spillway_cli::status(argv))
}
