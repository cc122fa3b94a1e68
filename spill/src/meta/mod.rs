//! The metadata block: its JSON encoding, and the validation every reader runs before it hands out
//! a single byte (offsets, lengths, alignment, overlaps, tiling, names, caps).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{short, Error, Result};
use crate::format::{caps, DType, Role};
use crate::timestamps::{Order, RawTimestamps, Timestamps};

mod check;

use check::{check_cap, check_columns, check_index, check_symbols};
pub(crate) use check::{check_chunk_bytes, check_name};

/// The unit of every time column's values: nanoseconds since the Unix epoch, UTC.
pub const TIME_UNIT: &str = "ns";

/// A column as recorded in the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Unique, non-empty name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// What the column means.
    pub role: Role,
    /// Time columns: the unit of the values, always `Some("ns")` (int64 nanoseconds since the
    /// Unix epoch, UTC; 1.0 files, which have no `unit` key, are so by definition). `None` for
    /// other columns.
    pub unit: Option<String>,
    /// Time columns: the source's time zone (an IANA name like `America/New_York` or an offset
    /// like `+05:00`), `None` for a naive source or a 1.0 file. The values are UTC whatever it
    /// says: it is what exporters put back (`timestamp[ns, <zone>]`). `None` for other columns.
    pub timezone: Option<String>,
    /// Byte offset of the first value (a multiple of 4096).
    pub offset: u64,
    /// Byte length (rows x dtype size).
    pub length: u64,
    /// CRC-32 of each `chunk_bytes` piece of the column's bytes, in order.
    pub checksums: Vec<u32>,
    /// Cheap statistics computed while writing.
    pub stats: Stats,
}

/// Cheap per-column statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stats {
    /// Smallest value (floats: smallest non-NaN, -0.0 < +0.0); `None` when there is none.
    pub min: Option<Scalar>,
    /// Largest value (floats: largest non-NaN); `None` when there is none.
    pub max: Option<Scalar>,
    /// Number of NaN values (float columns only).
    pub nan_count: Option<u64>,
    /// Mean of the finite values (float columns of 1.1 files); `None` when there is none.
    pub mean: Option<f64>,
    /// Population standard deviation (ddof = 0) of the finite values (float columns of 1.1
    /// files); `None` when there is none.
    pub std: Option<f64>,
}

/// A statistic's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// A float column's value, widened exactly to f64.
    Float(f64),
    /// A signed integer column's value.
    Int(i64),
    /// An unsigned integer column's value.
    UInt(u64),
}

/// A symbol and its rows `[start, stop)`. In a time-major file a symbol's rows are not contiguous
/// (its code is in the `symbol` column): there `start == stop == 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Unique, non-empty name.
    pub name: String,
    /// First row (0 in a time-major file).
    pub start: u64,
    /// One past the last row (0 in a time-major file).
    pub stop: u64,
}

impl Symbol {
    /// Row count.
    pub fn len(&self) -> u64 {
        self.stop - self.start
    }

    /// Whether the symbol has no rows.
    pub fn is_empty(&self) -> bool {
        self.start == self.stop
    }
}

/// The validated metadata of a spill file.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Rows in every column.
    pub nrows: u64,
    /// Bytes per checksummed chunk.
    pub chunk_bytes: u64,
    /// Columns in stored order.
    pub columns: Vec<Column>,
    /// How the rows are ordered (format 1.2; earlier files are symbol-major).
    pub order: Order,
    /// Symbol table; code `i` is `symbols[i]`. Symbol-major: the ranges tile `[0, nrows)` in
    /// order; time-major: names only (every range `0..0`).
    pub symbols: Vec<Symbol>,
    /// Time-major files: where each timestamp's rows lie (they tile `[0, nrows)`). `None` in
    /// symbol-major files.
    pub timestamps: Option<Timestamps>,
    /// Free-form build metadata (tool version, options, input fingerprints).
    pub build: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct RawMeta {
    nrows: u64,
    chunk_bytes: u64,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    order: Option<Value>,
    columns: Vec<RawColumn>,
    symbols: Vec<RawSymbol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamps: Option<RawTimestamps>,
    #[serde(default)]
    build: Map<String, Value>,
}

