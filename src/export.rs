//! `spillway export FILE --to OUT`: a spill file to Parquet or Arrow IPC, streaming.

use std::io::Write;
use std::path::PathBuf;

use spillway::export::{export, parse_rows, ExportOptions, Format};

/// Arguments of `spillway export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The spill file to read.
    file: PathBuf,
    /// Output file: .parquet (snappy) or .arrow (Arrow IPC file, a.k.a. Feather v2).
    #[arg(long)]
    to: PathBuf,
    /// Columns in output order (default: all, stored order).
    #[arg(long, value_delimiter = ',')]
    columns: Option<Vec<String>>,
    /// Rows START:STOP, half-open (either may be left out).
    #[arg(long, value_name = "START:STOP")]
    rows: Option<String>,
    /// Write NaN float values as null.
    #[arg(long)]
    nan_as_null: bool,
    /// Output format when the extension does not say it.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Print what was written as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Parquet,
    Arrow,
}

/// Runs the export.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let opts = ExportOptions {
        columns: a.columns,
        rows: a.rows.as_deref().map(parse_rows).transpose()?,
        nan_as_null: a.nan_as_null,
        format: a.format.map(|f| match f {
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Arrow => Format::Arrow,
        }),
    };
    let r = export(&a.file, &a.to, &opts)?;
    // Written, not printed: a closed pipe is an error the caller maps to a quiet exit, not a panic.
    if a.json {
        writeln!(std::io::stdout().lock(), "{}", serde_json::to_string(&r)?)?;
    } else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "wrote {} ({:?}, {:.1} MiB): {} rows, {} columns",
            r.output.display(),
            r.format,
            r.bytes as f64 / (1u64 << 20) as f64,
            r.rows,
            r.columns
        );
    }
    Ok(0)
}
