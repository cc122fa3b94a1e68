//! How stored values become output values, and which columns the fast decoder reads: a flat
//! DOUBLE, FLOAT, INT32 or INT64 leaf (no decimal or unusual logical type, `max_rep_level == 0`,
//! `max_def_level <= 1`) whose every chunk uses only plain, dictionary and level encodings, and
//! whose arrow type reads the stored numbers as they are. Computed once per file by the plan.

use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::basic::{ConvertedType, Encoding, LogicalType, Type as PhysicalType};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::schema::types::ColumnDescriptor;

/// How stored values become output values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Physical {
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// Signed 32-bit.
    I32,
    /// Unsigned 32-bit (UINT_32).
    U32,
    /// INT32 storage of an INT_8 column: truncated to its low 8 bits, as arrow-rs and parquet-cpp
    /// (pyarrow) read it.
    I8,
    /// INT32 storage of an INT_16 column: truncated to 16 bits.
    I16,
    /// INT32 storage of a UINT_8 column: truncated to 8 bits.
    U8,
    /// INT32 storage of a UINT_16 column: truncated to 16 bits.
    U16,
    /// Signed 64-bit (also timestamps, date64).
    I64,
    /// Unsigned 64-bit (UINT_64).
    U64,
}

impl Physical {
    pub(super) fn width(self) -> usize {
        match self {
            Physical::F32
            | Physical::I32
            | Physical::U32
            | Physical::I8
            | Physical::I16
            | Physical::U8
            | Physical::U16 => 4,
            Physical::F64 | Physical::I64 | Physical::U64 => 8,
        }
    }
}

/// An output element the decoder can produce from any physical value.
pub trait Decoded: Copy + Send + 'static {
    /// What a null becomes.
    const NULL: Self;
    /// From a stored double.
    fn of_f64(v: f64) -> Self;
    /// From a stored float.
    fn of_f32(v: f32) -> Self;
    /// From a stored signed integer.
    fn of_i64(v: i64) -> Self;
    /// From a stored unsigned integer.
    fn of_u64(v: u64) -> Self;
}

impl<O: crate::input::convert::Float> Decoded for O {
    const NULL: O = O::NAN;
    fn of_f64(v: f64) -> O {
        O::from_f64(v)
    }
    fn of_f32(v: f32) -> O {
        O::from_f32(v)
    }
    fn of_i64(v: i64) -> O {
        O::from_i64(v)
    }
    fn of_u64(v: u64) -> O {
        O::from_u64(v)
    }
}

/// Raw integers for the time column (the caller scales them to nanoseconds; float time columns
/// are not eligible, so the float conversions are never used).
impl Decoded for i64 {
    const NULL: i64 = 0;
    fn of_f64(v: f64) -> i64 {
        v as i64
    }
    fn of_f32(v: f32) -> i64 {
        v as i64
    }
    fn of_i64(v: i64) -> i64 {
        v
    }
    fn of_u64(v: u64) -> i64 {
        v as i64
    }
}

/// Converts `out.len()` little-endian values of `phys` from `bytes` (one tight loop per type).
pub(super) fn convert_plain<T: Decoded>(phys: Physical, bytes: &[u8], out: &mut [T]) {
    macro_rules! each {
        ($n:literal, $conv:expr) => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact($n)) {
                let mut a = [0u8; $n];
                a.copy_from_slice(b);
                *o = $conv(a);
            }
        };
    }
    match phys {
        Physical::F64 => each!(8, |a| T::of_f64(f64::from_le_bytes(a))),
        Physical::F32 => each!(4, |a| T::of_f32(f32::from_le_bytes(a))),
        Physical::I32 => each!(4, |a| T::of_i64(i64::from(i32::from_le_bytes(a)))),
        Physical::U32 => each!(4, |a| T::of_u64(u64::from(u32::from_le_bytes(a)))),
        Physical::I8 => each!(4, |a| T::of_i64(i64::from(i32::from_le_bytes(a) as i8))),
        Physical::I16 => each!(4, |a| T::of_i64(i64::from(i32::from_le_bytes(a) as i16))),
        Physical::U8 => each!(4, |a| T::of_u64(u64::from(u32::from_le_bytes(a) as u8))),
        Physical::U16 => each!(4, |a| T::of_u64(u64::from(u32::from_le_bytes(a) as u16))),
        Physical::I64 => each!(8, |a| T::of_i64(i64::from_le_bytes(a))),
        Physical::U64 => each!(8, |a| T::of_u64(u64::from_le_bytes(a))),
    }
}

