//! How values reach the row-major output: `read_rows`' bounce buffer (a block of columns' rows,
//! converted to the output's type, then transposed), and `take_rows`' gather (row by row from
//! the mapping, a line of the output converted at a time).

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};

use super::array::{Conv, Dst};

/// Rows per column slot of the bounce buffer.
pub(super) const BLOCK_ROWS: usize = 4096;
/// Columns per bounce buffer: a block is 16 reads of up to 16 KiB (32 KiB for 8-byte values),
/// 256 KiB in all, which stays in L2 while it is transposed into 64-byte lines of the output.
/// (Measured on 100 float32 columns: 1024 to 8192 rows and 8 to 32 columns are within 10%.)
pub(super) const GROUP_COLS: usize = 16;

/// The bounce buffer: `GROUP_COLS` slots of `BLOCK_ROWS` stored values of `size` bytes (one
/// column's rows per slot), and their float16/bfloat16 conversions (allocated on first use).
pub(super) struct Bounce {
    raw: Vec<u64>,
    half: Vec<u16>,
    size: usize,
}

impl Bounce {
    /// An empty buffer for stored values of `size` bytes.
    pub(super) fn new(size: usize) -> Self {
        let raw = vec![0; GROUP_COLS * BLOCK_ROWS * size / 8];
        Bounce {
            raw,
            half: Vec::new(),
            size,
        }
    }

    /// The first `rows` values of slot `j`, as bytes.
    pub(super) fn slot(&mut self, j: usize, rows: usize) -> &mut [u8] {
        let start = j * BLOCK_ROWS * self.size;
        &mut bytemuck::cast_slice_mut(&mut self.raw)[start..start + rows * self.size]
    }

    /// The whole buffer as bytes (for checksumming a chunk piece by piece).
    pub(super) fn bytes(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.raw)
    }

    /// Converts the first `rows` values of slots `0..cols` and writes value `r` of slot `j` to
    /// `dst[row(r) * k + c0 + j]`.
    pub(super) fn emit(
        &mut self,
        conv: Conv,
        (cols, rows): (usize, usize),
        dst: &mut Dst<'_>,
        k: usize,
        c0: usize,
        row: impl Fn(usize) -> usize,
    ) {
        let (raw, at) = (&self.raw, (cols, rows, k, c0));
        match (conv, dst) {
            (Conv::Float16 | Conv::Bfloat16, Dst::B2(d)) => {
                let src: &[f32] = bytemuck::cast_slice(raw);
                self.half.resize(GROUP_COLS * BLOCK_ROWS, 0);
                for j in 0..cols {
                    let s = j * BLOCK_ROWS..j * BLOCK_ROWS + rows;
                    let to = &mut self.half[s.clone()];
                    if conv == Conv::Float16 {
                        to.reinterpret_cast_mut::<f16>()
                            .convert_from_f32_slice(&src[s]);
                    } else {
                        bf16_from_f32(&src[s], to);
                    }
                }
                scatter(&self.half, d, at, row);
            }
            (_, Dst::B1(d)) => scatter(bytemuck::cast_slice(raw), d, at, row),
            (_, Dst::B2(d)) => scatter(bytemuck::cast_slice(raw), d, at, row),
            (_, Dst::B4(d)) => scatter(bytemuck::cast_slice(raw), d, at, row),
            (_, Dst::B8(d)) => scatter(raw, d, at, row),
        }
    }
}

/// The transposition: value `r` of slot `j` of `src` to `dst[row(r) * k + c0 + j]` for
/// `(cols, rows, k, c0)`, a row of `cols` values (one 64-byte line of float32) at a time, while
/// the slots stay in cache. A whole group goes through fixed-size arrays, which the compiler
/// unrolls: 1.1 (release) to 1.5 (dev profile) times the speed of the general loop.
fn scatter<T: Copy>(
    src: &[T],
    dst: &mut [T],
    (cols, rows, k, c0): (usize, usize, usize, usize),
    row: impl Fn(usize) -> usize,
) {
    if cols == GROUP_COLS {
        let slots: [&[T]; GROUP_COLS] =
            std::array::from_fn(|j| &src[j * BLOCK_ROWS..j * BLOCK_ROWS + rows]);
        for r in 0..rows {
            let at = row(r) * k + c0;
            let Ok(line) = <&mut [T; GROUP_COLS]>::try_from(&mut dst[at..at + GROUP_COLS]) else {
                unreachable!("a slice of GROUP_COLS values");
            };
            for (d, slot) in line.iter_mut().zip(&slots) {
                *d = slot[r];
            }
        }
        return;
    }
    for r in 0..rows {
        let at = row(r) * k + c0;
        for (j, d) in dst[at..at + cols].iter_mut().enumerate() {
            *d = src[j * BLOCK_ROWS + r];
        }
    }
}

/// `take_rows`' gather: for each `i`, the float32 values at row `rows[i]` of `cols` (at most
/// `GROUP_COLS` columns' bytes), converted, to `dst[dest[i] * k + c0..]`. One row of the group at
/// a time: each column is read in the order of `rows`, and each output line written once.
pub(super) fn gather(
    conv: Conv,
    cols: &[&[u8]],
    (rows, dest): (&[i64], &[i64]),
    dst: &mut Dst<'_>,
    k: usize,
    c0: usize,
) {
    let at = (cols, rows, dest, k, c0);
    match dst {
        Dst::B4(d) => gather_into(at, d, |s, t| {
            t.iter_mut().zip(s).for_each(|(t, s)| *t = s.to_bits())
        }),
        Dst::B2(d) if conv == Conv::Float16 => gather_into(at, d, |s, t| {
            t.reinterpret_cast_mut::<f16>().convert_from_f32_slice(s)
        }),
        Dst::B2(d) => gather_into(at, d, bf16_from_f32),
        // `Out::check` allows take_rows only float32, float16 and bfloat16 outputs.
        Dst::B1(_) | Dst::B8(_) => {}
    }
}

/// [`gather`] into values of type `T`, `put` converting a row's values.
fn gather_into<T>(
    (cols, rows, dest, k, c0): (&[&[u8]], &[i64], &[i64], usize, usize),
    dst: &mut [T],
    put: impl Fn(&[f32], &mut [T]),
) {
    let mut line = [0f32; GROUP_COLS];
    let line = &mut line[..cols.len()];
    for (&x, &d) in rows.iter().zip(dest) {
        let p = x as usize * 4;
        for (v, c) in line.iter_mut().zip(cols) {
            let mut b = [0; 4];
            b.copy_from_slice(&c[p..p + 4]);
            *v = f32::from_le_bytes(b);
        }
        let at = d as usize * k + c0;
        put(line, &mut dst[at..at + line.len()]);
    }
}

/// float32 to bfloat16 bits, rounded to nearest even (overflow gives infinity); a NaN stays a
/// NaN, made quiet. Branch-free, so that it vectorizes.
fn bf16_from_f32(src: &[f32], dst: &mut [u16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        let b = s.to_bits();
        let rounded = (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16;
        let nan = b & 0x7fff_ffff > 0x7f80_0000;
        *d = if nan {
            (b >> 16) as u16 | 0x40
        } else {
            rounded
        };
    }
}
