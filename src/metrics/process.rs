//! The exporter process's own metrics, named as every Prometheus client library names
//! them (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …), so that the
//! dashboards and alerts written for any exporter apply to this one. Written on
//! `/metrics` only: `/probe` answers for a database, not for the process.
//!
//! Read from `/proc` at scrape time, as Go's client does, rather than through the
//! `prometheus` crate's process collector: that one publishes
//! `process_cpu_seconds_total` as an integer counter of whole seconds (0.14: the ticks
//! are divided before conversion), so an exporter using a few percent of a core would
//! show a staircase with steps minutes apart and `rate()` would read 0 most of the
//! time. `/proc` gives CPU time in clock ticks of 1/100 s; that fraction is kept here.
//! Outside Linux, or when a file cannot be read, the family is left out for that scrape
//! (never a made-up 0).

use super::exposition::Exposition;
use crate::series::schema::{self, Family};

/// `USER_HZ`: the unit of the CPU and start times in `/proc/<pid>/stat`. The kernel
/// fixes it at 100 for user space whatever its internal tick rate (Go's procfs relies
/// on the same constant).
const USER_HZ: f64 = 100.0;

/// One reading of the process's figures; `None` where `/proc` did not say.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

impl ProcessFigures {
    /// Reads this process's figures now.
    pub fn read() -> ProcessFigures {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let stat = stat.as_deref().and_then(stat_fields);
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        let boot = std::fs::read_to_string("/proc/stat").ok();
        ProcessFigures {
            cpu_seconds: stat.as_ref().and_then(|f| {
                // Fields 14 and 15 (1-based): utime and stime, in ticks.
                Some((field(f, 14)? + field(f, 15)?) / USER_HZ)
            }),
            resident_bytes: status.as_deref().and_then(|s| kib_line(s, "VmRSS:")),
            virtual_bytes: status.as_deref().and_then(|s| kib_line(s, "VmSize:")),
            start_time_seconds: stat.as_ref().and_then(|f| {
                let boot_time = boot.as_deref().and_then(|b| number_after(b, "btime"))?;
                // Field 22: start time in ticks since boot.
                Some(boot_time + field(f, 22)? / USER_HZ)
            }),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|entries| entries.count() as f64),
            max_fds: limits.as_deref().and_then(max_open_files),
        }
    }

    /// Writes the families that have a value, in the schema's order.
    pub fn render(&self, out: &mut Exposition) {
        let values = [
            (&schema::PROCESS_CPU, self.cpu_seconds),
            (&schema::PROCESS_RESIDENT, self.resident_bytes),
            (&schema::PROCESS_VIRTUAL, self.virtual_bytes),
            (&schema::PROCESS_START, self.start_time_seconds),
            (&schema::PROCESS_OPEN_FDS, self.open_fds),
            (&schema::PROCESS_MAX_FDS, self.max_fds),
        ];
        for (family, value) in values {
            if let Some(value) = value {
                plain(out, family, value);
            }
        }
    }
}

fn plain(out: &mut Exposition, family: &Family, value: f64) {
    out.family(family);
    out.plain(family.name, value);
}

/// The fields of `/proc/<pid>/stat` numbered from 1, the command name (field 2, which
/// may hold spaces and parentheses) skipped: the fields after the last `)` start at 3.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = vec!["", ""];
    fields.extend(after_name.split_whitespace());
    Some(fields)
}

/// Field `number` (1-based, as `man 5 proc` numbers them) as a number.
fn field(fields: &[&str], number: usize) -> Option<f64> {
    fields.get(number - 1)?.parse().ok()
}

/// `Key:   1234 kB` in `/proc/<pid>/status`, in bytes.
fn kib_line(status: &str, key: &str) -> Option<f64> {
    number_after(status, key).map(|kib| kib * 1024.0)
}

/// The first number after `key` at the start of a line.
fn number_after(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`; `unlimited` is +Inf.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(f64::INFINITY),
        soft => soft.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_proc_formats() {
        let stat = "4242 (my (odd) exe) S 1 2 3 4 5 6 7 8 9 10 250 37 0 0 20 0 9 0 123456 999 77";
        let fields = stat_fields(stat).unwrap();
        assert_eq!(field(&fields, 3), None); // "S" is not a number
        assert_eq!(field(&fields, 14), Some(250.0));
        assert_eq!(field(&fields, 15), Some(37.0));
        assert_eq!(field(&fields, 22), Some(123456.0));
        let status = "Name:\tx\nVmSize:\t  2048 kB\nVmRSS:\t    512 kB\n";
        assert_eq!(kib_line(status, "VmRSS:"), Some(512.0 * 1024.0));
        assert_eq!(kib_line(status, "VmSize:"), Some(2048.0 * 1024.0));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024.0));
        assert_eq!(
            max_open_files("Max open files  unlimited unlimited files\n"),
            Some(f64::INFINITY)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_every_figure() {
        // Burn a little CPU so that the counter has ticks to show.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let figures = ProcessFigures::read();
        let f = |v: Option<f64>| v.expect("figure read from /proc");
        assert!(f(figures.cpu_seconds) > 0.0);
        assert!(f(figures.resident_bytes) > 0.0);
        assert!(f(figures.virtual_bytes) >= f(figures.resident_bytes));
        assert!(f(figures.open_fds) >= 3.0 && f(figures.open_fds) <= f(figures.max_fds));
        assert!(f(figures.start_time_seconds) > 1_000_000_000.0);
        let mut out = Exposition::default();
        figures.render(&mut out);
        let text = out.take(0);
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let schema: Vec<&str> = schema::PROCESS.iter().map(|f| f.name).collect();
        assert_eq!(families, schema);
    }
}
