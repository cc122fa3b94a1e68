//! The fast source: the plan's [`FastPlan`] drives one `decode::ColumnDecoder` per column and row
//! group, `batch_rows` rows at a time, into the emitter.

use std::fs::File;
use std::sync::Arc;

use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::file::metadata::RowGroupMetaData;
use parquet::schema::types::SchemaDescriptor;

use crate::decode::{ColumnDecoder, Decoded, Physical};
use crate::error::{DecodeError, Problem, SymbolErrorKind};
use crate::guard::no_panic;
use crate::input::convert::{Float, Selection};
use crate::plan::{FastPlan, Unit};

use super::emit::Emitter;
use super::ReadContext;

/// Decodes `unit` as `plan` says, row group by row group. A panic in our decoder is a bug.
pub(super) fn read<O: Float>(
    file: File,
    meta: &ArrowReaderMetadata,
    unit: &Unit,
    plan: &FastPlan,
    ctx: &ReadContext<'_>,
    out: &mut Emitter<'_, O>,
) -> Result<(), SymbolErrorKind> {
    no_panic(|| row_groups(file, meta, unit, plan, ctx, out))
        .map_err(SymbolErrorKind::DecoderBug)?
}

fn row_groups<O: Float>(
    file: File,
    meta: &ArrowReaderMetadata,
    unit: &Unit,
    plan: &FastPlan,
    ctx: &ReadContext<'_>,
    out: &mut Emitter<'_, O>,
) -> Result<(), SymbolErrorKind> {
    let file = Arc::new(file);
    let pq = meta.metadata();
    let descr = pq.file_metadata().schema_descr();
    let (mut raw, mut valid, mut times, mut scratch) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::<O>::new());
    for (g, rg) in pq.row_groups().iter().enumerate() {
        let error = |leaf: usize, error| SymbolErrorKind::Decode {
            column: descr.column(leaf).name().to_string(),
            row_group: g,
            error,
        };
        let rows = usize::try_from(rg.num_rows()).map_err(|_| SymbolErrorKind::Parquet {
            context: "reading the footer".into(),
            message: format!("row group {g} has a negative row count"),
        })?;
        let tleaf = plan.time.0;
        let mut time: ColumnDecoder<i64> =
            open(&file, rg, descr, plan.time, rows).map_err(|e| error(tleaf, e))?;
        let mut decoders: Vec<Option<(usize, ColumnDecoder<O>)>> =
            Vec::with_capacity(plan.values.len());
        for v in &plan.values {
            decoders.push(match *v {
                None => None,
                Some(c) => Some((
                    c.0,
                    open(&file, rg, descr, c, rows).map_err(|e| error(c.0, e))?,
                )),
            });
        }
        let mut done = 0;
        while done < rows && !out.stopped() {
            let n = ctx.batch_rows.min(rows - done);
            raw.clear();
            raw.resize(n, 0i64);
            valid.clear();
            valid.resize(n, true);
            time.read(&mut raw, Some(&mut valid))
                .map_err(|e| error(tleaf, e))?;
            times.clear();
            for (i, (&r, &ok)) in raw.iter().zip(&valid).enumerate() {
                times.push(match ok {
                    true => {
                        unit.time
                            .1
                            .to_ns(r)
                            .map_err(|value| SymbolErrorKind::TimeOverflow {
                                column: descr.column(tleaf).name().to_string(),
                                row: out.decoded + i as u64,
                                value,
                            })?
                    }
                    false => 0,
                });
            }
            let mut fill = |c: usize, sel: &Selection, dst: &mut [O]| {
                let Some((leaf, d)) = decoders[c].as_mut() else {
                    return Ok(());
                };
                match sel {
                    Selection::Range(r) if r.start == 0 && r.end == n => d.read(dst, None),
                    _ => {
                        scratch.clear();
                        scratch.resize(n, O::NAN);
                        d.read(&mut scratch, None)
                            .map(|()| sel.gather(&scratch, dst))
                    }
                }
                .map_err(|e| error(*leaf, e))
            };
            out.emit(&times, &valid, &mut fill)?;
            done += n;
        }
        if out.stopped() {
            break;
        }
        time.finish().map_err(|e| error(tleaf, e))?;
        for (leaf, d) in decoders.iter_mut().flatten() {
            d.finish().map_err(|e| error(*leaf, e))?;
        }
    }
    Ok(())
}

/// The decoder of one column chunk.
fn open<T: Decoded>(
    file: &Arc<File>,
    rg: &RowGroupMetaData,
    descr: &SchemaDescriptor,
    (leaf, phys): (usize, Physical),
    rows: usize,
) -> Result<ColumnDecoder<T>, DecodeError> {
    let meta = rg.columns().get(leaf).ok_or(DecodeError {
        page: None,
        problem: Problem::Parquet(format!("no column chunk for leaf {leaf}")),
    })?;
    ColumnDecoder::new(
        Arc::clone(file),
        meta,
        descr.column(leaf).as_ref(),
        phys,
        rows,
    )
}
