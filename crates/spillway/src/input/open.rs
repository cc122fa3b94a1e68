//! The one way spillway opens a parquet file for arrow-rs: footer statistics skipped, a projection
//! of top-level columns, a batch size, an optional row selection, and every call into the parquet
//! crate under the panic guard. Used by the time scan, the filter passes, the arrow-rs read source
//! and its error diagnosis.

use std::fs::File;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::ProjectionMask;

use crate::error::SymbolErrorKind;
use crate::guard::no_panic;
use crate::input::footer::reader_options;

/// What to read of a file.
pub struct Projection<'a> {
    /// Top-level column (root) indices; arrow-rs returns them in schema order.
    pub roots: &'a [usize],
    /// Rows per batch.
    pub batch_rows: usize,
    /// Rows to read (all when `None`).
    pub selection: Option<RowSelection>,
    /// Words for error messages: what was being decoded ("the time column \"ts\"").
    pub what: &'a str,
}

/// A record batch reader whose every step is guarded: errors and panics in the parquet crate
/// become [`SymbolErrorKind`]s naming what was being decoded.
pub struct Batches {
    reader: ParquetRecordBatchReader,
    what: String,
}

/// Opens `file` (whose footer is `meta`, or is read here) for `projection`.
pub fn open(
    file: File,
    meta: Option<ArrowReaderMetadata>,
    projection: Projection<'_>,
) -> Result<Batches, SymbolErrorKind> {
    let what = projection.what.to_string();
    let perr = |e: parquet::errors::ParquetError| SymbolErrorKind::Parquet {
        context: format!("decoding {what}"),
        message: e.to_string(),
    };
    let reader = no_panic(|| {
        let builder = match meta {
            Some(meta) => ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta),
            None => ParquetRecordBatchReaderBuilder::try_new_with_options(file, reader_options())
                .map_err(perr)?,
        };
        let mask =
            ProjectionMask::roots(builder.parquet_schema(), projection.roots.iter().copied());
        let mut builder = builder
            .with_projection(mask)
            .with_batch_size(projection.batch_rows);
        if let Some(selection) = projection.selection {
            builder = builder.with_row_selection(selection);
        }
        builder.build().map_err(perr)
    })
    .map_err(SymbolErrorKind::DecoderPanic)??;
    Ok(Batches { reader, what })
}

impl Batches {
    /// The name of projected column `i`.
    pub fn column_name(&self, i: usize) -> String {
        use arrow_array::RecordBatchReader;
        self.reader
            .schema()
            .fields()
            .get(i)
            .map_or_else(String::new, |f| f.name().clone())
    }

    /// The next batch, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, SymbolErrorKind> {
        match no_panic(|| self.reader.next()).map_err(SymbolErrorKind::DecoderPanic)? {
            None => Ok(None),
            Some(Ok(batch)) => Ok(Some(batch)),
            Some(Err(e)) => Err(SymbolErrorKind::Parquet {
                context: format!("decoding {}", self.what),
                message: e.to_string(),
            }),
        }
    }
}
