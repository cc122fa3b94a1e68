//! The units (one per file, in output order) and the exact spill layout: `--max-rows` cuts each
//! symbol's first surviving rows, the cross-sectional filters fix every file's final row count,
//! and each file gets its output row range, its column mapping and its decoder.

use std::sync::Arc;

use spill::{ColumnSpec, DType, Layout, Role, Symbol};

use crate::cancel::Cancel;
use crate::config::{BuildConfig, Decoder};
use crate::error::Result;
use crate::input::schema::Kind;

use super::files::{FileInfo, Interner, FOOTER_EXPANSION};
use super::filter::{self, FilterStats};
use super::shard::Scoped;
use super::symbols::Candidate;
use super::{Disorder, FastColumn, FastPlan, Plan, Unit};

/// The plan of `cands` with `features` (interned names, output order).
pub(super) fn build(
    cfg: &BuildConfig,
    cands: Vec<Candidate<'_>>,
    features: Vec<u32>,
    names: &Interner,
    time_col: String,
    scoped: Option<&Scoped>,
    cancel: &Cancel,
) -> Result<Plan> {
    // The output's time zone: that of the first file of the first symbol (SPEC.md: files that
    // disagree are not an error; date and INT96 sources have none). A shard writes the universe's.
    let timezone = if let Some(s) = scoped {
        s.timezone.clone()
    } else {
        cands
            .first()
            .and_then(|c| c.files.first().zip(c.time.first()))
            .and_then(|(f, &(root, _))| f.columns.get(root as usize))
            .and_then(|col| col.timezone)
            .map(|id| names.get(id).to_string())
    };
    // Units in code order (a seeded table puts new symbols after the seed's).
    let mut cands = cands;
    if let Some(s) = scoped {
        let mut keyed = Vec::with_capacity(cands.len());
        for c in cands {
            keyed.push((s.code(&c.sym.name)?, c));
        }
        keyed.sort_by_key(|(code, _)| *code);
        cands = keyed.into_iter().map(|(_, c)| c).collect();
    }
    let mut units = Vec::new();
    // A shard's symbol table is the universe's: codes agree across shards.
    let mut symbol_names = scoped.map_or_else(Vec::new, |s| s.names.clone());
    let mut input_bytes = 0u64;
    let mut fp = crc32fast::Hasher::new();
    let mut largest_footer = 0u64;
    for (i, c) in cands.into_iter().enumerate() {
        let code = scoped.map_or(Ok(i as u32), |s| s.code(&c.sym.name))?;
        let survivors: u64 = c.scans.iter().map(|s| s.survivors).sum();
        let keep = cfg.max_rows.map_or(survivors, |m| m.min(survivors));
        let mut to_skip = survivors - keep;
        let (mut earlier_max, mut earlier_rows) = (None, 0u64);
        for (i, f) in c.files.into_iter().enumerate() {
            let s = c.scans[i];
            let skip = to_skip.min(s.survivors);
            to_skip -= skip;
            let feats: Vec<Option<u32>> = features
                .iter()
                .map(|&id| {
                    f.column(id)
                        .filter(|col| col.kind == Kind::Numeric)
                        .map(|col| col.root)
                })
                .collect();
            let (time, target) = (c.time[i], c.target[i]);
            let values: Vec<Option<u32>> = cfg
                .target
                .is_some()
                .then_some(target)
                .into_iter()
                .chain(feats.iter().copied())
                .collect();
            let fast = match cfg.decoder {
                Decoder::Auto => fast_plan(&f, time.0, &values),
                Decoder::Arrow => None,
            };
            let work_bytes = work_bytes(&f, fast.is_some(), time.0, &values);
            input_bytes += f.size;
            largest_footer = largest_footer.max(f.footer_len * FOOTER_EXPANSION);
            // Relative paths: the same universe elsewhere gives the same fingerprint.
            let rel = f.path.strip_prefix(&cfg.input).unwrap_or(&f.path);
            fp.update(rel.as_os_str().as_encoded_bytes());
            fp.update(&f.size.to_le_bytes());
            fp.update(&f.footer_crc.to_le_bytes());
            units.push(Unit {
                symbol: code,
                size: f.size,
                mtime: f.mtime,
                footer_crc: f.footer_crc,
                time,
                target,
                work_bytes,
                footer_bytes: f.footer_len * FOOTER_EXPANSION,
                features: feats,
                rows: f.rows,
                survivors: s.survivors,
                skip,
                row_start: 0,
                fast,
                out: s.survivors - skip,
                earlier_max,
                earlier_rows,
                dead: Vec::new(),
                path: f.path,
            });
            earlier_max = earlier_max.max(s.max);
            earlier_rows = earlier_rows.saturating_add(f.rows);
        }
        if scoped.is_none() {
            symbol_names.push(c.sym.name.clone());
        }
    }

    // The cross-sectional filters fix each file's final row count from the time (and target)
    // columns alone.
    let decided = scoped.and_then(|s| s.decided.as_ref());
    let (filters, filter_stats) = if let (true, Some(d)) = (cfg.filters.active(), decided) {
        let (cs, stats) = filter::apply_decided(&mut units, &symbol_names, cfg.filters, d, cancel)?;
        (Some(Arc::new(cs)), stats)
    } else if cfg.filters.active() {
        let (cs, stats) = filter::apply(
            &mut units,
            &symbol_names,
            cfg.filters,
            cfg.memory_budget,
            cancel,
        )?;
        (Some(Arc::new(cs)), stats)
    } else {
        (None, FilterStats::default())
    };

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
    let layout = place(&mut units, symbol_names, columns)?;
    Ok(Plan {
        layout,
        time_col,
        features: feature_names,
        float32: cfg.float32,
        units,
        skipped: Vec::new(),
        disorder: Disorder::default(),
        warnings: Vec::new(),
        input_bytes,
        fingerprint: fp.finalize(),
        largest_footer,
        filters,
        filter_stats,
        shard: scoped.map(|s| s.meta.clone()),
    })
}

