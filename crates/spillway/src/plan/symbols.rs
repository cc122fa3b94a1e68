//! Per-symbol planning from footers and the time column: the time column exists with a usable
//! type in every file (`--time-unit` for integer columns), the target has a numeric type where it
//! exists and exists somewhere; then the time scan, which counts surviving rows, checks every
//! value fits int64 nanoseconds, and puts a symbol's parts in time order.
//!
//! The time scan goes through the fast decoder where it reads the column (the footer already
//! parsed gives the chunks, pages are vetted as they are read, one codec per kind for the file),
//! and through arrow-rs (`input::time::scan`, which vets the chunks first) where it does not, or
//! under `--decoder arrow`.
//!
//! Part order: a symbol's files sorted by the first non-null time of each, ties (and files without
//! any time) in natural name order (`part-2` before `part-10`), which discovery already gives.
//! Writers name parts in ways that need not follow time (pyarrow's `part-0 .. part-11`, DuckDB's
//! partitioned writes), and `--max-rows` keeps the last rows in this order. Rows whose time does
//! not go strictly forward after that are counted per symbol and reported, not reordered.

use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::config::{BuildConfig, Decoder};
use crate::decode::{Buffers, Chunk, Codecs, ColumnDecoder, Physical, ReadAt};
use crate::error::{Result, SymbolError, SymbolErrorKind};
use crate::guard::no_panic;
use crate::input::discover::SymbolFiles;
use crate::input::schema::{Kind, TimeKind};
use crate::input::source;
use crate::input::time::{scan, TimeScan};

use super::files::{FileInfo, Interner};
use super::Skips;

/// A symbol that passed the checks, with its files in time order.
pub(super) struct Candidate<'a> {
    /// The symbol.
    pub sym: &'a SymbolFiles,
    /// Its files' footers, in read order.
    pub files: Vec<FileInfo>,
    /// The time scan of each file.
    pub scans: Vec<TimeScan>,
    /// Root and kind of the time column, per file.
    pub time: Vec<(u32, TimeKind)>,
    /// Root of the target per file (`None`: absent, NaN).
    pub target: Vec<Option<u32>>,
    /// Rows whose time is not after the row before (within and across files).
    pub disorder: u64,
}

/// The footer checks, then (when `scan`) the time scan, of every symbol read; failing symbols go
/// to `skips`. Without the scan (a shard's view of the universe) files stay in discovery's order
/// and `scans` is empty.
pub(super) fn check_and_scan<'a>(
    read: Vec<(&'a SymbolFiles, Vec<FileInfo>)>,
    cfg: &BuildConfig,
    time_col: &str,
    names: &Interner,
    skips: &mut Skips,
    cancel: &Cancel,
    scan: bool,
) -> Result<Vec<Candidate<'a>>> {
    let time_id = names.id(time_col);
    let target_id = cfg.target.as_deref().map(|t| names.id(t));
    let mut checked = Vec::new();
    for (sym, files) in read {
        match check(sym, &files, cfg, time_col, time_id, target_id, names) {
            Ok(Some((time, target))) => checked.push((sym, files, time, target)),
            Ok(None) => skips.skip(
                sym.name.clone(),
                format!("no target column {:?}", cfg.target.as_deref().unwrap_or("")),
            ),
            Err(e) => skips.fail(e)?,
        }
    }
    if !scan {
        let unscanned = checked
            .into_iter()
            .map(|(sym, files, time, target)| Candidate {
                sym,
                files,
                scans: Vec::new(),
                time,
                target,
                disorder: 0,
            });
        return Ok(unscanned.collect());
    }
    let scanned: Vec<_> = checked
        .into_par_iter()
        .map(|(sym, files, time, target)| {
            let scans = match cancel.is_cancelled() {
                true => Ok(Vec::new()),
                false => scan_symbol(sym, &files, &time, time_col, cfg.decoder),
            };
            (sym, files, time, target, scans)
        })
        .collect();
    cancel.check()?;
    let mut cands = Vec::new();
    for (sym, files, time, target, scans) in scanned {
        match scans {
            Ok(scans) => cands.push(in_time_order(Candidate {
                sym,
                files,
                scans,
                time,
                target,
                disorder: 0,
            })),
            Err(e) => skips.fail(e)?,
        }
    }
    Ok(cands)
}

