//! The fast decoder: flat numeric columns with plain or dictionary pages, decoded straight into the
//! output type.
//!
//! parquet's public `SerializedPageReader` reads page headers, checks page CRCs and decompresses;
//! this module decodes what it hands back: definition levels (RLE / bit-packed hybrid) and values,
//! PLAIN or dictionary-encoded. A dictionary page is converted to the output type once, and indices
//! gather straight into the output: no arrow arrays, no float64 copy of every value.
//!
//! [`eligible`] says which columns it handles (physical DOUBLE, FLOAT, INT32, INT64 without a
//! decimal or unusual logical type, `max_rep_level == 0`, `max_def_level <= 1`, only plain,
//! dictionary and level encodings). Files with anything else stay on the arrow-rs path in `read`,
//! which produces the same values: the tests build every universe both ways and compare bytes.

use std::fs::File;
use std::sync::Arc;

use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ArrowReaderMetadata;

use crate::convert::{Float, Selection};
use crate::plan::{Unit, ABSENT};
use crate::read::{Emitter, ReadContext};

use bytes::Bytes;
use parquet::basic::{ConvertedType, Encoding, LogicalType, Type as PhysicalType};
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::schema::types::ColumnDescriptor;

/// Why a column cannot be decoded (an error in the file, named by the caller).
pub type DecodeError = String;

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
    fn width(self) -> usize {
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

impl<O: crate::convert::Float> Decoded for O {
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
fn convert_plain<T: Decoded>(phys: Physical, bytes: &[u8], out: &mut [T]) {
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

/// The RLE / bit-packed hybrid (definition levels and dictionary indices).
struct Hybrid {
    buf: Bytes,
    pos: usize,
    width: u32,
    /// Values left in the current run.
    left: usize,
    /// The value of a repeated run; `None` in a bit-packed run.
    repeat: Option<u32>,
    /// The current bit-packed run's bytes, padded with [`PACK_PAD`] zero bytes so every load is
    /// in bounds.
    packed: Vec<u8>,
    /// Next value's index within the bit-packed run.
    next: usize,
}

impl Hybrid {
    fn new(buf: Bytes, width: u32) -> Hybrid {
        Hybrid {
            buf,
            pos: 0,
            width,
            left: 0,
            repeat: None,
            packed: Vec::new(),
            next: 0,
        }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated RLE run header")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("RLE run header too long".into())
    }

    fn next_run(&mut self) -> Result<(), DecodeError> {
        let header = self.varint()?;
        if header & 1 == 0 {
            let bytes = self.width.div_ceil(8) as usize;
            let count = usize::try_from(header >> 1).map_err(|_| "RLE run too long")?;
            let raw = self
                .buf
                .get(self.pos..self.pos + bytes)
                .ok_or("truncated RLE run")?;
            let v = raw
                .iter()
                .enumerate()
                .fold(0u32, |v, (i, &b)| v | u32::from(b) << (8 * i));
            self.pos += bytes;
            self.repeat = Some(v);
            self.left = count;
        } else {
            let groups = usize::try_from(header >> 1).map_err(|_| "bit-packed run too long")?;
            let len = groups
                .checked_mul(self.width as usize)
                .ok_or("bit-packed run too long")?;
            // The last run of a page may be cut short; values past its end are never asked for.
            let available = (self.buf.len() - self.pos).min(len);
            self.packed.clear();
            self.packed
                .extend_from_slice(&self.buf[self.pos..self.pos + available]);
            self.packed.resize(available + PACK_PAD, 0);
            self.pos += available;
            self.repeat = None;
            self.next = 0;
            self.left = match self.width {
                // Width 0: every value is 0 and the run has no bytes.
                0 => groups.saturating_mul(8),
                w => groups.saturating_mul(8).min(available * 8 / w as usize),
            };
        }
        if self.left == 0 && self.pos >= self.buf.len() {
            return Err("RLE data ended before its values".into());
        }
        Ok(())
    }

    /// Consumes the next `n` values if they are all `v` within the current repeated run (loading
    /// the next run first when none is left); else consumes nothing.
    fn skip_repeat(&mut self, n: usize, v: u32) -> Result<bool, DecodeError> {
        if self.left == 0 {
            self.next_run()?;
        }
        let hit = self.repeat == Some(v) && self.left >= n;
        if hit {
            self.left -= n;
        }
        Ok(hit)
    }

    /// Fills `out` with the next values.
    fn read(&mut self, out: &mut [u32]) -> Result<(), DecodeError> {
        let mut i = 0;
        while i < out.len() {
            if self.left == 0 {
                self.next_run()?;
                continue;
            }
            let n = self.left.min(out.len() - i);
            match self.repeat {
                Some(v) => out[i..i + n].fill(v),
                None => self.unpack(&mut out[i..i + n]),
            }
            self.left -= n;
            i += n;
        }
        Ok(())
    }

    /// Unpacks the next `out.len()` values of the bit-packed run.
    fn unpack(&mut self, out: &mut [u32]) {
        let w = self.width as usize;
        let mask = if w == 32 {
            u64::from(u32::MAX)
        } else {
            (1u64 << w) - 1
        };
        let mut k = 0;
        // Whole groups of 8 values (`w` bytes each) from a group boundary, unpacked by code
        // specialised for the width.
        if self.next.is_multiple_of(8) {
            let groups = (out.len() / 8) * 8;
            unpack_groups(w, &self.packed[self.next / 8 * w..], &mut out[..groups]);
            k = groups;
            self.next += groups;
        }
        for o in &mut out[k..] {
            let bit = self.next * w;
            let mut word = [0u8; 8];
            word.copy_from_slice(&self.packed[bit / 8..bit / 8 + 8]);
            *o = ((u64::from_le_bytes(word) >> (bit % 8)) & mask) as u32;
            self.next += 1;
        }
    }
}

/// Fuzzing entry (the `fuzzing` feature; not an API): `data[0] % 33` is the bit width, `data[1]`
/// seeds the read sizes, the rest is an RLE / bit-packed hybrid stream, read as levels and indices
/// are (whole reads and all-equal skips) until it errors or 65,536 values are out. Must never panic.
#[cfg(feature = "fuzzing")]
pub fn fuzz_hybrid(data: &[u8]) {
    let [w, seed, stream @ ..] = data else { return };
    let width = u32::from(*w) % 33;
    let mut h = Hybrid::new(Bytes::copy_from_slice(stream), width);
    let mut out = vec![0u32; 256];
    let (mut done, mut step) = (0usize, usize::from(*seed));
    while done < 1 << 16 {
        step = (step * 31 + 7) % 251 + 1;
        let ok = if step % 3 == 0 {
            h.skip_repeat(step, step as u32 % 2).is_ok()
        } else {
            h.read(&mut out[..step]).is_ok()
        };
        if !ok {
            return;
        }
        done += step;
    }
}

/// Zero bytes after a bit-packed run: the widest group (32 bytes) plus one 8-byte load.
const PACK_PAD: usize = 40;

/// Unpacks `out.len() / 8` groups of 8 values of `w` bits from `packed` (little-endian bit order,
/// the parquet hybrid's), which extends at least 8 bytes past the last group.
fn unpack_groups(w: usize, packed: &[u8], out: &mut [u32]) {
    macro_rules! by_width {
        ($($n:literal)*) => {
            match w {
                $($n => unpack_groups_of::<$n>(packed, out),)*
                // Width 0 (a one-entry dictionary): every index is 0. Widths over 32 are refused
                // when the page starts.
                _ => out.fill(0),
            }
        };
    }
    by_width!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
}

#[inline(always)]
fn unpack_groups_of<const W: usize>(packed: &[u8], out: &mut [u32]) {
    let mask = if W == 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << W) - 1
    };
    for (g, o) in out.chunks_exact_mut(8).enumerate() {
        // `packed` has 8 bytes past the last group: a group's loads reach `W + 8` bytes.
        let group = &packed[g * W..g * W + W + 8];
        for (j, v) in o.iter_mut().enumerate() {
            let bit = j * W;
            let mut word = [0u8; 8];
            word.copy_from_slice(&group[bit / 8..bit / 8 + 8]);
            *v = ((u64::from_le_bytes(word) >> (bit % 8)) & mask) as u32;
        }
    }
}

enum Values {
    Plain { buf: Bytes, pos: usize },
    Dict(Hybrid),
}

/// Rows a column decoder decodes per step: its scratch (levels, dictionary indices, values
/// around nulls) stays this many entries, in L1, whatever the batch size.
pub const STEP_ROWS: usize = 1024;

/// Bytes of scratch per column decoder (see [`STEP_ROWS`]): levels and indices (u32), values
/// (at most 8 bytes).
pub const STEP_SCRATCH: u64 = STEP_ROWS as u64 * (4 + 4 + 8);

/// Decodes one column chunk into `T`, `n` rows at a time.
pub struct ColumnDecoder<T> {
    pages: SerializedPageReader<File>,
    phys: Physical,
    optional: bool,
    dict: Vec<T>,
    levels: Option<Hybrid>,
    values: Option<Values>,
    /// Levels (rows) left in the current page.
    left: usize,
    scratch_levels: Vec<u32>,
    scratch_values: Vec<T>,
    scratch_idx: Vec<u32>,
}

impl<T: Decoded> ColumnDecoder<T> {
    /// A decoder of the column chunk `meta` (of `rows` rows) of `file`.
    pub fn new(
        file: Arc<File>,
        meta: &ColumnChunkMetaData,
        col: &ColumnDescriptor,
        phys: Physical,
        rows: usize,
    ) -> Result<Self, DecodeError> {
        // `SerializedPageReader::new` asserts (panics) on a negative offset or length in the
        // footer (`ColumnChunkMetaData::byte_range`). A panic here would be reported as a bug in
        // spillway; it is a bad file, so refuse it as one (issue 13: found by fuzzing).
        let start = meta
            .dictionary_page_offset()
            .unwrap_or(meta.data_page_offset());
        if start < 0 || meta.compressed_size() < 0 {
            return Err(format!(
                "column chunk at offset {start} with length {}",
                meta.compressed_size()
            ));
        }
        let pages = SerializedPageReader::new(file, meta, rows, None).map_err(|e| e.to_string())?;
        Ok(ColumnDecoder {
            pages,
            phys,
            optional: col.max_def_level() == 1,
            dict: Vec::new(),
            levels: None,
            values: None,
            left: 0,
            scratch_levels: Vec::new(),
            scratch_values: Vec::new(),
            scratch_idx: Vec::new(),
        })
    }

    fn next_page(&mut self) -> Result<(), DecodeError> {
        loop {
            let page = self
                .pages
                .get_next_page()
                .map_err(|e| e.to_string())?
                .ok_or("fewer values than rows")?;
            match page {
                Page::DictionaryPage {
                    buf,
                    num_values,
                    encoding,
                    ..
                } => {
                    if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                        return Err(format!("dictionary page encoding {encoding}"));
                    }
                    let w = self.phys.width();
                    let n = num_values as usize;
                    if buf.len() < n.checked_mul(w).ok_or("dictionary too large")? {
                        return Err("dictionary page shorter than its values".into());
                    }
                    self.dict.clear();
                    self.dict.resize(n, T::NULL);
                    convert_plain(self.phys, &buf[..n * w], &mut self.dict);
                }
                Page::DataPage {
                    buf,
                    num_values,
                    encoding,
                    def_level_encoding,
                    ..
                } => {
                    let mut pos = 0;
                    self.levels = if self.optional {
                        if def_level_encoding != Encoding::RLE {
                            return Err(format!("definition level encoding {def_level_encoding}"));
                        }
                        let len = buf
                            .get(0..4)
                            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                            .ok_or("truncated levels")?;
                        let levels = buf.get(4..4 + len).ok_or("truncated levels")?;
                        pos = 4 + len;
                        Some(Hybrid::new(buf.slice_ref(levels), 1))
                    } else {
                        None
                    };
                    self.start_values(buf.slice(pos..), encoding)?;
                    self.left = num_values as usize;
                }
                Page::DataPageV2 {
                    buf,
                    num_values,
                    encoding,
                    def_levels_byte_len,
                    rep_levels_byte_len,
                    ..
                } => {
                    let (rep, def) = (rep_levels_byte_len as usize, def_levels_byte_len as usize);
                    let levels = buf.get(rep..rep + def).ok_or("truncated levels")?;
                    self.levels = self.optional.then(|| Hybrid::new(buf.slice_ref(levels), 1));
                    self.start_values(buf.slice(rep + def..), encoding)?;
                    self.left = num_values as usize;
                }
            }
            if self.left > 0 {
                return Ok(());
            }
        }
    }

    /// After the row group's last row: the chunk must end there too. A page claiming values past
    /// the row group's rows (or a page after them) contradicts the footer; arrow-rs, which reads
    /// a chunk's pages as one stream, fails on it or shifts rows, so refuse it (issue 13).
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.left > 0 {
            return Err(format!(
                "a page holds {} values past the row group's rows",
                self.left
            ));
        }
        while let Some(page) = self.pages.get_next_page().map_err(|e| e.to_string())? {
            if page.num_values() > 0 {
                return Err(format!(
                    "a page of {} values past the row group's rows",
                    page.num_values()
                ));
            }
        }
        Ok(())
    }

    fn start_values(&mut self, buf: Bytes, encoding: Encoding) -> Result<(), DecodeError> {
        self.values = Some(match encoding {
            Encoding::PLAIN => Values::Plain { buf, pos: 0 },
            Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY => {
                let width = u32::from(*buf.first().ok_or("empty dictionary-encoded page")?);
                if width > 32 {
                    return Err(format!("dictionary index width {width}"));
                }
                Values::Dict(Hybrid::new(buf.slice(1..), width))
            }
            other => return Err(format!("data page encoding {other}")),
        });
        Ok(())
    }

    /// Decodes the next `out.len()` values (nulls become `T::NULL`); `valid`, when given, is set
    /// per row.
    pub fn read(
        &mut self,
        out: &mut [T],
        mut valid: Option<&mut [bool]>,
    ) -> Result<(), DecodeError> {
        let mut done = 0;
        while done < out.len() {
            if self.left == 0 {
                self.next_page()?;
            }
            let k = self.left.min(out.len() - done).min(STEP_ROWS);
            let mut all_present = false;
            let dst = &mut out[done..done + k];
            let present = match self.levels.as_mut() {
                None => k,
                Some(levels) => {
                    // The common case: a run of "present" levels covers the step.
                    all_present = levels.skip_repeat(k, 1)?;
                    if all_present {
                        k
                    } else {
                        self.scratch_levels.resize(k, 0);
                        levels.read(&mut self.scratch_levels)?;
                        self.scratch_levels.iter().filter(|&&l| l == 1).count()
                    }
                }
            };
            if present == k {
                // No nulls here: values go straight to their place.
                self.decode_values(dst)?;
            } else {
                let mut vals = std::mem::take(&mut self.scratch_values);
                vals.clear();
                vals.resize(present, T::NULL);
                self.decode_values(&mut vals)?;
                let mut next = vals.iter();
                for (o, &l) in dst.iter_mut().zip(&self.scratch_levels) {
                    *o = if l == 1 {
                        next.next().copied().unwrap_or(T::NULL)
                    } else {
                        T::NULL
                    };
                }
                self.scratch_values = vals;
            }
            if let Some(v) = valid.as_deref_mut() {
                match self.levels {
                    None => v[done..done + k].fill(true),
                    Some(_) if all_present => v[done..done + k].fill(true),
                    Some(_) => {
                        for (o, &l) in v[done..done + k].iter_mut().zip(&self.scratch_levels) {
                            *o = l == 1;
                        }
                    }
                }
            }
            self.left -= k;
            done += k;
        }
        Ok(())
    }

    /// Decodes the next `out.len()` non-null values into `out`.
    fn decode_values(&mut self, out: &mut [T]) -> Result<(), DecodeError> {
        let n = out.len();
        match self.values.as_mut().ok_or("values before a data page")? {
            Values::Plain { buf, pos } => {
                let w = self.phys.width();
                let bytes = buf
                    .get(*pos..*pos + n * w)
                    .ok_or("plain values end early")?;
                convert_plain(self.phys, bytes, out);
                *pos += n * w;
            }
            Values::Dict(idx) => {
                self.scratch_idx.resize(n, 0);
                idx.read(&mut self.scratch_idx)?;
                // One check for the whole batch, then a plain gather.
                let max = self.scratch_idx.iter().copied().max().unwrap_or(0);
                if n > 0 && max as usize >= self.dict.len() {
                    return Err(format!(
                        "dictionary index {max} out of range ({} entries)",
                        self.dict.len()
                    ));
                }
                let dict = &self.dict[..];
                for (o, &i) in out.iter_mut().zip(&self.scratch_idx) {
                    *o = dict[i as usize];
                }
            }
        }
        Ok(())
    }
}

