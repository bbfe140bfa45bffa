//! The `authhost` command line; see [`authhost::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    match authhost::cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the cause chain on one line, without a backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
