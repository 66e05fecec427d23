//! What operators install, built by `scripts/package`: the Debian package, checked by
//! Debian's own tools (dpkg-deb, lintian, systemd-analyze) and run from its unpacked
//! files; and the fully static binary, run alone in an empty root directory against a
//! real MariaDB reached by host name, over TLS verified with nothing but the CA file
//! its URL names.
//!
//! Both are release builds: each is made once per run of this test binary and shared
//! by its tests. The chroot tests need root (CI runs as root); elsewhere they say so
//! and pass without running.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::certs::Authority;
use common::database::admin_rows;
use common::exporter::database_config;
use common::host::poll_until;
use common::{free_port, repository, Database, PrivateServer, Schema, Scrape};

const PACKAGE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Debian package's name, and the name of everything it adds around the program
/// `cinder_exporter`: unit, `/etc/default` file, configuration directory, system user,
/// `/usr/share` directory (Debian's `prometheus-NAME-exporter` convention).
const PACKAGE: &str = "prometheus-cinder-exporter";

/// The numeric user the container runs as (Containerfile's `USER`).
const CONTAINER_USER: &str = "65534:65534";

// ---------------------------------------------------------------------------------------
// Builds, once per run
// ---------------------------------------------------------------------------------------

static DEB: OnceLock<Result<PathBuf, String>> = OnceLock::new();
static STATIC_BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// `target/debian/prometheus-cinder-exporter_<version>_amd64.deb`.
fn deb() -> &'static Path {
    match DEB.get_or_init(|| package("deb")) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// `target/static/cinder_exporter`.
fn static_binary() -> &'static Path {
    match STATIC_BINARY.get_or_init(|| package("static")) {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `scripts/package what`: the path it printed last, or why it failed.
fn package(what: &str) -> Result<PathBuf, String> {
    let output = Command::new(repository().join("scripts/package"))
        .arg(what)
        .current_dir(repository())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run scripts/package {what}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("scripts/package {what} failed: {}", output.status));
    }
    let last = stdout.lines().last().unwrap_or("").trim();
    Ok(repository().join(last))
}

/// Runs a command to completion; panics naming it if it cannot start.
fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The package's files, unpacked into a temporary directory.
fn unpacked_deb() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(deb())
        .arg(dir.path()));
    assert!(output.status.success(), "{}", text(&output.stderr));
    dir
}

// ---------------------------------------------------------------------------------------
// The Debian package
// ---------------------------------------------------------------------------------------

#[test]
fn the_package_holds_the_binary_the_service_and_the_mixin() {
    let deb = deb();
    assert_eq!(
        deb.file_name().unwrap().to_str().unwrap(),
        format!("prometheus-cinder-exporter_{PACKAGE_VERSION}_amd64.deb")
    );
    let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(deb)).stdout);
    let entries: Vec<(&str, &str)> = listing
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields[0], fields[5].trim_start_matches('.'))
        })
        .collect();
    let mode_of = |path: &str| {
        entries
            .iter()
            .find(|(_, p)| *p == path)
            .map(|(mode, _)| *mode)
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"))
    };
    assert_eq!(mode_of("/usr/bin/cinder_exporter"), "-rwxr-xr-x");
    for path in [
        "/lib/systemd/system/prometheus-cinder-exporter.service",
        "/etc/default/prometheus-cinder-exporter",
        "/etc/prometheus-cinder-exporter/config.yml",
        "/usr/share/prometheus-cinder-exporter/cinder-exporter.rules.yml",
        "/usr/share/prometheus-cinder-exporter/alertmanager.example.yml",
        "/usr/share/prometheus-cinder-exporter/RUNBOOK.md",
        "/usr/share/prometheus-cinder-exporter/cinder-services.json",
        "/usr/share/doc/prometheus-cinder-exporter/copyright",
        "/usr/share/doc/prometheus-cinder-exporter/changelog.gz",
        "/usr/share/lintian/overrides/prometheus-cinder-exporter",
        "/usr/share/man/man1/cinder_exporter.1.gz",
    ] {
        assert_eq!(mode_of(path), "-rw-r--r--", "{path}");
    }
    assert!(
        listing.lines().all(|l| l.contains(" root/root ")),
        "files not owned by root:\n{listing}"
    );

    let field = |name: &str| {
        let output = run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
        text(&output.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), PACKAGE);
    let maintainer = field("Maintainer");
    assert!(
        maintainer.contains("cinder-exporter@") && !maintainer.contains(".example"),
        "Maintainer: {maintainer}"
    );
    assert_eq!(field("Version"), PACKAGE_VERSION);
    assert_eq!(field("Architecture"), "amd64");
    let depends = field("Depends");
    assert!(
        depends.contains("libc6 (>= ") && depends.contains("adduser"),
        "Depends: {depends}"
    );

    let control = tempfile::tempdir().unwrap();
    let output = run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(deb)
        .arg(control.path()));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let conffiles = fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        [
            "/etc/prometheus-cinder-exporter/config.yml",
            "/etc/default/prometheus-cinder-exporter"
        ]
    );
    for script in ["postinst", "prerm", "postrm"] {
        let output = run(Command::new("sh")
            .arg("-n")
            .arg(control.path().join(script)));
        assert!(
            output.status.success(),
            "{script}: {}",
            text(&output.stderr)
        );
    }
}

