//! Universes for the decoder differential test: small specs (proptest shrinks them) and a writer
//! that turns one into parquet files with the parquet crate's own writers: arrow's `ArrowWriter`
//! (arrow schema stored in the footer) or the low-level `SerializedFileWriter` (converted-only
//! annotations, narrow integers outside their declared type). Values come from a seed, so a spec
//! stays a few lines when printed. Every file written is one the fast decoder reads: flat
//! eligible columns, PLAIN or dictionary pages only.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::types::Int32Type as ArrowInt32;
use arrow_array::{
    ArrayRef, Date32Array, DictionaryArray, Float32Array, Float64Array, Int16Array, Int32Array,
    Int64Array, Int8Array, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{
    BrotliLevel, Compression, ConvertedType, Encoding, GzipLevel, LogicalType, Repetition,
    TimeUnit, Type as Physical, ZstdLevel,
};
use parquet::data_type::{DoubleType, FloatType, Int32Type, Int64Type};
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

/// A value column's type as arrow-rs reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    F64,
    F32,
    I8,
    I16,
    I32,
    U8,
    U16,
    U32,
    I64,
    U64,
}

pub const TYS: [Ty; 10] = [
    Ty::F64,
    Ty::F32,
    Ty::I8,
    Ty::I16,
    Ty::I32,
    Ty::U8,
    Ty::U16,
    Ty::U32,
    Ty::I64,
    Ty::U64,
];

/// How the low-level writer declares an integer column: a logical type (with its converted
/// type), a converted type alone (old writers), or nothing (plain INT32 / INT64 only; the others
/// fall back to the converted type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decl {
    Logical,
    Converted,
    Bare,
}

/// The time column's type (the ones the fast decoder reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeTy {
    Ms,
    Us,
    Ns,
    Date,
}

/// Where a column's nulls are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    None,
    /// Each row null with probability 1/3.
    Scattered,
    /// Alternating runs of 1-40 nulls and values.
    Runs,
    All,
}

/// One value column.
#[derive(Debug, Clone)]
pub struct Col {
    pub ty: Ty,
    pub decl: Decl,
    /// Optional (max definition level 1) or required; required columns have no nulls.
    pub nulls: Option<Nulls>,
    /// Many distinct values (dictionary pages fall back to plain) or a pool of at most 4.
    pub distinct: bool,
    /// Narrow integers take any INT32 (300 in an INT_8 column); low-level writer only.
    pub wide: bool,
    /// ArrowWriter only: the array is dictionary-encoded in arrow.
    pub dict_array: bool,
}

/// The time column `ts`.
#[derive(Debug, Clone)]
pub struct TimeCol {
    pub ty: TimeTy,
    pub nulls: Option<Nulls>,
    /// ArrowWriter only: a time zone on the timestamp type.
    pub zoned: bool,
}

/// Writer properties: page and row group shapes, codec, version.
#[derive(Debug, Clone)]
pub struct Props {
    pub v2: bool,
    /// Index into [`codecs`].
    pub codec: usize,
    pub write_batch: usize,
    pub page_rows: usize,
    pub page_bytes: usize,
    pub dictionary: bool,
    pub dict_bytes: usize,
    pub row_group_rows: usize,
}

/// One parquet file: `ts`, `target`, and features `f0..f4` where present, `ts` at `ts_pos`.
#[derive(Debug, Clone)]
pub struct FileSpec {
    pub rows: usize,
    pub low_level: bool,
    pub time: TimeCol,
    pub target: Col,
    pub features: Vec<Option<Col>>,
    pub ts_pos: usize,
    pub props: Props,
    pub seed: u64,
}

/// Every codec this build of the parquet crate writes and reads.
pub fn codecs() -> [Compression; 7] {
    [
        Compression::UNCOMPRESSED,
        Compression::SNAPPY,
        Compression::GZIP(GzipLevel::default()),
        Compression::LZ4,
        Compression::LZ4_RAW,
        Compression::ZSTD(ZstdLevel::default()),
        Compression::BROTLI(BrotliLevel::default()),
    ]
}

/// splitmix64: values from the spec's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Which rows hold a value.
fn presence(nulls: Option<Nulls>, rows: usize, rng: &mut Rng) -> Vec<bool> {
    match nulls.unwrap_or(Nulls::None) {
        Nulls::None => vec![true; rows],
        Nulls::All => vec![false; rows],
        Nulls::Scattered => (0..rows).map(|_| rng.below(3) != 0).collect(),
        Nulls::Runs => {
            let (mut out, mut on) = (Vec::with_capacity(rows), rng.below(2) == 0);
            while out.len() < rows {
                let n = (1 + rng.below(40) as usize).min(rows - out.len());
                out.extend(std::iter::repeat_n(on, n));
                on = !on;
            }
            out
        }
    }
}

