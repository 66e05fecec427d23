//! The `cinder_exporter` binary: flags in, exit status out; everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cinder_exporter::main_with(cinder_exporter::cli::Cli::parse())
}
