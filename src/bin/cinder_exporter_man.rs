//! `cinder_exporter_man`: writes the manual page cinder_exporter(1) to stdout, for
//! scripts/package.
//!
//! NAME, SYNOPSIS and OPTIONS come from the clap definition that `--help`
//! prints (`cinder_exporter::cli::Cli`), so the page cannot drift from the flags; the
//! sections clap knows nothing about (files, signals, environment, exit status) are
//! written here. The page's date is the build date, so that a build with
//! `SOURCE_DATE_EPOCH` set gives the same page every time.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::Man;
use roff::{bold, italic, roman, Inline, Roff};

use cinder_exporter::cli::{Cli, DEFAULT_LISTEN_ADDRESS};
use cinder_exporter::config::DATABASE_URL_ENV;
use cinder_exporter::EXIT_CONFIG_ERROR;

fn main() -> std::io::Result<()> {
    let date = &env!("CINDER_EXPORTER_BUILD_DATE")[..10];
    let man = Man::new(Cli::command())
        .date(date)
        .source(format!("cinder_exporter {}", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    description(&mut out)?;
    man.render_options_section(&mut out)?;
    sections().to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    std::io::stdout().write_all(&out)
}

/// What is served where (NAME already has clap's one-line description).
fn description(out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut roff = Roff::new();
    roff.control("SH", ["DESCRIPTION"]);
    paragraph(
        &mut roff,
        [
            roman(
                "It reads cinder's services table, once per poll whatever the number of \
             scrapers, and serves on the listen address (default ",
            ),
            bold(DEFAULT_LISTEN_ADDRESS),
            roman("):"),
        ],
    );
    for (path, what) in [
        (
            "/metrics",
            "the exposition (the path is --web.telemetry-path)",
        ),
        (
            "/probe?target=NAME",
            "the exposition of a database named under targets:",
        ),
        (
            "/",
            "a status page: every service, its verdict and why it is down",
        ),
        ("/-/healthy", "200 while the process runs"),
        ("/-/ready", "200 once the database has been read"),
        (
            "/-/reload",
            "POST: re-reads the configuration, as SIGHUP does",
        ),
    ] {
        item(&mut roff, path, what);
    }
    roff.to_writer(out)
}

/// FILES, SIGNALS, ENVIRONMENT, EXIT STATUS and SEE ALSO.
fn sections() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["FILES"]);
    paragraph(
        &mut roff,
        [roman(
            "As the Debian package prometheus-cinder-exporter installs them:",
        )],
    );
    for (path, what) in [
        (
            "/etc/prometheus-cinder-exporter/config.yml",
            "the configuration (--config.file): where the database is, cinder.conf, intervals",
        ),
        (
            "/etc/default/prometheus-cinder-exporter",
            "the flags of the service prometheus-cinder-exporter.service (ARGS=)",
        ),
        (
            "/etc/cinder/cinder.conf",
            "read for [database] connection, [DEFAULT] service_down_time and report_interval \
             when config.yml names it (cinder_conf)",
        ),
        (
            "/usr/share/prometheus-cinder-exporter/",
            "alerting rules, their runbook, an Alertmanager example and a Grafana dashboard",
        ),
    ] {
        item(&mut roff, path, what);
    }

    roff.control("SH", ["SIGNALS"]);
    item(
        &mut roff,
        "SIGHUP",
        "re-reads --config.file, the cinder.conf files it names and --web.config.file; \
         a file with an error is logged and the running configuration stays in force",
    );
    item(
        &mut roff,
        "SIGTERM, SIGINT",
        "stop accepting connections, finish the responses under way, and exit 0",
    );

    roff.control("SH", ["ENVIRONMENT"]);
    item(
        &mut roff,
        DATABASE_URL_ENV,
        "the database URL when config.yml gives neither database.url nor \
         database.url_file; it wins over cinder.conf",
    );

    roff.control("SH", ["EXIT STATUS"]);
    item(&mut roff, "0", "stopped by SIGTERM or SIGINT");
    item(
        &mut roff,
        "1",
        "could not run: the address is taken, no runtime",
    );
    item(
        &mut roff,
        &EXIT_CONFIG_ERROR.to_string(),
        "a bad flag or configuration file; the message names the file, line and key",
    );

    roff.control("SH", ["SEE ALSO"]);
    paragraph(
        &mut roff,
        [
            bold("prometheus"),
            roman("(1), "),
            bold("systemctl"),
            roman("(1), "),
            bold("journalctl"),
            roman("(1), "),
            italic("/usr/share/doc/prometheus-cinder-exporter/README.Debian"),
            roman(", https://github.com/cinder-exporter/cinder_exporter"),
        ],
    );
    roff
}

fn paragraph<const N: usize>(roff: &mut Roff, text: [Inline; N]) {
    roff.control("PP", []);
    roff.text(text);
}

/// A tagged paragraph: `tag` in bold, `what` indented under it.
fn item(roff: &mut Roff, tag: &str, what: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(what)]);
}