/// Lintian's tags that this package accepts, each with the reason.
const ACCEPTED_LINTIAN_TAGS: &[(&str, &str)] = &[
    // Built with dpkg-deb from a Cargo project: there is no Debian source package.
    // (None so far; add a tag here with its reason if lintian grows one we accept.)
];

#[test]
fn lintian_finds_no_errors_and_only_accepted_warnings() {
    let output = run(Command::new("lintian")
        .args(["--tag-display-limit", "0", "--display-level", ">=warning"])
        .arg(deb()));
    let report = text(&output.stdout);
    // Lintian exits non-zero on an error tag, or when it cannot check the package.
    assert!(
        output.status.success(),
        "lintian: {}\n{report}{}",
        output.status,
        text(&output.stderr)
    );
    let unexpected: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("E: ") || line.starts_with("W: "))
        .filter(|line| {
            let tag = line.split(": ").nth(2).unwrap_or("");
            let tag = tag.split_whitespace().next().unwrap_or("");
            line.starts_with("E: ") || !ACCEPTED_LINTIAN_TAGS.iter().any(|(t, _)| *t == tag)
        })
        .collect();
    assert!(unexpected.is_empty(), "lintian:\n{}", unexpected.join("\n"));
}

#[test]
fn systemd_accepts_the_unit_and_rates_it_hardened() {
    let root = unpacked_deb();
    let unit = "prometheus-cinder-exporter.service";
    let unit_path = root.path().join("lib/systemd/system").join(unit);

    // `verify` loads the unit as systemd would inside the unpacked package, with the
    // targets systemd itself ships (for the unit's default dependencies): the syntax,
    // ExecStart's binary (exists, executable) and the man page in Documentation=.
    let host_units = Path::new("/lib/systemd/system");
    for entry in fs::read_dir(host_units).expect("systemd's units in /lib/systemd/system") {
        let path = entry.unwrap().path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("target" | "slice")
        ) {
            let copy = root
                .path()
                .join("lib/systemd/system")
                .join(path.file_name().unwrap());
            fs::copy(&path, copy).unwrap();
        }
    }
    // ExecReload runs `/bin/kill`, from procps, a dependency of the package: put the
    // host's in the root, as installing the dependency would.
    let bin = root.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/kill", bin.join("kill")).expect("/bin/kill (procps)");
    let output = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg(&unit_path)
        .env("MANPATH", root.path().join("usr/share/man")));
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "systemd-analyze verify: {said}");
    assert!(
        !said.contains(unit),
        "systemd-analyze verify complained about the unit:\n{said}"
    );

    // The offline security review: 10 is an unconfined service, below 2 is what
    // systemd calls "OK". The threshold makes a lost hardening line fail the test.
    let output = run(Command::new("systemd-analyze")
        .arg("security")
        .arg("--offline=yes")
        .arg("--threshold=20")
        .arg("--no-pager")
        .arg(&unit_path));
    let report = text(&output.stdout);
    assert!(
        output.status.success(),
        "systemd-analyze security: {report}{}",
        text(&output.stderr)
    );
    let exposure: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    assert!(exposure <= 2.0, "exposure {exposure}:\n{report}");

    // The group cinder is not named in the unit: systemd would refuse to start it
    // where that group does not exist. postinst adds the membership instead.
    let unit_text = fs::read_to_string(&unit_path).unwrap();
    assert!(
        !unit_text
            .lines()
            .any(|l| l.starts_with("SupplementaryGroups") || l == "Group=cinder"),
        "{unit_text}"
    );
}

