//! Fused conversion of any numeric arrow array to the output float type, with NaN at nulls and a
//! row selection applied in the same pass (no `cast` then copy).
//!
//! Integers and decimals beyond 2^24 become the nearest float32 (`as` rounds to nearest; decimals
//! go through f64, at most 1 ulp off); booleans become 0/1; float16 widens exactly.

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrowPrimitiveType};
use arrow_buffer::i256;
use arrow_schema::DataType;

/// Which rows of a batch go to the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// A contiguous range (the common case: no null times).
    Range(Range<usize>),
    /// Explicit, increasing row indices.
    Indices(Vec<u32>),
}

impl Selection {
    /// Rows selected.
    pub fn len(&self) -> usize {
        match self {
            Selection::Range(r) => r.len(),
            Selection::Indices(v) => v.len(),
        }
    }

    /// Copies the selected elements of `src` (a whole batch) into `dst` (the selection's length).
    pub fn gather<T: Copy>(&self, src: &[T], dst: &mut [T]) {
        match self {
            Selection::Range(r) => dst.copy_from_slice(&src[r.clone()]),
            Selection::Indices(idx) => {
                for (o, &i) in dst.iter_mut().zip(idx) {
                    *o = src[i as usize];
                }
            }
        }
    }
}

/// An output float type.
pub trait Float: Copy + Send + bytemuck::Pod + spill::Element + 'static {
    /// NaN.
    const NAN: Self;
    /// From f64 (rounding to nearest).
    fn from_f64(v: f64) -> Self;
    /// From f32 (exact widening or identity).
    fn from_f32(v: f32) -> Self;
    /// From i64 (nearest).
    fn from_i64(v: i64) -> Self;
    /// From u64 (nearest).
    fn from_u64(v: u64) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
}

