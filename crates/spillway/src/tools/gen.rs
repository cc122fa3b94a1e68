//! `gen`: a synthetic universe written with the parquet crate, the same shape as real ones.
//!
//! Each symbol `S0000, S0001, ...` has `ts` (timestamp[ns, UTC] on ONE shared 5-minute grid, with
//! ragged start dates so cross-sections vary), `target` and features `f000..` whose kind is the
//! column index mod 5: random walk, iid returns, rolling mean (leading nulls), log-normal volume,
//! returns with ~1% nulls. Every symbol draws from its own random stream (the stream's state is a
//! hash of the seed and the symbol's index), so no symbol repeats another's values. Same options,
//! same seed: byte-identical files, whatever the thread count (symbols are generated independently).
//!
//! The target is pure noise, N(0, 0.002^2) (its last row null), unless `--signal R2` plants a
//! known, learnable signal: the target becomes
//!
//! ```text
//! target = 0.002 * (sqrt(R2) * s + sqrt(1 - R2) * e),   s = sum_k w_k * f_k / 0.01,   e ~ N(0, 1)
//! ```
//!
//! over the same row's first three "iid returns" features (`f001`, `f006`, `f011`; fewer when
//! there are fewer features), with weights `w = (0.6, 0.48, -0.64)` (renormalised to a unit sum of
//! squares when fewer are present). Those features are N(0, 0.01^2), so `s` is N(0, 1) and a model
//! that learns the combination explains the share R2 of the target's variance.
//!
//! Options add what real universes do to pipelines: dtype drift (some symbols store some features
//! as float32 or int64), missing columns, several row groups, other codecs, the hive layout.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float32Builder, Float64Builder, Int64Builder};
use arrow_array::{ArrayRef, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// 2020-01-01T00:00:00Z in ns.
const GRID_START_NS: i64 = 1_577_836_800_000_000_000;
const STEP_NS: i64 = 300_000_000_000;
const WINDOWS: [usize; 3] = [12, 48, 96];
/// Rows generated per record batch (bounds generator memory per symbol).
const CHUNK: usize = 16_384;

/// Codec for generated files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// zstd level 1 (pyarrow's default codec).
    #[default]
    Zstd,
    /// snappy.
    Snappy,
    /// gzip.
    Gzip,
    /// lz4 raw.
    Lz4,
    /// brotli.
    Brotli,
    /// none.
    None,
}

crate::config::named!(Codec {
    Zstd = "zstd",
    Snappy = "snappy",
    Gzip = "gzip",
    Lz4 = "lz4",
    Brotli = "brotli",
    None = "none",
});

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Output directory (created).
    pub output: PathBuf,
    /// Number of symbols.
    pub symbols: usize,
    /// Rows of the longest symbol (the others start later on the grid).
    pub rows: usize,
    /// Feature columns.
    pub features: usize,
    /// Seed.
    pub seed: u64,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Codec.
    pub codec: Codec,
    /// Max fraction of rows a symbol starts late.
    pub ragged: f64,
    /// Every 4th symbol stores feature 1 as float32 and feature 3 as int64.
    pub drift: bool,
    /// Every 3rd symbol lacks the last feature, and every 5th lacks feature 2.
    pub missing: bool,
    /// Write `symbol=<S>/part-0.parquet` (and `part-1` with the second half) instead of `<S>.parquet`.
    pub hive: bool,
    /// Share of the target's variance explained by a fixed linear combination of features (0: the
    /// target is pure noise; see the module docs).
    pub signal: f64,
    /// Remove an existing universe in the output directory first (else a non-empty directory is
    /// refused: old symbols would mix with the new ones).
    pub replace: bool,
}

impl Default for GenOptions {
    fn default() -> GenOptions {
        GenOptions {
            output: PathBuf::from("universe"),
            symbols: 16,
            rows: 75_000,
            features: 100,
            seed: 42,
            row_group_rows: 65_536,
            codec: Codec::Zstd,
            ragged: 0.3,
            drift: false,
            missing: false,
            hive: false,
            signal: 0.0,
            replace: false,
        }
    }
}

/// What `gen` wrote.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct GenReport {
    /// Files written.
    pub files: usize,
    /// Rows over all symbols.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// SplitMix64 with Box-Muller normals: small, fast, and the same on every platform.
