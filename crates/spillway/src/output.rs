//! What an output path may be, checked before any work, for every command's every output.
//!
//! An output is written to a temporary beside it and renamed over it, so it may only replace a
//! regular file (or nothing). It never replaces:
//! - a directory, a device, a FIFO or a socket (also through a symlink): renaming over
//!   `/dev/null` would replace the machine's `/dev/null`. Outputs that can stream (exports, the
//!   build summary) write into a device or FIFO directly instead ([`Target::Stream`]); the others
//!   are refused, as is a socket (it cannot be opened for writing) and `-`;
//! - a symlink: through one, the file it points to is written and the link stays (a link to
//!   nothing is refused);
//! - any file the command reads (its inputs, config file, plan, counts, shards): compared by
//!   device and inode, so a symlink, a hard link or `dir/../name` is seen through.
//!
//! Every refusal is [`Error::OutputPath`], a usage error (exit 2).
//!
//! Small outputs are written whole or not at all by [`write_atomic`]: a temporary beside the
//! target (rename is atomic only within one filesystem), written, fsynced, renamed over the
//! target, then the directory fsynced so the rename itself survives a crash. Outputs written
//! piece by piece (an export, the build summary) take a [`temp_beside`] and commit it with
//! [`persist`], the same commit `write_atomic` ends with: the library's one atomic write. Files
//! are created with mode 0666 less the umask, as any program's files are (0644 under the usual
//! 022).

use std::fs::{File, Metadata};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How an output path is to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Nothing is there, or a regular file: write a temporary beside this path and rename it
    /// over it. Through a symlink, this is the file the link points to (the link stays).
    Replace(PathBuf),
    /// A FIFO or a character or block device (an output that may stream, only): open it and
    /// write into it directly; nothing is renamed.
    Stream,
}

/// What [`examine`] found at an output path.
enum Found {
    /// Nothing, or a regular file: rename onto this path (through a symlink, the file it names).
    Rename(PathBuf),
    /// A FIFO or a device, named for the message.
    Special(&'static str),
}

/// Checks the path of an output that is renamed into place (a spill file, a plan, a count file,
/// a manifest), named `flag` in messages (`--output`), against what is at the path and against
/// `reads`, the files the command reads, each with what it is for the message ("one of the input
/// files", "the --config file"). Returns the path to rename onto. A special file is refused.
pub fn check(flag: &str, path: &Path, reads: &[(&str, &Path)]) -> Result<PathBuf> {
    match examine(flag, path, reads)? {
        Found::Rename(real) => Ok(real),
        Found::Special(what) => Err(Error::OutputPath(format!(
            "{flag} {}: is {what}; this output is written to a temporary file and renamed into \
             place, which would replace it: name a regular file",
            path.display()
        ))),
    }
}

/// [`check`] for an output that may stream (an export, a summary): a FIFO or a device is written
/// into directly ([`Target::Stream`]), never replaced.
pub fn check_stream(flag: &str, path: &Path, reads: &[(&str, &Path)]) -> Result<Target> {
    Ok(match examine(flag, path, reads)? {
        Found::Rename(real) => Target::Replace(real),
        Found::Special(_) => Target::Stream,
    })
}

/// The checks both share. A read that does not exist yet (another output of the same command)
/// is compared by its real path.
fn examine(flag: &str, path: &Path, reads: &[(&str, &Path)]) -> Result<Found> {
    let bad = |why: String| {
        Err(Error::OutputPath(format!(
            "{flag} {}: {why}",
            path.display()
        )))
    };
    if path.as_os_str() == "-" {
        return bad("standard output cannot take this output (it is renamed into place)".into());
    }
    let meta = std::fs::metadata(path).ok();
    for (what, read) in reads {
        let hit = match (std::fs::metadata(read), &meta) {
            (Ok(r), Some(m)) => same(&r, m),
            (Ok(_), None) => false,
            (Err(_), _) => real(read).is_some_and(|r| Some(r) == real(path)),
        };
        if hit {
            let how = if read == &path {
                String::new()
            } else {
                format!(" ({})", read.display())
            };
            return bad(format!("is {what}{how}: name another path"));
        }
    }
    let kind = match meta {
        Some(m) if !m.is_file() => m.file_type(),
        _ => {
            let real = resolve(flag, path)?;
            return check_parent(flag, &real).map(|()| Found::Rename(real));
        }
    };
    if kind.is_dir() {
        return bad("is a directory".into());
    }
    if kind.is_socket() {
        return bad("is a socket, which cannot be opened for writing".into());
    }
    Ok(Found::Special(if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }))
}

/// The path a rename onto `path` must target: `path` itself, or the file a symlink there points
/// to (a rename over the link would replace the link, leaving the file it names stale). A link
/// to nothing is refused: name the file itself.
pub fn resolve(flag: &str, path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|_| {
            Error::OutputPath(format!(
                "{flag} {}: is a symlink to a missing file: name the file itself",
                path.display()
            ))
        }),
        _ => Ok(path.to_path_buf()),
    }
}

/// A temporary file beside `path`, to be renamed over it: created with mode 0666 less the umask
/// (tempfile's default is 0600).
pub fn temp_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = parent(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(&dir)
        .map_err(|e| Error::io("creating a temporary file in", dir, e))
}

