//! `plan`: from footers and the time column alone, the exact spill layout before any feature is
//! decoded: which symbols are read or skipped, the column union and its types, and for every
//! file its output row range and column mapping.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::SystemTime;

use rayon::prelude::*;
use spill::{ColumnSpec, DType, Layout, Role, Symbol};

use crate::cancel::Cancel;
use crate::config::{BuildConfig, Decoder, OnError};
use crate::discover::{SymbolFiles, Universe};
use crate::error::{Error, Result, SymbolError, SymbolErrorKind};
use crate::filter::{CrossSection, FilterStats};
use crate::footer::{read_footer, FileInfo, Interner, FOOTER_EXPANSION};
use crate::schema::{excluded_by_name, Kind, TimeKind};
use crate::time::{scan, TimeScan};

/// Marks a feature absent from a file.
pub const ABSENT: u32 = u32::MAX;

/// One input file and where its rows go.
#[derive(Debug, Clone)]
pub struct Unit {
    /// Code of its symbol (index in the symbol table).
    pub symbol: u32,
    /// The file.
    pub path: PathBuf,
    /// Size when planned.
    pub size: u64,
    /// Modification time when planned.
    pub mtime: Option<SystemTime>,
    /// Root index and kind of the time column.
    pub time: (u32, TimeKind),
    /// Root index of the target (`ABSENT`: NaN).
    pub target: u32,
    /// Root index of each output feature in this file (`ABSENT`: NaN).
    pub features: Vec<u32>,
    /// Rows in the file.
    pub rows: u64,
    /// Rows whose time is not null.
    pub survivors: u64,
    /// Surviving rows dropped at the start of the file by `--max-rows`.
    pub skip: u64,
    /// First output row.
    pub row_start: u64,
    /// Estimated decoder working set (bytes) of the projected columns.
    pub work_bytes: u64,
    /// Whether the fast decoder reads this file (else arrow-rs); a memory estimate, the reader
    /// decides again from the same footer.
    pub fast: bool,
    /// Rows this file contributes to the output (after `--max-rows` and the filters).
    pub out: u64,
}

impl Unit {
    /// Rows this file contributes to the output.
    pub fn out_rows(&self) -> u64 {
        self.out
    }

    /// Whether some times are null (the reader must then filter rows).
    pub fn has_null_times(&self) -> bool {
        self.survivors != self.rows
    }
}

/// A symbol left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    /// The symbol.
    pub symbol: String,
    /// Why (with the file where there is one).
    pub reason: String,
}

/// The complete plan of a build.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The spill layout: columns, rows, symbol ranges.
    pub layout: Layout,
    /// Output time column name.
    pub time_col: String,
    /// Feature names in output order.
    pub features: Vec<String>,
    /// Whether values are float32.
    pub float32: bool,
    /// Files in output order.
    pub units: Vec<Unit>,
    /// Symbols left out.
    pub skipped: Vec<Skipped>,
    /// Input bytes of the files read.
    pub input_bytes: u64,
    /// Combined CRC-32 of every file's path, size and footer bytes.
    pub fingerprint: u32,
    /// The cross-sectional filters' decisions, when filters are on.
    pub filters: Option<std::sync::Arc<CrossSection>>,
    /// What the filters removed.
    pub filter_stats: FilterStats,
}

impl Plan {
    /// Output value columns (target, if any, then features).
    pub fn value_columns(&self) -> usize {
        self.layout.columns().len() - 2
    }

    /// Whether there is a target column.
    pub fn has_target(&self) -> bool {
        self.layout
            .columns()
            .get(2)
            .is_some_and(|c| c.role == Role::Target)
    }
}

struct Candidate<'a> {
    sym: &'a SymbolFiles,
    files: Vec<FileInfo>,
    scans: Vec<TimeScan>,
    time: Vec<(u32, TimeKind)>,
    target: Vec<u32>,
}

