//! The two files of a sharded cross-section, both untrusted input: per-shard **count files**
//! (`spillway count`: rows per timestamp and the K smallest sampling keys) and the merged
//! **cross-section plan** (`spillway plan-cs`: per kept timestamp its threshold).
//!
//! ```text
//! file    := magic[8] major:u16 minor:u16 header_len:u32 header body trailer      (little endian)
//! header  := UTF-8 JSON object, header_len <= 1 MiB (options, universe, symbol ranges)
//! body    := fingerprint:u32 * symbols_covered  record*
//! count record := t:i64 count:u64 nkeys:u32 key * nkeys                   (keys ascending)
//! plan record  := t:i64 key                      (u64::MAX, u32::MAX, 1: keep every row)
//! key     := priority:u64 code:u32 repeat:u8     (repeat 0 or 1; see `key`)
//! trailer := records:u64 keys:u64 crc32:u32 "SPWE"     crc32 of every byte before it
//! ```
//!
//! Magic `SPWCOUNT` or `SPWCSPLN`; version 2.1 (a newer minor may add header keys, which readers
//! ignore; another major is refused). 2.1 added the header key `skipped` (symbols left out by
//! `--on-error skip` or `--exclude`, with the reason; absent in 2.0 files: none). Version 1 keys had no `repeat` and gave every row of a
//! symbol at one time the same priority (issue 21): its files are refused. Readers stream (a count file can hold millions of keys),
//! check every record as it comes (times strictly increasing, exactly `min(count, K)` keys in
//! order, codes inside the file's symbol ranges) and trust nothing until the trailer's CRC holds:
//! callers discard what they built from a file whose trailer fails.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::json;

pub use crate::error::CsFileError;

/// Magic of a count file.
pub const COUNT_MAGIC: [u8; 8] = *b"SPWCOUNT";
/// Magic of a cross-section plan.
pub const PLAN_MAGIC: [u8; 8] = *b"SPWCSPLN";
const END: [u8; 4] = *b"SPWE";
/// The format version written.
pub const VERSION: (u16, u16) = (2, 1);
const PREFIX: u64 = 16;
const TRAILER: u64 = 24;
/// Largest header accepted.
pub const MAX_HEADER: u32 = 1 << 20;
/// Largest `--max-cs-samples` a count file may carry.
pub const MAX_K: u64 = 1 << 16;
/// Most symbols a universe may have here (the spill format's own cap).
pub const MAX_SYMBOLS: u64 = 1 << 24;
/// Bytes of a key in a record.
const KEY_BYTES: u64 = 13;
/// Bytes of a plan record.
pub const PLAN_RECORD: u64 = 8 + KEY_BYTES;
pub use super::key::{Key, KEEP_ALL};
pub use super::Skipped;

type Res<T> = Result<T, CsFileError>;

/// The options a count was made with: count files merge only when these agree, and a shard
/// build takes a plan only when they are its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountOptions {
    /// Target column.
    pub target: Option<String>,
    /// Time column (as resolved).
    pub time_col: String,
    /// Unit of an integer time column.
    pub time_unit: Option<String>,
    /// `--max-rows`.
    pub max_rows: Option<u64>,
    /// `--drop-null-target`.
    pub drop_null_target: bool,
    /// `--max-cs-samples` (K).
    pub max_cs_samples: Option<u64>,
    /// `--seed`.
    pub seed: u64,
}