/// Commits the complete temporary `tmp` (from [`temp_beside`]) as `path`, the one commit of
/// every output renamed into place: syncs its bytes, renames it over `path` (refusing anything
/// but a regular file there, again: the path may have changed since it was checked) and syncs
/// the directory.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    // The bytes reach the disk before the name does: a crash after the rename never leaves a
    // complete name over incomplete contents.
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("syncing", path, e))?;
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(Error::OutputPath(format!(
            "{} is no longer a regular file; not replaced",
            path.display()
        )));
    }
    tmp.persist(path)
        .map_err(|e| Error::io("renaming into", path, e.error))?;
    // The rename is durable once the directory is synced.
    if let Ok(d) = File::open(parent(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `path` through `fill`, atomically (through a symlink, the file it points to); returns
/// what `fill` returns. `fill` maps its I/O errors with [`writing`].
pub fn write_atomic<T>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&mut File>) -> Result<T>,
) -> Result<T> {
    let path = &resolve("output", path)?;
    let mut tmp = temp_beside(path)?;
    let out = {
        let mut w = BufWriter::new(tmp.as_file_mut());
        let out = fill(&mut w)?;
        w.flush().map_err(writing(path))?;
        out
    };
    persist(tmp, path)?;
    Ok(out)
}

/// Refuses up front, naming `flag` and `what`, when the filesystem of `dir` has fewer than
/// `needed` bytes available to this user.
pub fn room(dir: &Path, needed: u64, flag: &str, what: &str) -> Result<()> {
    // No answer, or a filesystem that keeps no count (ramfs, some FUSE mounts say 0 blocks):
    // the write itself will tell.
    let st = match rustix::fs::statvfs(dir) {
        Ok(st) if st.f_blocks > 0 => st,
        _ => return Ok(()),
    };
    let available = st.f_bavail.saturating_mul(st.f_frsize);
    if available < needed {
        return Err(Error::NoRoom {
            place: flag.to_string(),
            what: what.to_string(),
            needed,
            available,
        });
    }
    Ok(())
}

/// The directory of `path` (`.` for a bare name).
pub fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An error writing `path`.
pub fn writing(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        op: "writing",
        path: path.to_path_buf(),
        source,
    }
}

/// Whether two files are one (device and inode).
fn same(a: &Metadata, b: &Metadata) -> bool {
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

/// The real path of `p` (symlinks resolved), or of its directory joined with its name when `p`
/// does not exist.
fn real(p: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(p).ok().or_else(|| {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(std::fs::canonicalize(dir).ok()?.join(p.file_name()?))
    })
}

/// Refuses an output whose directory does not exist or that has no file name.
fn check_parent(flag: &str, path: &Path) -> Result<()> {
    let bad = |why: String| {
        Err(Error::OutputPath(format!(
            "{flag} {}: {why}",
            path.display()
        )))
    };
    if path.file_name().is_none() {
        return bad("has no file name".into());
    }
    let parent = parent(path);
    if !parent.is_dir() {
        return bad(format!("directory {} does not exist", parent.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_reads_through_links_and_special_files() {
        let d = tempfile::tempdir().expect("tempdir");
        let input = d.path().join("in.toml");
        std::fs::write(&input, "x").expect("write");
        let reads = [("the --config file", input.as_path())];
        let fresh = d.path().join("new.spill");
        assert_eq!(check("--output", &fresh, &reads).ok(), Some(fresh.clone()));

        let link = d.path().join("link");
        std::os::unix::fs::symlink(&input, &link).expect("symlink");
        let hard = d.path().join("hard");
        std::fs::hard_link(&input, &hard).expect("hard link");
        let dotted = d.path().join("sub/../in.toml");
        std::fs::create_dir(d.path().join("sub")).expect("mkdir");
        for p in [&input, &link, &hard, &dotted] {
            let e = check_stream("--output", p, &reads).expect_err("refused");
            assert!(e.to_string().contains("is the --config file"), "{e}");
        }

        let null = Path::new("/dev/null");
        assert_eq!(check_stream("--to", null, &[]).ok(), Some(Target::Stream));
        let e = check("--output", null, &[]).expect_err("refused");
        assert!(e.to_string().contains("a character device"), "{e}");
        let e = check_stream("--output", d.path(), &[]).expect_err("refused");
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = check("--output", &d.path().join("no/x"), &[]).expect_err("no dir");
        assert!(e.to_string().contains("does not exist"), "{e}");

        // Through a symlink, the file it names is the one replaced; a dangling link is refused.
        let real = d.path().join("real.spill");
        std::fs::write(&real, "old").expect("write");
        let to_real = d.path().join("to-real.spill");
        std::os::unix::fs::symlink(&real, &to_real).expect("symlink");
        let want = std::fs::canonicalize(&real).expect("canonical");
        assert_eq!(check("--output", &to_real, &[]).ok(), Some(want));
        let dangling = d.path().join("dangling.spill");
        std::os::unix::fs::symlink(d.path().join("nothing"), &dangling).expect("symlink");
        let e = check("--output", &dangling, &[]).expect_err("dangling");
        assert!(e.to_string().contains("symlink to a missing file"), "{e}");
        let e = check("--output", Path::new("-"), &[]).expect_err("stdout");
        assert!(e.to_string().contains("standard output"), "{e}");
    }
}
