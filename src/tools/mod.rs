//! `tools`: what the command line offers beside builds, on top of the pipeline: the synthetic
//! universe generator (`gen`) and the report of what a build would see (`inspect`).

pub mod gen;
pub mod inspect;