impl Float for f32 {
    const NAN: f32 = f32::NAN;
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn from_f32(v: f32) -> f32 {
        v
    }
    fn from_i64(v: i64) -> f32 {
        v as f32
    }
    fn from_u64(v: u64) -> f32 {
        v as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Float for f64 {
    const NAN: f64 = f64::NAN;
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn from_f32(v: f32) -> f64 {
        f64::from(v)
    }
    fn from_i64(v: i64) -> f64 {
        v as f64
    }
    fn from_u64(v: u64) -> f64 {
        v as f64
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Converts the selected rows of `array` into `out` (whose length is the selection's). Returns
/// `Err(type)` for a type that is not numeric (planning rules those out; this is a guard).
pub fn convert<O: Float>(array: &dyn Array, sel: &Selection, out: &mut [O]) -> Result<(), String> {
    debug_assert_eq!(out.len(), sel.len());
    match array.data_type() {
        DataType::Float64 => prim::<Float64Type, O>(array, sel, out, O::from_f64),
        DataType::Float32 => prim::<Float32Type, O>(array, sel, out, O::from_f32),
        DataType::Float16 => prim::<Float16Type, O>(array, sel, out, |v| O::from_f32(v.to_f32())),
        DataType::Int8 => prim::<Int8Type, O>(array, sel, out, |v| O::from_i64(v.into())),
        DataType::Int16 => prim::<Int16Type, O>(array, sel, out, |v| O::from_i64(v.into())),
        DataType::Int32 => prim::<Int32Type, O>(array, sel, out, |v| O::from_i64(v.into())),
        DataType::Int64 => prim::<Int64Type, O>(array, sel, out, O::from_i64),
        DataType::UInt8 => prim::<UInt8Type, O>(array, sel, out, |v| O::from_u64(v.into())),
        DataType::UInt16 => prim::<UInt16Type, O>(array, sel, out, |v| O::from_u64(v.into())),
        DataType::UInt32 => prim::<UInt32Type, O>(array, sel, out, |v| O::from_u64(v.into())),
        DataType::UInt64 => prim::<UInt64Type, O>(array, sel, out, O::from_u64),
        DataType::Decimal32(_, s) => {
            let s = *s;
            prim::<Decimal32Type, O>(array, sel, out, |v| O::from_f64(decimal(v.into(), s)))
        }
        DataType::Decimal64(_, s) => {
            let s = *s;
            prim::<Decimal64Type, O>(array, sel, out, |v| O::from_f64(decimal(v.into(), s)))
        }
        DataType::Decimal128(_, s) => {
            let s = *s;
            prim::<Decimal128Type, O>(array, sel, out, |v| O::from_f64(decimal(v, s)))
        }
        DataType::Decimal256(_, s) => {
            let s = *s;
            prim::<Decimal256Type, O>(array, sel, out, |v| O::from_f64(decimal256(v, s)))
        }
        DataType::Boolean => {
            let a = array.as_boolean();
            for (o, i) in out.iter_mut().zip(rows(sel)) {
                *o = if a.is_null(i) {
                    O::NAN
                } else {
                    O::from_u64(u64::from(a.value(i)))
                };
            }
            Ok(())
        }
        DataType::Null => {
            out.fill(O::NAN);
            Ok(())
        }
        DataType::Dictionary(_, _) => dictionary(array, sel, out),
        other => Err(other.to_string()),
    }
}

fn rows(sel: &Selection) -> Box<dyn Iterator<Item = usize> + '_> {
    match sel {
        Selection::Range(r) => Box::new(r.clone()),
        Selection::Indices(v) => Box::new(v.iter().map(|&i| i as usize)),
    }
}

fn prim<T: ArrowPrimitiveType, O: Float>(
    array: &dyn Array,
    sel: &Selection,
    out: &mut [O],
    f: impl Fn(T::Native) -> O,
) -> Result<(), String> {
    let a = array.as_primitive::<T>();
    let values = a.values();
    let nulls = a.nulls().filter(|n| n.null_count() > 0);
    match sel {
        Selection::Range(r) => {
            // Convert every value (a straight loop that vectorizes), then overwrite the nulls.
            for (o, &v) in out.iter_mut().zip(&values[r.clone()]) {
                *o = f(v);
            }
            if let Some(n) = nulls {
                let valid = n.inner().slice(r.start, r.len());
                let mut next = 0;
                for (start, end) in valid.set_slices() {
                    out[next..start].fill(O::NAN);
                    next = end;
                }
                out[next..].fill(O::NAN);
            }
        }
        Selection::Indices(idx) => {
            for (o, &i) in out.iter_mut().zip(idx) {
                let i = i as usize;
                *o = if nulls.is_some_and(|n| n.is_null(i)) {
                    O::NAN
                } else {
                    f(values[i])
                };
            }
        }
    }
    Ok(())
}

/// A dictionary-encoded numeric column: convert the dictionary once, then gather by key.
fn dictionary<O: Float>(array: &dyn Array, sel: &Selection, out: &mut [O]) -> Result<(), String> {
    let DataType::Dictionary(key, _) = array.data_type() else {
        return Err(array.data_type().to_string());
    };
    macro_rules! by_key {
        ($k:ty) => {{
            let d = array.as_dictionary::<$k>();
            let dict = d.values();
            let mut conv = vec![O::NAN; dict.len()];
            convert(dict.as_ref(), &Selection::Range(0..dict.len()), &mut conv)?;
            let keys = d.keys();
            for (o, i) in out.iter_mut().zip(rows(sel)) {
                *o = if keys.is_null(i) {
                    O::NAN
                } else {
                    usize::try_from(keys.value(i))
                        .ok()
                        .and_then(|k| conv.get(k).copied())
                        .unwrap_or(O::NAN)
                };
            }
            Ok(())
        }};
    }
    match key.as_ref() {
        DataType::Int8 => by_key!(Int8Type),
        DataType::Int16 => by_key!(Int16Type),
        DataType::Int32 => by_key!(Int32Type),
        DataType::Int64 => by_key!(Int64Type),
        DataType::UInt8 => by_key!(UInt8Type),
        DataType::UInt16 => by_key!(UInt16Type),
        DataType::UInt32 => by_key!(UInt32Type),
        DataType::UInt64 => by_key!(UInt64Type),
        other => Err(other.to_string()),
    }
}

fn decimal(v: i128, scale: i8) -> f64 {
    scaled(v as f64, scale)
}

fn decimal256(v: i256, scale: i8) -> f64 {
    if let Some(small) = v.to_i128() {
        return decimal(small, scale);
    }
    // Beyond i128: magnitude from the parts (no cancellation: the high part dominates).
    let negative = v.is_negative();
    let (low, high) = v.wrapping_abs().to_parts();
    let m = (high as u128) as f64 * 2f64.powi(128) + low as f64; // as u128: i256::MIN stays 2^255
    scaled(if negative { -m } else { m }, scale)
}

fn scaled(v: f64, scale: i8) -> f64 {
    if scale >= 0 {
        v / 10f64.powi(i32::from(scale))
    } else {
        v * 10f64.powi(-i32::from(scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BooleanArray, Decimal128Array, DictionaryArray, Float64Array, Int64Array};
    use std::sync::Arc;

    fn conv32(a: &dyn Array, sel: Selection) -> Vec<f32> {
        let mut out = vec![0.0f32; sel.len()];
        convert(a, &sel, &mut out).expect("numeric");
        out
    }

    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn floats_with_nulls_over_ranges_and_indices() {
        let a = Float64Array::from(vec![
            Some(1.5),
            None,
            Some(-2.0),
            Some(1e40),
            None,
            Some(0.1),
        ]);
        assert!(same(
            &conv32(&a, Selection::Range(0..6)),
            &[1.5, f32::NAN, -2.0, f32::INFINITY, f32::NAN, 0.1]
        ));
        assert!(same(
            &conv32(&a, Selection::Range(1..4)),
            &[f32::NAN, -2.0, f32::INFINITY]
        ));
        assert!(same(
            &conv32(&a, Selection::Indices(vec![0, 4, 5])),
            &[1.5, f32::NAN, 0.1]
        ));
        let sliced = a.slice(2, 3);
        assert!(same(
            &conv32(&sliced, Selection::Range(0..3)),
            &[-2.0, f32::INFINITY, f32::NAN]
        ));
    }

    #[test]
    fn ints_round_to_nearest() {
        let big = (1i64 << 24) + 1; // not representable in f32: nearest is 2^24
        let a = Int64Array::from(vec![big, i64::MAX, -3]);
        assert_eq!(
            conv32(&a, Selection::Range(0..3)),
            vec![16_777_216.0, 9.223_372e18, -3.0]
        );
    }

    #[test]
    fn decimals_bools_and_dictionaries() {
        let d = Decimal128Array::from(vec![Some(12345), None])
            .with_precision_and_scale(10, 2)
            .expect("valid");
        assert!(same(
            &conv32(&d, Selection::Range(0..2)),
            &[123.45, f32::NAN]
        ));
        let b = BooleanArray::from(vec![Some(true), Some(false), None]);
        assert!(same(
            &conv32(&b, Selection::Range(0..3)),
            &[1.0, 0.0, f32::NAN]
        ));
        let keys = arrow_array::Int32Array::from(vec![Some(1), None, Some(0)]);
        let dict = DictionaryArray::try_new(keys, Arc::new(Float64Array::from(vec![2.5, 7.0])))
            .expect("dict");
        assert!(same(
            &conv32(&dict, Selection::Range(0..3)),
            &[7.0, f32::NAN, 2.5]
        ));
        let i256v = decimal256(i256::from_i128(-12345), 3);
        assert_eq!(i256v, -12.345);
    }
}
