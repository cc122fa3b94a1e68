//! The layout a writer is created from: row count, columns, symbol table. It decides every byte
//! offset before a value is written, so a pipeline that knows its row counts up front can write
//! batches straight to their final place.

use crate::error::{Error, Result};
use crate::format::{align_up, caps, DType, Role, DEFAULT_CHUNK_BYTES, HEADER_LEN};
use crate::meta::{check_chunk_bytes, check_name, Symbol};
use crate::timestamps::{Order, Timestamps};

/// One column of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Unique, non-empty name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// What the column means to consumers.
    pub role: Role,
    /// Time columns only: the source's time zone (see [`ColumnSpec::with_timezone`]).
    pub timezone: Option<String>,
}

impl ColumnSpec {
    /// A column spec (no time zone).
    pub fn new(name: impl Into<String>, dtype: DType, role: Role) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            dtype,
            role,
            timezone: None,
        }
    }

    /// Sets the time zone of a time column: an IANA name (`America/New_York`) or an offset
    /// (`+05:00`) of 1 to 4096 bytes, or `None` for a naive source. The values stay UTC
    /// nanoseconds whatever it says; it is what exporters put back. [`Layout::new`] refuses a zone
    /// on a column whose role is not [`Role::Time`].
    pub fn with_timezone(mut self, timezone: Option<String>) -> ColumnSpec {
        self.timezone = timezone;
        self
    }
}

/// A validated layout with every column's offset computed.
///
/// Columns are placed in the given order, each at the first 4096-byte boundary after the previous
/// one (the first right after the header), so consecutive columns of one dtype sit at a constant
/// stride of `align_up(nrows * size)` bytes: that is what makes the 2-D feature view zero-copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    nrows: u64,
    columns: Vec<ColumnSpec>,
    symbols: Vec<Symbol>,
    order: Order,
    timestamps: Option<Timestamps>,
    chunk_bytes: u64,
    offsets: Vec<u64>,
    data_end: u64,
}

impl Layout {
    /// Validates a layout: caps, unique non-empty names, and symbol ranges that tile `[0, nrows)`
    /// in order.
    pub fn new(nrows: u64, columns: Vec<ColumnSpec>, symbols: Vec<Symbol>) -> Result<Layout> {
        if nrows > caps::MAX_ROWS {
            return Err(Error::OverCap {
                what: "row count",
                value: nrows,
                cap: caps::MAX_ROWS,
            });
        }
        if columns.len() > caps::MAX_COLUMNS {
            return Err(Error::OverCap {
                what: "column count",
                value: columns.len() as u64,
                cap: caps::MAX_COLUMNS as u64,
            });
        }
        if symbols.len() > caps::MAX_SYMBOLS {
            return Err(Error::OverCap {
                what: "symbol count",
                value: symbols.len() as u64,
                cap: caps::MAX_SYMBOLS as u64,
            });
        }
        let mut offsets = Vec::with_capacity(columns.len());
        let mut at = HEADER_LEN;
        let too_big = || Error::OverCap {
            what: "file size",
            value: u64::MAX,
            cap: u64::MAX / 2,
        };
        for c in &columns {
            check_name("column", &c.name)?;
            offsets.push(at);
            let end = at.checked_add(nrows * c.dtype.size()).ok_or_else(too_big)?;
            at = align_up(end).ok_or_else(too_big)?;
        }
        let layout = Layout {
            nrows,
            columns,
            symbols,
            order: Order::Symbol,
            timestamps: None,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            offsets,
            data_end: at,
        };
        // The same checks a reader runs; checksums are not known yet, so check a stand-in.
        layout.skeleton().validate(layout.data_end)?;
        Ok(layout)
    }

