//! After an attempt failed on a symbol mid-decode under `--on-error skip`: decode, writing
//! nothing, every unit the writer had not yet written, and collect every symbol that fails, so
//! that the next attempt excludes them all at once.
//!
//! The writer takes units in output order and stops at the first unit whose reader failed, so
//! every unit before the failed symbol's first was decoded whole: the set found is every symbol
//! of the plan that fails, whatever the threads, batch size or channel capacity, and so is the
//! next plan (one attempt per change of plan, not one per bad symbol).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crossbeam_channel::bounded;

use crate::cancel::Cancel;
use crate::config::BuildConfig;
use crate::error::{Error, Result, SymbolError};
use crate::input::convert::Float;
use crate::plan::{budget, Plan};
use crate::read::{read_unit, ReadContext, Reader, Spares, Task};

/// Every symbol of `plan` that fails to decode, `first` (the failure the attempt stopped on)
/// among them, by symbol name.
pub(super) fn failing(
    plan: &Plan,
    cfg: &BuildConfig,
    first: SymbolError,
    cancel: &Cancel,
) -> Result<BTreeMap<String, SymbolError>> {
    let names = plan.layout.symbols();
    let start = plan
        .units
        .iter()
        .position(|u| {
            names
                .get(u.symbol as usize)
                .is_some_and(|s| s.name == first.symbol)
        })
        .unwrap_or(plan.units.len());
    let found = Mutex::new(BTreeMap::from([(first.symbol.clone(), (start, first))]));
    let b = budget::choose(cfg, plan, 0)?;
    if plan.float32 {
        decode_from::<f32>(plan, start, b.readers, b.batch_rows, &found, cancel)?;
    } else {
        decode_from::<f64>(plan, start, b.readers, b.batch_rows, &found, cancel)?;
    }
    cancel.check()?;
    let found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(found.into_iter().map(|(s, (_, e))| (s, e)).collect())
}

/// Decodes the units from `start` on with `readers` threads, sending nothing anywhere, adding
/// each failing symbol to `found` with its first failing unit (the reason, then, does not depend
/// on which reader failed first), and passing over the units of symbols already known to fail
/// from the start (only those found by earlier attempts' first failures).
fn decode_from<O: Float>(
    plan: &Plan,
    start: usize,
    readers: usize,
    batch_rows: usize,
    found: &Mutex<BTreeMap<String, (usize, SymbolError)>>,
    cancel: &Cancel,
) -> Result<()> {
    let stop = AtomicBool::new(false);
    let columns = plan.column_names();
    let ctx = ReadContext {
        target: plan.has_target(),
        batch_rows,
        cancel: &stop,
        user_cancel: cancel,
        filters: plan.filters.as_deref(),
        columns: &columns,
        groups: 1,
    };
    let next = AtomicUsize::new(start);
    // The symbol the attempt stopped on: its failing unit is its first (the writer wrote the
    // ones before it). Other symbols are decoded whole, so each records its first bad unit.
    let stopped_on: Vec<String> = found
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect();
    let known = |name: &str| stopped_on.iter().any(|s| s == name);
    std::thread::scope(|s| {
        let mut spawned = Vec::new();
        for r in 0..readers.max(1) {
            let (ctx, next, known) = (&ctx, &next, &known);
            let reader = std::thread::Builder::new().name(format!("spillway-probe-{r}"));
            spawned.push(reader.spawn_scoped(s, move || {
                // Nothing is written, so no buffer comes back: the pool allocates as it goes.
                let (_keep, recycled) = bounded(1);
                let mut spares = Spares::<O>::new(recycled);
                let mut state = Reader::default();
                loop {
                    let u = next.fetch_add(1, Ordering::Relaxed);
                    let Some(unit) = plan.units.get(u) else { break };
                    if cancel.is_cancelled() {
                        break;
                    }
                    let Some(sym) = plan.layout.symbols().get(unit.symbol as usize) else {
                        continue;
                    };
                    if known(&sym.name) {
                        continue;
                    }
                    let task = Task {
                        unit: u as u32,
                        group: 0,
                    };
                    let mut discard = |_| true;
                    let read = read_unit(
                        task,
                        unit,
                        &sym.name,
                        ctx,
                        &mut state,
                        &mut spares,
                        &mut discard,
                    );
                    if let Err(e) = read {
                        let mut f = found.lock().unwrap_or_else(|p| p.into_inner());
                        let slot = f.entry(sym.name.clone()).or_insert((u, e.clone()));
                        if u < slot.0 {
                            *slot = (u, e);
                        }
                        // A reader's state after a failure is not trusted for the next file.
                        state = Reader::default();
                    }
                }
            }));
        }
        for h in spawned {
            h.map_err(|source| Error::Spawn { source })?;
        }
        Ok(())
    })
}
