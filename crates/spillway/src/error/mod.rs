//! The library's errors. Every variant that comes from input names the file (and the column where
//! there is one); the binary adds nothing but context and an exit code.

use std::path::PathBuf;

mod decode;

pub use decode::{DecodeError, Problem};

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a build (or inspect, or gen) fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An OS call on a path failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--order time`: the symbols' times turn back so often that the transposition's merge
    /// (one entry per run of rows whose time only rises or only falls) does not fit the memory
    /// budget.
    #[error("--order time: the symbols' times turn back often enough to make at least {runs} runs of rows whose time only rises or only falls, more than the {max} a {budget}-byte memory budget lets the transposition merge; sort the inputs by time or raise --memory-budget (the cap grows with it)")]
    OrderRuns {
        /// Runs found so far.
        runs: usize,
        /// The most the merge holds.
        max: usize,
        /// The memory budget.
        budget: u64,
    },
    /// The input directory holds no parquet files.
    #[error("no parquet files in {} (expected <SYMBOL>.parquet or symbol=<SYMBOL>/*.parquet)", dir.display())]
    NoInput {
        /// The input directory.
        dir: PathBuf,
    },
    /// The same symbol appears in both layouts (or twice after percent-decoding).
    #[error("symbol {symbol:?} is given twice: {} and {}", first.display(), second.display())]
    DuplicateSymbol {
        /// The symbol.
        symbol: String,
        /// One place.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
    /// A problem confined to one symbol: fatal under `--on-error fail`, a skip under `skip`.
    #[error(transparent)]
    Symbol(#[from] SymbolError),
    /// A column named in `--features` exists in no file.
    #[error("feature column {column:?} (from --features) is in none of the input files")]
    UnknownFeature {
        /// The column.
        column: String,
    },
    /// Every symbol was skipped or failed.
    #[error("no symbol could be read; nothing to write. {} skipped:{}", skipped.len(), reasons(skipped))]
    NothingToBuild {
        /// Every symbol skipped, with the reason (as the summary lists them).
        skipped: Vec<(String, String)>,
    },
    /// Under `--on-error skip`, symbols still failed while decoding in the last attempt that
    /// `--max-attempts` allows.
    #[error("--on-error skip: {} symbol(s) failed while decoding in attempt {attempts}, the last --max-attempts allows{}:{}", failing.len(), earlier(excluded), reasons(failing))]
    Attempts {
        /// Attempts made.
        attempts: u32,
        /// The symbols that failed in the last attempt, with the reason, in symbol order.
        failing: Vec<(String, String)>,
        /// The symbols earlier attempts excluded, in symbol order.
        excluded: Vec<String>,
    },
    /// A shard build under `--on-error skip` found symbols failing after the plan all shards
    /// share was fixed: leaving them out here alone would make this shard disagree with the
    /// others (and with the single build), so the driver must exclude them everywhere, plan again
    /// and rebuild every shard. The message ends with the symbols as one line of JSON (symbol to
    /// reason) after [`EXCLUDE_MARKER`]; exit code 4.
    #[error("shard {scope}: {} symbol(s) failed after the shards' plan was fixed (--on-error skip); every shard must leave them out: count again with --exclude, plan-cs, and build every shard again. {EXCLUDE_MARKER}{}", skipped.len(), exclude_json(skipped))]
    Exclude {
        /// The shard (`I/N` or `A..B`).
        scope: String,
        /// The symbols, with the reason, in symbol order.
        skipped: Vec<(String, String)>,
    },
    /// The output path would overwrite an input, the summary, or a directory.
    #[error("{0}")]
    OutputPath(String),
    /// The memory budget cannot be met even with the smallest shape the flags allow.
    #[error("memory budget of {} MiB cannot be met: about {} MiB are needed with {readers} reader(s), {batch_rows}-row batches and channel capacity {capacity} (the writer's buffers for {columns} columns take {} MiB, the plan and parsed footers {} MiB; largest file: {}); raise --memory-budget", budget >> 20, needed >> 20, writer >> 20, held >> 20, file.display())]
    Budget {
        /// The budget.
        budget: u64,
        /// The smallest bound the plan could reach.
        needed: u64,
        /// Readers at that bound (one, or `--threads`).
        readers: usize,
        /// Rows per batch at that bound.
        batch_rows: usize,
        /// Channel capacity at that bound (one, or `--channel-capacity`).
        capacity: usize,
        /// Output columns.
        columns: usize,
        /// Of `needed`, the writer's smallest buffers.
        writer: u64,
        /// Of `needed`, what the plan holds (units, the filters' table, parsed footers).
        held: u64,
        /// The file whose reading takes the most memory.
        file: PathBuf,
    },
    /// An option is invalid.
    #[error("invalid option: {0}")]
    Config(String),

    /// Object storage refused or failed a request about the universe as a whole (a missing
    /// bucket, credentials it refuses, retries exhausted while listing). Secrets are scrubbed.
    #[error("{url}: {what}")]
    Remote {
        /// The URL, without credentials.
        url: String,
        /// What went wrong, and the store's own message.
        what: String,
    },
    /// The cross-sectional filters' tables do not fit the memory budget.
    #[error("{0}")]
    FilterMemory(String),
    /// The build was cancelled (a signal, Ctrl-C in Python, [`crate::Cancel::cancel`]). Nothing
    /// was written: the temporary file is gone and a previous output is untouched.
    #[error("cancelled; nothing was written")]
    Cancelled,
    /// Writing the spill file failed (its errors name the output path where there is one).
    #[error(transparent)]
    Spill(#[from] spill::Error),
    /// The OS refused to start a reader thread (thread limits, memory). Nothing was written.
    #[error("cannot start a reader thread")]
    Spawn {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bug: the pipeline broke its own protocol. Nothing was written.
    #[error("internal error (please report): {0}")]
    Internal(String),
    /// A count file or cross-section plan is damaged or malformed.
    #[error("{}", path.display())]
    CsFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: CsFileError,
    },
    /// A count file or cross-section plan was made with other options or for another universe.
    #[error("{}: {what}", path.display())]
    CsMismatch {
        /// The file.
        path: PathBuf,
        /// Which option (or universe, or symbol) differs.
        what: String,
    },
    /// The filesystem an output is written to lacks room for it (checked before writing).
    #[error("{place}: {available} bytes available, {what} needs {needed}: free space or choose another directory")]
    NoRoom {
        /// The directory (as the flag that chose it).
        place: String,
        /// What was to be written.
        what: String,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// A dataset's manifest exists and the command was not asked to replace it (or the store
    /// cannot replace it safely).
    #[error("{}: {what}", path.display())]
    ManifestExists {
        /// The manifest.
        path: PathBuf,
        /// What happened and what to do.
        what: String,
    },
    /// A dataset manifest, or a shard it lists, is wrong.
    #[error("{}: {what}", path.display())]
    Dataset {
        /// The manifest or the shard.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// An append found no row after the dataset's last timestamp (not a failure: nothing to do).
    #[error("no row of the universe is after the dataset's last timestamp ({after} ns): nothing to append")]
    NothingToAppend {
        /// The dataset's last timestamp.
        after: i64,
    },
    /// An append found history the dataset does not hold, or holds otherwise.
    #[error("{}: {what}; rebuild the dataset (`spillway append --rebuild`) to take it", path.display())]
    History {
        /// The manifest.
        path: PathBuf,
        /// Which symbols, and the first timestamp that differs.
        what: String,
    },
    /// A file of a collection has other columns, or another row order, than its first file.
    #[error("{}: {what}; the files of a collection must have the same columns (names, dtypes and roles, in order) and row order", path.display())]
    CollectionSchema {
        /// The file.
        path: PathBuf,
        /// The collection's first file, whose schema every other must have.
        first: PathBuf,
        /// The first column that differs (`None`: the row order does).
        column: Option<String>,
        /// How it differs (naming `first`).
        what: String,
    },
    /// Writing the synthetic universe failed.
    #[error("writing {}", path.display())]
    ParquetWrite {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
}

/// What is wrong with a count or plan file (the caller adds the path).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsFileError {
    /// Reading failed (the I/O error is in the message, not a source: printed once).
    #[error("reading: {0}")]
    Io(std::io::Error),
    /// Not this kind of file.
    #[error("not a spillway {0} file (bad magic)")]
    Magic(&'static str),
    /// A major version this build does not read.
    #[error(
        "format version {0}.{1} is not supported (this spillway reads {major}.x: count and plan again with it)",
        major = crate::plan::cs_file::VERSION.0
    )]
    Version(u16, u16),
    /// The file ends early or its parts do not add up to its length.
    #[error("truncated or malformed: {0}")]
    Length(String),
    /// The JSON header is not what it should be.
    #[error("bad header: {0}")]
    Header(String),
    /// A record breaks a rule.
    #[error("record {index}: {what}")]
    Record {
        /// Which record (from 0).
        index: u64,
        /// What is wrong.
        what: String,
    },
    /// The checksum does not match: the file is damaged.
    #[error(
        "checksum mismatch (stored {stored:#010x}, computed {actual:#010x}): the file is damaged"
    )]
    Checksum {
        /// In the trailer.
        stored: u32,
        /// Of the bytes.
        actual: u32,
    },
}

impl From<std::io::Error> for CsFileError {
    fn from(e: std::io::Error) -> CsFileError {
        CsFileError::Io(e)
    }
}

/// A failure confined to one symbol's files.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct SymbolError {
    /// The symbol.
    pub symbol: String,
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: SymbolErrorKind,
}

/// What is wrong with a symbol's file.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolErrorKind {
    /// The file could not be opened or read.
    #[error("{op}: {message}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        message: String,
    },
    /// The parquet crate refused the file (bad footer, undecodable page, checksum mismatch, ...).
    #[error("{context}: {message}")]
    Parquet {
        /// Where ("reading the footer", "decoding column \"f001\"", ...).
        context: String,
        /// The parquet crate's message.
        message: String,
    },
    /// No time column.
    #[error("no time column {wanted:?} (columns: {columns})")]
    NoTimeColumn {
        /// The column looked for.
        wanted: String,
        /// Some of the columns the file has.
        columns: String,
    },
    /// A column has a type that cannot serve its role.
    #[error("column {column:?} has type {dtype}, which cannot be used as {role}")]
    ColumnType {
        /// The column.
        column: String,
        /// Its type.
        dtype: String,
        /// The role ("the time column", "the target", "a feature").
        role: &'static str,
    },
    /// An integer time column without `--time-unit`.
    #[error("time column {column:?} holds integers ({dtype}); say their unit with --time-unit s|ms|us|ns")]
    IntegerTime {
        /// The column.
        column: String,
        /// Its type.
        dtype: String,
    },
    /// A timestamp does not fit int64 nanoseconds.
    #[error("column {column:?} row {row}: time {value} does not fit int64 nanoseconds since 1970 (years 1677-2262)")]
    TimeOverflow {
        /// The column.
        column: String,
        /// The row in the file.
        row: u64,
        /// The value as stored (with its unit).
        value: String,
    },
    /// The file has fewer (or more) rows than its own metadata says.
    #[error("decoded {got} rows where the footer promises {expected}: the file contradicts its metadata")]
    RowCount {
        /// Rows expected.
        expected: u64,
        /// Rows decoded.
        got: u64,
    },
    /// The file changed between planning and reading.
    #[error("file changed while the build was running (its size, modification time or ETag differs from the plan)")]
    Changed,
    /// The file name is not valid UTF-8, so it cannot name a symbol.
    #[error("file or directory name is not valid UTF-8")]
    NotUtf8,
    /// A hive partition directory holds no parquet file.
    #[error("no parquet files in this symbol directory")]
    Empty,
    /// A hive partition directory has an empty symbol name (`symbol=`).
    #[error("the symbol name is empty (a `symbol=` directory)")]
    EmptyName,
    /// Two top-level columns of one file have the same name.
    #[error("column {column:?} appears twice in the file's schema")]
    DuplicateColumn {
        /// The column.
        column: String,
    },
    /// The fast decoder refused a page.
    #[error("decoding column {column:?}, row group {row_group}, {error}")]
    Decode {
        /// The column.
        column: String,
        /// The row group.
        row_group: usize,
        /// The page and what is wrong.
        error: DecodeError,
    },
    /// The parquet crate panicked on this file (a bug there, caught here).
    #[error("the parquet decoder failed unexpectedly ({0}); the file is probably corrupt")]
    DecoderPanic(String),
    /// spillway's own decoder panicked: a bug in spillway, whatever the file holds.
    #[error("spillway's decoder failed ({0}); this is a bug in spillway, please report it with the file")]
    DecoderBug(String),
}

impl SymbolErrorKind {
    /// What kind of failure this is (see [`ErrorKind`]): a bug in spillway's own decoder is
    /// internal, anything else about a file is data. No catch-all, as in [`Error::kind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            SymbolErrorKind::DecoderBug(_) => ErrorKind::Internal,
            SymbolErrorKind::Io { .. }
            | SymbolErrorKind::Parquet { .. }
            | SymbolErrorKind::NoTimeColumn { .. }
            | SymbolErrorKind::ColumnType { .. }
            | SymbolErrorKind::IntegerTime { .. }
            | SymbolErrorKind::TimeOverflow { .. }
            | SymbolErrorKind::RowCount { .. }
            | SymbolErrorKind::Changed
            | SymbolErrorKind::NotUtf8
            | SymbolErrorKind::Empty
            | SymbolErrorKind::EmptyName
            | SymbolErrorKind::DuplicateColumn { .. }
            | SymbolErrorKind::Decode { .. }
            | SymbolErrorKind::DecoderPanic(_) => ErrorKind::Data,
        }
    }
}

