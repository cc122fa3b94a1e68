//! `read_rows` and `take_rows`: a spill file's columns into row-major batches, converted on the
//! way. This module owns the native reads of `SpillFile.batches` and `SpillFile.take`.
//!
//! `read_rows` copies row ranges of a set of columns out of the file with `pread(2)`: no mapping,
//! so no page faults and nothing left mapped behind the reader. The bytes go through a bounce
//! buffer of at most 16 columns x 4096 rows (its size never grows with the run), are converted
//! (float32 to float16 or bfloat16, or copied as they are) and transposed tile by tile into the
//! row-major output. On request it checks, once, the CRC-32 of each chunk it touches; which
//! chunks are verified the caller keeps, one byte per chunk in a `bytearray` per column.
//!
//! `take_rows` gathers random rows from the file's mapping, 16 columns at a time and row by row
//! in the order given (so each column is read front to back when the rows are sorted), writing
//! each line of the output once, converted.
//!
//! Both validate every shape, offset and index before they touch memory and run without the GIL.
//! Arrays cross by numpy's `__array_interface__` (abi3 before Python 3.11 has
//! no buffer protocol).

use std::io;

use pyo3::exceptions::{PyIndexError, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyString};

// The file's values are little-endian and are reinterpreted in place as native ones.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "spill files are little-endian"
);

/// `return Err($exc::new_err(format!(...)))`: the argument checks' early exit.
macro_rules! bail {
    ($exc:ident, $($msg:tt)+) => {
        return Err($exc::new_err(format!($($msg)+)))
    };
}

mod array;
mod bounce;

use array::{overlaps, Conv, Dst, Iface, Out};
use bounce::{Bounce, BLOCK_ROWS, GROUP_COLS};

/// Why a read without the GIL stopped, by column (as in the call's `offsets`).
enum Failure {
    /// (column, byte offset, error): pread(2) failed.
    Io(usize, u64, io::Error),
    /// (column, byte offset, bytes wanted, bytes read): the file ended first.
    Eof(usize, u64, usize, usize),
    /// (column, chunk, stored CRC, computed CRC).
    Checksum(usize, u64, u32, u32),
}

impl Failure {
    /// The Python exception: `OSError`, or `ValueError` for a short file or a damaged chunk.
    /// `names` name the columns (else their index); `rows_of` gives a chunk's rows.
    fn into_py(
        self,
        py: Python<'_>,
        names: Option<&[String]>,
        rows_of: impl Fn(u64) -> (u64, u64),
    ) -> PyErr {
        let name = |i: usize| match names.and_then(|n| n.get(i)) {
            Some(n) => PyString::new(py, n)
                .repr()
                .map_or_else(|_| format!("{n:?}"), |r| r.to_string()),
            None => i.to_string(),
        };
        match self {
            Failure::Io(col, at, err) => {
                let msg = format!("reading column {} at byte {at}: {err}", name(col));
                match err.raw_os_error() {
                    Some(errno) => PyOSError::new_err((errno, msg)),
                    None => PyOSError::new_err(msg),
                }
            }
            Failure::Eof(col, at, want, got) => PyValueError::new_err(format!(
                "column {}: the file ends at byte {}, inside the column (reading {want} bytes at \
                 byte {at}): is it truncated?",
                name(col),
                at + got as u64
            )),
            Failure::Checksum(col, chunk, stored, actual) => {
                let (r0, r1) = rows_of(chunk);
                PyValueError::new_err(format!(
                    "column {} rows [{r0}, {r1}) (chunk {chunk}): checksum mismatch: stored \
                     {stored:#010x}, computed {actual:#010x}",
                    name(col)
                ))
            }
        }
    }
}

/// Reads `buf.len()` bytes of `fd` at byte `at` with pread(2), retrying on EINTR; the file
/// ending first is [`Failure::Eof`], for column `col`.
fn pread(fd: i32, buf: &mut [u8], at: u64, col: usize) -> Result<(), Failure> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        let pos = at + done as u64;
        let Ok(off) = libc::off_t::try_from(pos) else {
            return Err(Failure::Io(col, pos, io::ErrorKind::InvalidInput.into()));
        };
        // SAFETY: `rest` is a writable buffer of `rest.len()` bytes that nothing else uses, and
        // pread writes at most that many bytes into it. On any integer `fd` the call is defined
        // (EBADF when it is not an open file); the fd is only borrowed, never closed here.
        let n = unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), off) };
        match usize::try_from(n) {
            Ok(0) => return Err(Failure::Eof(col, at, buf.len(), done)),
            Ok(n) => done += n,
            Err(_) => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(Failure::Io(col, pos, e));
                }
            }
        }
    }
    Ok(())
}

