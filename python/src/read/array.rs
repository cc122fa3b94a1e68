//! The arrays `read_rows` and `take_rows` are handed, read from numpy's `__array_interface__`
//! and checked before anything touches their memory: type, shape, layout, alignment,
//! writability; and the output as a typed slice, once checked.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// What the output holds: the file's float32 values as float32, float16 or bfloat16 bits, or
/// the stored values unchanged (`raw`, any plain number type of the stored size).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Conv {
    Float32,
    Float16,
    Bfloat16,
    Raw,
}

impl Conv {
    /// The conversion a `dtype` argument names.
    pub(super) fn parse(dtype: &str) -> PyResult<Self> {
        Ok(match dtype {
            "float32" => Conv::Float32,
            "float16" => Conv::Float16,
            "bfloat16" => Conv::Bfloat16,
            "raw" => Conv::Raw,
            _ => bail!(
                PyValueError,
                "dtype must be float32, float16, bfloat16 or raw: {dtype:?}"
            ),
        })
    }

    /// The `typestr` the output must have (`None`: raw, any plain number of the stored size)
    /// and the bytes of each output value when the stored ones have `itemsize`.
    pub(super) fn output(self, itemsize: usize) -> (Option<&'static str>, usize) {
        match self {
            Conv::Float32 => (Some("<f4"), 4),
            Conv::Float16 => (Some("<f2"), 2),
            Conv::Bfloat16 => (Some("<u2"), 2),
            Conv::Raw => (None, itemsize),
        }
    }
}

/// An array as its `__array_interface__` describes it.
pub(super) struct Iface {
    pub(super) addr: usize,
    readonly: bool,
    typestr: String,
    shape: Vec<usize>,
    /// Byte strides; `None` when C-contiguous.
    strides: Option<Vec<isize>>,
}

impl Iface {
    /// The interface of `obj` (called `name` in errors): a `TypeError` when it has none.
    pub(super) fn read(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        let bad = || PyTypeError::new_err(format!("{name} must be a numpy array"));
        let d = obj.getattr("__array_interface__").map_err(|_| bad())?;
        let d = d.cast::<PyDict>().map_err(|_| bad())?;
        let item = |key: &str| -> PyResult<Bound<'_, PyAny>> { d.get_item(key)?.ok_or_else(bad) };
        let (addr, readonly): (usize, bool) = item("data")?.extract().map_err(|_| bad())?;
        let strides = item("strides")?;
        let strides = match strides.is_none() {
            true => None,
            false => Some(strides.extract().map_err(|_| bad())?),
        };
        if d.get_item("offset")?
            .is_some_and(|o| o.extract::<usize>().ok() != Some(0))
        {
            return Err(bad());
        }
        let typestr = item("typestr")?.extract().map_err(|_| bad())?;
        let shape = item("shape")?.extract().map_err(|_| bad())?;
        Ok(Iface {
            addr,
            readonly,
            typestr,
            shape,
            strides,
        })
    }

    /// Whether the elements of `size` bytes lie in C order with no gaps.
    fn c_contiguous(&self, size: usize) -> bool {
        let Some(strides) = &self.strides else {
            return true;
        };
        let mut want = size as isize;
        for (&n, &s) in self.shape.iter().zip(strides).rev() {
            if n > 1 && s != want {
                return false;
            }
            want = want.saturating_mul(n as isize);
        }
        strides.len() == self.shape.len()
    }

    /// A 1-D C-contiguous array of `typestr` aligned to `size`: its length.
    pub(super) fn vector(&self, name: &str, typestr: &str, size: usize) -> PyResult<usize> {
        let aligned = self.addr.is_multiple_of(size);
        match self.shape[..] {
            [n] if self.typestr == typestr && self.c_contiguous(size) && aligned => Ok(n),
            _ => bail!(
                PyTypeError,
                "{name} must be a 1-D contiguous array of {typestr}"
            ),
        }
    }
}

