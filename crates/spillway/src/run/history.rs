//! What a time shard records of each symbol's rows, so that an append can tell whether the
//! universe still holds the history the dataset was built from (`tools::dataset::append`).
//!
//! Per symbol code: its rows in the shard, and a *digest*: the sum (mod 2^64) of a 64-bit hash of
//! each row, `(time, k, value bits of the target and every feature)`, where `k` counts the rows
//! just before it in the symbol's order with the same time (repeated times). A sum does not
//! depend on how the rows are cut into shards or read, so a dataset's digest of a symbol is the
//! sum of its shards' (`spillway manifest`, `compact` and `append` add them up), and an append
//! recomputes it for a symbol whose files changed from a build of that symbol's rows alone.
//!
//! It reads the shard's symbol-major intermediate, where each symbol's rows are contiguous, with
//! positioned reads in bounded chunks (no mapping: mapped pages would count in the resident set),
//! one symbol per task on the build's cores: about the cost of reading the intermediate once.

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use spill::{DType, Layout};

use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::plan::Unit;

/// Rows hashed at a time: each chunk holds this many row hashes and one column's values.
const CHUNK_ROWS: usize = 16 << 10;

/// Per symbol code, in the file's table: its rows and their digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Rows of each symbol.
    pub rows: Vec<u64>,
    /// Digest of each symbol's rows (see the module docs).
    pub digests: Vec<u64>,
}

impl History {
    /// As the shard's build metadata records it: `{"rows": [...], "digests": ["<16 hex>", ...],
    /// "files": [[i, ...], ...]}`, where the `i` are the symbol's files' places in the inputs'
    /// `stamp` (sorted by path relative to `input`, one per unit).
    pub fn to_json(&self, units: &[Unit], input: &Path) -> serde_json::Value {
        let rel = |u: &Unit| {
            let p = u.path.strip_prefix(input).unwrap_or(&u.path);
            p.to_string_lossy().into_owned()
        };
        let mut sorted: Vec<String> = units.iter().map(rel).collect();
        sorted.sort();
        let mut files = vec![Vec::new(); self.rows.len()];
        for u in units {
            let at = sorted.partition_point(|r| *r < rel(u));
            files[u.symbol as usize].push(at);
        }
        serde_json::json!({
            "rows": self.rows,
            "digests": self.digests.iter().map(|d| format!("{d:016x}")).collect::<Vec<_>>(),
            "files": files,
        })
    }
}

/// The hash of a row: its time `t`, its place `k` among equal times, and the hash of its
/// values (`values_hash`).
pub fn row_hash(t: i64, k: u64, values_hash: u64) -> u64 {
    mix(mix(mix(ROW_SEED ^ t as u64) ^ k) ^ values_hash)
}

/// Where a row's value hash starts, before [`fold`] takes each value column's bits.
const VALUES_SEED: u64 = 0x5350_494c_4c57_4159;
/// Where a row's hash starts.
const ROW_SEED: u64 = 0x6869_7374_6f72_7921;

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Positioned reads of a committed spill file's columns (time, symbol codes, values).
pub struct Columns {
    file: File,
    path: PathBuf,
    /// Per column: byte offset and type.
    cols: Vec<(u64, DType)>,
}

impl Columns {
    /// The columns of the file at `path`, laid out as `layout` says.
    pub fn of_layout(path: &Path, layout: &Layout) -> Result<Columns> {
        let cols = (0..layout.columns().len())
            .map(|c| (layout.offset(c), layout.columns()[c].dtype))
            .collect();
        Columns::open(path, cols)
    }

    /// The columns of the file at `path`, as its metadata `meta` says.
    pub fn of_metadata(path: &Path, meta: &spill::Metadata) -> Result<Columns> {
        Columns::open(
            path,
            meta.columns.iter().map(|c| (c.offset, c.dtype)).collect(),
        )
    }

    fn open(path: &Path, cols: Vec<(u64, DType)>) -> Result<Columns> {
        let file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
        Ok(Columns {
            file,
            path: path.to_path_buf(),
            cols,
        })
    }

    fn read(&self, col: usize, row: u64, out: &mut [u8]) -> Result<()> {
        let (offset, dtype) = self.cols[col];
        self.file
            .read_exact_at(out, offset + row * dtype.size())
            .map_err(|e| Error::io("reading", &self.path, e))
    }

    /// Calls `each(times, codes, values_hashes)` for the rows `rows`, a chunk at a time.
    pub fn chunks(
        &self,
        rows: Range<u64>,
        cancel: &Cancel,
        mut each: impl FnMut(&[i64], &[u32], &[u64]),
    ) -> Result<()> {
        let (mut times, mut codes) = (vec![0i64; CHUNK_ROWS], vec![0u32; CHUNK_ROWS]);
        let mut hashes = vec![0u64; CHUNK_ROWS];
        let mut buf = vec![0u8; CHUNK_ROWS * 8];
        let mut row = rows.start;
        while row < rows.end {
            cancel.check()?;
            let n = ((rows.end - row) as usize).min(CHUNK_ROWS);
            self.read(0, row, bytemuck::cast_slice_mut(&mut times[..n]))?;
            self.read(1, row, bytemuck::cast_slice_mut(&mut codes[..n]))?;
            hashes[..n].fill(VALUES_SEED);
            for c in 2..self.cols.len() {
                let bytes = &mut buf[..n * self.cols[c].1.size() as usize];
                self.read(c, row, bytes)?;
                fold(self.cols[c].1, bytes, &mut hashes[..n])?;
            }
            each(&times[..n], &codes[..n], &hashes[..n]);
            row += n as u64;
        }
        Ok(())
    }
}

