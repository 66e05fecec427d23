//! The `cinder_exporter` binary: flags in, exit status out; everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

// jemalloc rather than glibc's malloc: at 20,000 services under 8 concurrent scrapers
// glibc's per-thread arenas held memory freed by each poll and scrape, and RSS grew 1.7x
// over the load; with jemalloc it stays within 5% (docs/performance.md, measured).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    cinder_exporter::main_with(cinder_exporter::cli::Cli::parse())
}
