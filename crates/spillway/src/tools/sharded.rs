//! The cross-section of a sharded build as a map-reduce, whatever runs it (Ray, a shell loop):
//!
//! - [`count`] (map): one shard's rows per timestamp and K smallest sampling keys, to a count file;
//! - [`plan_cs`] (reduce): count files merged into the cross-section plan, per kept timestamp its
//!   threshold; or, with `merge_only`, into one count file, so large reductions run as a tree
//!   (groups of count files merged, then the merged files planned): sums and bottom-K are
//!   associative, so any grouping gives the same plan.
//!
//! A row is kept by a shard build with the plan exactly when a single-machine build keeps it:
//! counts add up across disjoint symbol sets, and the K smallest keys of a union are among the
//! K smallest of each part (see `plan::count`). The merge streams every count file at once,
//! holding one record of each (`files x K` keys); the plan it writes is held in memory (20 bytes
//! a kept timestamp) because its header carries totals known only at the end.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::cancel::Cancel;
use crate::config::{BuildConfig, FilterOptions};
use crate::error::{Error, Result};
use crate::input::source;
use crate::plan::count::count_units;
use crate::plan::cs_file::{
    self, crc_text, CountHeader, CountRecord, Framed, Key, PlanHeader, Reader, COUNT_MAGIC,
    KEEP_ALL, MAX_K, PLAN_MAGIC,
};
use crate::plan::shard::{global_excluding, plan_part};
use crate::plan::Skipped;
use crate::publish;
use crate::run::check_output;

use crate::output::{self, write_atomic, writing};

/// What [`count`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CountSummary {
    /// The count file.
    pub output: PathBuf,
    /// `crc32:` of the file.
    pub checksum: String,
    /// Global codes counted, `[start, stop)`.
    pub symbols: [u64; 2],
    /// Distinct timestamps.
    pub timestamps: u64,
    /// Rows counted.
    pub rows: u64,
    /// Sampling keys kept.
    pub keys: u64,
    /// Symbols left out (recorded in the count file), with the reason.
    pub skipped: Vec<Skipped>,
    /// Peak memory of the passes.
    pub memory_bytes: u64,
    /// Wall time.
    pub seconds: f64,
}

