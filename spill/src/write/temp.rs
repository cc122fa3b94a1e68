//! Temporary files: named so that a crash leaves something recognisable, and removed on drop
//! unless the commit renamed them.
//!
//! Name: `.<final name>.<pid>-<n>.spill-tmp` in the final file's directory (rename is atomic only
//! within one filesystem). The pid lets [`stale_temps`] tell the leftovers of dead processes
//! from the files of builds still running.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

const SUFFIX: &str = ".spill-tmp";
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary path that is removed on drop while armed.
pub(crate) struct TempFile {
    path: PathBuf,
    armed: Cell<bool>,
}

impl TempFile {
    /// A fresh temporary path beside `final_path` (nothing is created yet).
    pub(crate) fn new(final_path: &Path) -> Result<TempFile> {
        let Some(name) = final_path.file_name() else {
            return Err(Error::io(
                "naming",
                final_path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "output path has no file name",
                ),
            ));
        };
        let mut tmp = OsString::from(".");
        tmp.push(stem(name));
        tmp.push(format!(
            ".{}-{}{SUFFIX}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        Ok(TempFile {
            path: final_path.with_file_name(tmp),
            armed: Cell::new(false),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// From now on, dropping removes the file.
    pub(crate) fn arm(&self) {
        self.armed.set(true);
    }

    /// The file was renamed away: nothing to remove.
    pub(crate) fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed.get() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Longest final name kept whole in a temporary's name: with the dot, the pid, the counter and the
/// suffix, the temporary's name stays within the 255 bytes most filesystems allow.
const MAX_STEM: usize = 200;

/// The final name as it appears in its temporaries' names: whole when short enough, else its
/// first bytes (whole characters) and `~` with the CRC-32 of the whole name.
fn stem(name: &OsStr) -> OsString {
    let bytes = name.as_encoded_bytes();
    if bytes.len() <= MAX_STEM {
        return name.to_os_string();
    }
    let lossy = name.to_string_lossy();
    let mut end = MAX_STEM - 9;
    while !lossy.is_char_boundary(end) {
        end -= 1;
    }
    OsString::from(format!("{}~{:08x}", &lossy[..end], crc32fast::hash(bytes)))
}

/// A fresh temporary name beside `final_path` (nothing is created), the name a writer of
/// `final_path` would use: for a caller's own scratch file (spillway's time-major intermediate),
/// which [`stale_temps`] and the next writer of `final_path` then recognise as a leftover once
/// its process is gone. Errors when `final_path` has no file name.
pub fn temp_path(final_path: &Path) -> Result<PathBuf> {
    Ok(TempFile::new(final_path)?.path().to_path_buf())
}

/// If `name` is a spill temporary file name, the pid of the process that made it.
pub fn is_temp_name(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(SUFFIX)?;
    let (_, tail) = stem.rsplit_once('.')?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Temporary files in `dir` left by processes that no longer run (a killed build). Files of live
/// processes are never listed, so removing what this returns is safe while other builds run.
pub fn stale_temps(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(is_temp_name) else {
            continue;
        };
        if !process_alive(pid) {
            stale.push(entry.path());
        }
    }
    stale.sort();
    Ok(stale)
}

/// Removes the stale temporary files of earlier writers of `final_path` (best effort: a file that
/// cannot be listed or removed is left for `spillway clean`).
pub(crate) fn remove_stale_for(final_path: &Path) {
    let dir = match final_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = final_path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let name = stem(std::ffi::OsStr::new(name));
    let Some(name) = name.to_str() else { return };
    for stale in stale_temps(dir).unwrap_or_default() {
        if stale
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| is_temp_of(n, name))
        {
            let _ = std::fs::remove_file(stale);
        }
    }
}

/// Whether `file_name` is exactly a temporary name of the final file whose [`stem`] is
/// `final_name` (`.<stem>.<pid>-<n>.spill-tmp`).
fn is_temp_of(file_name: &str, final_name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    file_name
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(final_name))
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(SUFFIX))
        .and_then(|r| r.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Whether process `pid` exists on this machine (another user's counts). Off Unix there is no
/// check and every process counts as alive: leftovers are then never called stale (nor removed),
/// which costs disk space but can never delete the file of a build still running.
pub fn process_alive(pid: u32) -> bool {
    alive(pid)
}

#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only asks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    // EPERM means it exists but belongs to someone else: alive.
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let t = TempFile::new(Path::new("/d/out.spill")).expect("has a name");
        let name = t
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf8")
            .to_string();
        assert!(name.starts_with(".out.spill."));
        assert_eq!(is_temp_name(&name), Some(std::process::id()));
        assert_eq!(is_temp_name("out.spill"), None);
        assert_eq!(is_temp_name(".x.12-a.spill-tmp"), None);
        assert!(is_temp_of(&name, "out.spill"));
        assert!(
            !is_temp_of(&name, "out"),
            "a temp of out.spill is not one of out"
        );
        assert!(!is_temp_of(".out.spill.x.1-2.spill-tmp", "out.spill"));
    }

    #[test]
    fn long_final_names_give_temporaries_within_255_bytes() {
        let long = format!("{}.spill", "é".repeat(120));
        assert!(long.len() > 240 && long.len() <= 255);
        let t = TempFile::new(&Path::new("/d").join(&long)).expect("has a name");
        let name = t.path().file_name().and_then(|n| n.to_str()).expect("utf8");
        assert!(name.len() <= 255, "{} bytes", name.len());
        assert_eq!(is_temp_name(name), Some(std::process::id()));
        let s = stem(OsStr::new(&long));
        assert!(is_temp_of(name, s.to_str().expect("utf8")));
        assert_ne!(
            stem(OsStr::new(&format!("{long}x"))),
            s,
            "the hash tells long names apart"
        );
    }
}
