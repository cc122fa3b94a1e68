//! One column chunk, page by page: levels and values decoded straight into the output type, `n`
//! rows at a time, with every count checked: levels within the column's maximum, each page holding
//! exactly the values its levels announce (no leftover bytes, runs or repeats beyond a bit-packed
//! run's padding), and the chunk holding exactly the row group's rows. Rows can be skipped: whole
//! pages without decompressing them.
//!
//! A decoder holds one window of the chunk's stored bytes, one decompressed page and the
//! dictionary; its buffers pass from one decoder to the next ([`Buffers`]), so a reader thread
//! allocates them once.

use std::ops::Range;

use parquet::basic::{Compression, Encoding};

use super::header::Kind;
use super::hybrid::Hybrid;
use super::page::{Codecs, Held, ReadAt, Window};
use super::physical::{convert_plain, Decoded, Physical};
use super::{DecodeError, Problem};

/// Rows a column decoder decodes per step: its scratch (levels, dictionary indices, values
/// around nulls) stays this many entries, in L1, whatever the caller asks for at once.
pub const STEP_ROWS: usize = 1024;

/// Bytes of scratch per column decoder (see [`STEP_ROWS`]): levels and indices (u32), values
/// (at most 8 bytes).
pub const STEP_SCRATCH: u64 = STEP_ROWS as u64 * (4 + 4 + 8);

/// Where a column chunk is and how it is stored (from the file's footer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// File offset of its first page (the dictionary page when there is one).
    pub start: u64,
    /// Stored bytes, page headers included.
    pub len: u64,
    /// Compression of its pages.
    pub codec: Compression,
    /// Rows of its row group.
    pub rows: usize,
    /// Bytes in its file (windows read ahead up to there).
    pub file_len: u64,
}

/// The buffers of a column decoder, reused from one decoder to the next: the window's bytes
/// (the next chunk may be among them) and the page buffer.
#[derive(Default)]
pub struct Buffers {
    window: Held,
    page: Vec<u8>,
}

impl Buffers {
    /// Forgets the bytes held (another file comes next), keeping the allocations.
    pub fn new_file(&mut self) {
        self.window.forget();
    }
}

enum Values {
    None,
    Plain { range: Range<usize>, pos: usize },
    Dict { range: Range<usize>, idx: Hybrid },
}

/// Decodes one column chunk into `T`, `n` rows at a time.
pub struct ColumnDecoder<T> {
    window: Window,
    codec: Compression,
    phys: Physical,
    optional: bool,
    dict: Vec<T>,
    /// The current page's payload, decompressed.
    page: Vec<u8>,
    levels: Option<(Range<usize>, Hybrid)>,
    values: Values,
    /// Levels (rows) left in the current page.
    left: usize,
    /// Rows of the chunk not yet read or skipped.
    rows_left: usize,
    /// Pages read so far (dictionary included); the current page is `page_no - 1`.
    page_no: u32,
    scratch_levels: Vec<u32>,
    scratch_values: Vec<T>,
    scratch_idx: Vec<u32>,
}

impl<T: Decoded> ColumnDecoder<T> {
    /// A decoder of `chunk`, read as `phys`; `optional` when the column has definition levels.
    pub fn new(chunk: &Chunk, phys: Physical, optional: bool, buffers: Buffers) -> Self {
        ColumnDecoder {
            window: Window::new(
                chunk.start,
                chunk.len,
                chunk.file_len,
                chunk.codec,
                buffers.window,
            ),
            codec: chunk.codec,
            phys,
            optional,
            dict: Vec::new(),
            page: buffers.page,
            levels: None,
            values: Values::None,
            left: 0,
            rows_left: chunk.rows,
            page_no: 0,
            scratch_levels: Vec::new(),
            scratch_values: Vec::new(),
            scratch_idx: Vec::new(),
        }
    }

    /// `problem` in the current page.
    fn at(&self, problem: Problem) -> DecodeError {
        DecodeError {
            page: self.page_no.checked_sub(1),
            problem,
        }
    }

