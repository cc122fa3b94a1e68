//! Regression tests for issue 21 (what an adversarial user hit), named `i21_NN_*` by item: each
//! failed before its fix. Outputs and what they may replace in `outputs`; the cross-section
//! sampling and empty files in `samples`; shape flags and time-major runs in `shapes`; the build's
//! identity and target in `identity`; messages and small contracts in `messages`.

mod identity;
mod messages;
mod outputs;
mod samples;
mod shapes;
