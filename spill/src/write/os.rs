//! The writer's calls into the operating system, each platform's variant side by side.
//!
//! Linux is where spillway is built, tested and measured, and its calls are the ones described in
//! `SPEC.md`. Elsewhere every call falls back to a portable equivalent that leaves the same bytes
//! in the file: no O_DIRECT (the mapped windows write instead), and the data area reserved by the
//! platform's own means.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::error::Result;

/// Writes all of `buf` at `offset` without using the file's cursor.
#[cfg(unix)]
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Writes all of `buf` at `offset` (`seek_write` also moves the cursor, which the writer never
/// reads).
#[cfg(windows)]
pub(crate) fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_write(buf, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                buf = &buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Opens `path` for writing with O_DIRECT. Fails (EINVAL on tmpfs, for one) where the filesystem
/// refuses it.
#[cfg(target_os = "linux")]
pub(crate) fn open_direct(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

/// O_DIRECT is Linux's: elsewhere the open always fails, so [`super::WriteMode::Auto`] takes the
/// mapped windows and [`super::WriteMode::Direct`] is refused.
#[cfg(not(target_os = "linux"))]
pub(crate) fn open_direct(_path: &Path) -> io::Result<File> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "O_DIRECT is available on Linux only",
    ))
}

/// Reserves `len` bytes for `file` so that later writes (including through a mapping, where a
/// full disk would be SIGBUS) cannot run out of space. Where the filesystem has no fallocate, the
/// free space is checked (a clear error before any byte is written) and the reservation is
/// written as zeros, which allocates every block; that costs one extra pass over the output on
/// those filesystems only.
#[cfg(target_os = "linux")]
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let Ok(len_off) = libc::off_t::try_from(len) else {
        return Err(io::Error::from(io::ErrorKind::FileTooLarge));
    };
    if len_off == 0 {
        return Ok(());
    }
    // SAFETY: plain syscall on an open, owned descriptor; no memory is passed.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len_off) };
    if rc == 0 {
        return file.set_len(len);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => reserve_by_writing(file, len),
        _ => Err(err),
    }
}

/// Reserves `len` bytes for `file` (see the Linux variant). Other Unixes have no fallocate(2)
/// (macOS has none at all), so they always take the fallback: the free-space check, then zeros.
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    reserve_by_writing(file, len)
}

/// Reserves `len` bytes for `file` (see the Linux variant). On Windows, extending a file that is
/// not sparse (a new file is not) allocates its clusters and fails on a full disk, as fallocate
/// does, so setting the length is the reservation.
#[cfg(windows)]
pub(crate) fn reserve(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

/// The fallback of [`reserve`]: refuses when the filesystem reports less free space than `len`,
/// else writes `len` zero bytes from offset 0 (the file is new and empty).
#[cfg(unix)]
fn reserve_by_writing(file: &File, len: u64) -> io::Result<()> {
    if let Some(free) = free_bytes(file)?.filter(|&free| free < len) {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("the output needs {len} bytes and the filesystem has {free} free"),
        ));
    }
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK as usize];
    let mut at = 0;
    while at < len {
        let n = CHUNK.min(len - at);
        write_all_at(file, &zeros[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// Bytes available to an unprivileged writer on `file`'s filesystem; `None` where the filesystem
/// reports no size at all (ramfs, some FUSE filesystems: zero blocks in total).
#[cfg(unix)]
fn free_bytes(file: &File) -> io::Result<Option<u64>> {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `st` points to writable memory of the struct's size; the descriptor is open and
    // owned; the struct is only read after the call succeeded and filled it.
    let st = unsafe {
        if libc::fstatvfs(file.as_raw_fd(), st.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        st.assume_init()
    };
    if st.f_blocks == 0 {
        return Ok(None);
    }
    // The field types vary by platform (32-bit block counts on macOS): widen, never narrow.
    let (avail, frsize) = (st.f_bavail as u64, st.f_frsize as u64);
    Ok(Some(avail.saturating_mul(frsize)))
}

/// Fsyncs the directory holding `path`, making a rename in it durable.
#[cfg(unix)]
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| crate::error::Error::io("syncing directory", dir, e))
}

/// Windows cannot open a directory as a `File` (nor flush one): the rename is left to the
/// filesystem's metadata journal, durable after its next flush rather than on return.
#[cfg(windows)]
pub(crate) fn sync_dir(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn reserving_without_fallocate_writes_zeros_or_refuses_before_writing() {
        let file = tempfile::tempfile().expect("temp file");
        reserve_by_writing(&file, 3 * (1 << 20) + 5).expect("reserve");
        let meta = file.metadata().expect("metadata");
        assert_eq!(meta.len(), 3 * (1 << 20) + 5);
        // Every block allocated: a mapping of it cannot fault on a full disk.
        use std::os::unix::fs::MetadataExt;
        assert!(
            meta.blocks() * 512 >= meta.len(),
            "{} blocks",
            meta.blocks()
        );

        let file = tempfile::tempfile().expect("temp file");
        let free = free_bytes(&file)
            .expect("statvfs")
            .expect("a sized filesystem");
        let too_much = free + (1 << 30);
        let err = reserve_by_writing(&file, too_much).expect_err("more than the free space");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(err.to_string().contains("free"), "{err}");
        assert_eq!(
            file.metadata().expect("metadata").len(),
            0,
            "nothing written"
        );
    }
}
