//! The `spillway` command line. Parsing lives in `cli/`, one file per subcommand; the library
//! sees only resolved configurations. Errors are printed once, here, as `spillway: <error chain>`.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("spillway: {err:#}");
            ExitCode::FAILURE
        }
    }
}