impl SymbolError {
    /// A symbol error.
    pub fn new(symbol: &str, path: impl Into<PathBuf>, kind: SymbolErrorKind) -> SymbolError {
        SymbolError {
            symbol: symbol.to_string(),
            path: path.into(),
            kind,
        }
    }
}

/// What precedes the JSON object of symbols to exclude in [`Error::Exclude`]'s message.
pub const EXCLUDE_MARKER: &str = "symbols to exclude: ";

/// The symbols earlier attempts excluded, for [`Error::Attempts`]'s message (up to 10 named).
fn earlier(excluded: &[String]) -> String {
    match excluded.len() {
        0 => String::new(),
        n => format!(
            " ({n} excluded by earlier attempts: {}{})",
            excluded[..n.min(10)].join(", "),
            if n > 10 { ", ..." } else { "" }
        ),
    }
}

/// The symbols to exclude as one JSON object, symbol to reason (after [`EXCLUDE_MARKER`]).
fn exclude_json(skipped: &[(String, String)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = skipped
        .iter()
        .map(|(s, r)| (s.clone(), serde_json::Value::String(r.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Up to 10 skip reasons, one per line.
fn reasons(skipped: &[(String, String)]) -> String {
    let mut s: String = skipped
        .iter()
        .take(10)
        .map(|(symbol, reason)| format!("\n  {symbol}: {reason}"))
        .collect();
    if skipped.len() > 10 {
        s += &format!("\n  ... and {} more", skipped.len() - 10);
    }
    s
}

/// What kind of failure an error is. It decides the exit code, in this one place:
///
/// | code | kind |
/// |---:|---|
/// | 0 | success |
/// | 1 | [`ErrorKind::Data`]: a bad file, a bad value, an I/O failure, a budget that cannot be met |
/// | 2 | [`ErrorKind::Usage`]: a bad flag, option or config file |
/// | 3 | [`ErrorKind::Internal`]: a bug in spillway (please report) |
/// | 128 + signal | [`ErrorKind::Cancelled`]: stopped by SIGINT (130), SIGTERM (143), SIGHUP (129) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input (or the machine) cannot give what was asked: exit code 1.
    Data,
    /// The request itself is invalid: exit code 2.
    Usage,
    /// spillway broke its own protocol: exit code 3.
    Internal,
    /// The caller cancelled: exit code 128 + the signal's number.
    Cancelled,
    /// A shard found symbols that every shard must exclude ([`Error::Exclude`]): exit code 4.
    /// The driver excludes them, plans again and rebuilds the shards; retrying the same task
    /// would fail again.
    Exclude,
}

impl ErrorKind {
    /// The process exit code of this kind (for [`ErrorKind::Cancelled`], the SIGINT code; the CLI
    /// uses the code of the signal it received).
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Data => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Internal => 3,
            ErrorKind::Cancelled => 130,
            ErrorKind::Exclude => 4,
        }
    }
}

impl Error {
    /// What kind of failure this is (see [`ErrorKind`]). Every variant is named, with no
    /// catch-all: a new variant does not compile until its exit code is chosen here.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_)
            | Error::UnknownFeature { .. }
            | Error::OutputPath(_)
            | Error::CsMismatch { .. }
            | Error::ManifestExists { .. } => ErrorKind::Usage,
            Error::Io { .. }
            | Error::OrderRuns { .. }
            | Error::NoInput { .. }
            | Error::DuplicateSymbol { .. }
            | Error::NothingToBuild { .. }
            | Error::Attempts { .. }
            | Error::Budget { .. }
            | Error::Remote { .. }
            | Error::FilterMemory(_)
            | Error::Spawn { .. }
            | Error::CsFile { .. }
            | Error::NoRoom { .. }
            | Error::Dataset { .. }
            | Error::NothingToAppend { .. }
            | Error::History { .. }
            | Error::CollectionSchema { .. }
            | Error::ParquetWrite { .. } => ErrorKind::Data,
            Error::Symbol(e) => e.kind.kind(),
            Error::Spill(e) if e.is_bug() => ErrorKind::Internal,
            Error::Spill(_) => ErrorKind::Data,
            Error::Internal(_) => ErrorKind::Internal,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Exclude { .. } => ErrorKind::Exclude,
        }
    }

    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
