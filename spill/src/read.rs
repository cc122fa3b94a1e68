//! Reading: [`SpillFile`] validates a byte buffer completely in `from_bytes` (O(metadata)), then
//! hands out typed zero-copy views. [`open`] is a thin wrapper that memory-maps a path.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;
use serde_json::{Map, Value};

use crate::error::{short, Error, Result};
use crate::format::{
    caps, decode_header, Role, Trailer, CHECKSUM_CRC32, FEATURE_TIME_ORDER, HEADER_FIELDS_LEN,
    HEADER_LEN, KNOWN_REQUIRED_FEATURES, MIN_FILE_LEN, TRAILER_LEN, VERSION_MAJOR,
};
use crate::meta::{Column, Metadata, Symbol};
use crate::stats::Element;
use crate::timestamps::{Order, Timestamps};

/// Storage a spill file is read from: any byte buffer. Memory maps also drop pages they are done
/// with, so that `verify` of a file larger than RAM keeps a small resident set.
pub trait Backing: AsRef<[u8]> {
    /// Called when `range` will not be read again soon. The default does nothing.
    fn done_with(&self, _range: Range<usize>) {}
}

impl Backing for Vec<u8> {}
impl Backing for &[u8] {}
impl Backing for Box<[u8]> {}

/// On Unix the pages are dropped with `madvise(MADV_DONTNEED)`; elsewhere (Windows) nothing is
/// done, as for any other backing.
impl Backing for Mmap {
    #[cfg(unix)]
    fn done_with(&self, range: Range<usize>) {
        // Only whole pages inside the range may be dropped.
        let page = crate::format::ALIGN as usize;
        let start = range.start.div_ceil(page) * page;
        let end = range.end / page * page;
        if end > start {
            // SAFETY: this is a read-only shared file mapping; MADV_DONTNEED only drops the
            // process's page-table entries, and a later access faults the same file bytes back in
            // from the page cache. No data is lost and no reference is invalidated.
            let _ = unsafe {
                self.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}

/// A validated spill file over any byte storage.
#[derive(Debug)]
pub struct SpillFile<D> {
    data: D,
    meta: Metadata,
    trailer: Trailer,
    index: HashMap<String, usize>,
}

/// Opens and validates a spill file by memory-mapping it read-only.
pub fn open(path: impl AsRef<Path>) -> Result<SpillFile<Mmap>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("reading the size of", path, e))?
        .len();
    if len < MIN_FILE_LEN {
        return Err(Error::TooSmall {
            len,
            min: MIN_FILE_LEN,
        });
    }
    // SAFETY: the mapping is read-only. Spill files are never modified in place (writers build a
    // temporary file and rename it over the old one), so the bytes under the map do not change;
    // a file truncated by a third party would fault on access, which no safe API can prevent.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("memory-mapping", path, e))?;
    SpillFile::from_bytes(map)
}

/// What a spill file of `file_len` bytes says of itself, from its header's fields (`header`, at
/// least [`HEADER_FIELDS_LEN`] bytes) and its last `tail.len()` bytes, which must hold the
/// metadata block and the trailer: every check of [`SpillFile::from_bytes`] but those of the
/// data itself. For files read piecewise (object storage): a footer read, not the whole file.
pub fn describe(header: &[u8], tail: &[u8], file_len: u64) -> Result<(Trailer, Metadata)> {
    let len = file_len;
    if len < MIN_FILE_LEN || header.len() < HEADER_FIELDS_LEN || (tail.len() as u64) < TRAILER_LEN {
        return Err(Error::TooSmall {
            len,
            min: MIN_FILE_LEN,
        });
    }
    let mut fields = [0u8; HEADER_FIELDS_LEN];
    fields.copy_from_slice(&header[..HEADER_FIELDS_LEN]);
    let (major, minor) = decode_header(&fields)?;
    // The trailer layout belongs to the major version: refuse other majors before reading it.
    if major != VERSION_MAJOR {
        return Err(Error::UnsupportedVersion {
            major,
            minor,
            known: VERSION_MAJOR,
        });
    }
    let mut t = [0u8; TRAILER_LEN as usize];
    t.copy_from_slice(&tail[tail.len() - TRAILER_LEN as usize..]);
    let trailer = Trailer::decode(&t)?;
    if (trailer.major, trailer.minor) != (major, minor) {
        return Err(Error::VersionMismatch {
            header_major: major,
            header_minor: minor,
            trailer_major: trailer.major,
            trailer_minor: trailer.minor,
        });
    }
    let unknown = trailer.required_features & !KNOWN_REQUIRED_FEATURES;
    if unknown != 0 {
        return Err(Error::UnsupportedFeatures { bits: unknown });
    }
    if trailer.checksum_algorithm != CHECKSUM_CRC32 {
        return Err(Error::UnsupportedChecksum {
            id: trailer.checksum_algorithm,
        });
    }
    if trailer.file_len != len {
        return Err(Error::FileLength {
            recorded: trailer.file_len,
            actual: len,
        });
    }
    if trailer.metadata_len > caps::MAX_METADATA_BYTES {
        return Err(Error::OverCap {
            what: "metadata length",
            value: trailer.metadata_len,
            cap: caps::MAX_METADATA_BYTES,
        });
    }
    let meta_end = trailer
        .metadata_offset
        .checked_add(trailer.metadata_len)
        .and_then(|e| e.checked_add(TRAILER_LEN));
    if trailer.metadata_offset < HEADER_LEN || meta_end != Some(len) {
        return Err(Error::MetadataBounds {
            offset: trailer.metadata_offset,
            len: trailer.metadata_len,
            file_len: len,
        });
    }
    // The tail must reach back to the metadata's start.
    let tail_start = len - tail.len() as u64;
    if trailer.metadata_offset < tail_start {
        return Err(Error::MetadataBounds {
            offset: trailer.metadata_offset,
            len: trailer.metadata_len,
            file_len: len,
        });
    }
    let from = (trailer.metadata_offset - tail_start) as usize;
    let meta_bytes = &tail[from..tail.len() - TRAILER_LEN as usize];
    let actual = crc32fast::hash(meta_bytes);
    if actual != trailer.metadata_checksum {
        return Err(Error::MetadataChecksum {
            stored: trailer.metadata_checksum,
            actual,
        });
    }
    let meta = Metadata::parse(meta_bytes, trailer.metadata_offset)?;
    // Bit 0 is what stops 1.0 and 1.1 readers from reading a time-major file as symbol-major.
    let bit = trailer.required_features & FEATURE_TIME_ORDER != 0;
    if bit != (meta.order == Order::Time) {
        return Err(Error::OrderFeature {
            order: meta.order,
            bit,
        });
    }
    Ok((trailer, meta))
}

impl<D: Backing> SpillFile<D> {
    /// Validates `data` as a spill file: header, trailer, version and feature flags, file length,
    /// metadata checksum, and every offset, length, alignment, overlap, range and name in the
    /// metadata. Cost: O(metadata), no data is read. Never panics, whatever the bytes.
    pub fn from_bytes(data: D) -> Result<SpillFile<D>> {
        let bytes = data.as_ref();
        let len = bytes.len() as u64;
        if len < MIN_FILE_LEN {
            return Err(Error::TooSmall {
                len,
                min: MIN_FILE_LEN,
            });
        }
        let (trailer, meta) = describe(&bytes[..HEADER_FIELDS_LEN], bytes, len)?;
        let index = meta
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Ok(SpillFile {
            data,
            meta,
            trailer,
            index,
        })
    }

