//! The `spillway` command line. Parsing lives in `cli/`, one file per subcommand; the library
//! sees only resolved configurations. Errors are printed once, here, as `spillway: <error chain>`,
//! and mapped to exit codes in `cli/out.rs`.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    // A panic is a bug: its message is printed by the default hook; the exit code says "internal".
    let Ok(result) = std::panic::catch_unwind(cli::run) else {
        return ExitCode::from(3);
    };
    match result {
        Ok(code) => code,
        Err(err) if cli::out::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            cli::out::note!("spillway: {err:#}\n");
            ExitCode::from(cli::out::exit_code(&err))
        }
    }
}
