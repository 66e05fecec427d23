//! The `cinder_exporter` binary: flags in, exit status out; everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

// jemalloc rather than glibc's malloc: at 20,000 services under 8 concurrent scrapers
// glibc's per-thread arenas held memory freed by each poll and scrape, and RSS grew 1.7x
// over the load; with jemalloc it stays within 5% (docs/performance.md, measured).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start (`_RJEM_MALLOC_CONF` in the environment
/// still overrides them). Freed pages go back to the system after about a second
/// instead of ten: each poll frees the previous snapshot, and at 10,000 services the
/// default kept the peak ~3 MiB higher; 0 (at once) halved scrape throughput, 1 s did
/// not change it (docs/performance.md).
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: AllocatorOptions = AllocatorOptions(c"dirty_decay_ms:1000".as_ptr());

/// A C string pointer as jemalloc reads its `malloc_conf` symbol.
#[repr(transparent)]
struct AllocatorOptions(*const std::ffi::c_char);

// SAFETY: the pointer is to a static string, never written.
unsafe impl Sync for AllocatorOptions {}

fn main() -> ExitCode {
    cinder_exporter::main_with(cinder_exporter::cli::Cli::parse())
}
