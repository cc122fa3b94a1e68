//! `write`: the one writer. It takes units in plan order, drains the batches of each from the
//! channel of the reader that decoded it, and writes them at their planned rows through the spill
//! writer. Readers run at most their channel's capacity ahead; nothing is reordered in memory.

use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use spill::SpillWriter;

use crate::error::SymbolError;
use crate::input::convert::Float;
use crate::plan::Plan;
use crate::read::{Msg, Recycled};
use crate::report::progress::Progress;
use crate::report::summary::WriterStats;

/// Why the writer stopped early.
#[derive(Debug)]
pub enum WriteFailure {
    /// A unit failed to decode (the reader's error).
    Unit(SymbolError),
    /// The spill writer failed (disk full, ...).
    Spill(spill::Error),
    /// A reader vanished or sent something out of order: a bug, reported, never written.
    Protocol(String),
    /// A reader thread could not be started (the OS refused: thread limits, memory).
    Spawn(std::io::Error),
}

/// Writes every unit of `plan`. `assignments` yields `(unit, reader)` in unit order; batches of a
/// unit arrive on `channels[reader]`, and their buffers go back on `returns[reader]`. Without a
/// writer the batches are received and dropped (`--decode-only`, to measure the readers alone).
pub fn write_all<O: Float>(
    plan: &Plan,
    mut writer: Option<&mut SpillWriter>,
    assignments: &Receiver<(u32, usize)>,
    channels: &[Receiver<Msg<O>>],
    returns: &[Sender<Recycled<O>>],
    progress: &Progress,
) -> Result<WriterStats, WriteFailure> {
    let mut stats = WriterStats::default();
    let mut symbol_codes: Vec<u32> = Vec::new();
    let value_columns = plan.value_columns();
    let spill_err = WriteFailure::Spill;
    for (index, unit) in plan.units.iter().enumerate() {
        let t = Instant::now();
        let (got, reader) = assignments
            .recv()
            .map_err(|_| WriteFailure::Protocol(format!("no reader took unit {index}")))?;
        stats.wait += t.elapsed();
        if got as usize != index {
            return Err(WriteFailure::Protocol(format!(
                "unit {got} assigned where {index} was due"
            )));
        }
        let mut row = unit.row_start;
        let mut seq = 0u32;
        loop {
            let t = Instant::now();
            let msg = channels[reader].recv().map_err(|_| {
                WriteFailure::Protocol(format!("reader {reader} stopped during unit {index}"))
            })?;
            stats.wait += t.elapsed();
            let t = Instant::now();
            match msg {
                Msg::Batch(b) => {
                    if b.unit as usize != index
                        || b.seq != seq
                        || b.time.len() != b.rows
                        || b.values.len() != b.rows * value_columns
                    {
                        return Err(WriteFailure::Protocol(format!(
                            "batch ({}, {}) where ({index}, {seq}) was due",
                            b.unit, b.seq
                        )));
                    }
                    if symbol_codes.len() < b.rows || symbol_codes.first() != Some(&unit.symbol) {
                        symbol_codes.clear();
                        symbol_codes.resize(b.rows.max(symbol_codes.capacity()), unit.symbol);
                    }
                    if let Some(w) = writer.as_deref_mut() {
                        w.write(0, row, &b.time).map_err(spill_err)?;
                        w.write(1, row, &symbol_codes[..b.rows])
                            .map_err(spill_err)?;
                        for c in 0..value_columns {
                            let col = &b.values[c * b.rows..(c + 1) * b.rows];
                            w.write(2 + c, row, col).map_err(spill_err)?;
                        }
                    }
                    row += b.rows as u64;
                    seq += 1;
                    progress.rows(b.rows as u64);
                    // A full return channel just drops the buffers: recycling is best effort.
                    let _ = returns[reader].try_send((b.time, b.values));
                }
                Msg::Done { unit: u, rows } => {
                    if u as usize != index
                        || row != unit.row_start + unit.out_rows()
                        || rows != unit.out_rows()
                    {
                        return Err(WriteFailure::Protocol(format!(
                            "unit {index} ended at row {row}, planned {}",
                            unit.row_start + unit.out_rows()
                        )));
                    }
                    stats.busy += t.elapsed();
                    break;
                }
                Msg::Failed { error, .. } => return Err(WriteFailure::Unit(error)),
            }
            stats.busy += t.elapsed();
        }
        stats.rows += unit.out_rows();
        progress.unit_done(index, plan);
    }
    Ok(stats)
}
