//! Build options: [`BuildOptions`] (every field optional, from flags or a TOML file) merged and
//! resolved into one validated [`BuildConfig`]. Defaults live here and nowhere else. Nothing here
//! knows the command line: the enums parse from their names ([`std::str::FromStr`]) and list them
//! in `NAMES`, which the CLI hands to clap.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Default `--memory-budget`.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;

/// Default `--max-attempts`: every symbol that fails while decoding in one attempt is excluded
/// together, so one bad batch of symbols needs two attempts; a third covers symbols that fail
/// only once the plan without the first has changed (a column the union no longer has, say).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The most `--threads`. Each reader holds its own codecs, working set and `capacity` slices, so
/// readers beyond the cores only add memory; 1024 is above the hardware threads of the largest
/// machines (2 x 192 cores x 2 = 768), and keeps `readers x (capacity + 1)` channel slots and the
/// budget's byte estimates far inside `u64`.
pub const MAX_THREADS: usize = 1024;

/// The most `--channel-capacity`: the most slices a reader may queue (what the budget itself
/// chooses at most). A channel allocates all its slots up front, so a larger capacity would
/// allocate memory no slice uses.
pub const MAX_CHANNEL_CAPACITY: usize = 1 << 16;

/// The most `--batch-rows` (16 Mi rows: a 128 MiB float64 slice). With [`MAX_THREADS`] and
/// [`MAX_CHANNEL_CAPACITY`], the largest byte estimate (readers x slices x rows x 8 bytes, 2^10 x
/// 2^16 x 2^24 x 2^3 = 2^53) stays far inside `u64`.
pub const MAX_BATCH_ROWS: usize = 1 << 24;

/// The time column's name when none is given: the first of these the first file has.
pub const DEFAULT_TIME_COLUMNS: [&str; 2] = ["ts", "timestamp"];

mod choices;
mod storage;
mod transform;

pub(crate) use choices::named;
pub use choices::{Decoder, EpochUnit, Freshness, OnError, RowOrder, WriteMode};
pub use storage::{
    check_url_for, file_url_path, is_secret, url_scheme, StorageOptions, OWN_KEYS, SCHEMES,
};
pub use transform::CsTransform;

/// The cross-sectional filter settings (see `plan::filter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FilterOptions {
    /// Drop rows whose target is null or NaN.
    pub drop_null_target: bool,
    /// Minimum rows per timestamp (0 or 1: no filter).
    pub min_cs: u64,
    /// At most this many rows per timestamp.
    pub max_cs_samples: Option<u64>,
    /// Seed of the sampling.
    pub seed: u64,
}

impl FilterOptions {
    /// Whether any filter is on.
    pub fn active(&self) -> bool {
        self.drop_null_target || self.needs_table()
    }

    /// Whether a per-timestamp table is needed (min-cs or sampling).
    pub fn needs_table(&self) -> bool {
        self.min_cs > 1 || self.max_cs_samples.is_some()
    }
}