    /// Makes the layout time-major (format 1.2): the rows will be written sorted by (time, symbol
    /// code), each timestamp's rows contiguous where `timestamps` says. The index must cover
    /// exactly `nrows` rows ([`Error::TimestampsDoNotTile`] otherwise). The symbols keep their
    /// names and codes (the `symbol` column holds the codes, as in symbol-major files) and lose
    /// their ranges (`0..0`): pass [`Layout::new`] the symbol-major ranges of the same rows (or any
    /// that tile them). The writer writes columns as for any layout; the file gets required-feature
    /// bit 0 ([`crate::FEATURE_TIME_ORDER`]).
    pub fn with_time_order(mut self, timestamps: Timestamps) -> Result<Layout> {
        if timestamps.nrows() != self.nrows {
            return Err(Error::TimestampsDoNotTile {
                rows: timestamps.nrows(),
                nrows: self.nrows,
            });
        }
        for s in &mut self.symbols {
            (s.start, s.stop) = (0, 0);
        }
        self.order = Order::Time;
        self.timestamps = Some(timestamps);
        self.skeleton().validate(self.data_end)?;
        Ok(self)
    }

    /// How the rows will be ordered.
    pub fn order(&self) -> Order {
        self.order
    }

    /// The timestamp index of a time-major layout.
    pub fn timestamps(&self) -> Option<&Timestamps> {
        self.timestamps.as_ref()
    }

    /// Sets the checksum chunk size (a power of two from 4096 to 2^30; default 4 MiB).
    pub fn with_chunk_bytes(mut self, chunk_bytes: u64) -> Result<Layout> {
        check_chunk_bytes(chunk_bytes)?;
        self.chunk_bytes = chunk_bytes;
        Ok(self)
    }

    /// Rows in every column.
    pub fn nrows(&self) -> u64 {
        self.nrows
    }

    /// Columns in stored order.
    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// The symbol table.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// Bytes per checksum chunk.
    pub fn chunk_bytes(&self) -> u64 {
        self.chunk_bytes
    }

    /// Byte offset of column `i`.
    pub fn offset(&self, i: usize) -> u64 {
        self.offsets[i]
    }

    /// Byte length of column `i`.
    pub fn length(&self, i: usize) -> u64 {
        self.nrows * self.columns[i].dtype.size()
    }

    /// End of the data area (a multiple of 4096): where the metadata starts.
    pub fn data_end(&self) -> u64 {
        self.data_end
    }

    /// The metadata this layout will have, with empty stats and checksums filled in for validation.
    pub(crate) fn skeleton(&self) -> crate::meta::Metadata {
        crate::meta::Metadata {
            nrows: self.nrows,
            chunk_bytes: self.chunk_bytes,
            columns: self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| crate::meta::Column {
                    name: c.name.clone(),
                    dtype: c.dtype,
                    role: c.role,
                    unit: (c.role == Role::Time).then(|| crate::meta::TIME_UNIT.to_string()),
                    timezone: c.timezone.clone(),
                    offset: self.offsets[i],
                    length: self.length(i),
                    checksums: vec![
                        0;
                        crate::meta::chunk_count(self.length(i), self.chunk_bytes)
                            as usize
                    ],
                    stats: Default::default(),
                })
                .collect(),
            order: self.order,
            symbols: self.symbols.clone(),
            timestamps: self.timestamps.clone(),
            build: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, start: u64, stop: u64) -> Symbol {
        Symbol {
            name: name.into(),
            start,
            stop,
        }
    }

    #[test]
    fn offsets_are_aligned_and_features_equally_spaced() {
        let cols = vec![
            ColumnSpec::new("ts", DType::I64, Role::Time),
            ColumnSpec::new("symbol", DType::U32, Role::Symbol),
            ColumnSpec::new("f0", DType::F32, Role::Feature),
            ColumnSpec::new("f1", DType::F32, Role::Feature),
            ColumnSpec::new("f2", DType::F32, Role::Feature),
        ];
        let l =
            Layout::new(1500, cols, vec![sym("A", 0, 1000), sym("B", 1000, 1500)]).expect("valid");
        assert_eq!(l.offset(0), 4096);
        assert_eq!(l.offset(1), 4096 + 12288);
        for i in 0..5 {
            assert_eq!(l.offset(i) % 4096, 0);
        }
        assert_eq!(l.offset(3) - l.offset(2), l.offset(4) - l.offset(3));
        assert_eq!(l.data_end(), l.offset(4) + 8192);
    }

