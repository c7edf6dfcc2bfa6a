//! The `portcullis` command: parses the command line and hands it to `portcullis::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    portcullis::cli::run(portcullis::cli::Cli::parse())
}