type Roots = (Vec<(u32, TimeKind)>, Vec<Option<u32>>);

/// The time and target roots of each file of `sym`; `Ok(None)` when a target is asked for and no
/// file has it (the symbol is skipped, not failed).
fn check(
    sym: &SymbolFiles,
    files: &[FileInfo],
    cfg: &BuildConfig,
    time_col: &str,
    time_id: u32,
    target_id: Option<u32>,
    names: &Interner,
) -> Result<Option<Roots>, SymbolError> {
    let mut time = Vec::with_capacity(files.len());
    let mut target = Vec::with_capacity(files.len());
    for f in files {
        let err = |kind| SymbolError::new(&sym.name, &f.path, kind);
        let dtype = |id: u32| names.get(id).to_string();
        let Some(c) = f.column(time_id) else {
            let columns: Vec<String> = f
                .columns
                .iter()
                .take(8)
                .map(|c| names.get(c.name).to_string())
                .collect();
            return Err(err(SymbolErrorKind::NoTimeColumn {
                wanted: time_col.to_string(),
                columns: columns.join(", "),
            }));
        };
        let kind = match (c.kind, cfg.time_unit) {
            (Kind::Time(k), None) => k,
            (Kind::Numeric, Some(unit)) if c.epoch_integer => TimeKind::Epoch(unit.arrow()),
            (Kind::Numeric, None) if c.epoch_integer => {
                return Err(err(SymbolErrorKind::IntegerTime {
                    column: time_col.to_string(),
                    dtype: dtype(c.dtype),
                }))
            }
            (_, unit) => {
                return Err(err(SymbolErrorKind::ColumnType {
                    column: time_col.to_string(),
                    dtype: dtype(c.dtype),
                    role: match unit {
                        Some(_) => "an integer time column (--time-unit)",
                        None => "the time column",
                    },
                }))
            }
        };
        time.push((c.root, kind));
        target.push(match target_id.and_then(|id| f.column(id)) {
            None => None,
            Some(c) if c.kind == Kind::Numeric => Some(c.root),
            Some(c) if c.kind == Kind::Null => None,
            Some(c) => {
                return Err(err(SymbolErrorKind::ColumnType {
                    column: names.get(c.name).to_string(),
                    dtype: dtype(c.dtype),
                    role: "the target",
                }))
            }
        });
    }
    let has_target = target_id.is_none_or(|id| files.iter().any(|f| f.column(id).is_some()));
    Ok(has_target.then_some((time, target)))
}

/// The time scan of each of `sym`'s files: rows must match the footer.
fn scan_symbol(
    sym: &SymbolFiles,
    files: &[FileInfo],
    time: &[(u32, TimeKind)],
    time_col: &str,
    decoder: Decoder,
) -> Result<Vec<TimeScan>, SymbolError> {
    files
        .iter()
        .zip(time)
        .map(|(f, &(root, kind))| {
            let fast = f
                .columns
                .get(root as usize)
                .filter(|_| decoder != Decoder::Arrow)
                .and_then(|c| Some((c.fast_time?, c.optional, f.chunks_of(c)?)));
            let s = match fast {
                Some((phys, optional, chunks)) => {
                    let column = FastTime {
                        phys,
                        optional,
                        chunks,
                        kind,
                        name: time_col,
                    };
                    fast_scan(f, &sym.name, &column)?
                }
                None => scan(&f.path, &sym.name, time_col, root as usize, kind, |_| {})?,
            };
            if s.rows != f.rows {
                let kind = SymbolErrorKind::RowCount {
                    expected: f.rows,
                    got: s.rows,
                };
                return Err(SymbolError::new(&sym.name, &f.path, kind));
            }
            Ok(s)
        })
        .collect()
}