/// The history of the committed symbol-major spill file at `path` with `layout` (time column
/// first, symbol codes second, then the value columns).
pub fn digest(path: &Path, layout: &Layout, cancel: &Cancel) -> Result<History> {
    let cols = Columns::of_layout(path, layout)?;
    let all = [[i64::MIN, i64::MAX]];
    let per_symbol = layout
        .symbols()
        .par_iter()
        .map(|s| Ok(window_digests(&cols, s.start..s.stop, &all, cancel)?[0]))
        .collect::<Result<Vec<(u64, u64)>>>()?;
    let (rows, digests) = per_symbol.into_iter().unzip();
    Ok(History { rows, digests })
}

/// Rows and digest (see the module docs) of the rows `rows` of one symbol in a symbol-major
/// file, per time window of `windows` (`[first, last]` ns, in order, disjoint): what the shards
/// cut by those windows record of it. One more entry at the end counts the rows outside every
/// window, with the earliest of their times as its "digest" (`i64::MAX` as bits when none).
pub fn window_digests(
    cols: &Columns,
    rows: Range<u64>,
    windows: &[[i64; 2]],
    cancel: &Cancel,
) -> Result<Vec<(u64, u64)>> {
    let mut out = vec![(0u64, 0u64); windows.len() + 1];
    let mut outside = i64::MAX;
    // Per window, the last time seen and its repeats: a window's rows are a subsequence.
    let mut last: Vec<(Option<i64>, u64)> = vec![(None, 0); windows.len()];
    cols.chunks(rows, cancel, |times, _, hashes| {
        for (&t, &v) in times.iter().zip(hashes) {
            let w = windows.partition_point(|w| w[1] < t);
            if w == windows.len() || windows[w][0] > t {
                out[windows.len()].0 += 1;
                outside = outside.min(t);
                continue;
            }
            let (l, k) = &mut last[w];
            *k = if *l == Some(t) { *k + 1 } else { 0 };
            *l = Some(t);
            let o = &mut out[w];
            o.0 += 1;
            o.1 = o.1.wrapping_add(row_hash(t, *k, v));
        }
    })?;
    out[windows.len()].1 = outside as u64;
    Ok(out)
}

/// Per timestamp in `window`, the rows of symbol `code` among rows `rows` of a spill file and the
/// sum of their hashes, their order within the timestamp left out (`k` = 0): what two versions
/// of a symbol's history are compared on to find where they part.
pub fn per_timestamp(
    cols: &Columns,
    rows: Range<u64>,
    code: u32,
    window: [i64; 2],
    cancel: &Cancel,
) -> Result<BTreeMap<i64, (u64, u64)>> {
    let mut map = BTreeMap::new();
    cols.chunks(rows, cancel, |times, codes, hashes| {
        for ((&t, &c), &v) in times.iter().zip(codes).zip(hashes) {
            if c == code && window[0] <= t && t <= window[1] {
                let e: &mut (u64, u64) = map.entry(t).or_default();
                e.0 += 1;
                e.1 = e.1.wrapping_add(row_hash(t, 0, v));
            }
        }
    })?;
    Ok(map)
}

/// Folds one column's values (`bytes`, of `dtype`) into the rows' value hashes.
fn fold(dtype: DType, bytes: &[u8], hashes: &mut [u64]) -> Result<()> {
    match dtype {
        DType::F32 => {
            for (h, v) in hashes.iter_mut().zip(bytes.chunks_exact(4)) {
                *h = mix(*h ^ u64::from(u32::from_le_bytes([v[0], v[1], v[2], v[3]])));
            }
        }
        DType::F64 => {
            for (h, v) in hashes.iter_mut().zip(bytes.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(v);
                *h = mix(*h ^ u64::from_le_bytes(b));
            }
        }
        other => {
            return Err(Error::Internal(format!(
                "no history digest for a value column of {other:?}"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_hash_depends_on_its_time_place_and_every_value() {
        let values = |vals: &[u32]| {
            let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut h = [VALUES_SEED];
            for v in bytes.chunks(4) {
                fold(DType::F32, v, &mut h).expect("f32");
            }
            h[0]
        };
        let base = row_hash(5, 0, values(&[1, 2]));
        assert_ne!(base, row_hash(6, 0, values(&[1, 2])));
        assert_ne!(base, row_hash(5, 1, values(&[1, 2])));
        assert_ne!(
            base,
            row_hash(5, 0, values(&[2, 1])),
            "column order matters"
        );
        assert_ne!(base, row_hash(5, 0, values(&[1, 3])));
        // Pinned (computed independently, in Python): a change here changes every recorded
        // digest, and appends would refuse every dataset built before it.
        assert_eq!(base, 0x377b_311d_6550_f5a7, "{base:#x}");
    }
}
