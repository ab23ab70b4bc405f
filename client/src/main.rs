//! `arca`: the command-line client of an Arca node. Parses the command line, runs the command through
//! [`cli::run`], and turns any failure into `error: <message>` on stderr and exit code 1.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