/// A stored value's bits (f64 bits, f32 bits, INT32 or INT64 two's complement): specials often.
fn value(ty: Ty, wide: bool, rng: &mut Rng) -> u64 {
    let r = rng.next();
    let special = rng.below(6) == 0;
    match ty {
        Ty::F64 if special => {
            const S: [u64; 10] = [
                0x7ff8_0000_0000_0000, // NaN
                0x7ff0_0000_0000_0001, // signalling NaN with a payload
                0xfff8_0000_dead_beef, // negative NaN with a payload
                0x7ff0_0000_0000_0000, // inf
                0xfff0_0000_0000_0000, // -inf
                0x8000_0000_0000_0000, // -0.0
                0x0000_0000_0000_0001, // smallest subnormal
                0x7fef_ffff_ffff_ffff, // f64::MAX (inf in f32)
                0x36a0_0000_0000_0000, // 2^-149: the smallest f32 subnormal
                0x3ff0_0000_1000_0000, // 1 + 2^-24: halfway between two f32s (ties to even)
            ];
            S[(r % S.len() as u64) as usize]
        }
        Ty::F64 if r.is_multiple_of(2) => r, // any bits
        Ty::F64 => ((r as i32) as f64 / 64.0).to_bits(),
        Ty::F32 if special => {
            const S: [u32; 6] = [
                0x7fc0_0000,
                0x7f80_0001,
                0xffc0_beef,
                0x7f80_0000,
                0x8000_0000,
                0x0000_0001,
            ];
            u64::from(S[(r % S.len() as u64) as usize])
        }
        Ty::F32 if r.is_multiple_of(2) => r >> 32,
        Ty::F32 => u64::from(((r as i32) as f32 / 8.0).to_bits()),
        Ty::I64 | Ty::U64 if special => {
            [0, 1 << 63, u64::MAX, 1 << 53 | 1, 1 << 24 | 1][r as usize % 5]
        }
        Ty::I64 | Ty::U64 if r.is_multiple_of(2) => r,
        Ty::I64 | Ty::U64 => (r as i16) as i64 as u64,
        // INT32 storage.
        _ => {
            let stored: i32 = match ty {
                _ if wide && special => [300, 128, -129, 256, 65_536, -1, i32::MIN][r as usize % 7],
                _ if wide => r as i32,
                Ty::I8 => r as i8 as i32,
                Ty::U8 => r as u8 as i32,
                Ty::I16 => r as i16 as i32,
                Ty::U16 => r as u16 as i32,
                _ if special => [i32::MIN, i32::MAX, -1, 1 << 24 | 1][r as usize % 4],
                _ => r as i32,
            };
            stored as u32 as u64
        }
    }
}

/// A column's stored values (`None`: null), one per row.
fn values(col: &Col, rows: usize, rng: &mut Rng) -> Vec<Option<u64>> {
    let present = presence(col.nulls, rows, rng);
    let pool: Vec<u64> = (0..1 + rng.below(4))
        .map(|_| value(col.ty, col.wide, rng))
        .collect();
    present
        .into_iter()
        .map(|p| {
            p.then(|| match col.distinct {
                true => value(col.ty, col.wide, rng),
                false => pool[rng.below(pool.len() as u64) as usize],
            })
        })
        .collect()
}

/// Stored time values: whole days (so timestamps of different files and units coincide and
/// the cross-sectional filters see several rows per timestamp), some before 1970.
fn times(t: &TimeCol, rows: usize, rng: &mut Rng) -> Vec<Option<u64>> {
    let per_day: i64 = match t.ty {
        TimeTy::Ms => 86_400_000,
        TimeTy::Us => 86_400_000_000,
        TimeTy::Ns => 86_400_000_000_000,
        TimeTy::Date => 1,
    };
    presence(t.nulls, rows, rng)
        .into_iter()
        .map(|p| p.then(|| ((rng.below(8) as i64 - 2) * per_day) as u64))
        .collect()
}

fn props(p: &Props) -> WriterProperties {
    let version = match p.v2 {
        true => WriterVersion::PARQUET_2_0,
        false => WriterVersion::PARQUET_1_0,
    };
    WriterProperties::builder()
        .set_writer_version(version)
        .set_compression(codecs()[p.codec % codecs().len()])
        .set_write_batch_size(p.write_batch)
        .set_data_page_row_count_limit(p.page_rows)
        .set_data_page_size_limit(p.page_bytes)
        .set_dictionary_enabled(p.dictionary)
        .set_dictionary_page_size_limit(p.dict_bytes)
        // The fallback (and, without a dictionary, the only) encoding: PLAIN, not V2's
        // DELTA_BINARY_PACKED, which the fast decoder leaves to arrow-rs.
        .set_encoding(Encoding::PLAIN)
        .set_max_row_group_row_count(Some(p.row_group_rows))
        .build()
}