struct Rng {
    state: u64,
    spare: Option<f64>,
}

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// Stream `stream` of `seed`. The starting state is a hash of both, so streams start at
    /// unrelated points of SplitMix64's 2^64-long cycle. (A state of `seed ^ stream * GOLDEN` put
    /// every stream on one sequence, `stream` steps apart: symbol 12 was symbol 0 shifted by 12
    /// rows.)
    fn new(seed: u64, stream: u64) -> Rng {
        let state = mix(
            mix(seed ^ 0xD1B5_4A32_D192_ED03).wrapping_add(mix(stream ^ 0x5851_F42D_4C95_7F2D))
        );
        Rng { state, spare: None }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// Rows of symbol `i`: the longest minus a deterministic late start.
pub fn symbol_rows(opts: &GenOptions, i: usize) -> usize {
    if i == 0 || opts.ragged <= 0.0 {
        return opts.rows;
    }
    let late = (Rng::new(opts.seed, 0xA11 + i as u64 * 7919).uniform()
        * opts.ragged
        * opts.rows as f64) as usize;
    opts.rows - late.min(opts.rows)
}

/// The name of symbol `i`.
pub fn symbol_name(i: usize) -> String {
    format!("S{i:04}")
}

enum Store {
    F64,
    F32,
    I64,
}

/// Per-feature generator state, carried across chunks.
struct Feature {
    kind: usize,
    /// Random-walk level (kind 0).
    level: f64,
    /// Rolling window (kind 2): its length, recent values and their sum.
    window_len: usize,
    window: std::collections::VecDeque<f64>,
    sum: f64,
    store: Store,
}

/// Writes the universe. Files appear atomically (written under a hidden name, then renamed).
pub fn generate(opts: &GenOptions) -> Result<GenReport> {
    if !(0.0..=1.0).contains(&opts.signal) {
        return Err(Error::Config(format!(
            "--signal {} is not a share of variance between 0 and 1",
            opts.signal
        )));
    }
    if opts.signal > 0.0 && opts.features < 2 {
        return Err(Error::Config(
            "--signal needs at least 2 features (the signal uses f001, f006, f011)".into(),
        ));
    }
    clear_output(&opts.output, opts.replace)?;
    std::fs::create_dir_all(&opts.output).map_err(|e| Error::io("creating", &opts.output, e))?;
    let reports: Vec<GenReport> = (0..opts.symbols)
        .into_par_iter()
        .map(|i| write_symbol(opts, i))
        .collect::<Result<_>>()?;
    Ok(reports.iter().fold(GenReport::default(), |a, r| GenReport {
        files: a.files + r.files,
        rows: a.rows + r.rows,
        bytes: a.bytes + r.bytes,
    }))
}

/// Refuses an output directory that already holds entries (a universe written over another one
/// mixes their symbols), or with `replace` removes what a build would read there: `*.parquet`
/// files and `symbol=*` directories (and hidden leftovers of an interrupted `gen`).
fn clear_output(dir: &Path, replace: bool) -> Result<()> {
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::Config(format!(
            "--output {}: not a directory (a universe is a directory of parquet files)",
            dir.display()
        )));
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io("listing", dir, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    if entries.is_empty() {
        return Ok(());
    }
    if !replace {
        return Err(Error::Config(format!(
            "output directory {} is not empty ({} entries); pass --replace to remove the universe in it first",
            dir.display(),
            entries.len()
        )));
    }
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let ours = (is_dir && name.starts_with("symbol="))
            || (!is_dir && (name.ends_with(".parquet") || name.ends_with(".parquet.tmp")));
        if !ours {
            continue;
        }
        let removed = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| Error::io("removing", &path, e))?;
    }
    Ok(())
}