/// The CRC-32 of `len` bytes of `fd` at `at` (in column `col`), read through `buf` in pieces.
fn chunk_crc(fd: i32, buf: &mut [u8], col: usize, at: u64, len: u64) -> Result<u32, Failure> {
    let mut hasher = crc32fast::Hasher::new();
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let piece = &mut buf[..want];
        pread(fd, piece, at + done, col)?;
        hasher.update(piece);
        done += piece.len() as u64;
    }
    Ok(hasher.finalize())
}

/// Copies rows of spill-file columns read with pread(2) from the open file `fd` (borrowed, not
/// closed) into `out`: column `i` is `col_bytes` bytes at byte `offsets[i]` of little-endian
/// values of `itemsize` bytes; each run `(a, b)` in turn puts rows `[a, b)` of every column into
/// the next rows of `out` from row `at`. `dtype` says what `out` holds: "float32", "float16",
/// "bfloat16" (`<u2` bits) from float32 columns, or "raw" (the values as stored). With `crcs`
/// (each column's chunk CRC-32s, chunks of `chunk_bytes`), every chunk a run touches is read
/// whole and checked first, unless `verified[i][k]` is non-zero; `verified[i][k]` is set to 1
/// for each chunk found intact (the bytearrays are updated in place). A mismatch is a
/// `ValueError` naming the column (`names[i]`), its rows and the chunk; nothing is copied then.
#[pyfunction]
#[pyo3(signature = (fd, offsets, col_bytes, runs, out, at, dtype, itemsize=4, chunk_bytes=0,
                    crcs=None, verified=None, names=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_rows(
    py: Python<'_>,
    fd: i32,
    offsets: Vec<u64>,
    col_bytes: u64,
    runs: Vec<(u64, u64)>,
    out: &Bound<'_, PyAny>,
    at: usize,
    dtype: &str,
    itemsize: usize,
    chunk_bytes: u64,
    crcs: Option<Vec<Vec<u32>>>,
    verified: Option<Vec<Bound<'_, PyByteArray>>>,
    names: Option<Vec<String>>,
) -> PyResult<()> {
    let (conv, k, s) = (Conv::parse(dtype)?, offsets.len(), itemsize as u64);
    if !matches!(itemsize, 1 | 2 | 4 | 8) || (conv != Conv::Raw && itemsize != 4) {
        bail!(
            PyValueError,
            "itemsize {itemsize} does not suit dtype {dtype:?}"
        );
    }
    if fd < 0 {
        bail!(PyValueError, "fd {fd} is not a file descriptor");
    }
    if names.as_ref().is_some_and(|n| n.len() != k) {
        bail!(PyValueError, "names must name all {k} columns");
    }
    let max = libc::off_t::MAX as u64;
    if let Some(off) = offsets
        .iter()
        .find(|o| o.checked_add(col_bytes).is_none_or(|e| e > max))
    {
        bail!(
            PyValueError,
            "a column of {col_bytes} bytes at byte {off} is beyond any file"
        );
    }
    let (col_rows, mut total) = (col_bytes / s, 0usize);
    for &(a, b) in &runs {
        if a > b || b > col_rows {
            bail!(
                PyValueError,
                "run ({a}, {b}) is not within the columns' {col_rows} rows"
            );
        }
        let Some(sum) = usize::try_from(b - a)
            .ok()
            .and_then(|n| total.checked_add(n))
        else {
            bail!(PyValueError, "the runs hold more rows than memory");
        };
        total = sum;
    }
    let o = Out::check(out, k, conv, itemsize)?;
    if at.checked_add(total).is_none_or(|end| end > o.rows) {
        bail!(
            PyValueError,
            "cannot copy {total} rows to row {at} of {} rows",
            o.rows
        );
    }
    let jobs = match &crcs {
        Some(c) if c.len() != k => bail!(PyValueError, "crcs must list every column's checksums"),
        Some(c) => unverified(c, verified.as_deref(), &runs, col_bytes, chunk_bytes, s)?,
        None if verified.is_some() => bail!(PyValueError, "verified needs crcs"),
        None => Vec::new(),
    };
    let (passed, result) = py.detach(|| {
        let mut bounce = Bounce::new(itemsize);
        for (n, &(i, c)) in jobs.iter().enumerate() {
            let (start, stored) = (
                c * chunk_bytes,
                crcs.as_ref().map_or(0, |v| v[i][c as usize]),
            );
            let len = chunk_bytes.min(col_bytes - start);
            match chunk_crc(fd, bounce.bytes(), i, offsets[i] + start, len) {
                Ok(actual) if actual == stored => {}
                Ok(actual) => return (n, Err(Failure::Checksum(i, c, stored, actual))),
                Err(e) => return (n, Err(e)),
            }
        }
        if total == 0 || k == 0 {
            return (jobs.len(), Ok(()));
        }
        // SAFETY: `out` is borrowed for the whole call, so the array stays alive, and nothing
        // else reads or writes it while the caller waits for this call (the reader allocated it).
        let mut dst = unsafe { o.slice() };
        (
            jobs.len(),
            copy_runs(fd, &offsets, &runs, s, conv, &mut dst, at, &mut bounce),
        )
    });
    if let Some(v) = &verified {
        for &(i, c) in &jobs[..passed] {
            // SAFETY: the GIL is held and no Python code runs while the slice is in use (one
            // byte written), so the bytearray can be neither resized nor freed under it.
            if let Some(f) = unsafe { v[i].as_bytes_mut() }.get_mut(c as usize) {
                *f = 1;
            }
        }
    }
    let rows_of = |c: u64| {
        (
            c * chunk_bytes / s,
            ((c + 1) * chunk_bytes).min(col_bytes) / s,
        )
    };
    result.map_err(|e| e.into_py(py, names.as_deref(), rows_of))
}