/// The file's columns in order: name, column (`None`: the time column).
fn columns(spec: &FileSpec) -> Vec<(String, Option<&Col>)> {
    let mut cols: Vec<(String, Option<&Col>)> = vec![("target".into(), Some(&spec.target))];
    for (i, f) in spec.features.iter().enumerate() {
        if let Some(c) = f {
            cols.push((format!("f{i}"), Some(c)));
        }
    }
    cols.insert(spec.ts_pos % (cols.len() + 1), ("ts".into(), None));
    cols
}

/// A column of a file: name, spec (`None`: the time column), stored values.
type ColumnData<'a> = (String, Option<&'a Col>, Vec<Option<u64>>);

/// Writes `spec` to `path`.
pub fn write_file(path: &Path, spec: &FileSpec) {
    let mut rng = Rng(spec.seed);
    let data: Vec<ColumnData> = columns(spec)
        .into_iter()
        .map(|(name, col)| {
            let v = match col {
                Some(c) => values(c, spec.rows, &mut rng),
                None => times(&spec.time, spec.rows, &mut rng),
            };
            (name, col, v)
        })
        .collect();
    let file = File::create(path).expect("create parquet file");
    if spec.low_level {
        write_low_level(file, spec, &data);
    } else {
        write_arrow(file, spec, &data);
    }
}

