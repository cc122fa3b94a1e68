//! Issue 21: see `mod.rs`.

#[allow(unused_imports)]
use crate::common::*;