fn write_symbol(opts: &GenOptions, i: usize) -> Result<GenReport> {
    let n = symbol_rows(opts, i);
    let first_row = opts.rows - n;
    let name = symbol_name(i);
    let mut rng = Rng::new(opts.seed, i as u64 + 1);
    let skip = |j: usize| {
        opts.missing && ((i % 3 == 2 && j + 1 == opts.features) || (i % 5 == 4 && j == 2))
    };
    let mut feats: Vec<(usize, Feature)> = (0..opts.features)
        .filter(|&j| !skip(j))
        .map(|j| {
            let store = match (opts.drift && i % 4 == 3, j) {
                (true, 1) => Store::F32,
                (true, 3) => Store::I64,
                _ => Store::F64,
            };
            let window_len = WINDOWS[(j / 5) % WINDOWS.len()];
            let window = std::collections::VecDeque::with_capacity(window_len + 1);
            (
                j,
                Feature {
                    kind: j % 5,
                    level: 100.0,
                    window_len,
                    window,
                    sum: 0.0,
                    store,
                },
            )
        })
        .collect();
    let mut fields = vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        ),
        Field::new("target", DataType::Float64, true),
    ];
    for (j, f) in &feats {
        let dt = match f.store {
            Store::F64 => DataType::Float64,
            Store::F32 => DataType::Float32,
            Store::I64 => DataType::Int64,
        };
        fields.push(Field::new(format!("f{j:03}"), dt, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let signal = signal_weights(opts.features)
        .into_iter()
        .filter_map(|(j, w)| feats.iter().position(|(k, _)| *k == j).map(|pos| (pos, w)))
        .collect::<Vec<_>>();
    let codec = match opts.codec {
        Codec::Zstd => {
            Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| Error::Config(e.to_string()))?)
        }
        Codec::Snappy => Compression::SNAPPY,
        Codec::Gzip => Compression::GZIP(Default::default()),
        Codec::Lz4 => Compression::LZ4_RAW,
        Codec::Brotli => Compression::BROTLI(Default::default()),
        Codec::None => Compression::UNCOMPRESSED,
    };
    let props = WriterProperties::builder()
        .set_compression(codec)
        .set_max_row_group_row_count(Some(opts.row_group_rows.max(1)))
        .set_created_by("spillway gen".into())
        .build();

    // Hive: two parts per symbol (first half, second half); flat: one file.
    let parts: Vec<(PathBuf, std::ops::Range<usize>)> = if opts.hive {
        let dir = opts.output.join(format!("symbol={name}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        vec![
            (dir.join("part-0.parquet"), 0..n / 2),
            (dir.join("part-1.parquet"), n / 2..n),
        ]
    } else {
        vec![(opts.output.join(format!("{name}.parquet")), 0..n)]
    };
    let mut report = GenReport::default();
    for (path, range) in parts {
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("part")
        ));
        let file = File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        let perr = |source| Error::ParquetWrite {
            path: path.clone(),
            source,
        };
        let mut w =
            ArrowWriter::try_new(file, schema.clone(), Some(props.clone())).map_err(perr)?;
        let mut row = range.start;
        while row < range.end {
            let m = CHUNK.min(range.end - row);
            let ts: Vec<i64> = (row..row + m)
                .map(|r| GRID_START_NS + (first_row + r) as i64 * STEP_NS)
                .collect();
            let features: Vec<ArrayRef> = feats
                .iter_mut()
                .map(|(_, f)| feature_chunk(f, m, &mut rng))
                .collect();
            let mut target = Float64Builder::with_capacity(m);
            for k in 0..m {
                let noise = rng.normal();
                let z = match signal.is_empty() {
                    true => noise,
                    false => {
                        let s: f64 = signal
                            .iter()
                            .map(|&(pos, w)| w * value_at(&features[pos], k) / 0.01)
                            .sum();
                        opts.signal.sqrt() * s + (1.0 - opts.signal).sqrt() * noise
                    }
                };
                // The symbol's last row has no target.
                if row + k + 1 == n {
                    target.append_null();
                } else {
                    target.append_value(z * 0.002);
                }
            }
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
                Arc::new(target.finish()),
            ];
            cols.extend(features);
            let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| perr(e.into()))?;
            w.write(&batch).map_err(perr)?;
            row += m;
        }
        w.close().map_err(perr)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming to", &path, e))?;
        report.files += 1;
        report.bytes += std::fs::metadata(&path)
            .map_err(|e| Error::io("reading", &path, e))?
            .len();
    }
    report.rows = n as u64;
    Ok(report)
}

/// The features the planted signal combines (the first three "iid returns" features: f001, f006,
/// f011) and their weights, renormalised to a unit sum of squares when there are fewer.
pub fn signal_weights(features: usize) -> Vec<(usize, f64)> {
    let chosen: Vec<(usize, f64)> = [(1, 0.6), (6, 0.48), (11, -0.64)]
        .into_iter()
        .filter(|&(j, _)| j < features)
        .collect();
    let norm = chosen.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
    chosen.into_iter().map(|(j, w)| (j, w / norm)).collect()
}

/// Row `k` of a generated feature as f64 (null: 0).
fn value_at(a: &ArrayRef, k: usize) -> f64 {
    use arrow_array::{Array, Float32Array, Float64Array};
    if a.is_null(k) {
        return 0.0;
    }
    if let Some(f) = a.as_any().downcast_ref::<Float64Array>() {
        return f.value(k);
    }
    a.as_any()
        .downcast_ref::<Float32Array>()
        .map_or(0.0, |f| f64::from(f.value(k)))
}

fn feature_chunk(f: &mut Feature, m: usize, rng: &mut Rng) -> ArrayRef {
    let mut vals: Vec<Option<f64>> = Vec::with_capacity(m);
    for _ in 0..m {
        let x = rng.normal();
        let v = match f.kind {
            0 => {
                f.level += x * 0.5;
                Some(f.level)
            }
            1 => Some(x * 0.01),
            2 => {
                // Rolling mean of returns; the first window_len - 1 rows have none.
                f.window.push_back(x * 0.01);
                f.sum += x * 0.01;
                if f.window.len() > f.window_len {
                    f.sum -= f.window.pop_front().unwrap_or(0.0);
                }
                (f.window.len() == f.window_len).then(|| f.sum / f.window_len as f64)
            }
            3 => Some((x * 0.5 + 8.0).exp()),
            _ => (rng.uniform() >= 0.01).then_some(x * 0.01),
        };
        vals.push(v);
    }
    match f.store {
        Store::F64 => {
            let mut b = Float64Builder::with_capacity(m);
            vals.into_iter().for_each(|v| b.append_option(v));
            Arc::new(b.finish())
        }
        Store::F32 => {
            let mut b = Float32Builder::with_capacity(m);
            vals.into_iter()
                .for_each(|v| b.append_option(v.map(|x| x as f32)));
            Arc::new(b.finish())
        }
        Store::I64 => {
            let mut b = Int64Builder::with_capacity(m);
            vals.into_iter()
                .for_each(|v| b.append_option(v.map(|x| (x * 1000.0).round() as i64)));
            Arc::new(b.finish())
        }
    }
}

/// The default input and output of `spillway demo`, under `dir`.
pub fn demo_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("universe"), dir.join("demo.spill"))
}