/// Build options as given: every field optional, so that flags can be laid over a config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BuildOptions {
    /// Input directory, or an object-storage URL (`s3://bucket/prefix/`).
    pub input: Option<PathBuf>,
    /// Output spill file.
    pub output: Option<PathBuf>,
    /// Target column.
    pub target: Option<String>,
    /// Build without a target column (a build names its target or says it has none).
    pub no_target: Option<bool>,
    /// Feature columns, in output order.
    pub features: Option<Vec<String>>,
    /// Time column name.
    pub time_col: Option<String>,
    /// Unit of an integer time column (timestamp columns carry their own).
    pub time_unit: Option<EpochUnit>,
    /// Keep the last N rows of each symbol.
    pub max_rows: Option<u64>,
    /// Keep float64 instead of converting to float32.
    pub no_float32: Option<bool>,
    /// Reader threads.
    pub threads: Option<usize>,
    /// Batches each reader may run ahead of the writer.
    pub channel_capacity: Option<usize>,
    /// Rows per batch.
    pub batch_rows: Option<usize>,
    /// Memory budget, e.g. "256MiB".
    pub memory_budget: Option<String>,
    /// fail | skip.
    pub on_error: Option<OnError>,
    /// Under `--on-error skip`, the most attempts (plans) a build makes before it fails naming
    /// the symbols that failed while decoding (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: Option<u32>,
    /// Symbols left out as if the universe lacked them (a sharded build's driver passes the
    /// symbols a shard found failing, so that every shard and count leaves them out).
    pub exclude: Option<Vec<String>>,
    /// auto | mmap | direct.
    pub write_mode: Option<WriteMode>,
    /// Drop rows whose target is null or NaN.
    pub drop_null_target: Option<bool>,
    /// Drop rows at timestamps with fewer rows than this.
    pub min_cs: Option<u64>,
    /// Keep at most this many rows per timestamp, chosen pseudo-randomly.
    pub max_cs_samples: Option<u64>,
    /// Seed of the sampling.
    pub seed: Option<u64>,
    /// Build (or count) only shard `I/N` of the sorted symbol list (`0/4` .. `3/4`).
    pub shard: Option<String>,
    /// Build (or count) only the symbols whose names are in `A..B` (`[A, B)`, either end open).
    pub symbols: Option<String>,
    /// The cross-section plan (`spillway plan-cs`) a shard build takes its filter decisions from.
    pub cs_plan: Option<PathBuf>,
    /// symbol | time: how the output's rows are ordered.
    pub order: Option<RowOrder>,
    /// rank | zscore | winsorize=Q: the per-timestamp transform of the features (time-major
    /// output only).
    pub cs_transform: Option<CsTransform>,
    /// Where the build writes its JSON summary (`-`: standard output).
    pub summary: Option<PathBuf>,
    /// Options of the object store an `s3://`, `gs://` or `az://` input is read from (the TOML
    /// `[storage]` table, `--storage-option KEY=VALUE`); merged key by key.
    pub storage: Option<StorageOptions>,
    /// Where an output bound for object storage is built before it is uploaded (default: the
    /// temporary directory).
    pub scratch: Option<PathBuf>,
}