#[derive(Serialize, Deserialize)]
struct RawColumn {
    name: String,
    dtype: String,
    #[serde(default)]
    role: Option<String>,
    // Values, not typed fields: they are only interpreted on time columns (ignored elsewhere).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    unit: Option<Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    timezone: Option<Value>,
    offset: u64,
    length: u64,
    checksums: Vec<u32>,
    stats: RawStats,
}

#[derive(Serialize, Deserialize)]
struct RawStats {
    min: Value,
    max: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nan_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    std: Option<Value>,
}

/// A key that is present, `null` included (`Some(Value::Null)`); an absent key is `None` through
/// `#[serde(default)]`. (A plain `Option<Value>` reads `null` as absent.)
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Serialize, Deserialize)]
struct RawSymbol {
    name: String,
    // Symbol-major files only (time-major symbols carry names only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop: Option<u64>,
}

/// Number of checksum chunks of a region of `length` bytes.
pub fn chunk_count(length: u64, chunk_bytes: u64) -> u64 {
    length.div_ceil(chunk_bytes)
}

impl Metadata {
    /// Serializes to the stored JSON (compact; same metadata, same bytes).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let ranges = self.order == Order::Symbol;
        let raw = RawMeta {
            nrows: self.nrows,
            chunk_bytes: self.chunk_bytes,
            order: Some(Value::from(self.order.name())),
            columns: self
                .columns
                .iter()
                .map(|c| {
                    let time = c.role == Role::Time;
                    // Float columns always carry mean and std (null when there is none).
                    let moment = |v: Option<f64>| {
                        (c.dtype.is_float() || v.is_some()).then(|| float_to_json(v))
                    };
                    RawColumn {
                        name: c.name.clone(),
                        dtype: c.dtype.name().to_string(),
                        role: Some(c.role.name().to_string()),
                        unit: time.then(|| Value::from(c.unit.as_deref().unwrap_or(TIME_UNIT))),
                        timezone: time
                            .then(|| c.timezone.as_deref().map_or(Value::Null, Value::from)),
                        offset: c.offset,
                        length: c.length,
                        checksums: c.checksums.clone(),
                        stats: RawStats {
                            min: scalar_to_json(c.stats.min),
                            max: scalar_to_json(c.stats.max),
                            nan_count: c.stats.nan_count,
                            mean: moment(c.stats.mean),
                            std: moment(c.stats.std),
                        },
                    }
                })
                .collect(),
            symbols: self
                .symbols
                .iter()
                .map(|s| RawSymbol {
                    name: s.name.clone(),
                    start: ranges.then_some(s.start),
                    stop: ranges.then_some(s.stop),
                })
                .collect(),
            timestamps: self.timestamps.as_ref().map(Timestamps::to_raw),
            build: self.build.clone(),
        };
        serde_json::to_vec(&raw).map_err(|e| Error::BuildMetadata(e.to_string()))
    }

    /// Parses and validates metadata read from a file whose data area ends at `data_end` (the
    /// metadata offset). Nothing is trusted: every field is checked before it is used.
    pub fn parse(bytes: &[u8], data_end: u64) -> Result<Metadata> {
        // A strict pass refusing duplicate keys anywhere, then the typed parse.
        let json = |e: serde_json::Error| Error::MetadataJson(e.to_string());
        crate::json::check_strict(bytes).map_err(json)?;
        let raw: RawMeta = serde_json::from_slice(bytes).map_err(json)?;
        check_cap("row count", raw.nrows, caps::MAX_ROWS)?;
        check_cap(
            "column count",
            raw.columns.len() as u64,
            caps::MAX_COLUMNS as u64,
        )?;
        check_cap(
            "symbol count",
            raw.symbols.len() as u64,
            caps::MAX_SYMBOLS as u64,
        )?;
        check_chunk_bytes(raw.chunk_bytes)?;
        if let Some(ts) = &raw.timestamps {
            check_cap("timestamp count", ts.count, caps::MAX_ROWS)?;
            let runs = 2 * caps::MAX_TIMESTAMP_RUNS;
            check_cap("timestamp step runs", ts.steps.len / 2, runs / 2)?;
            check_cap("timestamp row runs", ts.rows.len / 2, runs / 2)?;
        }
        let order = parse_order(raw.order)?;

        let mut columns = Vec::with_capacity(raw.columns.len());
        for c in raw.columns {
            let dtype = DType::from_name(&c.dtype).ok_or_else(|| Error::UnknownDType {
                column: short(&c.name),
                dtype: short(&c.dtype),
            })?;
            let stats = parse_stats(&c.name, dtype, &c.stats)?;
            let role = c.role.as_deref().map_or(Role::Other, Role::from_name);
            let (unit, timezone) = match role {
                Role::Time => parse_time_keys(&c.name, c.unit, c.timezone)?,
                _ => (None, None),
            };
            columns.push(Column {
                role,
                unit,
                timezone,
                name: c.name,
                dtype,
                offset: c.offset,
                length: c.length,
                checksums: c.checksums,
                stats,
            });
        }
        check_columns(&columns, raw.nrows, raw.chunk_bytes, data_end)?;
        let stored = raw
            .symbols
            .iter()
            .map(|s| (s.name.as_str(), s.start, s.stop));
        check_symbols(stored, raw.nrows, order)?;
        let timestamps = match raw.timestamps {
            Some(t) => Some(Timestamps::from_runs(
                t.count,
                t.first,
                &t.steps.values,
                &t.rows.values,
            )?),
            None => None,
        };
        check_index(order, timestamps.as_ref(), raw.nrows)?;
        let symbols = raw
            .symbols
            .into_iter()
            .map(|s| Symbol {
                name: s.name,
                start: s.start.unwrap_or(0),
                stop: s.stop.unwrap_or(0),
            })
            .collect();
        Ok(Metadata {
            nrows: raw.nrows,
            chunk_bytes: raw.chunk_bytes,
            order,
            columns,
            symbols,
            timestamps,
            build: raw.build,
        })
    }

    /// Checks every structural rule of SPEC.md against a data area ending at `data_end`.
    pub fn validate(&self, data_end: u64) -> Result<()> {
        check_columns(&self.columns, self.nrows, self.chunk_bytes, data_end)?;
        let ranges = self.order == Order::Symbol;
        let symbols = self.symbols.iter().map(|s| {
            // A time-major symbol's range is 0..0; anything else is a range it may not have.
            let range = ranges || (s.start, s.stop) != (0, 0);
            (
                s.name.as_str(),
                range.then_some(s.start),
                range.then_some(s.stop),
            )
        });
        check_symbols(symbols, self.nrows, self.order)?;
        check_index(self.order, self.timestamps.as_ref(), self.nrows)
    }
}