    /// Loads the next data page with levels, decompressing it unless `skip_up_to` rows are to be
    /// skipped and the page holds no more than that: then it is passed over, and its rows are
    /// returned (the caller counts them as skipped). Dictionary pages are always loaded.
    fn next_page(
        &mut self,
        file: &dyn ReadAt,
        codecs: &mut Codecs,
        skip_up_to: usize,
    ) -> Result<usize, DecodeError> {
        loop {
            let page_no = self.page_no;
            let at = |problem| DecodeError {
                page: Some(page_no),
                problem,
            };
            self.page_no += 1;
            let Some((header, payload)) = self.window.next_page(file).map_err(at)? else {
                return Err(at(Problem::FewerValues));
            };
            let rows = match header.kind {
                Kind::Data { num_values, .. } | Kind::DataV2 { num_values, .. } => num_values,
                _ => 0,
            };
            if rows > 0 && rows <= skip_up_to {
                return Ok(rows);
            }
            let codec = self.codec;
            let page = &mut self.page;
            page.clear();
            let loaded = match header.kind {
                Kind::Dictionary {
                    num_values,
                    encoding,
                } => {
                    if !matches!(encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                        return Err(at(Problem::Encoding("dictionary page", encoding)));
                    }
                    codecs
                        .decompress(codec, payload, header.uncompressed, page)
                        .and_then(|()| self.load_dictionary(num_values))
                }
                Kind::Data {
                    num_values,
                    encoding,
                    def_encoding,
                } => codecs
                    .decompress(codec, payload, header.uncompressed, page)
                    .and_then(|()| self.start_v1(num_values, encoding, def_encoding)),
                Kind::DataV2 {
                    num_values,
                    encoding,
                    def_len,
                    rep_len,
                    compressed,
                } => {
                    if rep_len != 0 {
                        return Err(at(Problem::RepetitionLevels));
                    }
                    let levels = payload.get(..def_len).ok_or(at(Problem::TruncatedLevels))?;
                    page.extend_from_slice(levels);
                    let values = &payload[def_len..];
                    let size = header.uncompressed.checked_sub(def_len);
                    let size = size.ok_or(at(Problem::TruncatedLevels))?;
                    let codec = if compressed {
                        codec
                    } else {
                        Compression::UNCOMPRESSED
                    };
                    codecs
                        .decompress(codec, values, size, page)
                        .and_then(|()| self.start_v2(num_values, encoding, def_len))
                }
                Kind::Other => Ok(()),
            };
            loaded.map_err(at)?;
            if self.left > 0 {
                return Ok(0);
            }
            if matches!(header.kind, Kind::Data { .. } | Kind::DataV2 { .. }) {
                // A data page without rows holds nothing: it must hold no values either.
                self.end_page()?;
            }
        }
    }

    fn load_dictionary(&mut self, n: usize) -> Result<(), Problem> {
        let w = self.phys.width();
        if self.page.len() != n.checked_mul(w).ok_or(Problem::DictionarySize)? {
            return Err(Problem::DictionarySize);
        }
        self.dict.clear();
        self.dict.resize(n, T::NULL);
        convert_plain(self.phys, &self.page, &mut self.dict);
        Ok(())
    }

