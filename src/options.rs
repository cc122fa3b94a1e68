//! Flags shared by several subcommands (`#[command(flatten)]`), and the parsers that hand the
//! library's option names to clap, so the library needs no clap.

use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use spillway::config::{BuildOptions, CsTransform, EpochUnit, RowOrder, StorageOptions};
use spillway::gen::GenOptions;

/// A clap parser for a library enum that parses from its names.
pub fn choice<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    PossibleValuesParser::new(names).try_map(|s| s.parse::<T>().map_err(|e| e.to_string()))
}

/// The options that decide what a build reads and writes: `build` and `inspect` take them alike.
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// Input directory: DIR/<SYMBOL>.parquet and/or DIR/symbol=<SYMBOL>/*.parquet; or the same
    /// under an object-storage URL (s3://bucket/prefix/, gs://, az://, abfs://, file://).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// An option of the object store of an --input (or --output) URL, as KEY=VALUE (repeatable):
    /// object_store's keys (aws_endpoint_url, aws_region, aws_allow_http, timeout, ...) over the
    /// environment (AWS_*, GOOGLE_*, AZURE_*), and spillway's requests_in_flight, request_size,
    /// max_retries, retry_timeout. Secrets belong in the environment: the command line is
    /// visible to every user of the machine.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = storage_pair)]
    pub storage_option: Vec<(String, String)>,
    /// Target column; symbols without it are skipped and reported. A build names its target or
    /// says --no-target.
    #[arg(long)]
    pub target: Option<String>,
    /// Build without a target column (`=false` undoes a config file's true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_target: Option<bool>,
    /// Feature columns in output order (default: every numeric column).
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Time column (default: `ts`, else `timestamp`).
    #[arg(long)]
    pub time_col: Option<String>,
    /// Unit of an integer time column (epoch seconds, milli-, micro- or nanoseconds).
    #[arg(long, value_parser = choice::<EpochUnit>(EpochUnit::NAMES))]
    pub time_unit: Option<EpochUnit>,
    /// Keep the last N rows of each symbol (after dropping null times).
    #[arg(long)]
    pub max_rows: Option<u64>,
    /// Keep float64 values instead of converting to float32 (`=false` undoes a config file's true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_float32: Option<bool>,
    /// Peak memory to plan for, e.g. 256MiB (default 256MiB).
    #[arg(long)]
    pub memory_budget: Option<String>,
    /// Drop rows whose target is null or NaN (`=false` undoes a config file's true).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub drop_null_target: Option<bool>,
    /// Drop rows at timestamps where fewer than N rows exist across the universe.
    #[arg(long, value_name = "N")]
    pub min_cs: Option<u64>,
    /// At timestamps with more than K rows, keep exactly K, chosen pseudo-randomly from --seed.
    #[arg(long, value_name = "K")]
    pub max_cs_samples: Option<u64>,
    /// Seed of --max-cs-samples (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Row order: symbol (each symbol's rows together) or time (rows sorted by time then
    /// symbol, each timestamp's rows together, for cross-sectional training; built through a
    /// hidden intermediate file beside the output).
    #[arg(long, value_parser = choice::<RowOrder>(RowOrder::NAMES))]
    pub order: Option<RowOrder>,
    /// With --order time: transform each feature within each timestamp's cross-section. rank:
    /// the percentile rank in (0, 1], ties averaged; zscore: (x - mean) / std (population std;
    /// 0 where it is 0); winsorize=Q: clipped to the Q and 1-Q quantiles (0 <= Q < 0.5). NaN
    /// stays NaN and is left out; the target, time and symbol columns are never transformed.
    #[arg(long, value_name = "rank|zscore|winsorize=Q", value_parser = cs_transform)]
    pub cs_transform: Option<CsTransform>,
}

impl Selection {
    /// These flags as build options (the rest unset).
    pub fn options(&self) -> BuildOptions {
        BuildOptions {
            input: self.input.clone(),
            target: self.target.clone(),
            no_target: self.no_target,
            features: self.features.clone(),
            time_col: self.time_col.clone(),
            time_unit: self.time_unit,
            max_rows: self.max_rows,
            no_float32: self.no_float32,
            memory_budget: self.memory_budget.clone(),
            drop_null_target: self.drop_null_target,
            min_cs: self.min_cs,
            max_cs_samples: self.max_cs_samples,
            seed: self.seed,
            order: self.order,
            cs_transform: self.cs_transform,
            storage: (!self.storage_option.is_empty()).then(|| {
                let mut s = StorageOptions::new();
                for (k, v) in &self.storage_option {
                    s.insert(k, v.clone());
                }
                s
            }),
            ..Default::default()
        }
    }
}

/// Parses a `--cs-transform` (the library's message, without its prefix, names the forms).
fn cs_transform(s: &str) -> Result<CsTransform, String> {
    s.parse().map_err(|e| match e {
        spillway::Error::Config(m) => m,
        other => other.to_string(),
    })
}

/// Parses a `--storage-option KEY=VALUE`.
fn storage_pair(s: &str) -> Result<(String, String), String> {
    StorageOptions::parse_pair(s).map_err(|e| e.to_string())
}

/// The options the environment gives, under a config file and the flags: the storage options
/// in `SPILLWAY_STORAGE_OPTIONS` (a JSON object), through which `spillway.ray` hands them to
/// child processes so that no secret appears on a command line.
pub fn environment() -> anyhow::Result<BuildOptions> {
    let storage = match std::env::var("SPILLWAY_STORAGE_OPTIONS") {
        Ok(text) if !text.trim().is_empty() => Some(StorageOptions::from_json(&text)?),
        _ => None,
    };
    Ok(BuildOptions {
        storage,
        ..Default::default()
    })
}

/// The size of a synthetic universe: `gen` and `demo` take them alike.
#[derive(Debug, Clone, clap::Args)]
pub struct Size {
    /// Symbols.
    #[arg(long, default_value_t = GenOptions::default().symbols)]
    pub symbols: usize,
    /// Rows of the longest symbol.
    #[arg(long, default_value_t = GenOptions::default().rows)]
    pub rows: usize,
    /// Feature columns.
    #[arg(long, default_value_t = GenOptions::default().features)]
    pub features: usize,
}

/// How commands without the build's selection reach object storage (`plan-cs`, `manifest`,
/// `verify`, `clean`): storage options over the environment's, and the scratch directory.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// An option of the object store of URL arguments, as KEY=VALUE (repeatable; see `build
    /// --help`). Secrets belong in the environment.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", value_parser = storage_pair)]
    pub storage_option: Vec<(String, String)>,
    /// Where files fetched from a bucket (or bound for one) are kept while the command runs
    /// (default: the temporary directory).
    #[arg(long, value_name = "DIR")]
    pub scratch: Option<PathBuf>,
}

impl Remote {
    /// The storage options: `SPILLWAY_STORAGE_OPTIONS` under the flags.
    pub fn storage(&self) -> anyhow::Result<StorageOptions> {
        let mut s = environment()?.storage.unwrap_or_default();
        for (k, v) in &self.storage_option {
            s.insert(k, v.clone());
        }
        Ok(s)
    }
}