impl BuildOptions {
    /// Fields set in `over` replace those in `self` (flags over the config file).
    pub fn merge(self, over: BuildOptions) -> BuildOptions {
        BuildOptions {
            input: over.input.or(self.input),
            output: over.output.or(self.output),
            // A flag's --no-target overrides the file's target, and a flag's --target the
            // file's no-target.
            no_target: match over.target {
                Some(_) => over.no_target,
                None => over.no_target.or(self.no_target),
            },
            target: match over.no_target {
                Some(true) => over.target,
                _ => over.target.or(self.target),
            },
            features: over.features.or(self.features),
            time_col: over.time_col.or(self.time_col),
            time_unit: over.time_unit.or(self.time_unit),
            max_rows: over.max_rows.or(self.max_rows),
            no_float32: over.no_float32.or(self.no_float32),
            threads: over.threads.or(self.threads),
            channel_capacity: over.channel_capacity.or(self.channel_capacity),
            batch_rows: over.batch_rows.or(self.batch_rows),
            memory_budget: over.memory_budget.or(self.memory_budget),
            on_error: over.on_error.or(self.on_error),
            max_attempts: over.max_attempts.or(self.max_attempts),
            exclude: over.exclude.or(self.exclude),
            write_mode: over.write_mode.or(self.write_mode),
            drop_null_target: over.drop_null_target.or(self.drop_null_target),
            min_cs: over.min_cs.or(self.min_cs),
            max_cs_samples: over.max_cs_samples.or(self.max_cs_samples),
            seed: over.seed.or(self.seed),
            shard: over.shard.or(self.shard),
            symbols: over.symbols.or(self.symbols),
            cs_plan: over.cs_plan.or(self.cs_plan),
            order: over.order.or(self.order),
            cs_transform: over.cs_transform.or(self.cs_transform),
            summary: over.summary.or(self.summary),
            storage: match (self.storage, over.storage) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => b.or(a),
            },
            scratch: over.scratch.or(self.scratch),
        }
    }

    /// Parses a TOML config file's text.
    pub fn from_toml(text: &str) -> Result<BuildOptions> {
        toml::from_str(text).map_err(|e| Error::Config(e.to_string()))
    }

    /// Reads a TOML config file (`--config`): its build options and its `quiet` key (not a build
    /// option: the caller's progress display). Any error names the file.
    pub fn load(path: &Path) -> Result<(BuildOptions, Option<bool>)> {
        let usage =
            |e: &dyn std::fmt::Display| Error::Config(format!("config {}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| usage(&e))?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| usage(&e))?;
        let quiet = match table.remove("quiet") {
            Some(toml::Value::Boolean(b)) => Some(b),
            Some(_) => return Err(usage(&"`quiet` must be true or false")),
            None => None,
        };
        let options = toml::Value::Table(table)
            .try_into::<BuildOptions>()
            .map_err(|e| usage(&e))?;
        Ok((options, quiet))
    }

    /// [`resolve`](Self::resolve) for a look at the universe (`inspect`): the output is optional
    /// (empty: none to check), and so is a decision on the target, which a build must make.
    pub fn resolve_to_inspect(mut self) -> Result<BuildConfig> {
        self.output.get_or_insert_with(PathBuf::new);
        if self.target.is_none() {
            self.no_target.get_or_insert(true);
        }
        self.resolve()
    }

    /// Applies defaults and validates.
    pub fn resolve(self) -> Result<BuildConfig> {
        let input = self
            .input
            .ok_or_else(|| Error::Config("--input is required".into()))?;
        storage::check_url(&input)?;
        let input = storage::file_url_path(&input).unwrap_or(input);
        let output = self
            .output
            .ok_or_else(|| Error::Config("--output is required".into()))?;
        let within = |name: &str, v: Option<usize>, max: usize| match v {
            Some(n) if n == 0 || n > max => Err(Error::Config(format!(
                "{name} must be at least 1 and at most {max} (got {n})"
            ))),
            other => Ok(other),
        };
        let features = match self.features {
            Some(f) if f.is_empty() || f.iter().any(|c| c.is_empty()) => {
                return Err(Error::Config(
                    "--features must name at least one non-empty column".into(),
                ))
            }
            Some(f) => {
                let mut seen = std::collections::HashSet::new();
                if let Some(dup) = f.iter().find(|c| !seen.insert(c.as_str())) {
                    return Err(Error::Config(format!("--features names {dup:?} twice")));
                }
                Some(f)
            }
            None => None,
        };
        let filters = FilterOptions {
            drop_null_target: self.drop_null_target.unwrap_or(false),
            min_cs: self.min_cs.unwrap_or(0),
            max_cs_samples: self.max_cs_samples,
            seed: self.seed.unwrap_or(0),
        };
        if filters.drop_null_target && self.target.is_none() {
            return Err(Error::Config("--drop-null-target needs --target".into()));
        }
        match (&self.target, self.no_target.unwrap_or(false)) {
            (Some(t), true) => {
                return Err(Error::Config(format!(
                    "--target {t:?} and --no-target both given: give one"
                )))
            }
            (None, false) => {
                return Err(Error::Config(
                    "name the target column with --target NAME, or say --no-target: without \
                     one, a column meant as the label would become a feature"
                        .into(),
                ))
            }
            _ => {}
        }
        if filters.max_cs_samples == Some(0) {
            return Err(Error::Config("--max-cs-samples must be at least 1".into()));
        }
        let scope = match (self.shard, self.symbols) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "--shard and --symbols both choose the symbols: give one".into(),
                ))
            }
            (Some(s), None) => Some(Scope::parse_shard(&s)?),
            (None, Some(s)) => Some(Scope::parse_names(&s)),
            (None, None) => None,
        };
        if self.cs_plan.is_some() && scope.is_none() {
            return Err(Error::Config(
                "--cs-plan is for shard builds: give --shard I/N (or --symbols A..B)".into(),
            ));
        }
        if self.order == Some(RowOrder::Time) {
            // A time-major dataset is cut on time: its shards are `--shard I/N` of the timeline,
            // each holding whole cross-sections (so it decides its filters itself).
            match &scope {
                Some(Scope::Names { .. }) => {
                    return Err(Error::Config(
                        "--order time does not combine with --symbols: a time-major dataset's \
                         shards are cut on time (--shard I/N), not on symbol names"
                            .into(),
                    ))
                }
                Some(Scope::Part { .. }) if self.cs_plan.is_some() => {
                    return Err(Error::Config(
                        "--order time --shard needs no --cs-plan: each shard holds whole \
                         cross-sections and decides the filters itself"
                            .into(),
                    ))
                }
                _ => {}
            }
        }
        if let (Some(t), false) = (self.cs_transform, self.order == Some(RowOrder::Time)) {
            // A cross-section is contiguous only in a time-major file: the transform runs in
            // the transposition's windows, which a symbol-major build has none of.
            return Err(Error::Config(format!(
                "--cs-transform {t} is for time-major output: add --order time"
            )));
        }
        let memory_budget = match self.memory_budget {
            Some(s) => parse_size(&s)
                .map_err(|e| Error::Config(format!("--memory-budget: {}", config_message(e))))?,
            None => DEFAULT_MEMORY_BUDGET,
        };
        Ok(BuildConfig {
            input,
            output,
            target: self.target,
            features,
            time_col: self.time_col,
            time_unit: self.time_unit,
            max_rows: self.max_rows,
            float32: !self.no_float32.unwrap_or(false),
            threads: within("--threads", self.threads, MAX_THREADS)?,
            channel_capacity: within(
                "--channel-capacity",
                self.channel_capacity,
                MAX_CHANNEL_CAPACITY,
            )?,
            batch_rows: within("--batch-rows", self.batch_rows, MAX_BATCH_ROWS)?,
            memory_budget,
            on_error: self.on_error.unwrap_or_default(),
            max_attempts: match self.max_attempts {
                Some(0) => return Err(Error::Config("--max-attempts must be at least 1".into())),
                Some(n) => n,
                None => DEFAULT_MAX_ATTEMPTS,
            },
            exclude: self.exclude.unwrap_or_default(),
            write_mode: self.write_mode.unwrap_or_default(),
            filters,
            order: self.order.unwrap_or_default(),
            cs_transform: self.cs_transform,
            decoder: Decoder::Auto,
            decode_only: false,
            scope,
            cs_plan: self.cs_plan,
            config_file: None,
            summary: self.summary,
            freshness: Freshness::Stamp,
            storage: self.storage.unwrap_or_default(),
            scratch: self.scratch,
        })
    }
}