/// The size of a plain little-endian number `typestr` (`<i8`, `<u4`, `<f4`, `|u1`, `<M8[ns]`),
/// or `None` for anything else (objects, structures, strings, big-endian).
fn plain_size(typestr: &str) -> Option<usize> {
    let (order, kind, rest) = (typestr.get(..1)?, typestr.get(1..2)?, typestr.get(2..)?);
    let digits = rest.split('[').next()?;
    let size: usize = digits.parse().ok()?;
    let unit_ok = digits.len() == rest.len() || matches!(kind, "M" | "m");
    let order_ok = order == "<" || (order == "|" && size == 1);
    (unit_ok && order_ok && "biufMm".contains(kind)).then_some(size)
}

/// Whether the byte ranges of `a` and `b` elements (`(address, bytes)`) share a byte.
pub(super) fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.1 > 0 && b.1 > 0 && a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

/// The checked output: a writable, aligned, C-contiguous `(rows, k)` array (or `(rows,)` when
/// `k == 1`) of the values `conv` writes.
pub(super) struct Out {
    addr: usize,
    pub(super) rows: usize,
    k: usize,
    size: usize,
}

impl Out {
    /// Checks `obj` as the output of `k` columns converted by `conv` from `itemsize`-byte values.
    pub(super) fn check(
        obj: &Bound<'_, PyAny>,
        k: usize,
        conv: Conv,
        itemsize: usize,
    ) -> PyResult<Self> {
        let a = Iface::read(obj, "out")?;
        let (typestr, size) = conv.output(itemsize);
        if !typestr.map_or(plain_size(&a.typestr) == Some(size), |t| a.typestr == t) {
            let want = typestr.map_or(format!("{size}-byte number"), |t| t.into());
            bail!(
                PyTypeError,
                "out must be a {want} array, not {:?}",
                a.typestr
            );
        }
        let rows = match a.shape[..] {
            [n, c] if c == k => n,
            [n] if k == 1 => n,
            _ => bail!(PyValueError, "out has shape {:?}, not (n, {k})", a.shape),
        };
        if a.readonly || !a.c_contiguous(size) || !a.addr.is_multiple_of(size) {
            bail!(
                PyTypeError,
                "out must be a writable, aligned, C-contiguous array"
            );
        }
        if rows
            .checked_mul(k)
            .and_then(|e| e.checked_mul(size))
            .is_none()
        {
            bail!(PyValueError, "out is too large");
        }
        Ok(Out {
            addr: a.addr,
            rows,
            k,
            size,
        })
    }

    /// Its memory as `(address, bytes)`.
    pub(super) fn span(&self) -> (usize, usize) {
        (self.addr, self.rows * self.k * self.size)
    }

    /// The output as a typed slice.
    ///
    /// # Safety
    /// The array `self` was checked from must stay referenced, and no other reference to its
    /// memory may be used, for as long as the slice lives.
    pub(super) unsafe fn slice<'a>(&self) -> Dst<'a> {
        let (addr, len) = (self.addr, self.rows * self.k);
        // SAFETY: numpy's array interface guarantees `len` valid elements of `size` bytes at
        // `addr` (checked: C-contiguous, of this shape, aligned to `size`, writable); the caller
        // keeps the array alive and unaliased while the slice lives. `u8`..`u64` accept any bits.
        unsafe {
            match self.size {
                1 => Dst::B1(std::slice::from_raw_parts_mut(addr as *mut u8, len)),
                2 => Dst::B2(std::slice::from_raw_parts_mut(addr as *mut u16, len)),
                4 => Dst::B4(std::slice::from_raw_parts_mut(addr as *mut u32, len)),
                _ => Dst::B8(std::slice::from_raw_parts_mut(addr as *mut u64, len)),
            }
        }
    }
}

/// The output's elements, by size.
pub(super) enum Dst<'a> {
    B1(&'a mut [u8]),
    B2(&'a mut [u16]),
    B4(&'a mut [u32]),
    B8(&'a mut [u64]),
}