    /// Rows in every column.
    pub fn nrows(&self) -> u64 {
        self.meta.nrows
    }

    /// Columns in stored order.
    pub fn columns(&self) -> &[Column] {
        &self.meta.columns
    }

    /// Index of the column named `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The column named `name`, or [`Error::NoSuchColumn`].
    pub fn column_meta(&self, name: &str) -> Result<&Column> {
        self.column_index(name)
            .map(|i| &self.meta.columns[i])
            .ok_or_else(|| Error::NoSuchColumn { name: short(name) })
    }

    /// Symbol table: code `i` is `symbols()[i]`, with its row range (symbol-major files; in a
    /// time-major file every range is `0..0` and the codes are in the `symbol` column).
    pub fn symbols(&self) -> &[Symbol] {
        &self.meta.symbols
    }

    /// How the rows are ordered: symbol-major (1.0, 1.1, and 1.2 by default) or time-major.
    pub fn order(&self) -> Order {
        self.meta.order
    }

    /// The timestamp index of a time-major file (`None` in a symbol-major one): each timestamp's
    /// time and rows, from the metadata alone.
    pub fn timestamps(&self) -> Option<&Timestamps> {
        self.meta.timestamps.as_ref()
    }

    /// The free-form build metadata.
    pub fn build_metadata(&self) -> &Map<String, Value> {
        &self.meta.build
    }

    /// All validated metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Format version as (major, minor).
    pub fn version(&self) -> (u16, u16) {
        (self.trailer.major, self.trailer.minor)
    }

    /// Length of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.trailer.file_len
    }

    /// The trailer's checksum of the metadata block (the batch state's fingerprint names it).
    pub(crate) fn metadata_checksum(&self) -> u32 {
        self.trailer.metadata_checksum
    }

    /// The raw little-endian bytes of column `i` (panics if `i` is out of range, like indexing).
    pub fn column_bytes(&self, i: usize) -> &[u8] {
        let c = &self.meta.columns[i];
        // Validated in from_bytes: offset + length lies inside the data area.
        &self.data.as_ref()[c.offset as usize..(c.offset + c.length) as usize]
    }

