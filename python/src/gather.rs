//! `gather_rows`: the transposition `SpillFile.batches` spends its time in, from a spill file's
//! column-major feature view into row-major batches. numpy does it element by element with a
//! page-sized stride (under 1 GB/s); tiled here, without the GIL, it runs at memory speed.
//!
//! The arrays are described by numpy's `__array_interface__` (address, shape, strides, type),
//! which the stable ABI (abi3) can read; the buffer protocol it lacks before Python 3.11.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// The transposition works in tiles of 64 rows x 16 columns: 4 KiB of source (16 runs of 256
/// bytes) and 4 KiB of destination (64 runs of 64 bytes, one cache line each), so both stay in L1
/// and every destination line is written whole.
const TILE_ROWS: usize = 64;
const TILE_COLS: usize = 16;

/// A 2-D float32 array as its `__array_interface__` describes it.
struct Array {
    addr: usize,
    readonly: bool,
    shape: [usize; 2],
    /// Byte strides; `None` when C-contiguous.
    strides: Option<[isize; 2]>,
}

fn array(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Array> {
    let bad = || PyTypeError::new_err(format!("{name} must be a 2-D float32 numpy array"));
    let iface = obj.getattr("__array_interface__").map_err(|_| bad())?;
    let iface = iface.cast::<PyDict>().map_err(|_| bad())?;
    let item = |key: &str| -> PyResult<Bound<'_, PyAny>> { iface.get_item(key)?.ok_or_else(bad) };
    if item("typestr")?.extract::<String>()? != "<f4" {
        return Err(bad());
    }
    let (addr, readonly): (usize, bool) = item("data")?.extract()?;
    let shape: Vec<usize> = item("shape")?
        .cast::<PyTuple>()
        .map_err(|_| bad())?
        .extract()?;
    let shape: [usize; 2] = shape.try_into().map_err(|_| bad())?;
    let strides = item("strides")?;
    let strides = if strides.is_none() {
        None
    } else {
        let s: Vec<isize> = strides.extract()?;
        Some(s.try_into().map_err(|_| bad())?)
    };
    Ok(Array {
        addr,
        readonly,
        shape,
        strides,
    })
}

/// Copies rows `[start, start + rows)` of `src`, a 2-D float32 array of shape `(nrows, k)` with any
/// non-negative strides (a spill file's feature view is column-major at a constant stride), into
/// rows `[at, at + rows)` of `dst`, a writable C-contiguous float32 array of shape `(n, k)`.
#[pyfunction]
pub(crate) fn gather_rows(
    py: Python<'_>,
    dst: &Bound<'_, PyAny>,
    at: usize,
    src: &Bound<'_, PyAny>,
    start: usize,
    rows: usize,
) -> PyResult<()> {
    let d = array(dst, "dst")?;
    let s = array(src, "src")?;
    let [n, k] = d.shape;
    let c_contiguous = d.strides.is_none_or(|st| st == [4 * k as isize, 4]);
    if d.readonly || !c_contiguous {
        return Err(PyTypeError::new_err(
            "dst must be a writable C-contiguous 2-D float32 array",
        ));
    }
    let [src_rows, src_cols] = s.shape;
    let [rs, cs] = s.strides.unwrap_or([4 * src_cols as isize, 4]);
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
    // Raw addresses cross into the GIL-free closure. `dst` and `src` are borrowed for the whole
    // call, so the arrays (and whatever keeps their memory valid: the buffer export a view of a
    // mapped file holds, which stops the mapping from closing) live until it returns.
    let (dp, sp) = (d.addr, s.addr);
    py.detach(move || {
        let (dp, sp) = (dp as *mut f32, sp as *const u8);
        for r0 in (0..rows).step_by(TILE_ROWS) {
            let r1 = (r0 + TILE_ROWS).min(rows);
            for c0 in (0..k).step_by(TILE_COLS) {
                let c1 = (c0 + TILE_COLS).min(k);
                for r in r0..r1 {
                    for j in c0..c1 {
                        // SAFETY: numpy's array interface guarantees that `src` describes valid
                        // memory for every index within its shape at its strides, and `start + r
                        // < src_rows`, `j < k == src_cols` were checked above; the read tolerates
                        // any alignment. `dst` is a writable C-contiguous (n, k) float32 array and
                        // `at + r < n`, `j < k`, so the element is inside it. Both arrays are
                        // referenced for the whole call, so neither can be freed or resized
                        // (numpy refuses to resize a referenced array), and they do not overlap
                        // (`dst` is a fresh array the reader allocated).
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
