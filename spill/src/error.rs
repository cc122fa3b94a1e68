//! The one error type of the crate: every way opening, validating, reading or writing a spill file
//! can fail, each with the column, offset or length that failed.

use std::io;
use std::path::PathBuf;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong with a spill file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a file failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done ("opening", "writing", "renaming to", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    // ---- structure: header and trailer ----
    /// Fewer bytes than the smallest spill file.
    #[error("file is {len} bytes, shorter than the smallest spill file ({min} bytes): truncated or not a spill file")]
    TooSmall {
        /// The length found.
        len: u64,
        /// The minimum.
        min: u64,
    },
    /// The first 8 bytes are not the spill magic.
    #[error("not a spill file (bad magic at offset 0)")]
    BadMagic,
    /// The header's alignment field is not 4096.
    #[error("header alignment field is {align}, expected 4096")]
    BadAlignmentField {
        /// The value found.
        align: u32,
    },
    /// No commit mark at the end of the file: the writer never finished, or the file was truncated.
    #[error("no trailer magic at the end of the file: incomplete (never committed) or truncated")]
    NotCommitted,
    /// The trailer's own checksum does not match.
    #[error("trailer checksum mismatch (stored {stored:#010x}, computed {actual:#010x})")]
    TrailerChecksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        actual: u32,
    },
    /// Reserved trailer bytes are not zero.
    #[error("reserved trailer bytes are not zero")]
    TrailerReserved,
    /// The major version is not one this reader knows.
    #[error("format version {major}.{minor} is not supported (this reader reads {known}.x)")]
    UnsupportedVersion {
        /// Major found.
        major: u16,
        /// Minor found.
        minor: u16,
        /// Major this reader supports.
        known: u16,
    },
    /// The header and trailer disagree on the version.
    #[error("header says version {header_major}.{header_minor}, trailer says {trailer_major}.{trailer_minor}")]
    VersionMismatch {
        /// Header major.
        header_major: u16,
        /// Header minor.
        header_minor: u16,
        /// Trailer major.
        trailer_major: u16,
        /// Trailer minor.
        trailer_minor: u16,
    },
    /// The file needs features this reader does not have.
    #[error("file requires features {bits:#x} that this reader does not know; upgrade the reader")]
    UnsupportedFeatures {
        /// The unknown bits.
        bits: u64,
    },
    /// Unknown checksum algorithm id.
    #[error("unknown checksum algorithm id {id}")]
    UnsupportedChecksum {
        /// The id found.
        id: u32,
    },
    /// The length recorded in the trailer is not the file's length.
    #[error("trailer records a file length of {recorded} bytes but the file has {actual}: truncated or appended to")]
    FileLength {
        /// Recorded length.
        recorded: u64,
        /// Actual length.
        actual: u64,
    },

    // ---- metadata ----
    /// The metadata block is not where the trailer says, or runs out of the file.
    #[error("metadata block at offset {offset} length {len} does not end at the trailer (file of {file_len} bytes)")]
    MetadataBounds {
        /// Offset recorded.
        offset: u64,
        /// Length recorded.
        len: u64,
        /// File length.
        file_len: u64,
    },
    /// A length or count over a hard cap.
    #[error("{what} is {value}, over the cap of {cap}")]
    OverCap {
        /// What was counted.
        what: &'static str,
        /// Value found.
        value: u64,
        /// The cap.
        cap: u64,
    },
    /// Metadata checksum mismatch.
    #[error("metadata checksum mismatch (stored {stored:#010x}, computed {actual:#010x}): metadata is corrupt")]
    MetadataChecksum {
        /// Stored value.
        stored: u32,
        /// Computed value.
        actual: u32,
    },
    /// Metadata is not the JSON the spec describes.
    #[error("metadata is not valid: {0}")]
    MetadataJson(String),
    /// An unknown dtype name.
    #[error("column {column:?} has unknown dtype {dtype:?}")]
    UnknownDType {
        /// Column name.
        column: String,
        /// The dtype found.
        dtype: String,
    },
    /// Two columns have the same name.
    #[error("duplicate column name {name:?}")]
    DuplicateColumn {
        /// The name.
        name: String,
    },
    /// A column or symbol name is empty or too long.
    #[error("{what} name {name:?} is empty or longer than {max} bytes")]
    BadName {
        /// "column" or "symbol".
        what: &'static str,
        /// The name (shortened).
        name: String,
        /// The cap.
        max: usize,
    },
    /// A column does not start on a 4096-byte boundary.
    #[error("column {column:?} starts at offset {offset}, not a multiple of 4096")]
    Misaligned {
        /// Column name.
        column: String,
        /// Offset found.
        offset: u64,
    },
    /// A column's length is not rows x dtype size.
    #[error("column {column:?} has {length} bytes, expected {expected} ({nrows} rows of {dtype})")]
    ColumnLength {
        /// Column name.
        column: String,
        /// Length found.
        length: u64,
        /// Length expected.
        expected: u64,
        /// Row count.
        nrows: u64,
        /// The dtype.
        dtype: crate::DType,
    },
    /// A column region is outside the data area (header .. metadata).
    #[error(
        "column {column:?} region [{offset}, {end}) is outside the data area [4096, {data_end})"
    )]
    ColumnBounds {
        /// Column name.
        column: String,
        /// Start.
        offset: u64,
        /// End (may be saturated).
        end: u64,
        /// End of the data area (the metadata offset).
        data_end: u64,
    },
    /// Two column regions overlap.
    #[error("columns {a:?} and {b:?} overlap")]
    Overlap {
        /// One column.
        a: String,
        /// The other.
        b: String,
    },
    /// A column's chunk-checksum list has the wrong length.
    #[error("column {column:?} lists {found} chunk checksums, expected {expected}")]
    ChunkCount {
        /// Column name.
        column: String,
        /// Found.
        found: u64,
        /// Expected.
        expected: u64,
    },
    /// A time column's unit is not nanoseconds (the only unit of format 1), or a column that is
    /// not a time column was given one.
    #[error(
        "column {column:?} has time unit {unit:?}: format 1 defines \"ns\" on time columns only"
    )]
    TimeUnit {
        /// Column name.
        column: String,
        /// The unit found (its JSON text when it is not a string).
        unit: String,
    },
    /// A time zone that is empty, too long, not a string, or on a column that is not a time column.
    #[error("column {column:?}: time zone {reason}")]
    BadTimezone {
        /// Column name.
        column: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The chunk size is not a power of two in range.
    #[error("chunk_bytes {0} is not a power of two between 4096 and 2^30")]
    BadChunkBytes(u64),
    /// Symbol ranges do not tile [0, nrows) in order.
    #[error("symbol {symbol:?} range [{start}, {stop}) does not continue the tiling at row {expected_start} of {nrows}")]
    RangesDoNotTile {
        /// Symbol name.
        symbol: String,
        /// Its start.
        start: u64,
        /// Its stop.
        stop: u64,
        /// Where it should start.
        expected_start: u64,
        /// Row count.
        nrows: u64,
    },
    /// The ranges stop before the last row.
    #[error("symbol ranges end at row {end}, the file has {nrows} rows")]
    RangesShort {
        /// Where the last range stops.
        end: u64,
        /// Row count.
        nrows: u64,
    },
    /// Two symbols have the same name.
    #[error("duplicate symbol name {name:?}")]
    DuplicateSymbol {
        /// The name.
        name: String,
    },

    // ---- time-major files (format 1.2) ----
    /// The metadata's `order` is a string this reader does not know.
    #[error("row order {order:?} is unknown (this reader knows \"symbol\" and \"time\")")]
    UnknownOrder {
        /// The order found (shortened).
        order: String,
    },
    /// The required-feature bit 0 (time-major rows) disagrees with the metadata's `order`.
    #[error("the metadata says the rows are {order}-major but required-feature bit 0 is {}: a time-major file sets it, and only a time-major file", if *bit { "set" } else { "clear" })]
    OrderFeature {
        /// The order the metadata states.
        order: crate::Order,
        /// Whether bit 0 is set.
        bit: bool,
    },
    /// The timestamp index is missing, misplaced or malformed.
    #[error("timestamp index: {0}")]
    BadTimestamps(String),
    /// The timestamp index's rows do not add up to the file's rows.
    #[error("the timestamp index covers {rows} rows, the file has {nrows}")]
    TimestampsDoNotTile {
        /// Rows the index covers (saturated at 2^64 - 1).
        rows: u64,
        /// Row count.
        nrows: u64,
    },
    /// A symbol of a time-major file carries a row range (a symbol's rows are not contiguous there).
    #[error(
        "symbol {symbol:?} has a row range in a time-major file: its symbols carry names only"
    )]
    SymbolRangeInTimeMajor {
        /// Symbol name.
        symbol: String,
    },

    // ---- access ----
    /// No column with that name.
    #[error("no column named {name:?}")]
    NoSuchColumn {
        /// The name asked for.
        name: String,
    },
    /// The requested element type is not the column's dtype.
    #[error("column {column:?} holds {stored}, not {requested}")]
    DTypeMismatch {
        /// Column name.
        column: String,
        /// Stored dtype.
        stored: crate::DType,
        /// Requested dtype.
        requested: crate::DType,
    },
    /// The bytes are not aligned for the element type (only for in-memory buffers; mmaps are).
    #[error("column {column:?} is not aligned in memory for {dtype}")]
    MemoryAlignment {
        /// Column name.
        column: String,
        /// The element type.
        dtype: crate::DType,
    },
    /// The columns asked for a 2-D view are not one dtype at one constant stride.
    #[error("columns {columns} are not one dtype at a constant stride: no zero-copy 2-D view; copy them instead")]
    NotStrided {
        /// The names (shortened).
        columns: String,
    },

    /// A row range outside the file, or reversed.
    #[error("row range [{start}, {stop}) is not within the file's {nrows} rows")]
    BadRowRange {
        /// Start.
        start: u64,
        /// Stop.
        stop: u64,
        /// Rows in the file.
        nrows: u64,
    },
    /// Batch options that cannot be honoured.
    #[error("batch options: {0}")]
    BadBatchOptions(&'static str),
    /// A rank or worker index that is not below its count.
    #[error("batch options: {what}={index} is not in 0..{count_name}={count}")]
    BadPartition {
        /// "rank" or "worker".
        what: &'static str,
        /// The index asked for.
        index: u64,
        /// "world_size" or "num_workers".
        count_name: &'static str,
        /// The count.
        count: u64,
    },
    /// A batch state is not the JSON object of SPEC.md ("Epochs, ranks and workers").
    #[error("batch state is not valid: {0}")]
    BadStateJson(String),
    /// A batch state of a format version this reader does not know.
    #[error("the batch state has spillway_batches={found}; this reader knows 1")]
    StateVersion {
        /// The version found.
        found: u64,
    },
    /// A batch state saved for another file or another selection of rows (its fingerprint differs).
    #[error("the state belongs to another file or another selection of rows (its fingerprint is {saved}, this call's is {call})")]
    StateOtherFile {
        /// The state's fingerprint.
        saved: String,
        /// This call's fingerprint.
        call: String,
    },
    /// A batch state saved with other batch options than this call's.
    #[error("the state was saved with {field}={saved}, this call has {field}={call}")]
    StateMismatch {
        /// The field that differs ("batch_rows", "seed", "epoch", ...).
        field: &'static str,
        /// The state's value (as JSON).
        saved: String,
        /// This call's value (as JSON).
        call: String,
    },
    /// A worker's batch state loaded by another worker, rank, `world_size` or `num_workers`.
    #[error("a worker's state resumes only the same worker at the same world_size and num_workers; merge the workers' states first (saved by rank {saved_rank} of world_size={saved_world_size}, worker {saved_worker} of num_workers={saved_num_workers}; this call is rank {rank} of world_size={world_size}, worker {worker} of num_workers={num_workers})")]
    WorkerStateMoved {
        /// The state's rank.
        saved_rank: u64,
        /// The state's worker.
        saved_worker: u64,
        /// This call's rank.
        rank: u64,
        /// This call's worker.
        worker: u64,
        /// The state's world size.
        saved_world_size: u64,
        /// The state's workers per rank.
        saved_num_workers: u64,
        /// This call's world size.
        world_size: u64,
        /// This call's workers per rank.
        num_workers: u64,
    },
    /// A batch state's position lies past what the epoch holds.
    #[error("the state's {field}={value} is past {max}, the most this epoch allows")]
    StatePastEnd {
        /// "cursor" or "worker_batches".
        field: &'static str,
        /// The state's value.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The file has no column whose role is `time`.
    #[error("the file has no time column")]
    NoTimeColumn,
    /// The file has no column whose role is `symbol` (a time-major file's symbol codes are there).
    #[error("the file has no symbol column")]
    NoSymbolColumn,
    /// An operation that needs a time-major file was asked of a symbol-major one.
    #[error("{what} needs a time-major file (rows sorted by time, each timestamp's rows contiguous); this one is symbol-major")]
    NotTimeMajor {
        /// What was asked ("group sizes", "whole-timestamp batches").
        what: &'static str,
    },
    /// A row range that must start and stop on timestamp boundaries does not.
    #[error("row {row} is not a timestamp boundary (ranges of whole cross-sections start and stop where a timestamp's rows start, or at the end)")]
    NotOnTimestampBoundary {
        /// The row.
        row: u64,
    },
    /// `verify_time_index`: the time column disagrees with the timestamp index.
    #[error("row {row} holds time {found} but the timestamp index says {expected}")]
    TimeIndexMismatch {
        /// The first row that disagrees.
        row: u64,
        /// Its time in the time column.
        found: i64,
        /// Its time in the index.
        expected: i64,
    },

    // ---- writing ----
    /// A write that does not continue the column where it stands.
    #[error("column {column:?}: write at row {row}, but the next row to write is {expected}")]
    OutOfOrder {
        /// Column name.
        column: String,
        /// Row asked for.
        row: u64,
        /// Row expected.
        expected: u64,
    },
    /// A write past the last row.
    #[error("column {column:?}: writing {count} rows at row {row} runs past the {nrows} rows of the layout")]
    PastEnd {
        /// Column name.
        column: String,
        /// Row.
        row: u64,
        /// Rows written.
        count: u64,
        /// Row count.
        nrows: u64,
    },
    /// Column index out of range.
    #[error("column index {index} out of range ({ncols} columns)")]
    NoSuchColumnIndex {
        /// Index.
        index: usize,
        /// Column count.
        ncols: usize,
    },
    /// Bytes handed to a column are not a whole number of elements.
    #[error("column {column:?}: {len} bytes is not a whole number of {dtype} values")]
    PartialElement {
        /// Column name.
        column: String,
        /// Bytes.
        len: usize,
        /// Dtype.
        dtype: crate::DType,
    },
    /// Commit refused: a column is not complete.
    #[error("cannot commit: column {column:?} has {written} of {nrows} rows written")]
    Incomplete {
        /// Column name.
        column: String,
        /// Rows written.
        written: u64,
        /// Rows required.
        nrows: u64,
    },
    /// The build metadata is not a JSON object or does not serialize.
    #[error("build metadata: {0}")]
    BuildMetadata(String),
}

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The OS error, when this is an I/O failure (to tell ENOSPC from EACCES, say).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Whether the caller broke the writer's protocol (writes out of order or out of range, a
    /// commit before every row was written): a bug in the caller, not bad data or a bad file.
    pub fn is_bug(&self) -> bool {
        matches!(
            self,
            Error::OutOfOrder { .. }
                | Error::PastEnd { .. }
                | Error::NoSuchColumnIndex { .. }
                | Error::PartialElement { .. }
                | Error::Incomplete { .. }
        )
    }
}

/// Shortens a name for an error message (names can be up to 4 KiB).
pub(crate) fn short(name: &str) -> String {
    const MAX: usize = 80;
    if name.len() <= MAX {
        return name.to_string();
    }
    let mut end = MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &name[..end])
}