/// Gives each of `units` (in output order) its first output row, and makes the layout of
/// `columns` over them with the symbol table `names`: a symbol's rows are its units'.
pub(super) fn place(
    units: &mut [Unit],
    names: Vec<String>,
    columns: Vec<ColumnSpec>,
) -> Result<Layout> {
    let mut symbols: Vec<Symbol> = names
        .into_iter()
        .map(|name| Symbol {
            name,
            start: 0,
            stop: 0,
        })
        .collect();
    let mut row = 0u64;
    for u in units.iter_mut() {
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
    Ok(Layout::new(row, columns, symbols)?)
}

/// How the fast decoder reads the file, if it reads every column needed: the time column at
/// `time` and `values` (roots, `None` where the file lacks the column).
fn fast_plan(f: &FileInfo, time: u32, values: &[Option<u32>]) -> Option<FastPlan> {
    // `columns` is in schema order: a root is its index.
    let column = |root: u32, time: bool| -> Option<FastColumn> {
        let c = f.columns.get(root as usize)?;
        Some(FastColumn {
            phys: if time { c.fast_time? } else { c.fast_value? },
            optional: c.optional,
            chunks: f.chunks_of(c)?.to_vec(),
        })
    };
    let values = values
        .iter()
        .map(|root| match root {
            None => Some(None),
            Some(r) => column(*r, false).map(Some),
        })
        .collect::<Option<Vec<_>>>()?;
    Some(FastPlan {
        row_groups: f.row_groups.clone(),
        time: column(time, true)?,
        values,
    })
}

/// Estimated memory a reader holds for the file beyond its slices: the fast decoder's two
/// busiest columns (the time and target decoders run together) and a row group's bitmap; or,
/// for arrow-rs, every projected column chunk's working set and the parsed footer.
pub fn work_bytes(f: &FileInfo, fast: bool, time: u32, values: &[Option<u32>]) -> u64 {
    let mut projected: Vec<u32> = values.iter().flatten().copied().collect();
    projected.push(time);
    projected.sort_unstable();
    projected.dedup();
    let columns = projected.iter().filter_map(|&r| f.columns.get(r as usize));
    if fast {
        let mut work: Vec<u64> = columns.map(|c| c.work_fast).collect();
        work.sort_unstable_by(|a, b| b.cmp(a));
        let largest_group = f.row_groups.iter().copied().max().unwrap_or(0) as u64;
        work.iter().take(2).sum::<u64>() + largest_group / 8
    } else {
        f.footer_len * FOOTER_EXPANSION + columns.map(|c| c.work_arrow).sum::<u64>()
    }
}