/// The flags `/etc/default/prometheus-cinder-exporter` gives the service (`ARGS=`), split as
/// systemd splits an unquoted `$ARGS`.
fn packaged_args(root: &Path) -> Vec<String> {
    let defaults = fs::read_to_string(root.join("etc/default/prometheus-cinder-exporter")).unwrap();
    let line = defaults
        .lines()
        .find_map(|l| l.strip_prefix("ARGS="))
        .expect("ARGS= in /etc/default/prometheus-cinder-exporter");
    line.trim_matches('"')
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The packaged config.yml, its cinder.conf path pointed at `cinder_conf`.
fn packaged_config(root: &Path, cinder_conf: &Path) -> String {
    let config =
        fs::read_to_string(root.join("etc/prometheus-cinder-exporter/config.yml")).unwrap();
    assert!(config.contains("cinder_conf: /etc/cinder/cinder.conf\n"));
    config.replace(
        "cinder_conf: /etc/cinder/cinder.conf",
        &format!("cinder_conf: {}", cinder_conf.display()),
    )
}

/// Starts the packaged binary as the service would (ARGS from /etc/default, the
/// shipped config.yml) against the database URL in a cinder.conf.
fn start_packaged(root: &Path, work: &Path, database_url: &str) -> Running {
    let cinder_conf = work.join("cinder.conf");
    fs::write(
        &cinder_conf,
        format!("[DEFAULT]\nreport_interval = 10\n\n[database]\nconnection = {database_url}\n"),
    )
    .unwrap();
    let config = work.join("config.yml");
    fs::write(&config, packaged_config(root, &cinder_conf)).unwrap();
    let args: Vec<String> = packaged_args(root)
        .into_iter()
        .map(|a| {
            a.replace(
                "/etc/prometheus-cinder-exporter/config.yml",
                config.to_str().unwrap(),
            )
        })
        .collect();
    assert!(args.iter().any(|a| a.contains(config.to_str().unwrap())));
    let port = free_port();
    let mut command = Command::new(root.join("usr/bin/cinder_exporter"));
    command
        .args(&args)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    Running::start(command, port, work)
}

#[test]
fn the_packaged_binary_runs_with_the_packaged_configuration() {
    let root = unpacked_deb();
    let binary = root.path().join("usr/bin/cinder_exporter");
    check_version(&binary);

    // As on a controller: the database URL from cinder.conf's [database] connection.
    let db = Database::create(Schema::Cinder29);
    insert_live_service(&db);
    let work = tempfile::tempdir().unwrap();
    let pymysql_url = db.url().replacen("mysql://", "mysql+pymysql://", 1);
    let exporter = start_packaged(root.path(), work.path(), &pymysql_url);
    let scrape = exporter.wait_for("the service from the database", |s| {
        s.value("cinder_up", &[]) == Some(1.0)
            && s.value(
                "cinder_service_up",
                &[("host", "ctl1@lvm"), ("binary", "cinder-volume")],
            ) == Some(1.0)
    });
    assert_eq!(
        scrape.value("cinder_config_report_interval_seconds", &[]),
        Some(10.0)
    );
}

#[test]
fn the_packaged_binary_serves_health_without_its_database() {
    let root = unpacked_deb();
    let work = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let unreachable = format!("mysql+pymysql://cinder:x@127.0.0.1:{}/cinder", free_port());
    let exporter = start_packaged(root.path(), work.path(), &unreachable);
    assert_eq!(exporter.get("/-/healthy").0, 200);
    exporter.wait_for("a failed poll", |s| s.value("cinder_up", &[]) == Some(0.0));
    assert_eq!(exporter.get("/-/ready").0, 503);
}

#[test]
fn the_man_page_has_every_section_and_every_flag_of_help() {
    let root = unpacked_deb();
    let page =
        run(Command::new("zcat").arg(root.path().join("usr/share/man/man1/cinder_exporter.1.gz")));
    let page = text(&page.stdout);
    let headings: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix(".SH "))
        .map(|h| h.trim_matches('"'))
        .collect();
    for wanted in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "FILES",
        "SIGNALS",
        "ENVIRONMENT",
        "EXIT STATUS",
        "SEE ALSO",
    ] {
        assert!(headings.contains(&wanted), "no {wanted} in {headings:?}");
    }
    // roff escapes '-' as '\-': compare with the escapes removed.
    let plain = page.replace("\\-", "-");
    let help = run(Command::new(root.path().join("usr/bin/cinder_exporter")).arg("--help"));
    let help = text(&help.stdout);
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .collect();
    assert!(flags.len() >= 6, "{flags:?}");
    for flag in flags {
        assert!(
            plain.contains(flag),
            "{flag} is in --help, not in the man page"
        );
    }
}