impl CountOptions {
    /// The first option where `self` and `other` differ, as `(name, self's, other's)`.
    pub fn difference(&self, other: &CountOptions) -> Option<(&'static str, String, String)> {
        // Values as a user types them: `none` for an unset option, names quoted.
        let show = |v: serde_json::Value| match v {
            serde_json::Value::Null => "none".to_string(),
            v => v.to_string(),
        };
        let d = |name, a: serde_json::Value, b: serde_json::Value| Some((name, show(a), show(b)));
        if self.target != other.target {
            return d("--target", json!(self.target), json!(other.target));
        }
        if self.time_col != other.time_col {
            return d("--time-col", json!(self.time_col), json!(other.time_col));
        }
        if self.time_unit != other.time_unit {
            return d("--time-unit", json!(self.time_unit), json!(other.time_unit));
        }
        if self.max_rows != other.max_rows {
            return d("--max-rows", json!(self.max_rows), json!(other.max_rows));
        }
        if self.drop_null_target != other.drop_null_target {
            return d(
                "--drop-null-target",
                json!(self.drop_null_target),
                json!(other.drop_null_target),
            );
        }
        if self.max_cs_samples != other.max_cs_samples {
            return d(
                "--max-cs-samples",
                json!(self.max_cs_samples),
                json!(other.max_cs_samples),
            );
        }
        if self.max_cs_samples.is_some() && self.seed != other.seed {
            return d("--seed", json!(self.seed), json!(other.seed));
        }
        None
    }
}

/// Which universe: its symbol count and the CRC-32 of its sorted names (each followed by 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniverseId {
    /// Symbols discovered.
    pub symbols: u64,
    /// `crc32:xxxxxxxx` of the names.
    pub names: String,
}

/// The header of a count file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountHeader {
    /// The options counted with.
    pub options: CountOptions,
    /// The universe.
    pub universe: UniverseId,
    /// Global symbol codes counted, as sorted disjoint `[start, stop)` ranges.
    pub ranges: Vec<[u64; 2]>,
    /// Symbols left out (`--on-error skip`, `--exclude`), with the reason, sorted by name: the
    /// shards built with the plan leave them all out (version 2.1; absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

impl CountHeader {
    /// Symbols covered by the ranges.
    pub fn covered(&self) -> u64 {
        self.ranges.iter().map(|[a, b]| b - a).sum()
    }

    fn check(&self) -> Res<()> {
        let bad = |m: String| Err(CsFileError::Header(m));
        if self.universe.symbols > MAX_SYMBOLS {
            return bad(format!("{} symbols is over the cap", self.universe.symbols));
        }
        if self
            .options
            .max_cs_samples
            .is_some_and(|k| k == 0 || k > MAX_K)
        {
            return bad(format!("max_cs_samples must be in 1..={MAX_K}"));
        }
        check_skipped(&self.skipped)?;
        let mut last = 0;
        for &[a, b] in &self.ranges {
            if a < last || b <= a || b > self.universe.symbols {
                return bad(format!(
                    "symbol range [{a}, {b}) is empty, unordered or out of the universe"
                ));
            }
            last = b;
        }
        Ok(())
    }

    fn contains(&self, code: u32) -> bool {
        let c = u64::from(code);
        self.ranges.iter().any(|&[a, b]| (a..b).contains(&c))
    }
}

/// The header of a cross-section plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHeader {
    /// The options of the counts.
    pub options: CountOptions,
    /// `--min-cs`.
    pub min_cs: u64,
    /// The universe.
    pub universe: UniverseId,
    /// `crc32:xxxxxxxx` of each count file merged, in the order given.
    pub counts: Vec<String>,
    /// Distinct timestamps across the universe (after the target filter).
    pub distinct: u64,
    /// Of the kept timestamps, those over K.
    pub sampled: u64,
    /// Rows counted, and rows the plan keeps.
    pub rows: [u64; 2],
    /// Every symbol the counts left out, with the reason, sorted by name: a shard built with
    /// this plan leaves them out (version 2.1; absent: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// The longest reason a count or plan file records for a skipped symbol (longer ones are cut).
pub const MAX_REASON: usize = 1024;

/// `skipped` as a file records it: sorted by symbol, each once, reasons cut at [`MAX_REASON`]
/// bytes (on a character boundary).
pub fn normalize_skipped(skipped: impl IntoIterator<Item = Skipped>) -> Vec<Skipped> {
    let mut by: std::collections::BTreeMap<String, String> = Default::default();
    for s in skipped {
        let mut reason = s.reason;
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        by.entry(s.symbol).or_insert(reason);
    }
    by.into_iter()
        .map(|(symbol, reason)| Skipped { symbol, reason })
        .collect()
}