    #[test]
    fn rejects_bad_tiling_and_names() {
        let cols = vec![ColumnSpec::new("x", DType::F32, Role::Feature)];
        assert!(matches!(
            Layout::new(10, cols.clone(), vec![sym("A", 0, 4), sym("B", 5, 10)]),
            Err(Error::RangesDoNotTile { .. })
        ));
        assert!(matches!(
            Layout::new(10, cols.clone(), vec![sym("A", 0, 4)]),
            Err(Error::RangesShort { .. })
        ));
        assert!(matches!(
            Layout::new(10, cols.clone(), vec![sym("A", 0, 4), sym("A", 4, 10)]),
            Err(Error::DuplicateSymbol { .. })
        ));
        let dup = vec![cols[0].clone(), cols[0].clone()];
        assert!(matches!(
            Layout::new(0, dup, vec![]),
            Err(Error::DuplicateColumn { .. })
        ));
        let empty = vec![ColumnSpec::new("", DType::U8, Role::Other)];
        assert!(matches!(
            Layout::new(0, empty, vec![]),
            Err(Error::BadName { .. })
        ));
        assert!(matches!(
            Layout::new(caps::MAX_ROWS + 1, vec![], vec![]),
            Err(Error::OverCap { .. })
        ));
    }

    #[test]
    fn time_zones_only_on_time_columns() {
        let ts = |tz: Option<&str>, role| {
            let c = ColumnSpec::new("ts", DType::I64, role).with_timezone(tz.map(String::from));
            Layout::new(0, vec![c], vec![])
        };
        assert!(ts(Some("America/New_York"), Role::Time).is_ok());
        assert!(ts(None, Role::Time).is_ok());
        assert!(ts(None, Role::Other).is_ok());
        for (tz, role) in [(Some(""), Role::Time), (Some("UTC"), Role::Feature)] {
            assert!(matches!(ts(tz, role), Err(Error::BadTimezone { .. })));
        }
        let long = "x".repeat(caps::MAX_NAME_BYTES + 1);
        assert!(matches!(
            ts(Some(&long), Role::Time),
            Err(Error::BadTimezone { .. })
        ));
    }

    #[test]
    fn time_order_needs_an_index_of_every_row() {
        let cols = vec![ColumnSpec::new("x", DType::F64, Role::Feature)];
        let l = Layout::new(5, cols, vec![sym("A", 0, 2), sym("B", 2, 5)]).expect("valid");
        let ts = |counts: &[u64]| {
            Timestamps::from_counts(counts.iter().enumerate().map(|(i, &c)| (i as i64, c)))
                .expect("index")
        };
        let t = l.clone().with_time_order(ts(&[2, 1, 2])).expect("valid");
        assert_eq!(t.order(), Order::Time);
        assert!(t.symbols().iter().all(|s| (s.start, s.stop) == (0, 0)));
        assert_eq!(t.timestamps().map(Timestamps::len), Some(3));
        assert!(matches!(
            l.with_time_order(ts(&[2, 1])),
            Err(Error::TimestampsDoNotTile { rows: 3, nrows: 5 })
        ));
    }

    #[test]
    fn empty_symbol_ranges_are_fine() {
        let cols = vec![ColumnSpec::new("x", DType::F64, Role::Feature)];
        let l = Layout::new(
            3,
            cols,
            vec![sym("A", 0, 0), sym("B", 0, 3), sym("C", 3, 3)],
        );
        assert!(l.is_ok());
    }
}