/// The columns of one file the fast decoder reads: leaf index and physical reading of the time
/// column and of each value column (`None`: absent, NaN).
#[derive(Debug, Clone)]
pub struct FastPlan {
    time: (usize, Physical),
    values: Vec<Option<(usize, Physical)>>,
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
        // them back; those take arrow-rs.
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
            _ => false,
        },
    };
    agrees.then_some((leaf, phys))
}

/// The fast plan for `unit`, if the fast decoder can read every needed column (time and
/// `value_roots`, see [`fast_reading`]).
pub fn fast_columns(
    meta: &ArrowReaderMetadata,
    unit: &Unit,
    value_roots: &[u32],
) -> Option<FastPlan> {
    let leaves = single_leaves(meta);
    let time = fast_reading(meta, &leaves, unit.time.0, Role::Time)?;
    let mut values = Vec::with_capacity(value_roots.len());
    for &root in value_roots {
        values.push(match root {
            ABSENT => None,
            _ => Some(fast_reading(meta, &leaves, root, Role::Value)?),
        });
    }
    Some(FastPlan { time, values })
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

/// Decodes `unit` with the fast decoder, row group by row group, `batch_rows` at a time, into
/// `out`. Errors are (context, message).
pub fn read_fast<O: Float>(
    file: File,
    meta: &ArrowReaderMetadata,
    unit: &Unit,
    plan: &FastPlan,
    ctx: &ReadContext<'_>,
    out: &mut Emitter<'_, O>,
) -> Result<(), (String, String)> {
    let file = Arc::new(file);
    let pq = meta.metadata();
    let descr = pq.file_metadata().schema_descr();
    let context = |leaf: usize| format!("decoding column {:?}", descr.column(leaf).name());
    let factor = unit.time.1.factor();
    let (mut raw, mut valid, mut times, mut scratch) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::<O>::new());
    for rg in pq.row_groups() {
        let rows = usize::try_from(rg.num_rows()).map_err(|_| {
            (
                "reading the footer".to_string(),
                "negative row count".to_string(),
            )
        })?;
        let tleaf = plan.time.0;
        fn open<T: Decoded>(
            file: &Arc<File>,
            rg: &parquet::file::metadata::RowGroupMetaData,
            descr: &parquet::schema::types::SchemaDescriptor,
            (leaf, phys): (usize, Physical),
            rows: usize,
        ) -> Result<ColumnDecoder<T>, DecodeError> {
            let meta = rg.columns().get(leaf).ok_or("no column chunk")?;
            ColumnDecoder::new(
                Arc::clone(file),
                meta,
                descr.column(leaf).as_ref(),
                phys,
                rows,
            )
        }
        let mut time: ColumnDecoder<i64> =
            open(&file, rg, descr, plan.time, rows).map_err(|e| (context(tleaf), e))?;
        let mut decoders: Vec<Option<(usize, ColumnDecoder<O>)>> =
            Vec::with_capacity(plan.values.len());
        for v in &plan.values {
            decoders.push(match *v {
                None => None,
                Some(c) => Some((
                    c.0,
                    open(&file, rg, descr, c, rows).map_err(|e| (context(c.0), e))?,
                )),
            });
        }
        let mut done = 0;
        while done < rows && !out.stopped() {
            let n = ctx.batch_rows.min(rows - done);
            raw.clear();
            raw.resize(n, 0i64);
            valid.clear();
            valid.resize(n, true);
            time.read(&mut raw, Some(&mut valid))
                .map_err(|e| (context(tleaf), e))?;
            times.clear();
            for (i, (&r, &ok)) in raw.iter().zip(&valid).enumerate() {
                let ns = if ok {
                    r.checked_mul(factor).ok_or_else(|| {
                        (
                            context(tleaf),
                            format!(
                                "row {}: time {r} {} does not fit int64 nanoseconds",
                                out.decoded + i as u64,
                                unit.time.1.unit_name()
                            ),
                        )
                    })?
                } else {
                    0
                };
                times.push(ns);
            }
            let mut fill =
                |c: usize, sel: &Selection, dst: &mut [O]| -> Result<(), (String, String)> {
                    let Some((leaf, d)) = decoders[c].as_mut() else {
                        return Ok(());
                    };
                    match sel {
                        Selection::Range(r) if r.start == 0 && r.end == n => d.read(dst, None),
                        _ => {
                            scratch.clear();
                            scratch.resize(n, O::NAN);
                            d.read(&mut scratch, None).map(|()| match sel {
                                Selection::Range(r) => dst.copy_from_slice(&scratch[r.clone()]),
                                Selection::Indices(idx) => {
                                    for (o, &i) in dst.iter_mut().zip(idx) {
                                        *o = scratch[i as usize];
                                    }
                                }
                            })
                        }
                    }
                    .map_err(|e| (context(*leaf), e))
                };
            out.emit(&times, &valid, &mut fill)?;
            done += n;
        }
        if out.stopped() {
            break;
        }
        time.finish().map_err(|e| (context(tleaf), e))?;
        for (leaf, d) in decoders.iter_mut().flatten() {
            d.finish().map_err(|e| (context(*leaf), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Packs `values` as one bit-packed run of the hybrid encoding (header included).
    fn bit_packed(values: &[u32], w: u32) -> Vec<u8> {
        let groups = values.len().div_ceil(8);
        let mut out = Vec::new();
        let mut header = (groups as u64) << 1 | 1;
        loop {
            let b = (header & 0x7f) as u8;
            header >>= 7;
            if header == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        let mut bits = vec![0u8; groups * w as usize];
        for (i, &v) in values.iter().enumerate() {
            for b in 0..w as usize {
                if v >> b & 1 == 1 {
                    let bit = i * w as usize + b;
                    bits[bit / 8] |= 1 << (bit % 8);
                }
            }
        }
        out.extend(bits);
        out
    }

    proptest! {
        /// Every width, read in any slicing (groups split across reads, odd remainders), gives
        /// the packed values back.
        #[test]
        fn bit_packed_runs_of_every_width_read_back(
            w in 0u32..=32,
            seed in prop::collection::vec(any::<u32>(), 1..300),
            cuts in prop::collection::vec(1usize..40, 1..20),
        ) {
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            let values: Vec<u32> = seed.iter().map(|v| v & mask).collect();
            let mut h = Hybrid::new(Bytes::from(bit_packed(&values, w)), w);
            let mut got = Vec::new();
            let mut cut = cuts.iter().cycle();
            while got.len() < values.len() {
                let n = (*cut.next().unwrap_or(&1)).min(values.len() - got.len());
                let mut out = vec![u32::MAX; n];
                h.read(&mut out).map_err(TestCaseError::fail)?;
                got.extend(out);
            }
            prop_assert_eq!(got, values);
        }
    }
}