/// The chunks to check before a read: `(column, chunk)` for every chunk of `chunk_bytes` that a
/// run touches and `verified` (one byte per chunk and column, when given) does not mark.
fn unverified(
    crcs: &[Vec<u32>],
    verified: Option<&[Bound<'_, PyByteArray>]>,
    runs: &[(u64, u64)],
    col_bytes: u64,
    chunk_bytes: u64,
    s: u64,
) -> PyResult<Vec<(usize, u64)>> {
    if chunk_bytes == 0 || !chunk_bytes.is_multiple_of(s) {
        bail!(
            PyValueError,
            "chunk_bytes {chunk_bytes} is not a positive multiple of {s}"
        );
    }
    let chunks = col_bytes.div_ceil(chunk_bytes);
    let k = crcs.len();
    if crcs.iter().any(|c| c.len() as u64 != chunks) {
        bail!(
            PyValueError,
            "crcs must list {chunks} checksums for each column"
        );
    }
    if verified.is_some_and(|v| v.len() != k || v.iter().any(|b| b.len() as u64 != chunks)) {
        bail!(
            PyValueError,
            "verified must hold {chunks} bytes for each of the {k} columns"
        );
    }
    let mut touched: Vec<u64> = runs
        .iter()
        .filter(|(a, b)| a < b)
        .flat_map(|&(a, b)| a * s / chunk_bytes..=(b * s - 1) / chunk_bytes)
        .collect();
    touched.sort_unstable();
    touched.dedup();
    let mut jobs = Vec::new();
    for i in 0..k {
        // SAFETY: the GIL is held and no Python code runs while the slice is in use (only
        // indexed here), so the bytearray can be neither resized nor freed under it.
        let flags = verified.map(|v| unsafe { v[i].as_bytes() });
        let done = |c: u64| flags.is_some_and(|f| f.get(c as usize).is_some_and(|&b| b != 0));
        jobs.extend(touched.iter().filter(|&&c| !done(c)).map(|&c| (i, c)));
    }
    Ok(jobs)
}

/// `read_rows`' copy: every run into consecutive rows of `dst` from row `at`, a block of up to
/// `BLOCK_ROWS` rows of `GROUP_COLS` columns at a time.
#[allow(clippy::too_many_arguments)]
fn copy_runs(
    fd: i32,
    offsets: &[u64],
    runs: &[(u64, u64)],
    s: u64,
    conv: Conv,
    dst: &mut Dst<'_>,
    mut at: usize,
    bounce: &mut Bounce,
) -> Result<(), Failure> {
    let k = offsets.len();
    for &(a, b) in runs {
        for r in (a..b).step_by(BLOCK_ROWS) {
            let n = (b - r).min(BLOCK_ROWS as u64) as usize;
            for c0 in (0..k).step_by(GROUP_COLS) {
                let cols = GROUP_COLS.min(k - c0);
                for j in 0..cols {
                    pread(fd, bounce.slot(j, n), offsets[c0 + j] + r * s, c0 + j)?;
                }
                bounce.emit(conv, (cols, n), dst, k, c0, |x| at + x);
            }
            at += n;
        }
    }
    Ok(())
}

/// Gathers rows from float32 columns of a mapped spill file: `out[dest[i], j] =
/// column_j[rows[i]]`, column `j` being `nrows` float32 values at byte `offsets[j]` of `base` (a
/// 1-D uint8 array over the whole mapping), converted to `dtype` ("float32", "float16" or
/// "bfloat16", as for `read_rows`). `rows` and `dest` are int64 arrays of one length; `rows`
/// sorted ascending reads each column front to back. Every index and column region is checked
/// before any read (`IndexError`, `ValueError`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(crate) fn take_rows(
    py: Python<'_>,
    base: &Bound<'_, PyAny>,
    offsets: Vec<u64>,
    nrows: u64,
    rows: &Bound<'_, PyAny>,
    dest: &Bound<'_, PyAny>,
    out: &Bound<'_, PyAny>,
    dtype: &str,
) -> PyResult<()> {
    let conv = Conv::parse(dtype)?;
    if conv == Conv::Raw {
        bail!(
            PyValueError,
            "take_rows reads float32 columns: dtype must not be raw"
        );
    }
    let (b, r, d) = (
        Iface::read(base, "base")?,
        Iface::read(rows, "rows")?,
        Iface::read(dest, "dest")?,
    );
    let (blen, m) = (b.vector("base", "|u1", 1)?, r.vector("rows", "<i8", 8)?);
    if d.vector("dest", "<i8", 8)? != m {
        bail!(PyValueError, "rows and dest differ in length");
    }
    let k = offsets.len();
    let o = Out::check(out, k, conv, 4)?;
    let Some(col_len) = nrows.checked_mul(4).and_then(|n| usize::try_from(n).ok()) else {
        bail!(PyValueError, "{nrows} rows is too many");
    };
    for (j, &off) in offsets.iter().enumerate() {
        if usize::try_from(off)
            .ok()
            .and_then(|o| o.checked_add(col_len))
            .is_none_or(|e| e > blen)
        {
            bail!(
                PyValueError,
                "column {j}: {col_len} bytes at byte {off} are beyond base's {blen}"
            );
        }
    }
    let (bs, rs, ds) = ((b.addr, blen), (r.addr, m * 8), (d.addr, m * 8));
    if [bs, rs, ds].iter().any(|&x| overlaps(o.span(), x)) {
        bail!(
            PyValueError,
            "out must not share memory with base, rows or dest"
        );
    }
    if m == 0 || k == 0 {
        return Ok(());
    }
    let bad = py.detach(|| {
        // SAFETY: numpy's array interface guarantees that each array has its shape's elements at
        // its address (checked: 1-D, C-contiguous, int64 ones aligned to 8 bytes); `base`, `rows`
        // and `dest` are borrowed for the whole call, which keeps them (and the mapping `base`
        // holds a buffer export of) alive, and none overlaps `out`, the only memory written.
        let (base, rows, dest) = unsafe {
            (
                std::slice::from_raw_parts(bs.0 as *const u8, blen),
                std::slice::from_raw_parts(rs.0 as *const i64, m),
                std::slice::from_raw_parts(ds.0 as *const i64, m),
            )
        };
        if let Some(i) = rows.iter().position(|&x| x < 0 || x as u64 >= nrows) {
            return Some(format!(
                "rows[{i}] = {} is not one of the {nrows} rows",
                rows[i]
            ));
        }
        if let Some(i) = dest.iter().position(|&x| x < 0 || x as usize >= o.rows) {
            return Some(format!(
                "dest[{i}] = {} is not one of out's {} rows",
                dest[i], o.rows
            ));
        }
        // SAFETY: `out` is borrowed for the whole call, so the array stays alive, and nothing
        // else reads or writes it meanwhile (it overlaps none of the arrays read above).
        let mut dst = unsafe { o.slice() };
        for c0 in (0..k).step_by(GROUP_COLS) {
            let group = &offsets[c0..(c0 + GROUP_COLS).min(k)];
            let cols: Vec<&[u8]> = group
                .iter()
                .map(|&off| &base[off as usize..off as usize + col_len])
                .collect();
            bounce::gather(conv, &cols, (rows, dest), &mut dst, k, c0);
        }
        None
    });
    bad.map_or(Ok(()), |msg| Err(PyIndexError::new_err(msg)))
}