/// Refuses a skipped list that is not sorted by symbol with each once, or with a reason over
/// [`MAX_REASON`] bytes.
fn check_skipped(skipped: &[Skipped]) -> Res<()> {
    for w in skipped.windows(2) {
        if w[0].symbol >= w[1].symbol {
            return Err(CsFileError::Header(format!(
                "skipped symbols are not sorted and distinct: {:?} before {:?}",
                w[0].symbol, w[1].symbol
            )));
        }
    }
    if let Some(s) = skipped.iter().find(|s| s.reason.len() > MAX_REASON) {
        return Err(CsFileError::Header(format!(
            "the reason skipping {:?} is over {MAX_REASON} bytes",
            s.symbol
        )));
    }
    Ok(())
}

/// One timestamp of a count file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CountRecord {
    /// The timestamp (ns).
    pub t: i64,
    /// Rows at it.
    pub count: u64,
    /// The `min(count, K)` smallest keys, ascending.
    pub keys: Vec<Key>,
}

/// CRC-32 of `names`, each followed by a 0 byte.
pub fn names_crc<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for n in names {
        h.update(n.as_bytes());
        h.update(&[0]);
    }
    h.finalize()
}

/// `crc32:xxxxxxxx`.
pub fn crc_text(crc: u32) -> String {
    format!("crc32:{crc:08x}")
}

/// A writer of either file: header first, records, then [`Framed::finish`] with the trailer.
pub struct Framed<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    records: u64,
    keys: u64,
}

impl<W: Write> Framed<W> {
    /// Writes the prefix and `header`.
    pub fn new<H: Serialize>(out: W, magic: [u8; 8], header: &H) -> std::io::Result<Framed<W>> {
        let json = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        let len = u32::try_from(json.len())
            .ok()
            .filter(|&l| l <= MAX_HEADER)
            .ok_or_else(|| std::io::Error::other("header over 1 MiB"))?;
        let mut f = Framed {
            out,
            crc: crc32fast::Hasher::new(),
            records: 0,
            keys: 0,
        };
        f.put(&magic)?;
        f.put(&VERSION.0.to_le_bytes())?;
        f.put(&VERSION.1.to_le_bytes())?;
        f.put(&len.to_le_bytes())?;
        f.put(&json)?;
        Ok(f)
    }

    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.out.write_all(b)
    }

    /// Writes per-symbol fingerprints (before any record).
    pub fn fingerprints(&mut self, fps: &[u32]) -> std::io::Result<()> {
        for fp in fps {
            self.put(&fp.to_le_bytes())?;
        }
        Ok(())
    }

    /// Writes a count record.
    pub fn count(&mut self, r: &CountRecord) -> std::io::Result<()> {
        self.put(&r.t.to_le_bytes())?;
        self.put(&r.count.to_le_bytes())?;
        self.put(&(r.keys.len() as u32).to_le_bytes())?;
        for &key in &r.keys {
            self.key(key)?;
        }
        self.records += 1;
        self.keys += r.keys.len() as u64;
        Ok(())
    }

    fn key(&mut self, (p, c, repeat): Key) -> std::io::Result<()> {
        self.put(&p.to_le_bytes())?;
        self.put(&c.to_le_bytes())?;
        self.put(&[u8::from(repeat)])
    }

    /// Writes a plan record.
    pub fn threshold(&mut self, t: i64, key: Key) -> std::io::Result<()> {
        self.put(&t.to_le_bytes())?;
        self.key(key)?;
        self.records += 1;
        Ok(())
    }

    /// Writes the trailer; returns the writer and the file's checksum.
    pub fn finish(mut self) -> std::io::Result<(W, u32)> {
        let (records, keys) = (self.records, self.keys);
        self.put(&records.to_le_bytes())?;
        self.put(&keys.to_le_bytes())?;
        let crc = self.crc.clone().finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&END)?;
        Ok((self.out, crc))
    }
}

/// A streaming reader of either file: [`Reader::open`] reads the prefix and header, then records
/// one at a time; [`Reader::finish`] checks the trailer and the checksum.
pub struct Reader<R: Read> {
    inp: R,
    crc: crc32fast::Hasher,
    /// Body bytes left before the trailer.
    left: u64,
    records: u64,
    keys: u64,
    last: Option<i64>,
}

