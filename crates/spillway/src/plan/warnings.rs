//! What planning warns about without refusing the build: features named like a target (a label
//! leak waiting to happen) and time columns whose zones differ across files.

use std::collections::BTreeSet;

use crate::input::schema::TimeKind;

use super::files::Interner;
use super::symbols::Candidate;

/// The warnings of a plan of `cands` with `features` (interned, output order).
pub(super) fn warnings(cands: &[Candidate<'_>], features: &[u32], names: &Interner) -> Vec<String> {
    let mut out = Vec::new();
    let leaks: Vec<String> = features
        .iter()
        .map(|&id| names.get(id))
        .filter(|n| target_like(n))
        .map(|n| n.to_string())
        .collect();
    if !leaks.is_empty() {
        out.push(format!(
            "feature column(s) named like a target: {} (a label among the features leaks it into \
             training; name the target with --target, or choose features with --features)",
            leaks.join(", ")
        ));
    }
    out.extend(zones(cands, names));
    out
}

/// Whether a column name reads as a label: `target`, `y`, `label`, or with a `target`/`label`
/// word, or a forward-looking `fwd` word (`ret_fwd_5m`).
pub(super) fn target_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(['_', '-', '.', ' ']).collect();
    lower == "y"
        || words
            .iter()
            .any(|w| matches!(*w, "target" | "label" | "labels" | "fwd"))
}

/// A warning when the time columns of the files read mix naive and zone-aware timestamps, or
/// name different zones: every value is an instant converted to UTC (naive ones read as UTC), and
/// the file records one zone.
fn zones(cands: &[Candidate<'_>], names: &Interner) -> Option<String> {
    let (mut naive, mut zoned) = (0u64, BTreeSet::new());
    for c in cands {
        for (f, &(root, kind)) in c.files.iter().zip(&c.time) {
            if !matches!(kind, TimeKind::Timestamp(_)) {
                continue;
            }
            match f.columns.get(root as usize).and_then(|col| col.timezone) {
                Some(z) => {
                    zoned.insert(names.get(z).to_string());
                }
                None => naive += 1,
            }
        }
    }
    let zoned: Vec<String> = zoned.into_iter().collect();
    match (naive, zoned.len()) {
        (n, z) if n > 0 && z > 0 => Some(format!(
            "the time column is naive in {n} file(s) and zone-aware ({}) in others: naive times \
             are read as UTC; check that they are",
            zoned.join(", ")
        )),
        (_, z) if z > 1 => Some(format!(
            "the time column's zones differ across files ({}): values are instants in UTC, and \
             the output records the first symbol's zone",
            zoned.join(", ")
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_that_read_as_labels() {
        for n in [
            "target",
            "y",
            "Label",
            "target_5m",
            "ret_fwd_1d",
            "fwd_ret",
            "y_label",
        ] {
            assert!(super::target_like(n), "{n}");
        }
        for n in ["yield", "f_0001", "ret_1d", "targeted", "lab", "x"] {
            assert!(!super::target_like(n), "{n}");
        }
    }
}
