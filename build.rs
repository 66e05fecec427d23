//! Records where this build comes from, for `--version` and `cinder_exporter_build_info`:
//! the git revision, the compiler's version, the build date and the target platform.
//!
//! The build date is `SOURCE_DATE_EPOCH` when set (scripts/package sets it to the last
//! commit's time, so that two builds of one commit are byte for byte the same), else
//! the time this script ran.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let revision =
        run("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = run(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CINDER_EXPORTER_REVISION={revision}");
    println!("cargo:rustc-env=CINDER_EXPORTER_RUSTC_VERSION={rustc_version}");
    println!(
        "cargo:rustc-env=CINDER_EXPORTER_BUILD_DATE={}",
        build_date()
    );
    let target = |key: &str| std::env::var(key).unwrap_or_else(|_| "unknown".into());
    println!(
        "cargo:rustc-env=CINDER_EXPORTER_PLATFORM={}/{}",
        target("CARGO_CFG_TARGET_OS"),
        target("CARGO_CFG_TARGET_ARCH")
    );
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // Ask git where HEAD is: in a worktree `.git` is a file, and a path that does not
    // exist would make cargo rebuild the crate every time.
    for path in ["HEAD", "refs/heads"] {
        if let Some(found) = run("git", &["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={found}");
        }
    }
}

/// The build date in UTC as RFC 3339 (`2026-12-04T13:05:00Z`).
fn build_date() -> String {
    let seconds = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text
            .trim()
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("SOURCE_DATE_EPOCH={text:?} is not whole seconds")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: the days are counted in
/// 400-year eras from 0000-03-01, so that the leap day falls at the end of each year.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let from_march_0000 = days + 719_468;
    let era = from_march_0000.div_euclid(146_097);
    let day_of_era = from_march_0000.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month, day)
}
