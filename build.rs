//! Records the git revision and the compiler version for `cinder_exporter_build_info`.

use std::process::Command;

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
    // Ask git where HEAD is: in a worktree `.git` is a file, and a path that does not
    // exist would make cargo rebuild the crate every time.
    for path in ["HEAD", "refs/heads"] {
        if let Some(found) = run("git", &["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={found}");
        }
    }
}
