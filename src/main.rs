//! The `workmail-flow` command: a thin layer over the library.

use clap::Parser;
use std::process::ExitCode;
use workmail_flow::cli::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(cli))
}