    /// The column named `name` as a typed zero-copy slice. `T` must be the column's dtype.
    pub fn column<T: Element>(&self, name: &str) -> Result<&[T]> {
        let i = self
            .column_index(name)
            .ok_or_else(|| Error::NoSuchColumn { name: short(name) })?;
        self.column_at(i)
    }

    /// Column `i` as a typed zero-copy slice (panics if `i` is out of range, like indexing).
    pub(crate) fn column_at<T: Element>(&self, i: usize) -> Result<&[T]> {
        let c = &self.meta.columns[i];
        if c.dtype != T::DTYPE {
            return Err(Error::DTypeMismatch {
                column: short(&c.name),
                stored: c.dtype,
                requested: T::DTYPE,
            });
        }
        bytemuck::try_cast_slice(self.column_bytes(i)).map_err(|_| Error::MemoryAlignment {
            column: short(&c.name),
            dtype: c.dtype,
        })
    }

    /// Indices of the columns with `role`, in stored order.
    pub fn columns_with_role(&self, role: Role) -> Vec<usize> {
        (0..self.meta.columns.len())
            .filter(|&i| self.meta.columns[i].role == role)
            .collect()
    }

    /// Every feature column as one zero-copy 2-D view (see [`Matrix`]).
    pub fn features<T: Element>(&self) -> Result<Matrix<'_, T>> {
        self.matrix_of(&self.columns_with_role(Role::Feature))
    }

    /// The named columns as one zero-copy 2-D view. They must share `T`'s dtype and be stored at a
    /// constant stride in the given order (consecutive columns of one dtype always are).
    pub fn matrix<T: Element>(&self, names: &[&str]) -> Result<Matrix<'_, T>> {
        let idx = names
            .iter()
            .map(|n| {
                self.column_index(n)
                    .ok_or_else(|| Error::NoSuchColumn { name: short(n) })
            })
            .collect::<Result<Vec<_>>>()?;
        self.matrix_of(&idx)
    }

    fn matrix_of<T: Element>(&self, idx: &[usize]) -> Result<Matrix<'_, T>> {
        let cols: Vec<&Column> = idx.iter().map(|&i| &self.meta.columns[i]).collect();
        let nrows = self.meta.nrows as usize;
        let names = || {
            short(
                &cols
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        };
        for &i in idx {
            self.column_at::<T>(i)?;
        }
        let (Some(first), Some(last)) = (cols.first(), cols.last()) else {
            return Ok(Matrix {
                data: &[],
                nrows,
                ncols: 0,
                stride: nrows,
            });
        };
        // Offsets must increase by one constant stride (>= a column's length, so no overlap).
        let stride_bytes = match cols.get(1) {
            None => Some(first.length),
            Some(second) => second.offset.checked_sub(first.offset),
        };
        let strided = stride_bytes.is_some_and(|s| {
            cols.windows(2)
                .all(|w| w[1].offset.checked_sub(w[0].offset) == Some(s))
                && s >= first.length
                && s % T::DTYPE.size() == 0
        });
        let (true, Some(stride_bytes)) = (strided, stride_bytes) else {
            return Err(Error::NotStrided { columns: names() });
        };
        let start = first.offset as usize;
        let end = (last.offset + last.length) as usize;
        let data: &[T] =
            bytemuck::try_cast_slice(&self.data.as_ref()[start..end]).map_err(|_| {
                Error::MemoryAlignment {
                    column: short(&first.name),
                    dtype: first.dtype,
                }
            })?;
        Ok(Matrix {
            data,
            nrows,
            ncols: cols.len(),
            stride: (stride_bytes / T::DTYPE.size()) as usize,
        })
    }

    pub(crate) fn data(&self) -> &D {
        &self.data
    }
}

/// Several columns of one dtype as a column-major matrix whose columns start `stride` elements
/// apart: element `(r, c)` is `data[c * stride + r]`. In numpy terms: shape `(nrows, ncols)`,
/// strides `(size, stride * size)`; when `stride == nrows` it is Fortran-contiguous.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a, T> {
    data: &'a [T],
    nrows: usize,
    ncols: usize,
    stride: usize,
}

impl<'a, T: Copy> Matrix<'a, T> {
    /// Rows.
    pub fn nrows(&self) -> usize {
        self.nrows
    }

    /// Columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Elements from the start of one column to the start of the next.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The backing slice, from the first element of column 0 to the last of the last column
    /// (for handing to BLAS-style APIs with a leading dimension of `stride`).
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }

    /// Column `c` (panics if out of range).
    pub fn column(&self, c: usize) -> &'a [T] {
        assert!(
            c < self.ncols,
            "column {c} out of range ({} columns)",
            self.ncols
        );
        &self.data[c * self.stride..c * self.stride + self.nrows]
    }

    /// Element at row `r`, column `c`, or `None` out of range.
    pub fn get(&self, r: usize, c: usize) -> Option<T> {
        (r < self.nrows && c < self.ncols).then(|| self.data[c * self.stride + r])
    }
}