/// A resolved, validated build configuration: what the library runs. Made by
/// [`BuildOptions::resolve`] (every option, as flags or a TOML file give them) or by
/// [`BuildConfig::new`] (defaults); its fields may then be changed, but a new field can be added
/// in any release, so it is never written as a struct literal outside this crate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildConfig {
    /// Input directory, or an object-storage URL (`s3://bucket/prefix/`; a `file://` URL is
    /// resolved to its path).
    pub input: PathBuf,
    /// Output spill file.
    pub output: PathBuf,
    /// Target column, if any.
    pub target: Option<String>,
    /// Explicit feature list, or `None` for every numeric column.
    pub features: Option<Vec<String>>,
    /// Explicit time column, or `None` for the first of [`DEFAULT_TIME_COLUMNS`].
    pub time_col: Option<String>,
    /// Unit of an integer time column.
    pub time_unit: Option<EpochUnit>,
    /// Keep the last N rows of each symbol.
    pub max_rows: Option<u64>,
    /// Store target and features as float32 (else float64).
    pub float32: bool,
    /// Reader threads (`None`: chosen by the budget, at most the cores).
    pub threads: Option<usize>,
    /// Per-reader channel capacity in batches (`None`: chosen by the budget).
    pub channel_capacity: Option<usize>,
    /// Rows per batch (`None`: chosen by the budget).
    pub batch_rows: Option<usize>,
    /// Peak memory the build plans for.
    pub memory_budget: u64,
    /// Failure policy for symbols.
    pub on_error: OnError,
    /// Under `--on-error skip`: the most attempts (each a plan and a pass over the data) before
    /// the build fails naming the symbols still failing.
    pub max_attempts: u32,
    /// Symbols left out as if the universe lacked them (`--exclude`).
    pub exclude: Vec<String>,
    /// Output write mode.
    pub write_mode: WriteMode,
    /// Cross-sectional filters.
    pub filters: FilterOptions,
    /// How the output's rows are ordered.
    pub order: RowOrder,
    /// The per-timestamp transform of the feature columns (time-major output only; `None`:
    /// values as read).
    pub cs_transform: Option<CsTransform>,
    /// Which decoder reads the files (never changes a byte of the output).
    pub decoder: Decoder,
    /// Decode and convert everything but write nothing (a measurement of the readers).
    pub decode_only: bool,
    /// Build only these symbols of the universe, with the global symbol table (`None`: all).
    pub scope: Option<Scope>,
    /// The cross-section plan of a shard build.
    pub cs_plan: Option<PathBuf>,
    /// The TOML file the options were read from, if any: an output never replaces it.
    pub config_file: Option<PathBuf>,
    /// Where the build writes its JSON summary (`-`: standard output), checked before any work.
    pub summary: Option<PathBuf>,
    /// What the file records of its inputs for `--if-changed` (content hashes cost a read).
    pub freshness: Freshness,
    /// Options of the object store the input is read from, or the output written to (URLs).
    pub storage: StorageOptions,
    /// Where an output URL's file is built before its upload (`None`: the temporary directory).
    pub scratch: Option<PathBuf>,
}

