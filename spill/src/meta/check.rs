//! The structural rules every reader checks before handing out a byte (SPEC.md, "Validation"):
//! caps, names, column regions, symbols and their ranges, the timestamp index.

use std::collections::HashSet;

use crate::error::{short, Error, Result};
use crate::format::{caps, Role, ALIGN, HEADER_LEN};
use crate::timestamps::{Order, Timestamps};

use super::{chunk_count, Column, TIME_UNIT};

/// The timestamp index: present exactly in time-major files, covering exactly `nrows` rows.
pub(super) fn check_index(order: Order, timestamps: Option<&Timestamps>, nrows: u64) -> Result<()> {
    match (order, timestamps) {
        (Order::Symbol, None) => Ok(()),
        (Order::Symbol, Some(_)) => Err(Error::BadTimestamps(
            "a symbol-major file has a timestamp index".into(),
        )),
        (Order::Time, None) => Err(Error::BadTimestamps(
            "a time-major file has no timestamp index".into(),
        )),
        (Order::Time, Some(t)) if t.nrows() != nrows => Err(Error::TimestampsDoNotTile {
            rows: t.nrows(),
            nrows,
        }),
        (Order::Time, Some(_)) => Ok(()),
    }
}

pub(super) fn check_cap(what: &'static str, value: u64, cap: u64) -> Result<()> {
    if value > cap {
        return Err(Error::OverCap { what, value, cap });
    }
    Ok(())
}

/// Checks the chunk size rule: a power of two in `[4096, 2^30]`.
pub(crate) fn check_chunk_bytes(chunk_bytes: u64) -> Result<()> {
    if !chunk_bytes.is_power_of_two()
        || !(caps::MIN_CHUNK_BYTES..=caps::MAX_CHUNK_BYTES).contains(&chunk_bytes)
    {
        return Err(Error::BadChunkBytes(chunk_bytes));
    }
    Ok(())
}

/// Checks a name is non-empty and within the cap.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > caps::MAX_NAME_BYTES {
        return Err(Error::BadName {
            what,
            name: short(name),
            max: caps::MAX_NAME_BYTES,
        });
    }
    Ok(())
}

pub(super) fn check_columns(
    columns: &[Column],
    nrows: u64,
    chunk_bytes: u64,
    data_end: u64,
) -> Result<()> {
    let mut names = HashSet::with_capacity(columns.len());
    for c in columns {
        check_name("column", &c.name)?;
        if !names.insert(c.name.as_str()) {
            return Err(Error::DuplicateColumn {
                name: short(&c.name),
            });
        }
        check_time_keys(c)?;
        if c.offset % ALIGN != 0 {
            return Err(Error::Misaligned {
                column: short(&c.name),
                offset: c.offset,
            });
        }
        // nrows <= 2^48 and size <= 8, so this cannot overflow.
        let expected = nrows * c.dtype.size();
        if c.length != expected {
            return Err(Error::ColumnLength {
                column: short(&c.name),
                length: c.length,
                expected,
                nrows,
                dtype: c.dtype,
            });
        }
        let end = c.offset.saturating_add(c.length);
        if c.offset < HEADER_LEN || end > data_end {
            return Err(Error::ColumnBounds {
                column: short(&c.name),
                offset: c.offset,
                end,
                data_end,
            });
        }
        let expected_chunks = chunk_count(c.length, chunk_bytes);
        if c.checksums.len() as u64 != expected_chunks {
            return Err(Error::ChunkCount {
                column: short(&c.name),
                found: c.checksums.len() as u64,
                expected: expected_chunks,
            });
        }
    }
    // Overlaps: sort the non-empty regions by offset; each must end before the next starts.
    let mut regions: Vec<&Column> = columns.iter().filter(|c| c.length > 0).collect();
    regions.sort_by_key(|c| c.offset);
    for pair in regions.windows(2) {
        if pair[0].offset + pair[0].length > pair[1].offset {
            return Err(Error::Overlap {
                a: short(&pair[0].name),
                b: short(&pair[1].name),
            });
        }
    }
    Ok(())
}

/// Symbols `(name, start, stop)` in code order: names non-empty and unique; symbol-major, ranges
/// present that tile `[0, nrows)`; time-major, no ranges.
pub(super) fn check_symbols<'a>(
    symbols: impl ExactSizeIterator<Item = (&'a str, Option<u64>, Option<u64>)>,
    nrows: u64,
    order: Order,
) -> Result<()> {
    let mut names = HashSet::with_capacity(symbols.len());
    let mut next = 0u64;
    for (name, start, stop) in symbols {
        check_name("symbol", name)?;
        if !names.insert(name) {
            return Err(Error::DuplicateSymbol { name: short(name) });
        }
        let (start, stop) = match (order, start, stop) {
            (Order::Time, None, None) => continue,
            (Order::Time, _, _) => {
                return Err(Error::SymbolRangeInTimeMajor {
                    symbol: short(name),
                })
            }
            (Order::Symbol, Some(start), Some(stop)) => (start, stop),
            (Order::Symbol, _, _) => {
                return Err(Error::MetadataJson(format!(
                    "symbol {:?} has no start and stop",
                    short(name)
                )))
            }
        };
        if start != next || stop < start || stop > nrows {
            return Err(Error::RangesDoNotTile {
                symbol: short(name),
                start,
                stop,
                expected_start: next,
                nrows,
            });
        }
        next = stop;
    }
    if order == Order::Symbol && next != nrows {
        return Err(Error::RangesShort { end: next, nrows });
    }
    Ok(())
}

/// `unit` and `timezone`: only on time columns, `"ns"`, and a zone of 1..4096 bytes.
fn check_time_keys(c: &Column) -> Result<()> {
    let bad_zone = |reason| Error::BadTimezone {
        column: short(&c.name),
        reason,
    };
    if c.role != Role::Time && c.timezone.is_some() {
        return Err(bad_zone("is set on a column whose role is not time"));
    }
    if let Some(unit) = &c.unit {
        if c.role != Role::Time || unit != TIME_UNIT {
            return Err(Error::TimeUnit {
                column: short(&c.name),
                unit: short(unit),
            });
        }
    }
    match c.timezone.as_deref() {
        Some("") => Err(bad_zone("is empty")),
        Some(z) if z.len() > caps::MAX_NAME_BYTES => Err(bad_zone("is longer than 4096 bytes")),
        _ => Ok(()),
    }
}
