//! One column chunk, page by page: levels and values decoded straight into the output type, `n`
//! rows at a time, with every count checked: levels within the column's maximum, each page holding
//! exactly the values its levels announce (no leftover bytes or indices beyond a bit-packed
//! group's padding), and the chunk holding exactly the row group's rows.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::Encoding;
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::schema::types::ColumnDescriptor;

use super::hybrid::Hybrid;
use super::physical::{convert_plain, Decoded, Physical};
use super::{DecodeError, Problem};

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
    /// Pages read so far (dictionary included); the current page is `page - 1`.
    page: u32,
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
        // footer; that is a bad file, not a bug in spillway (found by fuzzing, issue 13).
        let start = meta
            .dictionary_page_offset()
            .unwrap_or(meta.data_page_offset());
        if start < 0 || meta.compressed_size() < 0 {
            return Err(DecodeError {
                page: None,
                problem: Problem::Parquet(format!(
                    "column chunk at offset {start} with length {}",
                    meta.compressed_size()
                )),
            });
        }
        let pages = SerializedPageReader::new(file, meta, rows, None).map_err(|e| DecodeError {
            page: None,
            problem: Problem::Parquet(e.to_string()),
        })?;
        Ok(ColumnDecoder {
            pages,
            phys,
            optional: col.max_def_level() == 1,
            dict: Vec::new(),
            levels: None,
            values: None,
            left: 0,
            page: 0,
            scratch_levels: Vec::new(),
            scratch_values: Vec::new(),
            scratch_idx: Vec::new(),
        })
    }

    /// `problem` in the current page.
    fn at(&self, problem: Problem) -> DecodeError {
        DecodeError {
            page: self.page.checked_sub(1),
            problem,
        }
    }

    fn next_page(&mut self) -> Result<(), DecodeError> {
        loop {
            let page = self
                .pages
                .get_next_page()
                .map_err(|e| DecodeError {
                    page: Some(self.page),
                    problem: Problem::Parquet(e.to_string()),
                })?
                .ok_or_else(|| self.at(Problem::FewerValues))?;
            self.page += 1;
            self.start_page(page).map_err(|p| self.at(p))?;
            if self.left > 0 {
                return Ok(());
            }
            // A page without levels holds nothing: it must hold no values either.
            self.end_page()?;
        }
    }

    fn start_page(&mut self, page: Page) -> Result<(), Problem> {
        match page {
            Page::DictionaryPage {
                buf,
                num_values,
                encoding,
                ..
            } => {
                if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                    return Err(Problem::Encoding("dictionary page", encoding));
                }
                let w = self.phys.width();
                let n = num_values as usize;
                if buf.len() != n.checked_mul(w).ok_or(Problem::DictionarySize)? {
                    return Err(Problem::DictionarySize);
                }
                self.dict.clear();
                self.dict.resize(n, T::NULL);
                convert_plain(self.phys, &buf, &mut self.dict);
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
                        return Err(Problem::Encoding("definition levels", def_level_encoding));
                    }
                    let len = buf
                        .get(0..4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                        .ok_or(Problem::TruncatedLevels)?;
                    let levels = buf.get(4..4 + len).ok_or(Problem::TruncatedLevels)?;
                    pos = 4 + len;
                    Some(Hybrid::new(buf.slice_ref(levels), 1, 1))
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
                if rep != 0 {
                    return Err(Problem::RepetitionLevels);
                }
                let levels = buf.get(..def).ok_or(Problem::TruncatedLevels)?;
                self.levels = match (self.optional, def) {
                    (true, _) => Some(Hybrid::new(buf.slice_ref(levels), 1, 1)),
                    (false, 0) => None,
                    (false, _) => return Err(Problem::LevelsOnRequiredColumn),
                };
                self.start_values(buf.slice(def..), encoding)?;
                self.left = num_values as usize;
            }
        }
        Ok(())
    }

    fn start_values(&mut self, buf: Bytes, encoding: Encoding) -> Result<(), Problem> {
        self.values = Some(match encoding {
            Encoding::PLAIN => Values::Plain { buf, pos: 0 },
            Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY => {
                let width = u32::from(*buf.first().ok_or(Problem::TruncatedRun)?);
                if width > 32 {
                    return Err(Problem::IndexWidth(width));
                }
                Values::Dict(Hybrid::new(buf.slice(1..), width, u32::MAX))
            }
            other => return Err(Problem::Encoding("data page", other)),
        });
        Ok(())
    }

    /// At the end of a page: its levels and values were consumed exactly.
    fn end_page(&mut self) -> Result<(), DecodeError> {
        let levels_left = self.levels.as_ref().is_some_and(|l| !l.exhausted());
        let values_left = match &self.values {
            Some(Values::Plain { buf, pos }) => buf.len() - *pos,
            Some(Values::Dict(idx)) => usize::from(!idx.exhausted()),
            None => 0,
        };
        match (levels_left, values_left) {
            (true, _) => Err(self.at(Problem::LeftoverLevels)),
            (false, 0) => Ok(()),
            (false, n) => Err(self.at(match &self.values {
                Some(Values::Plain { .. }) => Problem::LeftoverBytes(n),
                _ => Problem::LeftoverIndices,
            })),
        }
    }

    /// After the row group's last row: no page may hold more (empty pages may follow).
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        if self.left > 0 {
            return Err(self.at(Problem::MoreValues));
        }
        loop {
            let next = self.pages.get_next_page().map_err(|e| DecodeError {
                page: Some(self.page),
                problem: Problem::Parquet(e.to_string()),
            })?;
            self.page += 1;
            match next {
                None => return Ok(()),
                Some(p) if p.num_values() > 0 => return Err(self.at(Problem::MoreValues)),
                Some(_) => {}
            }
        }
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
            let all_present = self
                .step(&mut out[done..done + k])
                .map_err(|p| self.at(p))?;
            if let Some(v) = valid.as_deref_mut() {
                let v = &mut v[done..done + k];
                match all_present {
                    true => v.fill(true),
                    false => {
                        for (o, &l) in v.iter_mut().zip(&self.scratch_levels) {
                            *o = l == 1;
                        }
                    }
                }
            }
            self.left -= k;
            done += k;
            if self.left == 0 {
                self.end_page()?;
            }
        }
        Ok(())
    }

    /// Decodes `dst.len()` rows of the current page; returns whether all were present (else
    /// `scratch_levels` holds their levels).
    fn step(&mut self, dst: &mut [T]) -> Result<bool, Problem> {
        let k = dst.len();
        let Some(levels) = self.levels.as_mut() else {
            return self.decode_values(dst).map(|()| true);
        };
        // The common case: a run of "present" levels covers the step.
        if levels.skip_repeat(k, 1)? {
            return self.decode_values(dst).map(|()| true);
        }
        self.scratch_levels.resize(k, 0);
        levels.read(&mut self.scratch_levels)?;
        let present = self.scratch_levels.iter().filter(|&&l| l == 1).count();
        if present == k {
            self.decode_values(dst)?;
            return Ok(true);
        }
        let mut vals = std::mem::take(&mut self.scratch_values);
        vals.clear();
        vals.resize(present, T::NULL);
        let decoded = self.decode_values(&mut vals);
        let mut next = vals.iter();
        for (o, &l) in dst.iter_mut().zip(&self.scratch_levels) {
            *o = match l {
                1 => next.next().copied().unwrap_or(T::NULL),
                _ => T::NULL,
            };
        }
        self.scratch_values = vals;
        decoded.map(|()| false)
    }

    /// Decodes the next `out.len()` non-null values into `out`.
    fn decode_values(&mut self, out: &mut [T]) -> Result<(), Problem> {
        let n = out.len();
        match self.values.as_mut().ok_or(Problem::FewerValues)? {
            Values::Plain { buf, pos } => {
                let w = self.phys.width();
                let bytes = buf
                    .get(*pos..*pos + n * w)
                    .ok_or(Problem::PlainValuesShort)?;
                convert_plain(self.phys, bytes, out);
                *pos += n * w;
            }
            Values::Dict(idx) => {
                self.scratch_idx.resize(n, 0);
                idx.read(&mut self.scratch_idx)?;
                // One check for the whole batch, then a plain gather.
                let max = self.scratch_idx.iter().copied().max().unwrap_or(0);
                if n > 0 && max as usize >= self.dict.len() {
                    return Err(Problem::DictionaryIndex {
                        index: max,
                        len: self.dict.len(),
                    });
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

/// Checks the definition levels of a flat optional column chunk (any physical type) without
/// decoding its values: every level within the column's maximum (1), and exactly one per row
/// announced. Columns without levels pass at once.
pub fn check_levels(
    file: Arc<File>,
    meta: &ColumnChunkMetaData,
    col: &ColumnDescriptor,
    rows: usize,
) -> Result<(), DecodeError> {
    if col.max_def_level() != 1 || col.max_rep_level() != 0 {
        return Ok(());
    }
    let start = meta
        .dictionary_page_offset()
        .unwrap_or(meta.data_page_offset());
    if start < 0 || meta.compressed_size() < 0 {
        return Err(DecodeError {
            page: None,
            problem: Problem::Parquet(format!(
                "column chunk at offset {start} with length {}",
                meta.compressed_size()
            )),
        });
    }
    let at = |page, problem| DecodeError {
        page: Some(page),
        problem,
    };
    let mut pages = SerializedPageReader::new(file, meta, rows, None).map_err(|e| DecodeError {
        page: None,
        problem: Problem::Parquet(e.to_string()),
    })?;
    let mut scratch = vec![0u32; STEP_ROWS];
    for page in 0u32.. {
        let levels = match pages
            .get_next_page()
            .map_err(|e| at(page, Problem::Parquet(e.to_string())))?
        {
            None => return Ok(()),
            Some(Page::DataPage {
                buf,
                num_values,
                def_level_encoding: Encoding::RLE,
                ..
            }) => {
                let len = buf
                    .get(0..4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                    .ok_or(at(page, Problem::TruncatedLevels))?;
                let levels = buf
                    .get(4..4 + len)
                    .ok_or(at(page, Problem::TruncatedLevels))?;
                (buf.slice_ref(levels), num_values as usize)
            }
            Some(Page::DataPageV2 {
                buf,
                num_values,
                def_levels_byte_len,
                rep_levels_byte_len,
                ..
            }) => {
                let (rep, def) = (rep_levels_byte_len as usize, def_levels_byte_len as usize);
                let levels = buf
                    .get(rep..rep + def)
                    .ok_or(at(page, Problem::TruncatedLevels))?;
                (buf.slice_ref(levels), num_values as usize)
            }
            // Dictionary pages, and the deprecated bit-packed levels (1 bit cannot exceed 1).
            Some(_) => continue,
        };
        let (buf, mut left) = levels;
        let mut h = Hybrid::new(buf, 1, 1);
        while left > 0 {
            let k = left.min(STEP_ROWS);
            h.read(&mut scratch[..k]).map_err(|p| at(page, p))?;
            left -= k;
        }
        if !h.exhausted() {
            return Err(at(page, Problem::LeftoverLevels));
        }
    }
    Ok(())
}
