//! Output and exit codes of the command line, in one place.
//!
//! - stdout carries results (`--json`, listings). A closed stdout (`spillway inspect ... | head`)
//!   ends the command quietly with exit 0, as ripgrep and fd do: `outln!` returns the write
//!   error, and `main` recognises a broken pipe in the chain.
//! - stderr carries the human summary, progress and errors; a closed stderr is ignored (`note!`).
//! - Exit codes come from the library's [`spillway::ErrorKind`] (see its table): 1 for data and
//!   input errors, 2 for usage errors ([`Usage`] here, `Error::Config` in the library, and clap's
//!   own), 3 for internal errors (and panics), 128 + N when a signal stopped a build.

use std::io;

/// A usage error found by the command line itself (a bad path given as an option, say): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A build stopped by a signal: exit 128 + the signal's number.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Interrupted {
    /// The signal's number.
    pub signal: i32,
    /// What happened to the output.
    pub message: String,
}

/// Writes a line to stdout, returning the error (a broken pipe ends the command quietly).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// Writes to stderr, ignoring a closed stderr.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

pub(crate) use {note, outln};

/// Whether the error is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The exit code of an error: the first error in the chain that knows its kind decides.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for e in err.chain() {
        if let Some(e) = e.downcast_ref::<spillway::Error>() {
            return e.kind().exit_code();
        }
        if let Some(e) = e.downcast_ref::<spill::Error>() {
            return if e.is_bug() { 3 } else { 1 };
        }
        if e.downcast_ref::<Usage>().is_some() {
            return 2;
        }
        if let Some(i) = e.downcast_ref::<Interrupted>() {
            return u8::try_from(128 + i.signal).unwrap_or(255);
        }
    }
    1
}

/// Writes `value` as pretty JSON to `path`: standard output for `-`, else atomically (a report's
/// `--summary`).
pub fn write_json(path: &std::path::Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(value)?;
    if path.as_os_str() == "-" {
        outln!("{}", String::from_utf8_lossy(&json))?;
    } else {
        let io = spillway::output::writing(path);
        spillway::output::write_atomic(path, |w| std::io::Write::write_all(w, &json).map_err(&io))?;
    }
    Ok(())
}
