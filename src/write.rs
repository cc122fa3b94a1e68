//! `write`: the one writer. It takes units in plan order and drains the slices of each from the
//! channel of the reader that decoded it, writing every slice at its planned rows: the time
//! column with the symbol codes beside it, and each value column. A unit's columns may arrive in
//! any interleaving (the fast source sends one column at a time), each in row order. Readers run
//! at most their channel's capacity ahead; nothing is reordered in memory.

use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use spill::SpillWriter;

use crate::error::SymbolError;
use crate::input::convert::Float;
use crate::plan::Plan;
use crate::read::{Data, Msg};
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

/// Writes every unit of `plan`. `assignments` yields `(unit, reader)` in unit order; slices of a
/// unit arrive on `channels[reader]`, and their buffers go back on `returns[reader]`. Without a
/// writer the slices are received and dropped (`--decode-only`, to measure the readers alone).
pub fn write_all<O: Float>(
    plan: &Plan,
    mut writer: Option<&mut SpillWriter>,
    assignments: &Receiver<(u32, usize)>,
    channels: &[Receiver<Msg<O>>],
    returns: &[Sender<Data<O>>],
    progress: &Progress,
) -> Result<WriterStats, WriteFailure> {
    let mut stats = WriterStats::default();
    let mut symbol_codes: Vec<u32> = Vec::new();
    let ncols = plan.value_columns() + 2;
    let mut next = vec![0u64; ncols];
    let protocol = |m: String| WriteFailure::Protocol(m);
    for (index, unit) in plan.units.iter().enumerate() {
        let t = Instant::now();
        let (got, reader) = assignments
            .recv()
            .map_err(|_| protocol(format!("no reader took unit {index}")))?;
        stats.wait += t.elapsed();
        if got as usize != index {
            return Err(protocol(format!(
                "unit {got} assigned where {index} was due"
            )));
        }
        next.fill(0);
        let out = unit.out_rows();
        loop {
            let t = Instant::now();
            let msg = channels[reader]
                .recv()
                .map_err(|_| protocol(format!("reader {reader} stopped during unit {index}")))?;
            stats.wait += t.elapsed();
            let t = Instant::now();
            match msg {
                Msg::Slice(s) => {
                    let c = s.column as usize;
                    let rows = match &s.data {
                        Data::Time(v) => v.len(),
                        Data::Values(v) => v.len(),
                    } as u64;
                    let fits = matches!((&s.data, c), (Data::Time(_), 0))
                        || matches!(&s.data, Data::Values(_)) && (2..ncols).contains(&c);
                    if s.unit as usize != index || !fits || s.row != next[c] || s.row + rows > out {
                        return Err(protocol(format!(
                            "slice of column {c} at row {} of unit {} where unit {index} was due (next row {})",
                            s.row, s.unit, next.get(c).copied().unwrap_or_default()
                        )));
                    }
                    let row = unit.row_start + s.row;
                    match (&s.data, writer.as_deref_mut()) {
                        (Data::Time(t), Some(w)) => {
                            let n = t.len();
                            if symbol_codes.len() < n || symbol_codes.first() != Some(&unit.symbol)
                            {
                                symbol_codes.clear();
                                symbol_codes.resize(n.max(symbol_codes.capacity()), unit.symbol);
                            }
                            w.write(0, row, t).map_err(WriteFailure::Spill)?;
                            w.write(1, row, &symbol_codes[..n])
                                .map_err(WriteFailure::Spill)?;
                        }
                        (Data::Values(v), Some(w)) => {
                            w.write(c, row, v).map_err(WriteFailure::Spill)?;
                        }
                        (_, None) => {}
                    }
                    next[c] += rows;
                    if c == 0 {
                        progress.rows(rows);
                    }
                    // A full return channel just drops the buffers: recycling is best effort.
                    let _ = returns[reader].try_send(s.data);
                }
                Msg::Done { unit: u, rows } => {
                    let complete = next.iter().enumerate().all(|(c, &n)| c == 1 || n == out);
                    if u as usize != index || rows != out || !complete {
                        return Err(protocol(format!(
                            "unit {index} ended with rows {next:?} of {out} planned"
                        )));
                    }
                    stats.busy += t.elapsed();
                    break;
                }
                Msg::Failed { error, .. } => return Err(WriteFailure::Unit(error)),
            }
            stats.busy += t.elapsed();
        }
        stats.rows += out;
        progress.unit_done(index, plan);
    }
    Ok(stats)
}
