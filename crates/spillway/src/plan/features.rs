//! The feature columns: the given list, or the union of the numeric columns of the symbols read,
//! in order of first appearance. A symbol where a feature is not numeric fails; failing symbols
//! leave the union (a build without them must be identical), so the choice repeats until nothing
//! more fails.

use std::collections::BTreeSet;

use crate::config::BuildConfig;
use crate::error::{Error, Result, SymbolError, SymbolErrorKind};
use crate::input::schema::{excluded_by_name, Kind};

use super::files::Interner;
use super::symbols::Candidate;
use super::Skips;

/// The symbols that survive and the features' interned names, in output order. `known`: a
/// feature of `--features` must be in some file (a shard's list is the universe's, and may name
/// columns only other shards have).
pub(super) fn choose<'a>(
    mut cands: Vec<Candidate<'a>>,
    cfg: &BuildConfig,
    time_col: &str,
    names: &Interner,
    skips: &mut Skips,
    known: bool,
) -> Result<(Vec<Candidate<'a>>, Vec<u32>)> {
    let time_id = names.id(time_col);
    let target_id = cfg.target.as_deref().map(|t| names.id(t));
    let features: Vec<u32> = loop {
        let features = match &cfg.features {
            Some(list) => list.iter().map(|n| names.id(n)).collect(),
            None => union(&cands, names, time_id, target_id),
        };
        match first_bad(&cands, &features, names) {
            None => break features,
            Some((i, e)) => {
                skips.fail(e)?;
                cands.remove(i);
            }
        }
    };
    if let Some(list) = &cfg.features {
        for (name, &id) in list.iter().zip(&features) {
            if name == time_col || Some(name) == cfg.target.as_ref() || name == "symbol" {
                return Err(Error::Config(format!(
                    "--features names {name:?}, which is the time, target or symbol column"
                )));
            }
            let somewhere = cands
                .iter()
                .any(|c| c.files.iter().any(|f| f.column(id).is_some()));
            if known && !somewhere && !cands.is_empty() {
                return Err(Error::UnknownFeature {
                    column: name.clone(),
                });
            }
        }
    }
    Ok((cands, features))
}

/// The first symbol (index) with a feature of a type that is not numeric, and the error.
fn first_bad(
    cands: &[Candidate<'_>],
    features: &[u32],
    names: &Interner,
) -> Option<(usize, SymbolError)> {
    for (i, c) in cands.iter().enumerate() {
        for f in &c.files {
            for &id in features {
                let Some(col) = f.column(id) else { continue };
                if !matches!(col.kind, Kind::Numeric | Kind::Null) {
                    let kind = SymbolErrorKind::ColumnType {
                        column: names.get(id).to_string(),
                        dtype: names.get(col.dtype).to_string(),
                        role: "a feature",
                    };
                    return Some((i, SymbolError::new(&c.sym.name, &f.path, kind)));
                }
            }
        }
    }
    None
}

/// Numeric columns of the symbols read, in order of first appearance (symbols sorted, each
/// schema in file order), minus time, target, `symbol` and pandas index columns.
fn union(cands: &[Candidate<'_>], names: &Interner, time: u32, target: Option<u32>) -> Vec<u32> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in cands {
        for f in &c.files {
            for col in &f.columns {
                if col.kind == Kind::Numeric
                    && col.name != time
                    && Some(col.name) != target
                    && !excluded_by_name(&names.get(col.name))
                    && seen.insert(col.name)
                {
                    out.push(col.name);
                }
            }
        }
    }
    out
}
