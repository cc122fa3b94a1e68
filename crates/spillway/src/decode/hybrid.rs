//! The RLE / bit-packed hybrid encoding: definition levels and dictionary indices.
//!
//! A stream is a sequence of runs, each announced by a ULEB128 header: `count << 1` for a run of
//! one repeated value (stored in `ceil(width / 8)` bytes), `groups << 1 | 1` for `8 x groups`
//! values bit-packed at `width` bits each. Values of the last bit-packed run past the last one a
//! page needs are padding; [`Hybrid::exhausted`] tells leftover runs and repeats from padding.

use super::Problem;

/// Zero bytes after a bit-packed run: the widest group (32 bytes) plus one 8-byte load.
const PACK_PAD: usize = 40;

/// A reader of one hybrid stream. It keeps its position; the stream's bytes are passed to each
/// call (they live in the page buffer its decoder owns).
pub(super) struct Hybrid {
    pos: usize,
    width: u32,
    /// The largest value a repeated run may hold (definition levels: the column's maximum level);
    /// a bit-packed run's values fit `width` bits, which the caller chose to fit this.
    max: u32,
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
    /// A stream of `width`-bit values (at most 32) none of which may exceed `max`.
    pub(super) fn new(width: u32, max: u32) -> Hybrid {
        Hybrid {
            pos: 0,
            width,
            max,
            left: 0,
            repeat: None,
            packed: Vec::new(),
            next: 0,
        }
    }

    fn varint(&mut self, buf: &[u8]) -> Result<u64, Problem> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *buf.get(self.pos).ok_or(Problem::TruncatedRun)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Problem::RunHeaderTooLong)
    }

    fn next_run(&mut self, buf: &[u8]) -> Result<(), Problem> {
        let header = self.varint(buf)?;
        if header & 1 == 0 {
            let bytes = self.width.div_ceil(8) as usize;
            let count = usize::try_from(header >> 1).map_err(|_| Problem::RunTooLong)?;
            let raw = buf
                .get(self.pos..self.pos + bytes)
                .ok_or(Problem::TruncatedRun)?;
            let v = raw
                .iter()
                .enumerate()
                .fold(0u32, |v, (i, &b)| v | u32::from(b) << (8 * i));
            if v > self.max {
                return Err(Problem::ValueOutOfRange {
                    value: v,
                    max: self.max,
                });
            }
            self.pos += bytes;
            self.repeat = Some(v);
            self.left = count;
        } else {
            let groups = usize::try_from(header >> 1).map_err(|_| Problem::RunTooLong)?;
            let len = groups
                .checked_mul(self.width as usize)
                .ok_or(Problem::RunTooLong)?;
            // The last run of a page may be cut short; values past its end are never asked for.
            let available = (buf.len() - self.pos).min(len);
            self.packed.clear();
            self.packed
                .extend_from_slice(&buf[self.pos..self.pos + available]);
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
        if self.left == 0 && self.pos >= buf.len() {
            return Err(Problem::DataEnded);
        }
        Ok(())
    }

    /// Consumes the next `n` values if they are all `v` within the current repeated run (loading
    /// the next run first when none is left); else consumes nothing.
    pub(super) fn skip_repeat(&mut self, buf: &[u8], n: usize, v: u32) -> Result<bool, Problem> {
        if self.left == 0 {
            self.next_run(buf)?;
        }
        let hit = self.repeat == Some(v) && self.left >= n;
        if hit {
            self.left -= n;
        }
        Ok(hit)
    }

    /// Fills `out` with the next values.
    pub(super) fn read(&mut self, buf: &[u8], out: &mut [u32]) -> Result<(), Problem> {
        let mut i = 0;
        while i < out.len() {
            if self.left == 0 {
                self.next_run(buf)?;
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

    /// Whether the stream holds nothing past what was read: no further run, and nothing left of
    /// a repeated run. What is left of a bit-packed run is padding: writers pad the last run to a
    /// multiple of 8 values, and some (DuckDB) to a larger block.
    pub(super) fn exhausted(&self, buf: &[u8]) -> bool {
        self.pos >= buf.len() && (self.repeat.is_none() || self.left == 0)
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Appends `v` as a ULEB128 varint (hybrid run headers, thrift compact integers).
    pub(in crate::decode) fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// Packs `values` as one bit-packed run of the hybrid encoding (header included).
    fn bit_packed(values: &[u32], w: u32) -> Vec<u8> {
        let groups = values.len().div_ceil(8);
        let mut out = Vec::new();
        varint((groups as u64) << 1 | 1, &mut out);
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
        /// the packed values back, and then the stream is exhausted (only padding is left).
        #[test]
        fn bit_packed_runs_of_every_width_read_back(
            w in 0u32..=32,
            seed in prop::collection::vec(any::<u32>(), 1..300),
            cuts in prop::collection::vec(1usize..40, 1..20),
        ) {
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            let values: Vec<u32> = seed.iter().map(|v| v & mask).collect();
            let buf = bit_packed(&values, w);
            let mut h = Hybrid::new(w, u32::MAX);
            let mut got = Vec::new();
            let mut cut = cuts.iter().cycle();
            while got.len() < values.len() {
                let n = (*cut.next().unwrap_or(&1)).min(values.len() - got.len());
                let mut out = vec![u32::MAX; n];
                h.read(&buf, &mut out).map_err(|e| TestCaseError::fail(e.to_string()))?;
                got.extend(out);
            }
            prop_assert_eq!(got, values);
            prop_assert!(h.exhausted(&buf));
        }
    }

    fn repeated(count: u64, v: u8) -> Vec<u8> {
        let mut out = Vec::new();
        varint(count << 1, &mut out);
        out.push(v);
        out
    }

    #[test]
    fn a_repeated_value_above_the_maximum_is_refused() {
        // A definition level of 129 where the maximum is 1 (pyarrow: "Malformed levels").
        let bad = repeated(100, 129);
        let mut h = Hybrid::new(1, 1);
        let mut out = [0u32; 4];
        assert_eq!(
            h.read(&bad, &mut out),
            Err(Problem::ValueOutOfRange { value: 129, max: 1 })
        );
        let good = repeated(4, 1);
        let mut ok = Hybrid::new(1, 1);
        assert_eq!(ok.read(&good, &mut out), Ok(()));
        assert_eq!(out, [1; 4]);
        assert!(ok.exhausted(&good));
    }

    #[test]
    fn leftover_values_are_not_padding() {
        let ten = repeated(10, 1);
        let mut h = Hybrid::new(1, 1);
        let mut out = [0u32; 4];
        h.read(&ten, &mut out).expect("valid run");
        assert!(!h.exhausted(&ten), "6 values of a repeated run are left");
        let mut two = repeated(4, 1);
        two.extend(repeated(4, 0));
        let mut h = Hybrid::new(1, 1);
        h.read(&two, &mut out).expect("valid run");
        assert!(!h.exhausted(&two), "a whole run is left");
        // 3 values bit-packed: one group of 8, 5 of them padding.
        let three = bit_packed(&[1, 0, 1], 1);
        let mut h = Hybrid::new(1, 1);
        h.read(&three, &mut out[..3]).expect("valid run");
        assert!(h.exhausted(&three));
        // DuckDB pads a bit-packed run of 50 levels to 32 groups (256 values).
        let padded = bit_packed(&[1; 256], 1);
        let mut h = Hybrid::new(1, 1);
        let mut fifty = [0u32; 50];
        h.read(&padded, &mut fifty).expect("valid run");
        assert!(h.exhausted(&padded));
    }
}