/// The operator's first day on a host without cinder: the packaged binary started as
/// the unit starts it (ExecStart, with ARGS from /etc/default) in a root holding only
/// the package's files and the libraries the binary links, as the unit's user. It
/// runs, says `cinder_up 0`, and its log and page name the file and the key; the one
/// edit the shipped config.yml's comments describe, and a reload (the unit's
/// ExecReload: SIGHUP), bring `cinder_up 1`.
#[test]
fn the_package_starts_without_cinder_and_one_edit_configures_it() {
    let Some(()) = need_root("run the packaged binary in a chroot") else {
        return;
    };
    let root = unpacked_deb();
    let db = Database::create(Schema::Cinder29);
    insert_live_service(&db);
    let root_path = root.path();
    assert!(!root_path.join("etc/cinder").exists());
    copy_linked_libraries(root_path, &root_path.join("usr/bin/cinder_exporter"));
    let port = free_port();
    let mut command = Command::new("chroot");
    command
        .arg(format!("--userspec={CONTAINER_USER}"))
        .arg(root_path)
        .args(unit_command(root_path))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let logs = tempfile::tempdir().unwrap();
    let exporter = Running::start(command, port, logs.path());

    let config_path = root_path.join("etc/prometheus-cinder-exporter/config.yml");
    let config = fs::read_to_string(&config_path).unwrap();
    let key_line = 1 + config
        .lines()
        .position(|l| l.starts_with("cinder_conf:"))
        .expect("cinder_conf: in the shipped config.yml");
    let named = format!("/etc/prometheus-cinder-exporter/config.yml:{key_line}:1: cinder_conf names /etc/cinder/cinder.conf");
    exporter.wait_for("cinder_up 0", |s| s.value("cinder_up", &[]) == Some(0.0));
    let (_, page) = exporter.get("/");
    assert!(
        page.contains(&named),
        "the page does not say {named:?}:\n{page}"
    );
    assert!(page.contains("url_file"), "{page}");
    assert!(exporter.log().contains(&named), "{}", exporter.log());
    assert_eq!(exporter.get("/-/ready").0, 503);

    // The edit config.yml's comments describe: the URL in its own file, and the
    // cinder_conf line replaced by the commented database.url_file line.
    let url_file = root_path.join("etc/prometheus-cinder-exporter/database-url");
    fs::write(&url_file, format!("{}\n", db.url())).unwrap();
    make_readable(&url_file);
    let replacement = config
        .lines()
        .find_map(|l| l.strip_prefix("#database: {url_file: "))
        .map(|rest| format!("database: {{url_file: {rest}"))
        .expect("a commented database.url_file line in the shipped config.yml");
    assert!(replacement.contains("/etc/prometheus-cinder-exporter/database-url"));
    let edited: Vec<String> = config
        .lines()
        .map(|l| match l.starts_with("cinder_conf:") {
            true => replacement.clone(),
            false => l.to_string(),
        })
        .collect();
    fs::write(&config_path, edited.join("\n") + "\n").unwrap();
    let reload = run(Command::new("kill")
        .arg("-HUP")
        .arg(exporter.child.id().to_string()));
    assert!(reload.status.success());
    exporter.wait_for("the service, after the one edit", service_seen);
}