    fn start_v1(&mut self, n: usize, encoding: Encoding, def: Encoding) -> Result<(), Problem> {
        let mut pos = 0;
        self.levels = if self.optional {
            if def != Encoding::RLE {
                return Err(Problem::Encoding("definition levels", def));
            }
            let len = self
                .page
                .get(0..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or(Problem::TruncatedLevels)?;
            if self.page.len() < 4 + len {
                return Err(Problem::TruncatedLevels);
            }
            pos = 4 + len;
            Some((4..pos, Hybrid::new(1, 1)))
        } else {
            None
        };
        self.start_values(pos, encoding)?;
        self.left = n;
        Ok(())
    }

    fn start_v2(&mut self, n: usize, encoding: Encoding, def_len: usize) -> Result<(), Problem> {
        self.levels = match (self.optional, def_len) {
            (true, _) => Some((0..def_len, Hybrid::new(1, 1))),
            (false, 0) => None,
            (false, _) => return Err(Problem::LevelsOnRequiredColumn),
        };
        self.start_values(def_len, encoding)?;
        self.left = n;
        Ok(())
    }

    fn start_values(&mut self, from: usize, encoding: Encoding) -> Result<(), Problem> {
        let end = self.page.len();
        self.values = match encoding {
            Encoding::PLAIN => Values::Plain {
                range: from..end,
                pos: from,
            },
            Encoding::PLAIN_DICTIONARY | Encoding::RLE_DICTIONARY => {
                let width = u32::from(*self.page.get(from).ok_or(Problem::TruncatedRun)?);
                if width > 32 {
                    return Err(Problem::IndexWidth(width));
                }
                Values::Dict {
                    range: from + 1..end,
                    idx: Hybrid::new(width, u32::MAX),
                }
            }
            other => return Err(Problem::Encoding("data page", other)),
        };
        Ok(())
    }

    /// At the end of a page: its levels and values were consumed exactly.
    fn end_page(&mut self) -> Result<(), DecodeError> {
        let page = &self.page;
        let levels_left = self
            .levels
            .as_ref()
            .is_some_and(|(r, h)| !h.exhausted(&page[r.clone()]));
        let problem = match &self.values {
            _ if levels_left => Some(Problem::LeftoverLevels),
            Values::Plain { range, pos } if *pos < range.end => {
                Some(Problem::LeftoverBytes(range.end - pos))
            }
            Values::Dict { range, idx } if !idx.exhausted(&page[range.clone()]) => {
                Some(Problem::LeftoverIndices)
            }
            _ => None,
        };
        match problem {
            Some(p) => Err(self.at(p)),
            None => Ok(()),
        }
    }

    /// Skips the next `n` rows: whole pages without decompressing them, the rest decoded and
    /// dropped.
    pub fn skip(
        &mut self,
        file: &dyn ReadAt,
        codecs: &mut Codecs,
        n: usize,
    ) -> Result<(), DecodeError> {
        let mut left = n;
        while left > 0 {
            if self.left == 0 {
                let skipped = self.next_page(file, codecs, left)?;
                if skipped > 0 {
                    left -= skipped;
                    self.rows_left = self.rows_left.saturating_sub(skipped);
                    continue;
                }
            }
            let k = left.min(self.left).min(STEP_ROWS);
            let mut sink = std::mem::take(&mut self.scratch_values);
            sink.clear();
            sink.resize(k, T::NULL);
            let read = self.read(file, codecs, &mut sink, None);
            self.scratch_values = sink;
            read?;
            left -= k;
        }
        Ok(())
    }

    /// Decodes the next `out.len()` values (nulls become `T::NULL`); `valid`, when given, is set
    /// per row.
    pub fn read(
        &mut self,
        file: &dyn ReadAt,
        codecs: &mut Codecs,
        out: &mut [T],
        mut valid: Option<&mut [bool]>,
    ) -> Result<(), DecodeError> {
        if out.len() > self.rows_left {
            return Err(self.at(Problem::MoreValues));
        }
        let mut done = 0;
        while done < out.len() {
            if self.left == 0 {
                self.next_page(file, codecs, 0)?;
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
            self.rows_left -= k;
            done += k;
            if self.left == 0 {
                self.end_page()?;
            }
        }
        Ok(())
    }

    /// After the row group's last row: no page may hold more. Gives the buffers back.
    ///
    /// A chunk of no rows is never read, so its dictionary page (pyarrow writes an empty one for
    /// an empty table) is still ahead: it holds no rows and is passed over.
    pub fn finish(mut self, file: &dyn ReadAt) -> Result<Buffers, DecodeError> {
        let mut more = self.left > 0 || self.rows_left > 0;
        while !more {
            let page = self.window.next_page(file).map_err(|p| DecodeError {
                page: Some(self.page_no),
                problem: p,
            })?;
            match page.map(|(h, _)| h.kind) {
                None | Some(Kind::Other) => break,
                Some(Kind::Dictionary { .. }) if self.page_no == 0 => self.page_no += 1,
                Some(_) => more = true,
            }
        }
        if more {
            return Err(self.at(Problem::MoreValues));
        }
        Ok(Buffers {
            window: self.window.into_held(),
            page: self.page,
        })
    }

    /// Decodes `dst.len()` rows of the current page; returns whether all were present (else
    /// `scratch_levels` holds their levels).
    fn step(&mut self, dst: &mut [T]) -> Result<bool, Problem> {
        let k = dst.len();
        let Some((range, levels)) = self.levels.as_mut() else {
            return self.decode_values(dst).map(|()| true);
        };
        let buf = &self.page[range.clone()];
        // The common case: a run of "present" levels covers the step.
        if levels.skip_repeat(buf, k, 1)? {
            return self.decode_values(dst).map(|()| true);
        }
        self.scratch_levels.resize(k, 0);
        levels.read(buf, &mut self.scratch_levels)?;
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
        match &mut self.values {
            Values::None => Err(Problem::FewerValues),
            Values::Plain { range, pos } => {
                let w = self.phys.width();
                let end = *pos + n * w;
                if end > range.end {
                    return Err(Problem::PlainValuesShort);
                }
                convert_plain(self.phys, &self.page[*pos..end], out);
                *pos = end;
                Ok(())
            }
            Values::Dict { range, idx } => {
                self.scratch_idx.resize(n, 0);
                idx.read(&self.page[range.clone()], &mut self.scratch_idx)?;
                // One check for the whole step, then a plain gather.
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
                Ok(())
            }
        }
    }
}

/// Checks the definition levels of a flat optional column chunk (any physical type) without
/// decoding its values: every level within the column's maximum (1), and exactly one per row
/// announced. Pages wholly within the first `skip` rows are passed over unread, as the fast
/// decoder skips them. Used for the files arrow-rs reads, which takes a level above the maximum
/// for "present".
pub fn check_levels(
    file: &dyn ReadAt,
    chunk: &Chunk,
    mut skip: usize,
    codecs: &mut Codecs,
    buffers: &mut Buffers,
) -> Result<(), DecodeError> {
    let held = std::mem::take(&mut buffers.window);
    let mut window = Window::new(chunk.start, chunk.len, chunk.file_len, chunk.codec, held);
    let mut scratch = vec![0u32; STEP_ROWS];
    let mut page_no = 0u32;
    let result = loop {
        let at = |problem| DecodeError {
            page: Some(page_no),
            problem,
        };
        let next = match window.next_page(file) {
            Ok(n) => n,
            Err(p) => break Err(at(p)),
        };
        let Some((header, payload)) = next else {
            break Ok(());
        };
        let rows = match header.kind {
            Kind::Data { num_values, .. } | Kind::DataV2 { num_values, .. } => num_values,
            _ => 0,
        };
        if rows > 0 && rows <= skip {
            skip -= rows;
            page_no += 1;
            continue;
        }
        skip = 0;
        let page = &mut buffers.page;
        page.clear();
        let levels: Result<Option<(usize, Range<usize>)>, Problem> = match header.kind {
            Kind::Data {
                num_values,
                def_encoding: Encoding::RLE,
                ..
            } => codecs
                .decompress(chunk.codec, payload, header.uncompressed, page)
                .and_then(|()| {
                    let len = page
                        .get(0..4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                        .ok_or(Problem::TruncatedLevels)?;
                    match page.len() >= 4 + len {
                        true => Ok(Some((num_values, 4..4 + len))),
                        false => Err(Problem::TruncatedLevels),
                    }
                }),
            Kind::DataV2 {
                num_values,
                def_len,
                rep_len,
                ..
            } => match payload.get(rep_len..rep_len + def_len) {
                Some(levels) => {
                    page.extend_from_slice(levels);
                    Ok(Some((num_values, 0..def_len)))
                }
                None => Err(Problem::TruncatedLevels),
            },
            // Dictionary pages, and the deprecated bit-packed levels (1 bit cannot exceed 1).
            _ => Ok(None),
        };
        let (mut left, range) = match levels {
            Ok(Some(l)) => l,
            Ok(None) => {
                page_no += 1;
                continue;
            }
            Err(p) => break Err(at(p)),
        };
        let buf = &page[range];
        let mut h = Hybrid::new(1, 1);
        let mut read = Ok(());
        while left > 0 && read.is_ok() {
            let k = left.min(STEP_ROWS);
            read = h.read(buf, &mut scratch[..k]);
            left -= k;
        }
        if let Err(p) = read {
            break Err(at(p));
        }
        if !h.exhausted(buf) {
            break Err(at(Problem::LeftoverLevels));
        }
        page_no += 1;
    };
    buffers.window = window.into_held();
    result
}