/// Which symbols of the universe a shard build (or count) takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Shard `index` of `count`: contiguous ranges of the sorted symbol list, balanced by
    /// planned rows from the footers.
    Part {
        /// From 0.
        index: u32,
        /// At least 1.
        count: u32,
    },
    /// The symbols whose names are in `[from, to)` (byte-wise; `None`: open).
    Names {
        /// First name taken.
        from: Option<String>,
        /// First name not taken.
        to: Option<String>,
    },
}

impl Scope {
    /// Parses `I/N` (`0 <= I < N`).
    pub fn parse_shard(s: &str) -> Result<Scope> {
        let bad = || Error::Config(format!("--shard {s:?}: expected I/N with 0 <= I < N"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Scope::Part { index, count })
    }

    /// Parses `A..B`, `A..` or `..B`.
    pub fn parse_names(s: &str) -> Scope {
        let (a, b) = s.split_once("..").unwrap_or((s, ""));
        let end = |x: &str| (!x.is_empty()).then(|| x.to_string());
        Scope::Names {
            from: end(a),
            to: end(b),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Part { index, count } => write!(f, "{index}/{count}"),
            Scope::Names { from, to } => write!(
                f,
                "{}..{}",
                from.as_deref().unwrap_or(""),
                to.as_deref().unwrap_or("")
            ),
        }
    }
}

impl BuildConfig {
    /// A build of the universe at `input` (a directory, or an object-storage URL such as
    /// `s3://bucket/prefix/`) into the spill file `output`, with `target` as the target column
    /// (`None`: a build without one), every other option at its default. The same as
    /// [`BuildOptions::resolve`] given these three options alone, and checked the same way.
    pub fn new(
        input: impl Into<PathBuf>,
        output: impl Into<PathBuf>,
        target: Option<&str>,
    ) -> Result<BuildConfig> {
        BuildOptions {
            input: Some(input.into()),
            output: Some(output.into()),
            target: target.map(str::to_string),
            no_target: Some(target.is_none()),
            ..BuildOptions::default()
        }
        .resolve()
    }

    /// The options that change the output (recorded in the spill file's build metadata). Threads,
    /// capacity, batch size, budget and write mode do not change a byte, so they are left out; nor
    /// does `--on-error` (a skipping build equals a build of the universe without the symbol).
    pub fn output_options(&self) -> serde_json::Value {
        let mut options = serde_json::json!({
            "target": self.target,
            "features": self.features,
            "time_col": self.time_col,
            "max_rows": self.max_rows,
            "float32": self.float32,
            "filters": self.filters,
        });
        // Options added later appear only when set, so files built without them keep their bytes.
        if let Some(unit) = self.time_unit {
            options["time_unit"] = serde_json::json!(unit.name());
        }
        if self.order != RowOrder::Symbol {
            options["order"] = serde_json::json!(self.order.name());
        }
        if let Some(t) = self.cs_transform {
            options["cs_transform"] = serde_json::json!(t.to_string());
        }
        // The rows of a file built with `--exclude` are those of another universe: recorded, so
        // that a driver does not take a shard built without the exclusion as current.
        if !self.exclude.is_empty() {
            let mut exclude = self.exclude.clone();
            exclude.sort();
            exclude.dedup();
            options["exclude"] = serde_json::json!(exclude);
        }
        options
    }
}

/// The message of a configuration error (others as they display).
fn config_message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

/// Parses a byte size: `268435456`, `256MiB`, `256M`, `1.5GiB`, `512k` (K/M/G/T are powers of 1024;
/// `KB`/`MB`/`GB`/`TB` powers of 1000).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| Error::Config(format!("{s:?} is not a size (e.g. 256MiB)")))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(Error::Config(format!(
                "unknown size unit {other:?} in {s:?}"
            )))
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || !(1.0..=1e18).contains(&bytes) {
        return Err(Error::Config(format!(
            "size {s:?} is out of range (1 byte to 1e18 bytes)"
        )));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests;