/// The `order` key: absent is symbol-major; else the string `"symbol"` or `"time"`.
fn parse_order(v: Option<Value>) -> Result<Order> {
    match v {
        None => Ok(Order::Symbol),
        Some(Value::String(s)) => {
            Order::from_name(&s).ok_or_else(|| Error::UnknownOrder { order: short(&s) })
        }
        Some(_) => Err(Error::MetadataJson("order is not a string".into())),
    }
}

/// Reads a time column's `unit` (absent or `"ns"`) and `timezone` (absent, null or a string).
fn parse_time_keys(
    column: &str,
    unit: Option<Value>,
    timezone: Option<Value>,
) -> Result<(Option<String>, Option<String>)> {
    let unit = match unit {
        None => TIME_UNIT.to_string(),
        Some(Value::String(u)) => u,
        Some(other) => other.to_string(),
    };
    let timezone = match timezone {
        None | Some(Value::Null) => None,
        Some(Value::String(z)) => Some(z),
        Some(_) => {
            return Err(Error::BadTimezone {
                column: short(column),
                reason: "is not a string or null",
            })
        }
    };
    // The unit's value and the zone's length are checked with the rest of the column.
    Ok((Some(unit), timezone))
}

/// A mean or standard deviation: a JSON number, or null when there is none.
fn float_to_json(v: Option<f64>) -> Value {
    // The accumulator gives finite values only, so from_f64 cannot fail; null if it ever did.
    v.and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn scalar_to_json(s: Option<Scalar>) -> Value {
    match s {
        None => Value::Null,
        Some(Scalar::Int(v)) => Value::from(v),
        Some(Scalar::UInt(v)) => Value::from(v),
        Some(Scalar::Float(v)) if v == f64::INFINITY => Value::from("inf"),
        Some(Scalar::Float(v)) if v == f64::NEG_INFINITY => Value::from("-inf"),
        // NaN never reaches a statistic (min/max skip NaN), so from_f64 cannot fail here;
        // Null is the honest fallback if it ever did.
        Some(Scalar::Float(v)) => {
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
        }
    }
}

fn parse_stats(column: &str, dtype: DType, raw: &RawStats) -> Result<Stats> {
    let bad =
        |what: &str| Error::MetadataJson(format!("column {:?}: bad stats {what}", short(column)));
    let scalar = |v: &Value| -> Result<Option<Scalar>> {
        let s = match (v, dtype.is_float()) {
            (Value::Null, _) => return Ok(None),
            (Value::String(s), true) if s == "inf" => Scalar::Float(f64::INFINITY),
            (Value::String(s), true) if s == "-inf" => Scalar::Float(f64::NEG_INFINITY),
            (Value::Number(n), true) => Scalar::Float(n.as_f64().ok_or_else(|| bad("number"))?),
            (Value::Number(n), false) if dtype.is_unsigned() => {
                Scalar::UInt(n.as_u64().ok_or_else(|| bad("unsigned integer"))?)
            }
            (Value::Number(n), false) => Scalar::Int(n.as_i64().ok_or_else(|| bad("integer"))?),
            _ => return Err(bad("value")),
        };
        Ok(Some(s))
    };
    // Absent (1.0 files, integer columns) or null: none. Else a finite number (JSON has no
    // other), and a standard deviation is not negative.
    let moment = |v: &Option<Value>, what: &str| -> Result<Option<f64>> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && (what == "mean" || x >= 0.0) => Ok(Some(x)),
                _ => Err(bad(what)),
            },
            Some(_) => Err(bad(what)),
        }
    };
    let stats = Stats {
        min: scalar(&raw.min)?,
        max: scalar(&raw.max)?,
        nan_count: raw.nan_count,
        mean: moment(&raw.mean, "mean")?,
        std: moment(&raw.std, "std")?,
    };
    if dtype.is_float() != stats.nan_count.is_some() {
        return Err(bad("nan_count (floats only, and required for floats)"));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_anywhere() {
        let ok = br#"{"nrows":0,"chunk_bytes":4096,"columns":[],"symbols":[],"build":{"a":1}}"#;
        assert!(Metadata::parse(ok, 4096).is_ok());
        let dup_top = br#"{"nrows":0,"nrows":0,"chunk_bytes":4096,"columns":[],"symbols":[]}"#;
        let dup_build =
            br#"{"nrows":0,"chunk_bytes":4096,"columns":[],"symbols":[],"build":{"a":1,"a":2}}"#;
        for bad in [&dup_top[..], &dup_build[..]] {
            assert!(
                matches!(Metadata::parse(bad, 4096), Err(Error::MetadataJson(m)) if m.contains("duplicate"))
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut s = String::from(
            r#"{"nrows":0,"chunk_bytes":4096,"columns":[],"symbols":[],"build":{"x":"#,
        );
        s.push_str(&"[".repeat(100_000));
        assert!(matches!(
            Metadata::parse(s.as_bytes(), 4096),
            Err(Error::MetadataJson(_))
        ));
    }

    #[test]
    fn wrong_types_are_refused() {
        for bad in [
            &br#"{"nrows":-1,"chunk_bytes":4096,"columns":[],"symbols":[]}"#[..],
            br#"{"nrows":1.0,"chunk_bytes":4096,"columns":[],"symbols":[]}"#,
            br#"{"nrows":18446744073709551616,"chunk_bytes":4096,"columns":[],"symbols":[]}"#,
            br#"{"nrows":0,"chunk_bytes":4096,"columns":{},"symbols":[]}"#,
            br#"[1,2]"#,
        ] {
            assert!(
                matches!(Metadata::parse(bad, 4096), Err(Error::MetadataJson(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
