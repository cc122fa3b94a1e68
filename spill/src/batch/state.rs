//! The resumable position of a batch iterator ([`BatchState`]), the fingerprint that ties it to
//! a file and a selection of rows, and the checks a state passes before an iterator resumes from
//! it (SPEC.md "Batches", "Epochs, ranks and workers").

use std::fmt::Write as _;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Where a batch iterator is in its epoch, as a few integers that
/// [`BatchOptions::resume`](crate::BatchOptions::resume) continues from: from
/// [`Batches::state`](crate::Batches::state), saved as JSON ([`to_json`](Self::to_json), at
/// most 1 KiB) beside a training checkpoint.
///
/// The JSON holds these keys in exactly this order, the same as the numpy reader's `state_dict()`:
/// `spillway_batches`, `fingerprint`, `rows`, `batch_rows`, `shuffle`, `block_rows`, `seed`,
/// `epoch`, `whole_timestamps`, `batches`, `cursor`, `rank`, `world_size`, `worker`,
/// `num_workers`, `worker_batches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchState {
    /// The state's format version: 1.
    pub spillway_batches: u64,
    /// The first 16 lowercase hex digits of the SHA-256 of
    /// `spill-batches-v1;len=<file_len>;meta=<metadata crc32>;ranges=<a>-<b>,...` (see
    /// [`batches_fingerprint`]).
    pub fingerprint: String,
    /// Rows selected (the sum of the ranges' lengths).
    pub rows: u64,
    /// Rows per batch.
    pub batch_rows: u64,
    /// `"blocks"` with a block shuffle, `None` (JSON null) without.
    pub shuffle: Option<String>,
    /// The shuffle's block rows; `None` without a shuffle.
    pub block_rows: Option<u64>,
    /// The shuffle's seed (0 without a shuffle).
    pub seed: u64,
    /// The epoch (the permutation's seed is `seed + epoch`, mod 2^64).
    pub epoch: u64,
    /// Whether batches hold whole cross-sections.
    pub whole_timestamps: bool,
    /// Global batches of the epoch (`n`).
    pub batches: u64,
    /// The next global batch not yet dealt: `c + k x world_size` for a rank that has yielded `k`
    /// batches from cursor `c`; a worker's starting cursor; `batches` once the iterator is done.
    pub cursor: u64,
    /// The rank that saved it.
    pub rank: u64,
    /// Ranks when it was saved.
    pub world_size: u64,
    /// The worker that saved it.
    pub worker: u64,
    /// Workers per rank when it was saved; a state with more than one is a worker's.
    pub num_workers: u64,
    /// A worker's batches yielded from `cursor` (0 in a rank's state and once done).
    pub worker_batches: u64,
}

impl BatchState {
    /// The compact JSON object (`serde_json::to_string`, keys in field order), at most 1 KiB.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of integers, strings and booleans serialises")
    }

    /// Parses a state saved by [`to_json`](Self::to_json) or by the numpy reader
    /// ([`Error::BadStateJson`] if it is not such an object).
    pub fn from_json(json: &str) -> Result<BatchState> {
        serde_json::from_str(json).map_err(|e| Error::BadStateJson(e.to_string()))
    }
}

