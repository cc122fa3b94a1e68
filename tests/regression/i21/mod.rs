//! Regression tests for issue 21 (what an adversarial user hit), named `i21_NN_*` by item: each
//! failed before its fix. Outputs and what they may replace in `outputs`; the cross-section
//! sampling and empty files in `samples`; shape flags and time-major runs in `shapes`; the build's
//! identity and target in `identity`; messages and small contracts in `messages`.

use std::path::{Path, PathBuf};

use crate::common::gen;

/// A generated universe of `symbols` symbols of `rows` rows and 3 features, at `d/u`.
fn small(d: &Path, symbols: &str, rows: &str) -> PathBuf {
    let u = d.join("u");
    gen(
        &u,
        &["--symbols", symbols, "--rows", rows, "--features", "3"],
    );
    u
}

mod identity;
mod messages;
mod outputs;
mod samples;
mod shapes;
