//! Skips reported, not silent: one helper for the spill crate's integration tests (`mod skip` of
//! main.rs) and its unit tests (`src/write/direct.rs` includes this file by path).

/// Reports a check that cannot run here: on stderr, and as a line of `$SPILLWAY_SKIP_LOG`
/// (`scripts/skips.py` fails CI on a skip its allow-list lacks).
pub fn skipped(reason: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let reason = reason.replace(['\t', '\n'], " ");
    eprintln!("SKIPPED {test}: {reason}");
    if let Some(log) = std::env::var_os("SPILLWAY_SKIP_LOG") {
        use std::io::Write;
        let line = format!("rust\tspill::{test}\t{reason}\n");
        std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .expect("append to SPILLWAY_SKIP_LOG");
    }
}