/// Plans a build of `universe`, leaving out the symbols in `excluded` (known to fail while
/// decoding) as if they were not there.
pub fn plan(
    universe: &Universe,
    cfg: &BuildConfig,
    excluded: &BTreeMap<String, String>,
    cancel: &Cancel,
) -> Result<Plan> {
    let mut skipped = Vec::new();
    let fail = |e: SymbolError, skipped: &mut Vec<Skipped>| -> Result<()> {
        if cfg.on_error == OnError::Fail {
            return Err(Error::Symbol(e));
        }
        skipped.push(Skipped {
            symbol: e.symbol.clone(),
            reason: e.to_string(),
        });
        Ok(())
    };
    for e in &universe.broken {
        fail(e.clone(), &mut skipped)?;
    }
    for (symbol, reason) in excluded {
        skipped.push(Skipped {
            symbol: symbol.clone(),
            reason: reason.clone(),
        });
    }
    let names = Interner::default();

    // 1. Footers, in parallel; a symbol fails with its first bad file.
    let footers: Vec<(&SymbolFiles, Result<Vec<FileInfo>, SymbolError>)> = universe
        .symbols
        .par_iter()
        .filter(|s| !excluded.contains_key(&s.name))
        .map(|s| {
            (
                s,
                s.files
                    .iter()
                    .map(|f| read_footer(f, &s.name, &names))
                    .collect(),
            )
        })
        .collect();
    cancel.check()?;
    let mut cands = Vec::new();
    for (sym, files) in footers {
        match files {
            Ok(files) => cands.push((sym, files)),
            Err(e) => fail(e, &mut skipped)?,
        }
    }

    // 2. The time column's name: as given, else `ts`, else `timestamp`, decided by the first
    //    symbol whose first file has one of them.
    let time_col = match &cfg.time_col {
        Some(c) => c.clone(),
        None => cands
            .iter()
            .find_map(|(_, files)| {
                let f = files.first()?;
                ["ts", "timestamp"]
                    .into_iter()
                    .find(|n| names.lookup(n).is_some_and(|id| f.column(id).is_some()))
            })
            .unwrap_or("ts")
            .to_string(),
    };
    let time_id = names.id(&time_col);
    let target_id = cfg.target.as_deref().map(|t| names.id(t));

    // 3. Per-symbol checks from the footers: time column present and of a time type; target
    //    present in some file and numeric.
    let mut checked = Vec::new();
    'symbols: for (sym, files) in cands {
        let mut time = Vec::with_capacity(files.len());
        let mut target = Vec::with_capacity(files.len());
        for f in &files {
            let err = |kind| SymbolError::new(&sym.name, &f.path, kind);
            let t = match f.column(time_id) {
                None => {
                    let columns: Vec<String> = f
                        .columns
                        .iter()
                        .take(8)
                        .map(|c| names.get(c.name).to_string())
                        .collect();
                    fail(
                        err(SymbolErrorKind::NoTimeColumn {
                            wanted: time_col.clone(),
                            columns: columns.join(", "),
                        }),
                        &mut skipped,
                    )?;
                    continue 'symbols;
                }
                Some(c) => match c.kind {
                    Kind::Time(k) => (c.root, k),
                    _ => {
                        let dtype = names.get(c.dtype).to_string();
                        fail(
                            err(SymbolErrorKind::ColumnType {
                                column: time_col.clone(),
                                dtype,
                                role: "the time column",
                            }),
                            &mut skipped,
                        )?;
                        continue 'symbols;
                    }
                },
            };
            time.push(t);
            let tg = match target_id.and_then(|id| f.column(id)) {
                None => crate::plan::ABSENT,
                Some(c) if c.kind == Kind::Numeric => c.root,
                Some(c) if c.kind == Kind::Null => crate::plan::ABSENT,
                Some(c) => {
                    let (column, dtype) = (
                        names.get(c.name).to_string(),
                        names.get(c.dtype).to_string(),
                    );
                    fail(
                        err(SymbolErrorKind::ColumnType {
                            column,
                            dtype,
                            role: "the target",
                        }),
                        &mut skipped,
                    )?;
                    continue 'symbols;
                }
            };
            target.push(tg);
        }
        if let Some(t) = &cfg.target {
            if files
                .iter()
                .all(|f| target_id.and_then(|id| f.column(id)).is_none())
            {
                skipped.push(Skipped {
                    symbol: sym.name.clone(),
                    reason: format!("no target column {t:?}"),
                });
                continue;
            }
        }
        checked.push((sym, files, time, target));
    }

    // 4. The time scan: only the time column, to count surviving rows and check every value.
    let scanned: Vec<_> = checked
        .into_par_iter()
        .map(|(sym, files, time, target)| {
            if cancel.is_cancelled() {
                return (sym, files, time, target, Ok(Vec::new()));
            }
            let scans: Result<Vec<TimeScan>, SymbolError> = files
                .iter()
                .zip(&time)
                .map(|(f, &(root, kind))| {
                    let s = scan(&f.path, &sym.name, &time_col, root as usize, kind, |_| {})?;
                    if s.rows != f.rows {
                        let kind = SymbolErrorKind::RowCount {
                            expected: f.rows,
                            got: s.rows,
                        };
                        return Err(SymbolError::new(&sym.name, &f.path, kind));
                    }
                    Ok(s)
                })
                .collect();
            (sym, files, time, target, scans)
        })
        .collect();
    cancel.check()?;
    let mut cands = Vec::new();
    for (sym, files, time, target, scans) in scanned {
        match scans {
            Ok(scans) => cands.push(Candidate {
                sym,
                files,
                scans,
                time,
                target,
            }),
            Err(e) => fail(e, &mut skipped)?,
        }
    }

    // 5. Features: the given list, or the union of numeric columns of the symbols read; a
    //    symbol where a feature is not numeric fails. Failing symbols leave the union (a build
    //    without them must be identical), so repeat until nothing more fails.
    let features: Vec<u32> = loop {
        let features = match &cfg.features {
            Some(list) => list.iter().map(|n| names.id(n)).collect(),
            None => auto_features(&cands, &names, time_id, target_id),
        };
        let mut bad = None;
        'find: for (i, c) in cands.iter().enumerate() {
            for f in &c.files {
                for &id in &features {
                    if let Some(col) = f.column(id) {
                        if !matches!(col.kind, Kind::Numeric | Kind::Null) {
                            let (column, dtype) =
                                (names.get(id).to_string(), names.get(col.dtype).to_string());
                            let kind = SymbolErrorKind::ColumnType {
                                column,
                                dtype,
                                role: "a feature",
                            };
                            bad = Some((i, SymbolError::new(&c.sym.name, &f.path, kind)));
                            break 'find;
                        }
                    }
                }
            }
        }
        match bad {
            None => break features,
            Some((i, e)) => {
                fail(e, &mut skipped)?;
                cands.remove(i);
            }
        }
    };
    if let Some(list) = &cfg.features {
        for (name, &id) in list.iter().zip(&features) {
            if name == &time_col || Some(name) == cfg.target.as_ref() || name == "symbol" {
                return Err(Error::Config(format!(
                    "--features names {name:?}, which is the time, target or symbol column"
                )));
            }
            if !cands
                .iter()
                .any(|c| c.files.iter().any(|f| f.column(id).is_some()))
                && !cands.is_empty()
            {
                return Err(Error::UnknownFeature {
                    column: name.clone(),
                });
            }
        }
    }
    if cands.is_empty() {
        return Err(Error::NothingToBuild {
            skipped: skipped.len(),
        });
    }
    skipped.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    build_plan(cfg, cands, features, &names, time_col, skipped, cancel)
}