impl<R: Read> Reader<R> {
    /// Reads the prefix and the JSON header of a file of `len` bytes.
    pub fn open(
        inp: R,
        len: u64,
        magic: [u8; 8],
        kind: &'static str,
    ) -> Res<(Reader<R>, serde_json::Value)> {
        let mut r = Reader {
            inp,
            crc: crc32fast::Hasher::new(),
            left: len,
            records: 0,
            keys: 0,
            last: None,
        };
        if len < PREFIX + TRAILER {
            return Err(CsFileError::Length(format!("{len} bytes is too short")));
        }
        let mut pre = [0u8; PREFIX as usize];
        r.take(&mut pre)?;
        if pre[..8] != magic {
            return Err(CsFileError::Magic(kind));
        }
        let major = u16::from_le_bytes([pre[8], pre[9]]);
        let minor = u16::from_le_bytes([pre[10], pre[11]]);
        if major != VERSION.0 {
            return Err(CsFileError::Version(major, minor));
        }
        let hlen = u32::from_le_bytes([pre[12], pre[13], pre[14], pre[15]]);
        if hlen > MAX_HEADER || u64::from(hlen) > r.left.saturating_sub(TRAILER) {
            return Err(CsFileError::Length(format!("header length {hlen}")));
        }
        let mut json = vec![0u8; hlen as usize];
        r.take(&mut json)?;
        r.left -= TRAILER;
        let header =
            serde_json::from_slice(&json).map_err(|e| CsFileError::Header(e.to_string()))?;
        Ok((r, header))
    }

    fn take(&mut self, buf: &mut [u8]) -> Res<()> {
        let n = buf.len() as u64;
        if n > self.left {
            return Err(CsFileError::Length("a record runs past the trailer".into()));
        }
        self.inp.read_exact(buf)?;
        self.crc.update(buf);
        self.left -= n;
        Ok(())
    }

    fn u32(&mut self) -> Res<u32> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Res<u64> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn key(&mut self) -> Res<Key> {
        let (p, c) = (self.u64()?, self.u32()?);
        let mut b = [0u8; 1];
        self.take(&mut b)?;
        match b[0] {
            0 | 1 => Ok((p, c, b[0] == 1)),
            r => Err(self.bad(format!("key repeat byte {r} is neither 0 nor 1"))),
        }
    }

    /// Body bytes left.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// Reads `n` fingerprints (checked against the bytes left first).
    pub fn fingerprints(&mut self, n: u64) -> Res<Vec<u32>> {
        if n.saturating_mul(4) > self.left {
            return Err(CsFileError::Length(format!("{n} fingerprints do not fit")));
        }
        (0..n).map(|_| self.u32()).collect()
    }

    fn time(&mut self) -> Res<i64> {
        let t = self.u64()? as i64;
        if self.last.is_some_and(|l| t <= l) {
            return Err(self.bad("timestamps are not strictly increasing".into()));
        }
        self.last = Some(t);
        Ok(t)
    }

    fn bad(&self, what: String) -> CsFileError {
        CsFileError::Record {
            index: self.records,
            what,
        }
    }

    /// The next count record into `rec` (reusing its key buffer), or `false` at the trailer.
    pub fn next_count(&mut self, h: &CountHeader, rec: &mut CountRecord) -> Res<bool> {
        if self.left == 0 {
            return Ok(false);
        }
        rec.t = self.time()?;
        rec.count = self.u64()?;
        let n = u64::from(self.u32()?);
        let want = rec.count.min(h.options.max_cs_samples.unwrap_or(0));
        if rec.count == 0 || n != want {
            return Err(self.bad(format!("{n} keys for {} rows (want {want})", rec.count)));
        }
        if n.saturating_mul(KEY_BYTES) > self.left {
            return Err(CsFileError::Length("keys run past the trailer".into()));
        }
        rec.keys.clear();
        for _ in 0..n {
            let key = self.key()?;
            if rec.keys.last().is_some_and(|&last| key < last) || !h.contains(key.1) {
                return Err(self.bad(format!(
                    "key {key:?} is out of order or of a symbol not counted here"
                )));
            }
            rec.keys.push(key);
        }
        self.records += 1;
        self.keys += n;
        Ok(true)
    }