/// The command line the unit runs: ExecStart with `$ARGS` from /etc/default.
fn unit_command(root: &Path) -> Vec<String> {
    let unit = fs::read_to_string(
        root.join("lib/systemd/system")
            .join(format!("{PACKAGE}.service")),
    )
    .unwrap();
    let exec_start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart= in the unit");
    let mut words: Vec<String> = Vec::new();
    for word in exec_start.split_whitespace() {
        match word {
            "$ARGS" => words.extend(packaged_args(root)),
            _ => words.push(word.to_string()),
        }
    }
    assert_eq!(words[0], "/usr/bin/cinder_exporter", "{exec_start}");
    words
}

/// Puts the shared libraries `binary` links (as `ldd` lists them) into `root`, at
/// the same paths, as installing the package's dependencies would.
fn copy_linked_libraries(root: &Path, binary: &Path) {
    let output = run(Command::new("ldd").arg(binary));
    assert!(output.status.success(), "ldd: {}", text(&output.stderr));
    for line in text(&output.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(Path::new);
        let Some(path) = path else { continue };
        let copy = root.join(path.strip_prefix("/").unwrap());
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        fs::copy(path, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
    }
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(root)
        .status()
        .unwrap();
}

fn make_readable(path: &Path) {
    Command::new("chmod").arg("a+r").arg(path).status().unwrap();
}

/// What the package installs is named one way everywhere (see [`PACKAGE`]): no file
/// the repository holds spells a unit, path, user or command another way.
#[test]
fn the_tree_spells_the_package_names_one_way() {
    // The other spellings, as they would be written; this file must spell them.
    let others: Vec<String> = ["cinder-exporter", "cinder_exporter"]
        .iter()
        .flat_map(|name| {
            [
                format!("{name}.service"),
                format!("/etc/{name}"),
                format!("/etc/default/{name}"),
                format!("/usr/share/{name}"),
                format!("/usr/share/doc/{name}"),
                format!("journalctl -u {name}"),
                format!("systemctl status {name}"),
                format!("systemctl restart {name}"),
                format!("systemctl reload {name}"),
                format!("systemctl edit {name}"),
                format!("systemctl start {name}"),
                format!("systemctl stop {name}"),
                format!("adduser {name}"),
                format!("system user {name}"),
                format!("group {name}"),
                format!("-g {name} "),
                format!("{name}_<version>_amd64.deb"),
                format!("{name}_0.1.0_amd64.deb"),
                format!("Package: {name}"),
            ]
        })
        .collect();
    let allowed = ["tests/packaging.rs"];
    let listed = run(Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repository()));
    let mut found = Vec::new();
    for file in text(&listed.stdout).split('\0').filter(|f| !f.is_empty()) {
        if allowed.contains(&file) {
            continue;
        }
        let Ok(content) = fs::read_to_string(repository().join(file)) else {
            continue; // not text
        };
        // Words broken across lines (YAML descriptions), backticks, and the right
        // spelling (which contains the wrong ones) do not hide or make a match.
        let flat = content
            .replace(PACKAGE, "PACKAGE")
            .replace('`', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for other in &others {
            // Whole words only: `cinder-exporter.services` is a rule group's name.
            let whole = flat.match_indices(other.as_str()).any(|(at, _)| {
                !flat[at + other.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if whole {
                found.push(format!("{file}: {other}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "spelled otherwise than {PACKAGE}:\n{}",
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The static binary
// ---------------------------------------------------------------------------------------

#[test]
fn the_static_binary_needs_no_shared_library() {
    let binary = static_binary();
    let output = run(Command::new("ldd").arg(binary));
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd {}: {said}",
        binary.display()
    );
    let output = run(Command::new("readelf")
        .args(["--program-headers", "--dynamic", "--wide"])
        .arg(binary));
    let headers = text(&output.stdout);
    assert!(output.status.success());
    assert!(
        !headers.contains("INTERP") && !headers.contains("(NEEDED)"),
        "{headers}"
    );
    check_version(binary);
}

/// `--version` says where the build comes from, as Prometheus's programs do, with the
/// build date scripts/package gives (the last commit's), so two builds of a commit
/// are the same; `-V` says the version alone.
fn check_version(binary: &Path) {
    let output = run(Command::new(binary).arg("--version"));
    assert!(output.status.success());
    let said = text(&output.stdout);
    let revision = text(
        &run(Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(repository()))
        .stdout,
    );
    assert!(
        said.starts_with(&format!(
            "cinder_exporter {PACKAGE_VERSION} (revision: {})\n",
            revision.trim()
        )),
        "{said}"
    );
    let epoch = std::env::var("SOURCE_DATE_EPOCH").unwrap_or_else(|_| {
        let output = run(Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(repository()));
        text(&output.stdout).trim().to_string()
    });
    let date = run(Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ", "-d"])
        .arg(format!("@{epoch}")));
    let date = text(&date.stdout);
    for line in [
        format!("  build date:       {}", date.trim()),
        "  rustc version:    1.".to_string(),
        "  platform:         linux/x86_64".to_string(),
    ] {
        assert!(said.contains(&line), "no {line:?} in:\n{said}");
    }
    let output = run(Command::new(binary).arg("-V"));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("cinder_exporter {PACKAGE_VERSION}")
    );
}

/// A database of the shared test server with one live service, its server's IP
/// address, and its URL with the host replaced by `name`.
fn database_reached_as(name: &str) -> (Database, IpAddr, String) {
    let db = Database::create(Schema::Cinder29);
    insert_live_service(&db);
    let mut url = url::Url::parse(&db.url()).unwrap();
    let address = (url.host_str().unwrap(), url.port().unwrap_or(3306))
        .to_socket_addrs()
        .expect("resolve the test server")
        .next()
        .unwrap();
    url.set_host(Some(name)).unwrap();
    (db, address.ip(), url.to_string())
}

/// The live service the exporter must see: `ctl1@lvm`, created a day ago, its last
/// heartbeat a second ago.
fn insert_live_service(db: &Database) {
    db.insert_service("ctl1@lvm", "cinder-volume", Some(-86_400), Some(-1), 1);
}

/// The exporter sees the service, so it reached the database.
fn service_seen(scrape: &Scrape) -> bool {
    scrape.value("cinder_up", &[]) == Some(1.0)
        && scrape.value(
            "cinder_service_up",
            &[("host", "ctl1@lvm"), ("binary", "cinder-volume")],
        ) == Some(1.0)
}

#[test]
fn the_static_binary_alone_in_an_empty_root_reads_the_database_by_host_name() {
    let Some(()) = need_root("run the static binary in a chroot") else {
        return;
    };
    // Built first: the service's heartbeat must still be fresh when the exporter starts.
    static_binary();
    let (_db, address, url) = database_reached_as("cinderdb");
    let root = EmptyRoot::new(&address.to_string());
    root.write("config.yml", &database_config(&url));
    let exporter = root.start();
    exporter.wait_for("the service, the server named in /etc/hosts", service_seen);
    assert!(
        exporter.log().contains("@cinderdb:"),
        "the log does not name the host:\n{}",
        exporter.log()
    );
}

#[test]
fn the_static_binary_alone_in_an_empty_root_resolves_the_database_by_dns() {
    let Some(()) = need_root("run the static binary in a chroot and serve DNS on port 53") else {
        return;
    };
    // Built first: the service's heartbeat must still be fresh when the exporter starts.
    static_binary();
    let (_db, address, url) = database_reached_as("cinderdb.example");
    let IpAddr::V4(address) = address else {
        eprintln!("SKIPPED: the test DNS server answers A records; the test server is {address}");
        return;
    };
    let dns = DnsServer::start(address);
    let root = EmptyRoot::new("192.0.2.1"); // `cinderdb` only: not the name used here
    root.write(
        "etc/resolv.conf",
        &format!("nameserver {}\noptions timeout:1 attempts:2\n", dns.address),
    );
    root.write("config.yml", &database_config(&url));
    let exporter = root.start();
    exporter.wait_for("the service, the server named by DNS", service_seen);
    assert!(
        dns.questions().iter().any(|q| q == "cinderdb.example"),
        "no DNS question for cinderdb.example: {:?}",
        dns.questions()
    );
}

#[test]
fn the_static_binary_alone_in_an_empty_root_verifies_tls_with_only_the_named_ca() {
    let Some(()) = need_root("run the static binary in a chroot") else {
        return;
    };
    static_binary(); // built before the service's heartbeat starts to age
    let ca = Authority::new("cinder database CA");
    let server = PrivateServer::start_with_tls(&ca, &["cinderdb"]);
    let db = Database::create_on(server.url(), Schema::Cinder29);
    insert_live_service(&db);
    // A user that may only connect over TLS: a scrape showing it proves TLS was used.
    let port = common::database::port(server.url());
    admin_rows(
        server.url(),
        "CREATE USER 'chroot_tls'@'%' IDENTIFIED BY 'chroot_tls' REQUIRE SSL",
    );
    admin_rows(
        server.url(),
        &format!(
            "GRANT SELECT ON `{}`.services TO 'chroot_tls'@'%'",
            db.name()
        ),
    );
    let url = |ca_file: &str| {
        format!(
            "mysql://chroot_tls:chroot_tls@cinderdb:{port}/{}?ssl_ca={ca_file}",
            db.name()
        )
    };

    // The right CA: verified, name and all, with no system CA store in the root.
    let root = EmptyRoot::new("127.0.0.1");
    root.write("ca.pem", &ca.pem);
    root.write("config.yml", &database_config(&url("/ca.pem")));
    let exporter = root.start();
    exporter.wait_for("the service, over TLS", service_seen);

    // Another CA: the same server is refused, so the certificate really is checked.
    let other = Authority::new("some other CA");
    let root = EmptyRoot::new("127.0.0.1");
    root.write("ca.pem", &other.pem);
    root.write("config.yml", &database_config(&url("/ca.pem")));
    let refused = root.start();
    refused.wait_for("a refused certificate", |s| {
        s.value("cinder_up", &[]) == Some(0.0)
    });
    poll_until(Duration::from_secs(20), || {
        let log = refused.log();
        if log.contains("UnknownIssuer") {
            return Ok(());
        }
        Err(format!("no certificate error in the log:\n{log}"))
    });
}

/// `Some(())` when running as root; otherwise says why the test does nothing.
fn need_root(what: &str) -> Option<()> {
    let uid = run(Command::new("id").arg("-u"));
    if text(&uid.stdout).trim() == "0" {
        Some(())
    } else {
        eprintln!("SKIPPED: needs root to {what} (CI runs as root)");
        None
    }
}

/// A root directory holding only the static binary, /etc/hosts (mapping `cinderdb`),
/// /etc/resolv.conf, and the files a test writes: what an image `FROM scratch` has
/// once a container engine has added its /etc files.
struct EmptyRoot {
    dir: tempfile::TempDir,
}

impl EmptyRoot {
    fn new(cinderdb_address: &str) -> EmptyRoot {
        let dir = tempfile::Builder::new()
            .prefix("cinder-exporter-chroot.")
            .tempdir()
            .unwrap();
        let root = EmptyRoot { dir };
        fs::create_dir(root.dir.path().join("etc")).unwrap();
        root.write(
            "etc/hosts",
            &format!("127.0.0.1 localhost\n{cinderdb_address} cinderdb\n"),
        );
        // No server answers there: a name missing from /etc/hosts fails quickly.
        root.write(
            "etc/resolv.conf",
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        );
        fs::copy(static_binary(), root.dir.path().join("cinder_exporter")).unwrap();
        Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(root.dir.path())
            .status()
            .unwrap();
        root
    }

    fn write(&self, name: &str, content: &str) {
        let path = self.dir.path().join(name);
        fs::write(&path, content).unwrap();
        Command::new("chmod")
            .arg("a+r")
            .arg(&path)
            .status()
            .unwrap();
    }

    /// The exporter inside, as the container's numeric user.
    fn start(&self) -> Running {
        let port = free_port();
        let mut command = Command::new("chroot");
        command
            .arg(format!("--userspec={CONTAINER_USER}"))
            .arg(self.dir.path())
            .args([
                "/cinder_exporter",
                "--config.file=/config.yml",
                "--log.level=debug",
            ])
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Nothing of this process's environment reaches the exporter; PATH finds chroot.
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        Running::start(command, port, self.dir.path())
    }
}

/// A DNS server for one test on port 53 of a loopback address of its own (resolv.conf
/// cannot name a port): it answers every A question with `answer` and records the
/// names asked. Stops on drop.
struct DnsServer {
    address: Ipv4Addr,
    questions: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl DnsServer {
    fn start(answer: Ipv4Addr) -> DnsServer {
        let (socket, address) = (0..50)
            .find_map(|_| {
                let address = Ipv4Addr::new(127, 53, fastrand::u8(1..255), fastrand::u8(1..255));
                UdpSocket::bind((address, 53)).ok().map(|s| (s, address))
            })
            .expect("bind port 53 on a loopback address");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let questions = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (questions, stop) = (Arc::clone(&questions), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut buffer = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    if let Some((name, reply)) = dns_reply(&buffer[..length], answer) {
                        questions.lock().unwrap().push(name);
                        let _ = socket.send_to(&reply, peer);
                    }
                }
            });
        }
        DnsServer {
            address,
            questions,
            stop,
        }
    }

    fn questions(&self) -> Vec<String> {
        self.questions.lock().unwrap().clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The name asked in a DNS query, and the reply: `answer` for an A question, no
/// records (but no error) for any other type.
fn dns_reply(query: &[u8], answer: Ipv4Addr) -> Option<(String, Vec<u8>)> {
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let length = usize::from(*query.get(at)?);
        if length == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + length)?).into_owned());
        at += 1 + length;
    }
    let question = query.get(12..at + 5)?;
    let is_a = query.get(at + 1..at + 3)? == [0, 1];
    let mut reply = Vec::with_capacity(64);
    reply.extend_from_slice(&query[..2]); // the query's id
    reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if is_a {
        // A pointer to the question's name, type A, class IN, TTL 60 s, 4 bytes.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    Some((labels.join("."), reply))
}

// ---------------------------------------------------------------------------------------
// Running an exporter that is not `CARGO_BIN_EXE_cinder_exporter`
// ---------------------------------------------------------------------------------------

/// An exporter process listening on 127.0.0.1:`port`, its stderr in a file; killed on
/// drop.
struct Running {
    child: Child,
    port: u16,
    log_file: PathBuf,
}

impl Running {
    /// Starts `command` and waits until it answers `/-/healthy`.
    fn start(mut command: Command, port: u16, log_dir: &Path) -> Running {
        let log_file = log_dir.join(format!("exporter-{port}.log"));
        let log = fs::File::create(&log_file).unwrap();
        command
            .env_remove("CINDER_EXPORTER_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let mut running = Running {
            child,
            port,
            log_file,
        };
        poll_until(Duration::from_secs(20), || {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("the exporter exited ({status}):\n{}", running.log());
            }
            match running.try_get("/-/healthy") {
                Some((200, _)) => Ok(()),
                _ => Err(format!("the exporter did not answer:\n{}", running.log())),
            }
        });
        running
    }

    fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let mut response = common::http::agent()
            .get(&format!("http://127.0.0.1:{}{path}", self.port))
            .call()
            .ok()?;
        let body = response.body_mut().read_to_string().ok()?;
        Some((response.status().as_u16(), body))
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} failed; log:\n{}", self.log()))
    }

    /// Scrapes until `ready` holds, or panics after 30 s naming `what`.
    fn wait_for(&self, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
        poll_until(Duration::from_secs(30), || {
            let (status, body) = self.get("/metrics");
            assert_eq!(status, 200, "{body}");
            let scrape = Scrape::parse(&body);
            if ready(&scrape) {
                return Ok(scrape);
            }
            Err(format!(
                "timed out waiting for {what}; last scrape:\n{body}\nlog:\n{}",
                self.log()
            ))
        })
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
