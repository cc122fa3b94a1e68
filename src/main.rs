//! The `spillway` command line: all of it is the `spillway_cli` library's, whose [`main`]
//! the Python wheel's `spillway` command runs too.
//!
//! [`main`]: spillway_cli::main

use std::process::ExitCode;

fn main() -> ExitCode {
    spillway_cli::main(std::env::args_os())
}
