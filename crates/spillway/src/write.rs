//! `write`: the one writer. It takes units in plan order; each unit is `groups` tasks (its value
//! columns split among the readers, the first also sending the time column), and the writer
//! drains the channels of the readers of the unit's tasks as slices arrive, writing every slice
//! at its planned rows: the time column with the symbol codes beside it, and each value column.
//! A unit's columns may arrive in any interleaving, each in row order (one task, one channel).
//! Readers run at most their channel's capacity ahead; nothing is reordered in memory.

use std::time::Instant;

use crossbeam_channel::{Receiver, Select, Sender};
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

/// Writes every unit of `plan`. `assignments` yields `(task, reader)` in task order, `groups`
/// tasks a unit; slices of a task arrive on `channels[reader]`, and their buffers go back on
/// `returns[reader]`. Without a writer the slices are received and dropped (`--decode-only`, to
/// measure the readers alone).
pub fn write_all<O: Float>(
    plan: &Plan,
    groups: usize,
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
    // Tasks of the current unit not yet done, per reader.
    let mut pending = vec![0usize; channels.len()];
    for (index, unit) in plan.units.iter().enumerate() {
        let t = Instant::now();
        for k in 0..groups {
            let due = index * groups + k;
            let (task, reader) = assignments
                .recv()
                .map_err(|_| protocol(format!("no reader took task {due}")))?;
            if task as usize != due || reader >= channels.len() {
                return Err(protocol(format!(
                    "task {task} assigned where {due} was due"
                )));
            }
            pending[reader] += 1;
        }
        stats.wait += t.elapsed();
        next.fill(0);
        let out = unit.out_rows();
        while pending.iter().any(|&p| p > 0) {
            let t = Instant::now();
            let active: Vec<usize> = (0..channels.len()).filter(|&r| pending[r] > 0).collect();
            let mut select = Select::new();
            for &r in &active {
                select.recv(&channels[r]);
            }
            let op = select.select();
            let reader = active[op.index()];
            let msg = op
                .recv(&channels[reader])
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
                    if u as usize != index || rows != out {
                        return Err(protocol(format!(
                            "unit {u} ended with {rows} rows where unit {index} was due"
                        )));
                    }
                    pending[reader] -= 1;
                }
                Msg::Failed { error, .. } => return Err(WriteFailure::Unit(error)),
            }
            stats.busy += t.elapsed();
        }
        if let Some(c) = (0..ncols).find(|&c| c != 1 && next[c] != out) {
            return Err(protocol(format!(
                "unit {index} ended with {} rows of column {c}, {out} planned",
                next[c]
            )));
        }
        stats.rows += out;
        progress.unit_done(index, plan);
    }
    Ok(stats)
}