/// A time column the fast decoder reads.
struct FastTime<'a> {
    phys: Physical,
    optional: bool,
    chunks: &'a [Chunk],
    kind: TimeKind,
    name: &'a str,
}

/// Rows decoded per step of the fast time scan.
const SCAN_STEP: usize = 65_536;

/// The time scan of file `f` by the fast decoder: what `input::time::scan` gives, from the chunks
/// the footer already read (no second footer parse); an object reads just those byte runs.
fn fast_scan(f: &FileInfo, symbol: &str, column: &FastTime<'_>) -> Result<TimeScan, SymbolError> {
    let err = |kind| SymbolError::new(symbol, &f.path, kind);
    let input = source::open(&f.path).map_err(err)?;
    input.expect(vec![column
        .chunks
        .iter()
        .map(|c| c.start..c.start.saturating_add(c.len))
        .collect()]);
    no_panic(|| scan_chunks(&input, column))
        .map_err(|m| err(SymbolErrorKind::DecoderBug(m)))?
        .map_err(err)
}

fn scan_chunks(file: &dyn ReadAt, column: &FastTime<'_>) -> Result<TimeScan, SymbolErrorKind> {
    let mut out = TimeScan::default();
    let (mut codecs, mut buffers) = (Codecs::default(), Buffers::default());
    let (mut raw, mut valid) = (Vec::new(), Vec::new());
    for (g, chunk) in column.chunks.iter().enumerate() {
        let decode = |error| SymbolErrorKind::Decode {
            column: column.name.to_string(),
            row_group: g,
            error,
        };
        // A chunk of no rows is never read (the stream passes over it too).
        if chunk.rows == 0 {
            continue;
        }
        let taken = std::mem::take(&mut buffers);
        let mut d: ColumnDecoder<i64> =
            ColumnDecoder::new(chunk, column.phys, column.optional, taken);
        let mut done = 0;
        while done < chunk.rows {
            let n = SCAN_STEP.min(chunk.rows - done);
            raw.clear();
            raw.resize(n, 0);
            valid.clear();
            valid.resize(n, true);
            d.read(file, &mut codecs, &mut raw, Some(&mut valid))
                .map_err(decode)?;
            for (i, (&v, &present)) in raw.iter().zip(&valid).enumerate() {
                if present {
                    let ns =
                        column
                            .kind
                            .to_ns(v)
                            .map_err(|value| SymbolErrorKind::TimeOverflow {
                                column: column.name.to_string(),
                                row: out.rows + i as u64,
                                value,
                            })?;
                    out.see(ns);
                }
            }
            out.rows += n as u64;
            done += n;
        }
        buffers = d.finish(file).map_err(decode)?;
    }
    Ok(out)
}

/// Sorts a symbol's parts by their first time (stable: ties keep discovery's natural name
/// order; files with no time go last) and counts rows that do not go forward in time.
fn in_time_order(mut c: Candidate<'_>) -> Candidate<'_> {
    let mut order: Vec<usize> = (0..c.files.len()).collect();
    order.sort_by_key(|&i| (c.scans[i].first.is_none(), c.scans[i].first));
    if order.iter().enumerate().any(|(k, &i)| k != i) {
        let mut files: Vec<Option<FileInfo>> = c.files.into_iter().map(Some).collect();
        c.files = order.iter().filter_map(|&i| files[i].take()).collect();
        c.scans = order.iter().map(|&i| c.scans[i]).collect();
        c.time = order.iter().map(|&i| c.time[i]).collect();
        c.target = order.iter().map(|&i| c.target[i]).collect();
    }
    let mut last: Option<i64> = None;
    c.disorder = 0;
    for s in &c.scans {
        c.disorder += s.disorder;
        if let (Some(prev), Some(first)) = (last, s.first) {
            c.disorder += u64::from(first <= prev);
        }
        last = s.last.or(last);
    }
    c
}