fn write_arrow(file: File, spec: &FileSpec, data: &[ColumnData]) {
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (name, col, v) in data {
        let (array, nullable) = match col {
            Some(c) => (arrow_values(c, v), c.nulls.is_some()),
            None => (arrow_times(&spec.time, v), spec.time.nulls.is_some()),
        };
        fields.push(Field::new(name, array.data_type().clone(), nullable));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("record batch");
    let mut w = ArrowWriter::try_new(file, schema, Some(props(&spec.props))).expect("writer");
    w.write(&batch).expect("write batch");
    w.close().expect("close writer");
}

fn arrow_values(c: &Col, v: &[Option<u64>]) -> ArrayRef {
    macro_rules! arr {
        ($a:ty, $conv:expr) => {
            Arc::new(v.iter().map(|x| x.map($conv)).collect::<$a>()) as ArrayRef
        };
    }
    let a = match c.ty {
        Ty::F64 => arr!(Float64Array, f64::from_bits),
        Ty::F32 => arr!(Float32Array, |b| f32::from_bits(b as u32)),
        Ty::I8 => arr!(Int8Array, |b| b as i8),
        Ty::I16 => arr!(Int16Array, |b| b as i16),
        Ty::I32 => arr!(Int32Array, |b| b as i32),
        Ty::U8 => arr!(UInt8Array, |b| b as u8),
        Ty::U16 => arr!(UInt16Array, |b| b as u16),
        Ty::U32 => arr!(UInt32Array, |b| b as u32),
        Ty::I64 => arr!(Int64Array, |b| b as i64),
        Ty::U64 => arr!(UInt64Array, |b| b),
    };
    if !c.dict_array {
        return a;
    }
    let keys: Int32Array = v
        .iter()
        .enumerate()
        .map(|(i, x)| x.map(|_| i as i32))
        .collect();
    Arc::new(DictionaryArray::<ArrowInt32>::try_new(keys, a).expect("dictionary array"))
}

fn arrow_times(t: &TimeCol, v: &[Option<u64>]) -> ArrayRef {
    let zone = t.zoned.then_some("+01:00");
    let it = v.iter().map(|x| x.map(|b| b as i64));
    match t.ty {
        TimeTy::Ms => Arc::new(
            it.collect::<TimestampMillisecondArray>()
                .with_timezone_opt(zone),
        ),
        TimeTy::Us => Arc::new(
            it.collect::<TimestampMicrosecondArray>()
                .with_timezone_opt(zone),
        ),
        TimeTy::Ns => Arc::new(
            it.collect::<TimestampNanosecondArray>()
                .with_timezone_opt(zone),
        ),
        TimeTy::Date => Arc::new(it.map(|x| x.map(|d| d as i32)).collect::<Date32Array>()),
    }
}

/// The low-level schema type of a value column.
fn leaf_type(name: &str, c: &Col) -> Type {
    let (phys, bits, signed) = match c.ty {
        Ty::F64 => (Physical::DOUBLE, 0, true),
        Ty::F32 => (Physical::FLOAT, 0, true),
        Ty::I8 => (Physical::INT32, 8, true),
        Ty::I16 => (Physical::INT32, 16, true),
        Ty::I32 => (Physical::INT32, 32, true),
        Ty::U8 => (Physical::INT32, 8, false),
        Ty::U16 => (Physical::INT32, 16, false),
        Ty::U32 => (Physical::INT32, 32, false),
        Ty::I64 => (Physical::INT64, 64, true),
        Ty::U64 => (Physical::INT64, 64, false),
    };
    let b = Type::primitive_type_builder(name, phys).with_repetition(repetition(c.nulls));
    let plain_int = matches!(c.ty, Ty::I32 | Ty::I64);
    let b = match (bits, c.decl) {
        (0, _) => b,
        (_, Decl::Bare) if plain_int => b,
        (_, Decl::Logical) => b.with_logical_type(Some(LogicalType::integer(bits, signed))),
        _ => b.with_converted_type(match (bits, signed) {
            (8, true) => ConvertedType::INT_8,
            (16, true) => ConvertedType::INT_16,
            (32, true) => ConvertedType::INT_32,
            (64, true) => ConvertedType::INT_64,
            (8, false) => ConvertedType::UINT_8,
            (16, false) => ConvertedType::UINT_16,
            (32, false) => ConvertedType::UINT_32,
            _ => ConvertedType::UINT_64,
        }),
    };
    b.build().expect("leaf type")
}

fn repetition(nulls: Option<Nulls>) -> Repetition {
    match nulls {
        Some(_) => Repetition::OPTIONAL,
        None => Repetition::REQUIRED,
    }
}

fn time_type(t: &TimeCol) -> Type {
    let unit = match t.ty {
        TimeTy::Ms => TimeUnit::MILLIS,
        TimeTy::Us => TimeUnit::MICROS,
        TimeTy::Ns => TimeUnit::NANOS,
        TimeTy::Date => {
            return Type::primitive_type_builder("ts", Physical::INT32)
                .with_repetition(repetition(t.nulls))
                .with_logical_type(Some(LogicalType::Date))
                .build()
                .expect("date type")
        }
    };
    Type::primitive_type_builder("ts", Physical::INT64)
        .with_repetition(repetition(t.nulls))
        .with_logical_type(Some(LogicalType::timestamp(t.zoned, unit)))
        .build()
        .expect("timestamp type")
}

fn write_low_level(file: File, spec: &FileSpec, data: &[ColumnData]) {
    let fields = data
        .iter()
        .map(|(name, col, _)| {
            Arc::new(match col {
                Some(c) => leaf_type(name, c),
                None => time_type(&spec.time),
            })
        })
        .collect();
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .expect("schema");
    let props = Arc::new(props(&spec.props));
    let mut w = SerializedFileWriter::new(file, Arc::new(schema), props).expect("writer");
    let step = spec.props.row_group_rows.max(1);
    for start in (0..spec.rows).step_by(step) {
        let end = (start + step).min(spec.rows);
        let mut rg = w.next_row_group().expect("row group");
        for (_, col, v) in data {
            let v = &v[start..end];
            let optional = match col {
                Some(c) => c.nulls.is_some(),
                None => spec.time.nulls.is_some(),
            };
            let defs: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
            let defs = optional.then_some(&defs[..]);
            let bits: Vec<u64> = v.iter().flatten().copied().collect();
            let mut cw = rg.next_column().expect("column").expect("a column left");
            let ty = col.map(|c| c.ty);
            let written = match (ty, spec.time.ty) {
                (Some(Ty::F64), _) => {
                    let x: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
                    cw.typed::<DoubleType>().write_batch(&x, defs, None)
                }
                (Some(Ty::F32), _) => {
                    let x: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b as u32)).collect();
                    cw.typed::<FloatType>().write_batch(&x, defs, None)
                }
                (Some(Ty::I64 | Ty::U64), _) | (None, TimeTy::Ms | TimeTy::Us | TimeTy::Ns) => {
                    let x: Vec<i64> = bits.iter().map(|&b| b as i64).collect();
                    cw.typed::<Int64Type>().write_batch(&x, defs, None)
                }
                _ => {
                    let x: Vec<i32> = bits.iter().map(|&b| b as i32).collect();
                    cw.typed::<Int32Type>().write_batch(&x, defs, None)
                }
            };
            written.expect("write column");
            cw.close().expect("close column");
        }
        rg.close().expect("close row group");
    }
    w.close().expect("close file");
}