    /// The next plan record `(t, threshold)`, or `None` at the trailer.
    pub fn next_threshold(&mut self, symbols: u64) -> Res<Option<(i64, Key)>> {
        if self.left == 0 {
            return Ok(None);
        }
        let t = self.time()?;
        let key = self.key()?;
        if key != KEEP_ALL && u64::from(key.1) >= symbols {
            return Err(self.bad(format!("threshold code {} is not a symbol", key.1)));
        }
        self.records += 1;
        Ok(Some((t, key)))
    }

    /// Checks the trailer (record and key counts, checksum, end magic); returns the checksum.
    pub fn finish(&mut self) -> Res<u32> {
        if self.left != 0 {
            return Err(CsFileError::Length("bytes after the last record".into()));
        }
        self.left = TRAILER;
        let (records, keys) = (self.u64()?, self.u64()?);
        let actual = self.crc.clone().finalize();
        let mut tail = [0u8; 8];
        self.inp.read_exact(&mut tail)?;
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        if stored != actual {
            return Err(CsFileError::Checksum { stored, actual });
        }
        if tail[4..] != END {
            return Err(CsFileError::Length("no end mark".into()));
        }
        if (records, keys) != (self.records, self.keys) {
            return Err(CsFileError::Length(format!(
                "the trailer counts {records} records and {keys} keys, the file holds {} and {}",
                self.records, self.keys
            )));
        }
        Ok(actual)
    }
}

/// The typed header of a count file (checked).
pub fn count_header(v: serde_json::Value) -> Res<CountHeader> {
    let h: CountHeader =
        serde_json::from_value(v).map_err(|e| CsFileError::Header(e.to_string()))?;
    h.check()?;
    Ok(h)
}

/// The typed header of a plan (checked).
pub fn plan_header(v: serde_json::Value) -> Res<PlanHeader> {
    let h: PlanHeader =
        serde_json::from_value(v).map_err(|e| CsFileError::Header(e.to_string()))?;
    if h.universe.symbols > MAX_SYMBOLS {
        return Err(CsFileError::Header("too many symbols".into()));
    }
    check_skipped(&h.skipped)?;
    if h.options
        .max_cs_samples
        .is_some_and(|k| k == 0 || k > MAX_K)
    {
        return Err(CsFileError::Header(format!(
            "max_cs_samples must be in 1..={MAX_K}"
        )));
    }
    Ok(h)
}

/// Parses a whole count file held in memory (for tests and the fuzz target): header, records.
pub fn parse_counts(bytes: &[u8]) -> Res<(CountHeader, Vec<u32>, Vec<CountRecord>)> {
    let (mut r, v) = Reader::open(bytes, bytes.len() as u64, COUNT_MAGIC, "count")?;
    let h = count_header(v)?;
    let fps = r.fingerprints(h.covered())?;
    let mut out = Vec::new();
    let mut rec = CountRecord::default();
    while r.next_count(&h, &mut rec)? {
        out.push(rec.clone());
    }
    r.finish()?;
    Ok((h, fps, out))
}

/// Parses a whole plan held in memory: header, fingerprints, `(t, threshold)` records.
#[allow(clippy::type_complexity)]
pub fn parse_plan(bytes: &[u8]) -> Res<(PlanHeader, Vec<u32>, Vec<(i64, Key)>)> {
    let (mut r, v) = Reader::open(bytes, bytes.len() as u64, PLAN_MAGIC, "cross-section plan")?;
    let h = plan_header(v)?;
    let fps = r.fingerprints(h.universe.symbols)?;
    if r.left() % PLAN_RECORD != 0 {
        return Err(CsFileError::Length("the records are not whole".into()));
    }
    let mut out = Vec::with_capacity((r.left() / PLAN_RECORD) as usize);
    while let Some(rec) = r.next_threshold(h.universe.symbols)? {
        out.push(rec);
    }
    r.finish()?;
    Ok((h, fps, out))
}

#[cfg(test)]
#[path = "cs_file_tests.rs"]
mod tests;
