//! What each input column can be: a numeric feature or target, a time column, or neither.

use arrow_schema::{DataType, TimeUnit};

/// How a column's values become the output time (int64 ns since the epoch, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// Arrow timestamp of a unit (zoned or naive: naive is taken as UTC).
    Timestamp(TimeUnit),
    /// Days since the epoch; midnight UTC.
    Date32,
    /// Milliseconds since the epoch.
    Date64,
    /// Spark/Impala INT96 (Julian day + nanoseconds of day), checked exactly during planning.
    Int96,
    /// An integer column of epoch times in a unit given by `--time-unit`.
    Epoch(TimeUnit),
}

impl TimeKind {
    /// Nanoseconds per stored unit.
    pub fn factor(self) -> i64 {
        match self {
            TimeKind::Timestamp(u) | TimeKind::Epoch(u) => match u {
                TimeUnit::Second => 1_000_000_000,
                TimeUnit::Millisecond => 1_000_000,
                TimeUnit::Microsecond => 1_000,
                TimeUnit::Nanosecond => 1,
            },
            TimeKind::Date64 => 1_000_000,
            TimeKind::Int96 => 1,
            TimeKind::Date32 => 86_400_000_000_000,
        }
    }

    /// A short name for messages.
    pub fn unit_name(self) -> &'static str {
        match self {
            TimeKind::Timestamp(u) | TimeKind::Epoch(u) => match u {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            },
            TimeKind::Date64 => "ms",
            TimeKind::Int96 => "ns",
            TimeKind::Date32 => "days",
        }
    }

    /// A stored value in nanoseconds since the epoch; `Err` with the value as text when it does
    /// not fit int64 nanoseconds. With [`TimeKind::scale_into`], the only place stored times
    /// are scaled.
    pub fn to_ns(self, v: i64) -> Result<i64, String> {
        v.checked_mul(self.factor())
            .ok_or_else(|| format!("{v} {}", self.unit_name()))
    }

    /// Stored values in nanoseconds, appended to `out`; `Err` with the index and the value as
    /// text at the first that does not fit. One loop the compiler can keep tight.
    pub fn scale_into(self, raw: &[i64], out: &mut Vec<i64>) -> Result<(), (usize, String)> {
        let factor = self.factor();
        if factor == 1 {
            out.extend_from_slice(raw);
            return Ok(());
        }
        // Values within +-(i64::MAX / factor) cannot overflow: check the slice's range once.
        let limit = i64::MAX / factor;
        if raw.iter().all(|&v| (-limit..=limit).contains(&v)) {
            out.extend(raw.iter().map(|&v| v * factor));
            return Ok(());
        }
        for (i, &v) in raw.iter().enumerate() {
            out.push(self.to_ns(v).map_err(|text| (i, text))?);
        }
        Ok(())
    }
}

/// The role a column's type allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Converts to float: ints, uints, floats (incl. float16), decimals, booleans.
    Numeric,
    /// All values null (null-typed): reads as NaN wherever a number is expected.
    Null,
    /// Usable as the time column (and nothing else).
    Time(TimeKind),
    /// Anything else (strings, binary, nested, durations, ...): not a feature.
    Other,
}

/// Classifies an arrow type. `int96` says the parquet leaf is INT96 (arrow shows it as a naive
/// nanosecond timestamp, and silently wraps values past 2262: we must know).
pub fn classify(dtype: &DataType, int96: bool) -> Kind {
    use DataType::*;
    match dtype {
        Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _) => Kind::Numeric,
        Null => Kind::Null,
        Timestamp(_, _) if int96 => Kind::Time(TimeKind::Int96),
        Timestamp(unit, _) => Kind::Time(TimeKind::Timestamp(*unit)),
        Date32 => Kind::Time(TimeKind::Date32),
        Date64 => Kind::Time(TimeKind::Date64),
        Dictionary(_, value) => match classify(value, false) {
            Kind::Numeric => Kind::Numeric,
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

/// Whether an integer column can hold epoch times (`--time-unit`): signed integers, and unsigned
/// ones that fit int64.
pub fn is_epoch_integer(dtype: &DataType) -> bool {
    use DataType::*;
    matches!(
        dtype,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32
    )
}

/// Whether an auto-detected feature list leaves this column out by name.
pub fn excluded_by_name(name: &str) -> bool {
    name == "symbol" || name.starts_with("__index_level_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(classify(&DataType::Float16, false), Kind::Numeric);
        assert_eq!(classify(&DataType::Decimal128(20, 4), false), Kind::Numeric);
        assert_eq!(classify(&DataType::Utf8, false), Kind::Other);
        assert_eq!(
            classify(&DataType::Date32, false),
            Kind::Time(TimeKind::Date32)
        );
        let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
        assert_eq!(classify(&ns, true), Kind::Time(TimeKind::Int96));
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(classify(&dict, false), Kind::Other);
        assert!(excluded_by_name("__index_level_0__") && !excluded_by_name("symbols"));
    }
}