/// Counts the shard `cfg.scope` of `cfg.input` into the count file `cfg.output` (see the module
/// docs), with the options that decide rows: target, time column and unit, `--max-rows`,
/// `--drop-null-target`, `--max-cs-samples` and `--seed`.
pub fn count(cfg: &BuildConfig, cancel: &Cancel) -> Result<CountSummary> {
    if publish::is_url(&cfg.output) {
        let scratch = cfg.scratch.as_deref();
        let mut summary = publish::deliver(&cfg.output, &cfg.storage, scratch, cancel, |out| {
            let local = BuildConfig {
                output: out.to_path_buf(),
                ..cfg.clone()
            };
            count(&local, cancel)
        })?;
        summary.output = cfg.output.clone();
        return Ok(summary);
    }
    let t0 = Instant::now();
    let scope = cfg
        .scope
        .as_ref()
        .ok_or_else(|| Error::Config("count needs --shard I/N or --symbols A..B".into()))?;
    if cfg.filters.max_cs_samples.is_some_and(|k| k > MAX_K) {
        return Err(Error::Config(format!(
            "--max-cs-samples over {MAX_K} cannot be counted per shard"
        )));
    }
    let universe = source::universe(cfg, cancel)?;
    check_output(cfg, &universe)?;
    // Symbols excluded by the driver, and those skipped on their footers, are left out of the
    // counts; symbols of this shard skipped while planning it (its time scan) too. The count
    // file records them all, so the plan and every shard built with it leave them out.
    let mut excluded = crate::run::excluded(cfg, &universe);
    let g = global_excluding(&universe, cfg, &excluded, cancel)?;
    for s in &g.skipped {
        excluded
            .entry(s.symbol.clone())
            .or_insert_with(|| s.reason.clone());
    }
    let range = g.range(scope)?;
    // The per-symbol steps only: the filters are what is being counted.
    let unfiltered = BuildConfig {
        filters: FilterOptions::default(),
        cs_plan: None,
        ..cfg.clone()
    };
    let plan = plan_part(
        &universe,
        &unfiltered,
        scope,
        &g,
        range.clone(),
        None,
        &excluded,
        cancel,
    )?;
    let mut counted = count_units(
        &plan.units,
        &g.names,
        cfg.filters,
        cfg.memory_budget,
        cancel,
    )?;
    let header = CountHeader {
        options: g.count_options(cfg),
        universe: g.universe(),
        ranges: match range.is_empty() {
            true => Vec::new(),
            false => vec![[range.start as u64, range.end as u64]],
        },
        skipped: cs_file::normalize_skipped(plan.skipped.iter().cloned()),
    };
    let io = writing(&cfg.output);
    let crc = write_atomic(&cfg.output, |w| {
        let mut f = Framed::new(w, COUNT_MAGIC, &header).map_err(&io)?;
        f.fingerprints(&g.fingerprints[range.clone()])
            .map_err(&io)?;
        counted.records(|r| f.count(r)).map_err(&io)?;
        Ok(f.finish().map_err(&io)?.1)
    })?;
    Ok(CountSummary {
        output: cfg.output.clone(),
        checksum: crc_text(crc),
        symbols: [range.start as u64, range.end as u64],
        timestamps: counted.times.len() as u64,
        rows: counted.rows,
        keys: counted.keys,
        skipped: header.skipped.clone(),
        memory_bytes: counted.memory_bytes,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Options of [`plan_cs`].
#[derive(Debug, Clone, Default)]
pub struct PlanCsOptions {
    /// The plan (or, with `merge_only`, the merged count file).
    pub output: PathBuf,
    /// `--min-cs`.
    pub min_cs: u64,
    /// `--max-cs-samples`: must be the counts'.
    pub max_cs_samples: Option<u64>,
    /// `--seed`: must be the counts'.
    pub seed: u64,
    /// Write the merged counts as one count file instead of a plan (a tree's inner node).
    pub merge_only: bool,
    /// Options of the object store of count files or an output given as URLs.
    pub storage: crate::config::StorageOptions,
    /// Where count files from a bucket, and an output bound for one, are kept meanwhile.
    pub scratch: Option<PathBuf>,
}

/// What [`plan_cs`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PlanCsSummary {
    /// The file written.
    pub output: PathBuf,
    /// `crc32:` of it.
    pub checksum: String,
    /// Count files merged.
    pub inputs: usize,
    /// Distinct timestamps.
    pub distinct: u64,
    /// Timestamps kept (`--min-cs`); for `merge_only`, records written.
    pub kept: u64,
    /// Kept timestamps over K.
    pub sampled: u64,
    /// Rows counted, and rows the plan keeps.
    pub rows: [u64; 2],
    /// Every symbol the count files left out, with the reason (recorded in the file written):
    /// shards built with the plan leave them all out.
    pub skipped: Vec<Skipped>,
}

struct Input {
    path: PathBuf,
    reader: Reader<BufReader<File>>,
    header: CountHeader,
    rec: CountRecord,
}

/// Merges the count files `counts` into a cross-section plan (or one count file); see the module
/// docs. Refuses count files made with other options or for another universe, overlapping ones,
/// and (for a plan) a set that leaves symbols uncounted.
pub fn plan_cs(counts: &[PathBuf], opts: &PlanCsOptions) -> Result<PlanCsSummary> {
    if counts.iter().any(|p| publish::is_url(p)) || publish::is_url(&opts.output) {
        let cancel = Cancel::new();
        let (storage, scratch) = (&opts.storage, opts.scratch.as_deref());
        let copies = publish::fetch_all("count file", counts, storage, scratch, &cancel)?;
        let local: Vec<PathBuf> = copies.iter().map(|c| c.path.clone()).collect();
        let mut summary = publish::deliver(&opts.output, storage, scratch, &cancel, |out| {
            let o = PlanCsOptions {
                output: out.to_path_buf(),
                storage: Default::default(),
                ..opts.clone()
            };
            merge_counts(&local, counts, &o)
        })?;
        summary.output = opts.output.clone();
        return Ok(summary);
    }
    merge_counts(counts, counts, opts)
}

/// [`plan_cs`] of local count files, each known (in messages and in the plan) by its name in
/// `names` (its URL when it was fetched).
fn merge_counts(
    counts: &[PathBuf],
    names: &[PathBuf],
    opts: &PlanCsOptions,
) -> Result<PlanCsSummary> {
    if opts.max_cs_samples == Some(0) {
        return Err(Error::Config("--max-cs-samples must be at least 1".into()));
    }
    let reads: Vec<(&str, &Path)> = counts
        .iter()
        .map(|p| ("one of the count files", p.as_path()))
        .collect();
    output::check("--output", &opts.output, &reads)?;
    let mut inputs = Vec::with_capacity(counts.len());
    for (path, name) in counts.iter().zip(names) {
        inputs.push(open_count(path, name)?);
    }
    let Some(first) = inputs.first() else {
        return Err(Error::Config(
            "plan-cs needs at least one count file".into(),
        ));
    };
    let (options, universe) = (first.header.options.clone(), first.header.universe.clone());
    let mismatch = |path: &Path, what: String| Error::CsMismatch {
        path: path.to_path_buf(),
        what,
    };
    let asked = (opts.max_cs_samples, opts.max_cs_samples.map(|_| opts.seed));
    let counted = (
        options.max_cs_samples,
        options.max_cs_samples.map(|_| options.seed),
    );
    if asked != counted {
        let said = |k: Option<u64>, seed: u64| match k {
            Some(k) => format!("--max-cs-samples {k} --seed {seed}"),
            None => "no --max-cs-samples".to_string(),
        };
        return Err(mismatch(
            &first.path,
            format!(
                "it was counted with {}, plan-cs was given {}",
                said(options.max_cs_samples, options.seed),
                said(opts.max_cs_samples, opts.seed)
            ),
        ));
    }
    // Who covers which codes: disjoint, and (for a plan) everything.
    let mut owner: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
    for (i, inp) in inputs.iter().enumerate() {
        if let Some((name, theirs, first_s)) = inp.header.options.difference(&options) {
            return Err(mismatch(
                &inp.path,
                format!(
                    "it was counted with {name} {theirs}, {} with {first_s}",
                    first.path.display()
                ),
            ));
        }
        if inp.header.universe != universe {
            return Err(mismatch(
                &inp.path,
                format!("it counts another universe than {}", first.path.display()),
            ));
        }
        for &[a, b] in &inp.header.ranges {
            if owner.insert(a, (b, i)).is_some() {
                return Err(mismatch(
                    &inp.path,
                    format!("its symbols [{a}, {b}) overlap another count file's"),
                ));
            }
        }
    }
    let mut at = 0u64;
    let mut ranges: Vec<[u64; 2]> = Vec::new();
    for (&a, &(b, i)) in &owner {
        if a < at {
            return Err(mismatch(
                &inputs[i].path,
                format!("its symbols [{a}, {b}) overlap another count file's"),
            ));
        }
        if a > at && !opts.merge_only {
            return Err(mismatch(
                &inputs[i].path,
                format!("symbols [{at}, {a}) were not counted: no count file covers them"),
            ));
        }
        match ranges.last_mut() {
            Some(last) if last[1] == a => last[1] = b,
            _ => ranges.push([a, b]),
        }
        at = b;
    }
    if at < universe.symbols && !opts.merge_only {
        return Err(mismatch(
            &first.path,
            format!(
                "symbols [{at}, {}) were not counted: no count file covers them",
                universe.symbols
            ),
        ));
    }
    // Fingerprints in code order.
    let mut fps = Vec::new();
    for (&a, &(b, i)) in &owner {
        let got = inputs[i]
            .reader
            .fingerprints(b - a)
            .map_err(|e| cs_err(&inputs[i].path, e))?;
        fps.extend(got);
    }
    let k = options.max_cs_samples;
    let skipped =
        cs_file::normalize_skipped(inputs.iter().flat_map(|i| i.header.skipped.iter().cloned()));
    if opts.merge_only {
        let header = CountHeader {
            options,
            universe,
            ranges,
            skipped,
        };
        let io = writing(&opts.output);
        let (crc, (distinct, rows)) = write_atomic(&opts.output, |w| {
            let mut f = Framed::new(w, COUNT_MAGIC, &header).map_err(&io)?;
            f.fingerprints(&fps).map_err(&io)?;
            let s = merge(&mut inputs, k, |rec| f.count(rec).map_err(&io))?;
            Ok((f.finish().map_err(&io)?.1, s))
        })?;
        return Ok(PlanCsSummary {
            output: opts.output.clone(),
            checksum: crc_text(crc),
            inputs: counts.len(),
            distinct,
            kept: distinct,
            sampled: 0,
            rows: [rows, rows],
            skipped: header.skipped,
        });
    }
    let min = opts.min_cs.max(1);
    let mut table: Vec<(i64, Key)> = Vec::new();
    let (mut sampled, mut kept_rows) = (0u64, 0u64);
    let (distinct, rows) = merge(&mut inputs, k, |rec| {
        if rec.count >= min {
            let th = match k {
                Some(k) if rec.count > k => {
                    sampled += 1;
                    kept_rows += k;
                    rec.keys[k as usize - 1]
                }
                _ => {
                    kept_rows += rec.count;
                    KEEP_ALL
                }
            };
            table.push((rec.t, th));
        }
        Ok(())
    })?;
    let header = PlanHeader {
        options,
        min_cs: opts.min_cs,
        universe,
        counts: inputs
            .iter()
            .map(|i| i.path.display().to_string())
            .collect(),
        distinct,
        sampled,
        rows: [rows, kept_rows],
        skipped,
    };
    let io = writing(&opts.output);
    let crc = write_atomic(&opts.output, |w| {
        let mut f = Framed::new(w, PLAN_MAGIC, &header).map_err(&io)?;
        f.fingerprints(&fps).map_err(&io)?;
        for &(t, th) in &table {
            f.threshold(t, th).map_err(&io)?;
        }
        Ok(f.finish().map_err(&io)?.1)
    })?;
    Ok(PlanCsSummary {
        output: opts.output.clone(),
        checksum: crc_text(crc),
        inputs: counts.len(),
        distinct,
        kept: table.len() as u64,
        sampled,
        rows: [rows, kept_rows],
        skipped: header.skipped,
    })
}

fn cs_err(path: &Path, source: cs_file::CsFileError) -> Error {
    Error::CsFile {
        path: path.to_path_buf(),
        source,
    }
}

fn open_count(path: &Path, name: &Path) -> Result<Input> {
    crate::input::regular_file("count file", path)?;
    let err = |e: std::io::Error| cs_err(name, e.into());
    let file = File::open(path).map_err(err)?;
    let len = file.metadata().map_err(err)?.len();
    let (reader, v) = Reader::open(BufReader::new(file), len, COUNT_MAGIC, "count")
        .map_err(|e| cs_err(name, e))?;
    let header = cs_file::count_header(v).map_err(|e| cs_err(name, e))?;
    Ok(Input {
        path: name.to_path_buf(),
        reader,
        header,
        rec: CountRecord::default(),
    })
}

/// The k-way merge: calls `emit` with every timestamp's summed count and merged K smallest keys,
/// in time order; then checks every input's trailer. Returns (distinct timestamps, rows).
fn merge(
    inputs: &mut [Input],
    k: Option<u64>,
    mut emit: impl FnMut(&CountRecord) -> Result<()>,
) -> Result<(u64, u64)> {
    let mut heap = BinaryHeap::new();
    for (i, inp) in inputs.iter_mut().enumerate() {
        if advance(inp)? {
            heap.push(Reverse((inp.rec.t, i)));
        }
    }
    let mut out = CountRecord::default();
    let (mut distinct, mut rows) = (0u64, 0u64);
    while let Some(Reverse((t, i))) = heap.pop() {
        if distinct == 0 || out.t != t {
            if distinct > 0 {
                finish_keys(&mut out, k);
                emit(&out)?;
            }
            out.t = t;
            out.count = 0;
            out.keys.clear();
            distinct += 1;
        }
        let inp = &mut inputs[i];
        out.count += inp.rec.count;
        rows += inp.rec.count;
        out.keys.extend_from_slice(&inp.rec.keys);
        if advance(inp)? {
            heap.push(Reverse((inp.rec.t, i)));
        }
    }
    if distinct > 0 {
        finish_keys(&mut out, k);
        emit(&out)?;
    }
    for inp in inputs.iter_mut() {
        inp.reader.finish().map_err(|e| cs_err(&inp.path, e))?;
    }
    Ok((distinct, rows))
}

fn finish_keys(out: &mut CountRecord, k: Option<u64>) {
    out.keys.sort_unstable();
    out.keys.truncate(k.unwrap_or(0) as usize);
}

fn advance(inp: &mut Input) -> Result<bool> {
    inp.reader
        .next_count(&inp.header, &mut inp.rec)
        .map_err(|e| cs_err(&inp.path, e))
}