/// Numeric columns of the symbols read, in order of first appearance (symbols sorted, each
/// schema in file order), minus time, target, `symbol` and pandas index columns.
fn auto_features(
    cands: &[Candidate<'_>],
    names: &Interner,
    time: u32,
    target: Option<u32>,
) -> Vec<u32> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in cands {
        for f in &c.files {
            for col in &f.columns {
                if col.kind == Kind::Numeric
                    && col.name != time
                    && Some(col.name) != target
                    && !excluded_by_name(&names.get(col.name))
                    && seen.insert(col.name)
                {
                    out.push(col.name);
                }
            }
        }
    }
    out
}

fn build_plan(
    cfg: &BuildConfig,
    cands: Vec<Candidate<'_>>,
    features: Vec<u32>,
    names: &Interner,
    time_col: String,
    skipped: Vec<Skipped>,
    cancel: &Cancel,
) -> Result<Plan> {
    // The output's time zone: that of the first file of the first symbol (SPEC.md: files that
    // disagree are not an error; date and INT96 sources have none).
    let timezone = cands
        .first()
        .and_then(|c| c.files.first().zip(c.time.first()))
        .and_then(|(f, &(root, _))| f.columns.get(root as usize))
        .and_then(|col| col.timezone)
        .map(|id| names.get(id).to_string());
    let mut units = Vec::new();
    let mut symbol_names = Vec::new();
    let mut input_bytes = 0u64;
    let mut fp = crc32fast::Hasher::new();
    for (code, c) in cands.into_iter().enumerate() {
        let survivors: u64 = c.scans.iter().map(|s| s.survivors).sum();
        let keep = cfg.max_rows.map_or(survivors, |m| m.min(survivors));
        let mut to_skip = survivors - keep;
        for (i, f) in c.files.into_iter().enumerate() {
            let s = c.scans[i];
            let skip = to_skip.min(s.survivors);
            to_skip -= skip;
            let feats: Vec<u32> = features
                .iter()
                .map(|&id| {
                    f.column(id)
                        .filter(|col| col.kind == Kind::Numeric)
                        .map_or(ABSENT, |col| col.root)
                })
                .collect();
            let mut projected: Vec<u32> = feats.clone();
            projected.extend([c.time[i].0, c.target[i]]);
            projected.sort_unstable();
            let work_bytes = f.footer_len * FOOTER_EXPANSION
                + f.columns
                    .iter()
                    .filter(|col| projected.binary_search(&col.root).is_ok())
                    .map(|col| col.work_bytes)
                    .sum::<u64>();
            // `columns` is in schema order: a root is its index.
            let by_root = |root: u32| f.columns.get(root as usize);
            let fast = cfg.decoder == Decoder::Auto
                && by_root(c.time[i].0).is_some_and(|col| col.fast_time)
                && feats
                    .iter()
                    .chain([&c.target[i]])
                    .filter(|&&r| r != ABSENT)
                    .all(|&r| by_root(r).is_some_and(|col| col.fast_value));
            input_bytes += f.size;
            // Relative paths: the same universe elsewhere gives the same fingerprint.
            let rel = f.path.strip_prefix(&cfg.input).unwrap_or(&f.path);
            fp.update(rel.as_os_str().as_encoded_bytes());
            fp.update(&f.size.to_le_bytes());
            fp.update(&f.footer_crc.to_le_bytes());
            units.push(Unit {
                symbol: code as u32,
                size: f.size,
                mtime: f.mtime,
                time: c.time[i],
                target: c.target[i],
                features: feats,
                rows: f.rows,
                survivors: s.survivors,
                skip,
                row_start: 0,
                work_bytes,
                fast,
                out: s.survivors - skip,
                path: f.path,
            });
        }
        symbol_names.push(c.sym.name.clone());
    }

    // The cross-sectional filters fix each file's final row count from the time (and target)
    // columns alone.
    let (filters, filter_stats) = if cfg.filters.active() {
        let (cs, stats) = crate::filter::apply(
            &mut units,
            &symbol_names,
            cfg.filters,
            cfg.memory_budget,
            cancel,
        )?;
        (Some(std::sync::Arc::new(cs)), stats)
    } else {
        (None, FilterStats::default())
    };

    let mut symbols: Vec<Symbol> = symbol_names
        .into_iter()
        .map(|name| Symbol {
            name,
            start: 0,
            stop: 0,
        })
        .collect();
    let mut row = 0u64;
    for u in &mut units {
        u.row_start = row;
        row += u.out;
        symbols[u.symbol as usize].stop = row;
    }
    let mut start = 0;
    for s in &mut symbols {
        s.stop = s.stop.max(start);
        s.start = start;
        start = s.stop;
    }

    let value = if cfg.float32 { DType::F32 } else { DType::F64 };
    let mut columns = vec![
        ColumnSpec::new(time_col.clone(), DType::I64, Role::Time).with_timezone(timezone),
        ColumnSpec::new("symbol", DType::U32, Role::Symbol),
    ];
    if let Some(t) = &cfg.target {
        columns.push(ColumnSpec::new(t.clone(), value, Role::Target));
    }
    let feature_names: Vec<String> = features
        .iter()
        .map(|&id| names.get(id).to_string())
        .collect();
    columns.extend(
        feature_names
            .iter()
            .map(|n| ColumnSpec::new(n.clone(), value, Role::Feature)),
    );
    let layout = Layout::new(row, columns, symbols)?;
    Ok(Plan {
        layout,
        time_col,
        features: feature_names,
        float32: cfg.float32,
        units,
        skipped,
        input_bytes,
        fingerprint: fp.finalize(),
        filters,
        filter_stats,
    })
}