/// The physical reading of a column, if the fast decoder handles it. Narrow integers (8 and 16
/// bits, stored as INT32) are truncated to their declared width, as arrow-rs and parquet-cpp read
/// them: a value outside the declared type is a writer's bug, and every reader of the file then
/// sees the same number.
pub fn eligible(col: &ColumnDescriptor) -> Option<Physical> {
    use parquet::basic::IntType;
    if col.max_rep_level() != 0 || col.max_def_level() > 1 {
        return None;
    }
    let int = |bits: i8, signed: bool| match (bits, signed) {
        (8, true) => Some(Physical::I8),
        (16, true) => Some(Physical::I16),
        (32, true) => Some(Physical::I32),
        (8, false) => Some(Physical::U8),
        (16, false) => Some(Physical::U16),
        (32, false) => Some(Physical::U32),
        _ => None,
    };
    match (
        col.physical_type(),
        col.logical_type_ref(),
        col.converted_type(),
    ) {
        (PhysicalType::DOUBLE, None, ConvertedType::NONE) => Some(Physical::F64),
        (PhysicalType::FLOAT, None, ConvertedType::NONE) => Some(Physical::F32),
        (
            PhysicalType::INT32,
            Some(LogicalType::Integer(IntType {
                bit_width,
                is_signed,
            })),
            _,
        ) => int(*bit_width, *is_signed),
        (PhysicalType::INT32, Some(LogicalType::Date), _) => Some(Physical::I32),
        (PhysicalType::INT32, None, c) => match c {
            ConvertedType::NONE | ConvertedType::INT_32 | ConvertedType::DATE => {
                Some(Physical::I32)
            }
            ConvertedType::INT_8 => Some(Physical::I8),
            ConvertedType::INT_16 => Some(Physical::I16),
            ConvertedType::UINT_8 => Some(Physical::U8),
            ConvertedType::UINT_16 => Some(Physical::U16),
            ConvertedType::UINT_32 => Some(Physical::U32),
            _ => None,
        },
        (
            PhysicalType::INT64,
            Some(LogicalType::Integer(IntType {
                bit_width: 64,
                is_signed,
            })),
            _,
        ) => Some(if *is_signed {
            Physical::I64
        } else {
            Physical::U64
        }),
        (PhysicalType::INT64, Some(LogicalType::Timestamp { .. }), _) => Some(Physical::I64),
        (PhysicalType::INT64, None, ConvertedType::UINT_64) => Some(Physical::U64),
        (
            PhysicalType::INT64,
            None,
            ConvertedType::NONE
            | ConvertedType::INT_64
            | ConvertedType::TIMESTAMP_MILLIS
            | ConvertedType::TIMESTAMP_MICROS,
        ) => Some(Physical::I64),
        _ => None,
    }
}

/// Whether every page encoding of a column chunk is one the fast decoder reads.
pub fn chunk_eligible(meta: &ColumnChunkMetaData) -> bool {
    meta.encodings().all(|e| {
        // Not the deprecated BIT_PACKED levels of old writers: such files take the arrow-rs path.
        matches!(
            e,
            Encoding::PLAIN | Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY | Encoding::RLE
        )
    })
}

/// The only leaf of each top-level field (`None` for nested fields with several leaves), indexed
/// by root.
pub fn single_leaves(meta: &ArrowReaderMetadata) -> Vec<Option<usize>> {
    let descr = meta.metadata().file_metadata().schema_descr();
    let mut leaves: Vec<Option<Option<usize>>> = vec![None; meta.schema().fields().len()];
    for leaf in 0..descr.num_columns() {
        if let Some(slot) = leaves.get_mut(descr.get_column_root_idx(leaf)) {
            // First leaf: Some(Some(leaf)); a second one: Some(None).
            *slot = Some(slot.map_or(Some(leaf), |_| None));
        }
    }
    leaves.into_iter().map(Option::flatten).collect()
}

/// What a column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The time column.
    Time,
    /// A target or feature column.
    Value,
}

/// The leaf and physical reading of root `root` when the fast decoder can read it as `role`: a
/// flat numeric leaf with only plain, dictionary and level encodings in every row group, whose
/// arrow type reads the stored numbers as they are. `leaves` is [`single_leaves`] of `meta`.
pub fn fast_reading(
    meta: &ArrowReaderMetadata,
    leaves: &[Option<usize>],
    root: u32,
    role: Role,
) -> Option<(usize, Physical)> {
    let pq = meta.metadata();
    let descr = pq.file_metadata().schema_descr();
    let leaf = (*leaves.get(root as usize)?)?;
    let phys = eligible(descr.column(leaf).as_ref())?;
    if !pq
        .row_groups()
        .iter()
        .all(|rg| rg.columns().get(leaf).is_some_and(chunk_eligible))
    {
        return None;
    }
    let dtype = meta.schema().fields().get(root as usize)?.data_type();
    let agrees = match role {
        Role::Value => arrow_agrees(dtype, phys),
        // pyarrow stores timestamp[s] as milliseconds and date64 as days, and arrow-rs converts
        // them back; those take arrow-rs. Plain integers are epoch times in a unit the plan
        // knows (`--time-unit`), read as stored.
        Role::Time => match (dtype, descr.column(leaf).logical_type_ref()) {
            (
                DataType::Timestamp(u, _),
                Some(LogicalType::Timestamp(parquet::basic::TimestampType {
                    unit: stored, ..
                })),
            ) => matches!(
                (u, stored),
                (TimeUnit::Millisecond, parquet::basic::TimeUnit::MILLIS)
                    | (TimeUnit::Microsecond, parquet::basic::TimeUnit::MICROS)
                    | (TimeUnit::Nanosecond, parquet::basic::TimeUnit::NANOS)
            ),
            (DataType::Date32, Some(LogicalType::Date)) => true,
            (dtype, _) if dtype.is_integer() => arrow_agrees(dtype, phys),
            _ => false,
        },
    };
    agrees.then_some((leaf, phys))
}

/// Whether arrow-rs would read a column of this physical reading as the same numbers.
fn arrow_agrees(dtype: &DataType, phys: Physical) -> bool {
    match (dtype, phys) {
        (DataType::Dictionary(_, v), _) => arrow_agrees(v, phys),
        (DataType::Float64, Physical::F64)
        | (DataType::Float32, Physical::F32)
        | (DataType::Int64, Physical::I64) => true,
        (DataType::UInt64, Physical::U64)
        | (DataType::Int8, Physical::I8)
        | (DataType::Int16, Physical::I16)
        | (DataType::Int32, Physical::I32)
        | (DataType::UInt8, Physical::U8)
        | (DataType::UInt16, Physical::U16)
        | (DataType::UInt32, Physical::U32) => true,
        _ => false,
    }
}
