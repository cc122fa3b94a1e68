//! The options that are one of a few names (`--on-error fail|skip`, `--order symbol|time`, ...):
//! enums that parse from their lower-case names ([`std::str::FromStr`]) and list them in `NAMES`,
//! which the CLI hands to clap, so the library needs no clap.

use serde::{Deserialize, Serialize};

/// Enums that parse from (and list) their lower-case names.
macro_rules! named {
    ($ty:ident { $($variant:ident = $name:literal),* $(,)? }) => {
        impl $ty {
            /// The names this enum parses from, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// The name of this value.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> $crate::error::Result<$ty> {
                match s {
                    $($name => Ok($ty::$variant),)*
                    other => Err($crate::error::Error::Config(format!(
                        "{other:?} is not one of {}",
                        $ty::NAMES.join(", ")
                    ))),
                }
            }
        }
    };
}

/// What to do when a symbol's files fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Stop the build: non-zero exit, no output file.
    #[default]
    Fail,
    /// Leave the symbol out, list it in the summary, and build the rest.
    Skip,
}

/// How the spill file's bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// The fastest the output filesystem supports.
    #[default]
    Auto,
    /// Bounded memory-mapped windows.
    Mmap,
    /// O_DIRECT with aligned per-column staging (fails where the filesystem refuses it).
    Direct,
}

/// How the output's rows are ordered (`--order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowOrder {
    /// Symbol-major: each symbol's rows contiguous, in time order (format 1.0 onwards).
    #[default]
    Symbol,
    /// Time-major (format 1.2): rows sorted by (time, symbol code), each timestamp's rows
    /// contiguous, with the timestamp index in the file. Built by a symbol-major pass into a
    /// hidden intermediate file and a bounded transposition out of it (`order`).
    Time,
}

/// Which decoder reads the parquet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// The fast decoder where a file allows it (flat numeric columns, plain or dictionary pages),
    /// arrow-rs elsewhere.
    #[default]
    Auto,
    /// arrow-rs for every file (the reference the fast decoder is tested against).
    Arrow,
}

/// What `--if-changed` compares of the input files (and what the build records for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// Path, size, modification time and footer bytes: a `stat` and a footer read per file.
    #[default]
    Stamp,
    /// Also a CRC-32 of every file's bytes, recorded by the build: sees a rewrite that keeps
    /// size, footer and modification time (`cp -p`, `rsync -a`), at the cost of reading every
    /// input once more.
    Content,
}

pub(crate) use named;

named!(OnError { Fail = "fail", Skip = "skip" });
named!(WriteMode { Auto = "auto", Mmap = "mmap", Direct = "direct" });
named!(Decoder { Auto = "auto", Arrow = "arrow" });
named!(RowOrder { Symbol = "symbol", Time = "time" });
named!(Freshness { Stamp = "stamp", Content = "content" });

/// The unit of an integer time column (`--time-unit`): seconds, milli-, micro- or nanoseconds
/// since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

named!(EpochUnit { S = "s", Ms = "ms", Us = "us", Ns = "ns" });

impl EpochUnit {
    /// The arrow time unit of the same name.
    pub fn arrow(self) -> arrow_schema::TimeUnit {
        match self {
            EpochUnit::S => arrow_schema::TimeUnit::Second,
            EpochUnit::Ms => arrow_schema::TimeUnit::Millisecond,
            EpochUnit::Us => arrow_schema::TimeUnit::Microsecond,
            EpochUnit::Ns => arrow_schema::TimeUnit::Nanosecond,
        }
    }
}
