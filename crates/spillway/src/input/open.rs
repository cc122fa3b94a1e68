//! The one way spillway opens a parquet file for arrow-rs: footer statistics skipped, a projection
//! of top-level columns, a batch size, an optional row selection, and every call into the parquet
//! crate under the panic guard. Used by the time scan, the filter passes, the arrow-rs read source
//! and its error diagnosis. Before arrow-rs builds its reader, every projected column chunk is
//! vetted ([`vet`]): arrow-rs allocates from page headers before it checks them against the bytes.

use std::fs::File;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::ParquetMetaData;

use crate::decode::{value_bits, vet_chunk, Chunk};
use crate::error::SymbolErrorKind;
use crate::guard::no_panic;
use crate::input::footer::load_metadata;

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
    let meta = match meta {
        Some(meta) => meta,
        None => load_metadata(&file)?,
    };
    vet(&file, meta.metadata(), projection.roots)?;
    let reader = no_panic(|| {
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
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

/// Vets every column chunk of `roots` (top-level columns) in every row group of `file` with
/// spillway's page-header walk (`decode::vet_chunk`), before arrow-rs reads them: a chunk outside
/// the file, a page outside its chunk, an uncompressed size its codec's data cannot give, a
/// dictionary claiming more values than its bytes hold, or more values than rows, is an error
/// naming the column and row group.
pub fn vet(file: &File, meta: &ParquetMetaData, roots: &[usize]) -> Result<(), SymbolErrorKind> {
    let descr = meta.file_metadata().schema_descr();
    let file_len = file
        .metadata()
        .map_err(|e| crate::input::footer::io_kind("reading the file's size", &e))?
        .len();
    for leaf in 0..descr.num_columns() {
        if !roots.contains(&descr.get_column_root_idx(leaf)) {
            continue;
        }
        let col = descr.column(leaf);
        let bits = value_bits(col.physical_type(), col.type_length());
        let flat = col.max_rep_level() == 0;
        for (g, rg) in meta.row_groups().iter().enumerate() {
            let Some(c) = rg.columns().get(leaf) else {
                continue;
            };
            // The range arrow-rs reads (`ColumnChunkMetaData::byte_range`, which panics on
            // negative values: those are refused here).
            let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
            let chunk = Chunk {
                start: u64::try_from(start).unwrap_or(u64::MAX),
                len: u64::try_from(c.compressed_size()).unwrap_or(u64::MAX),
                codec: c.compression(),
                rows: usize::try_from(rg.num_rows()).unwrap_or(0),
                file_len,
            };
            vet_chunk(file, &chunk, bits, flat).map_err(|error| SymbolErrorKind::Decode {
                column: col.path().string(),
                row_group: g,
                error,
            })?;
        }
    }
    Ok(())
}
