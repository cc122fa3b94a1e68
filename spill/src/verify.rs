//! `verify`: recompute every chunk checksum, in parallel, and name the rows of each damaged chunk.

use std::ops::Range;

use rayon::prelude::*;

use crate::read::{Backing, SpillFile};

/// One chunk whose bytes do not match the stored checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedChunk {
    /// Column name.
    pub column: String,
    /// Chunk index within the column.
    pub chunk: u64,
    /// Rows the chunk covers.
    pub rows: Range<u64>,
    /// Stored checksum.
    pub stored: u32,
    /// Checksum of the bytes now in the file.
    pub actual: u32,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chunks checked.
    pub chunks: u64,
    /// Data bytes checked.
    pub bytes: u64,
    /// Damaged chunks, in column then chunk order.
    pub damaged: Vec<DamagedChunk>,
}

impl VerifyReport {
    /// Whether every chunk matched.
    pub fn is_ok(&self) -> bool {
        self.damaged.is_empty()
    }
}

impl<D: Backing + Sync> SpillFile<D> {
    /// Recomputes the checksum of every column chunk (in parallel) and reports the damaged ones.
    /// Structure was already validated when the file was opened; this reads every data byte.
    pub fn verify(&self) -> VerifyReport {
        let meta = self.metadata();
        let chunk = meta.chunk_bytes;
        let jobs: Vec<(usize, u64)> = meta
            .columns
            .iter()
            .enumerate()
            .flat_map(|(i, c)| (0..c.checksums.len() as u64).map(move |k| (i, k)))
            .collect();
        let mut damaged: Vec<DamagedChunk> = jobs
            .par_iter()
            .filter_map(|&(i, k)| {
                let c = &meta.columns[i];
                let start = c.offset + k * chunk;
                let end = (start + chunk).min(c.offset + c.length);
                // Inside the validated column region.
                let range = start as usize..end as usize;
                let actual = crc32fast::hash(&self.data().as_ref()[range.clone()]);
                self.data().done_with(range);
                let stored = c.checksums[k as usize];
                let size = c.dtype.size();
                (actual != stored).then(|| DamagedChunk {
                    column: c.name.clone(),
                    chunk: k,
                    rows: (k * chunk / size)..((end - c.offset) / size),
                    stored,
                    actual,
                })
            })
            .collect();
        damaged.sort_by(|a, b| {
            let ia = self.column_index(&a.column);
            let ib = self.column_index(&b.column);
            (ia, a.chunk).cmp(&(ib, b.chunk))
        });
        VerifyReport {
            chunks: jobs.len() as u64,
            bytes: meta.columns.iter().map(|c| c.length).sum(),
            damaged,
        }
    }
}