/// The fingerprint of a selection of rows of a file: the first 16 lowercase hex digits of the
/// SHA-256 of the UTF-8 string
/// `spill-batches-v1;len=<file_len>;meta=<metadata_crc, decimal>;ranges=<a>-<b>,<a>-<b>,...`,
/// the ranges being the non-empty ones of `ranges` in the given order (no range gives
/// `ranges=`). [`SpillFile::batches`](crate::SpillFile::batches) fingerprints the file's length,
/// its trailer's metadata checksum and the ranges asked for (default `[0, nrows)`).
pub fn batches_fingerprint(file_len: u64, metadata_crc: u32, ranges: &[Range<u64>]) -> String {
    let mut text = format!("spill-batches-v1;len={file_len};meta={metadata_crc};ranges=");
    let mut first = true;
    for r in ranges.iter().filter(|r| r.end > r.start) {
        let sep = if first { "" } else { "," };
        let _ = write!(text, "{sep}{}-{}", r.start, r.end);
        first = false;
    }
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .fold(String::with_capacity(16), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// Resuming: the epoch is known before the plan, the cursor and the worker's batches to skip once
// the epoch's batches are counted.
impl BatchState {
    /// Checks the fields that do not depend on the plan against `call` (this call's state at
    /// cursor 0) and `epoch` (this call's, if set); returns the epoch to use.
    pub(super) fn check_options(&self, call: &BatchState, epoch: Option<u64>) -> Result<u64> {
        if self.spillway_batches != 1 {
            return Err(Error::StateVersion {
                found: self.spillway_batches,
            });
        }
        if self.fingerprint != call.fingerprint {
            return Err(Error::StateOtherFile {
                saved: self.fingerprint.clone(),
                call: call.fingerprint.clone(),
            });
        }
        same("rows", &self.rows, &call.rows)?;
        same("batch_rows", &self.batch_rows, &call.batch_rows)?;
        same("shuffle", &self.shuffle, &call.shuffle)?;
        same("block_rows", &self.block_rows, &call.block_rows)?;
        same("seed", &self.seed, &call.seed)?;
        same(
            "whole_timestamps",
            &self.whole_timestamps,
            &call.whole_timestamps,
        )?;
        if let Some(e) = epoch {
            same("epoch", &self.epoch, &e)?;
        }
        Ok(self.epoch)
    }

    /// Checks the fields that depend on the plan (`batches`, `cursor`) and the worker rule
    /// against `call` (this call's state at cursor 0, its epoch's batches counted); returns the
    /// cursor and the worker's batches to skip. `per_worker` gives the batches a worker yields
    /// from a cursor.
    pub(super) fn check_position(
        &self,
        call: &BatchState,
        per_worker: impl FnOnce(u64) -> u64,
    ) -> Result<(u64, u64)> {
        same("batches", &self.batches, &call.batches)?;
        if self.cursor > call.batches {
            return Err(Error::StatePastEnd {
                field: "cursor",
                value: self.cursor,
                max: call.batches,
            });
        }
        if self.num_workers <= 1 {
            if self.worker_batches != 0 {
                return Err(Error::StatePastEnd {
                    field: "worker_batches",
                    value: self.worker_batches,
                    max: 0,
                });
            }
            return Ok((self.cursor, 0));
        }
        let at = |s: &BatchState| (s.world_size, s.num_workers, s.rank, s.worker);
        if at(self) != at(call) {
            return Err(Error::WorkerStateMoved {
                saved_rank: self.rank,
                saved_worker: self.worker,
                rank: call.rank,
                worker: call.worker,
                saved_world_size: self.world_size,
                saved_num_workers: self.num_workers,
                world_size: call.world_size,
                num_workers: call.num_workers,
            });
        }
        let max = per_worker(self.cursor);
        if self.worker_batches > max {
            return Err(Error::StatePastEnd {
                field: "worker_batches",
                value: self.worker_batches,
                max,
            });
        }
        Ok((self.cursor, self.worker_batches))
    }
}

/// [`Error::StateMismatch`] naming `field` unless the state's value equals the call's.
fn same<V: PartialEq + Serialize>(field: &'static str, saved: &V, call: &V) -> Result<()> {
    if saved == call {
        return Ok(());
    }
    let show = |v: &V| serde_json::to_string(v).unwrap_or_default();
    Err(Error::StateMismatch {
        field,
        saved: show(saved),
        call: show(call),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_test_vector() {
        // sha256("spill-batches-v1;len=8192;meta=12345;ranges=0-100") =
        // 1b59de144a8c991ea7fcc2bd3b4721cae0ea532519f53803b574d520978f235d
        assert_eq!(
            batches_fingerprint(8192, 12345, std::slice::from_ref(&(0..100))),
            "1b59de144a8c991e"
        );
        // Empty ranges are left out.
        assert_eq!(
            batches_fingerprint(8192, 12345, &[5..5, 0..100, 7..7]),
            "1b59de144a8c991e"
        );
        assert_ne!(
            batches_fingerprint(8192, 12345, &[0..100, 0..100]),
            "1b59de144a8c991e"
        );
    }
}
