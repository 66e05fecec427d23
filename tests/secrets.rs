//! No secret in any error: every kind of bad configuration that quotes what the
//! operator wrote (a database URL in the wrong key or used as a key, a password that
//! reads as a `$` reference, a cinder.conf line, `url_file`, the web config) carries a
//! known secret, and the secret must appear nowhere the error goes: stderr at start-up
//! (exit 2), the body of `POST /-/reload`, and the log after SIGHUP.
//!
//! No database is needed: every configuration here fails before the first poll, and the
//! running exporter the reloads are tried on polls a port nothing listens on.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::exporter::UNREACHABLE_DATABASE;
use common::http::raw_request;
use common::{run_exporter_to_exit, wait_until, Exporter, ExporterOptions};

/// The secret every bad configuration carries.
const SECRET: &str = "Zq7hunter2Secret";

const WAIT: Duration = Duration::from_secs(20);

/// A URL holding the secret as its password.
fn secret_url() -> String {
    format!("mysql+pymysql://cinder:{SECRET}@ctl1:3306/cinder")
}

/// One bad configuration: the YAML config, and the other files it names (written in
/// the test's directory; `{dir}` in any text stands for that directory).
struct Case {
    what: &'static str,
    config: String,
    files: Vec<(&'static str, String)>,
    /// The web config's text, if this case is about it.
    web: Option<String>,
}

fn case(what: &'static str, config: String) -> Case {
    Case {
        what,
        config,
        files: Vec::new(),
        web: None,
    }
}

/// A config whose database is fine, with `extra` added.
fn with_good_database(extra: &str) -> String {
    format!("database:\n  url: '{UNREACHABLE_DATABASE}'\n{extra}")
}

/// A config whose database comes from `{dir}/cinder.conf`, holding `conf`.
fn cinder_conf_case(what: &'static str, conf: &str) -> Case {
    Case {
        files: vec![("cinder.conf", conf.to_string())],
        ..case(what, "cinder_conf: '{dir}/cinder.conf'\n".into())
    }
}

fn web_case(what: &'static str, web: String) -> Case {
    Case {
        web: Some(web),
        ..case(what, with_good_database(""))
    }
}

fn cases() -> Vec<Case> {
    let url = secret_url();
    vec![
        case(
            "a URL in a duration key",
            with_good_database(&format!("poll_interval: '{url}'\n")),
        ),
        case(
            "a URL as an unknown key of database",
            format!("database:\n  url: '{UNREACHABLE_DATABASE}'\n  '{url}': 1\n"),
        ),
        case(
            "a URL as an unknown top-level key",
            with_good_database(&format!("'{url}': 1\n")),
        ),
        case(
            "a URL as a target name",
            format!("targets:\n  '{url}':\n    database: {{url: '{UNREACHABLE_DATABASE}'}}\n"),
        ),
        case(
            "a URL as the cinder_conf path",
            with_good_database(&format!("cinder_conf: '{url}'\n")),
        ),
        case(
            "a URL as the url_file path",
            format!("database:\n  url_file: '{url}'\n"),
        ),
        case(
            "a URL whose port is out of range",
            format!("database:\n  url: 'mysql://cinder:{SECRET}@ctl1:99999/cinder'\n"),
        ),
        case(
            "a raw # in the password of database.url",
            format!("database:\n  url: 'mysql://cinder:{SECRET}#x@ctl1/cinder'\n"),
        ),
        Case {
            files: vec![("url", format!("postgresql://cinder:{SECRET}@ctl1/cinder\n"))],
            ..case(
                "url_file with a scheme we do not read",
                "database:\n  url_file: '{dir}/url'\n".into(),
            )
        },
        Case {
            files: vec![("url", format!("mysql://cinder:{SECRET}@ctl1:x/cinder\n"))],
            ..case(
                "url_file with a bad port",
                "database:\n  url_file: '{dir}/url'\n".into(),
            )
        },
        cinder_conf_case(
            "a password that reads as an unknown $ reference",
            &format!("[database]\nconnection = mysql+pymysql://cinder:pa${SECRET}@ctl1/cinder\n"),
        ),
        cinder_conf_case(
            "a braced unknown reference in a password",
            &format!("[database]\nconnection = mysql://cinder:pa${{{SECRET}}}@ctl1/cinder\n"),
        ),
        cinder_conf_case(
            "a cinder.conf line that is the rest of a password",
            &format!("[database]\nconnection = mysql://cinder:pa\n{SECRET}@ctl1/cinder\n"),
        ),
        cinder_conf_case(
            "a cinder.conf section header holding a URL",
            &format!("[database connection = {url}\n"),
        ),
        cinder_conf_case(
            "a number that refers to the connection",
            &format!(
                "[DEFAULT]\nservice_down_time = ${{database.connection}}\n\
                 [database]\nconnection = {url}\n"
            ),
        ),
        web_case(
            "a URL as a TLS version",
            format!("tls_server_config:\n  min_version: '{url}'\n"),
        ),
        web_case(
            "a URL as a header name",
            format!("http_server_config:\n  headers:\n    '{url}': x\n"),
        ),
        web_case(
            "a URL as a basic auth user",
            format!("basic_auth_users:\n  '{url}': not-a-hash\n"),
        ),
        web_case("a URL as an unknown key", format!("'{url}': 1\n")),
    ]
}

/// Fails if the secret is in `text`.
fn assert_secret_absent(what: &str, place: &str, text: &str) {
    assert!(
        !text.contains(SECRET),
        "{what}: the secret is in {place}:\n{text}"
    );
}

/// Writes a case's files into `dir`; returns the config's and the web config's paths.
fn write_case(dir: &Path, case: &Case) -> (PathBuf, PathBuf) {
    let fill = |text: &str| text.replace("{dir}", &dir.display().to_string());
    for (name, text) in &case.files {
        std::fs::write(dir.join(name), fill(text)).unwrap();
    }
    let config = dir.join("config.yml");
    std::fs::write(&config, fill(&case.config)).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(&web, case.web.as_deref().unwrap_or("")).unwrap();
    (config, web)
}

#[test]
fn start_up_errors_never_show_a_secret() {
    for case in cases() {
        let dir = tempfile::tempdir().unwrap();
        let (config, web) = write_case(dir.path(), &case);
        let (code, stderr) = run_exporter_to_exit(
            &[
                "--config.file",
                &config.display().to_string(),
                "--web.config.file",
                &web.display().to_string(),
            ],
            &[],
        );
        assert_eq!(code, Some(2), "{}: {stderr}", case.what);
        assert!(stderr.contains("error"), "{}: {stderr}", case.what);
        assert_secret_absent(case.what, "stderr", &stderr);
        // What an operator reads, with --nocapture.
        eprintln!("{}:\n  {}", case.what, stderr.trim());
    }
}

#[test]
fn reload_errors_never_show_a_secret_in_the_body_or_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "").unwrap();
    let exporter = Exporter::start(
        ExporterOptions::without_database()
            .with_args(&["--web.config.file", &web.display().to_string()]),
    );
    let good = std::fs::read_to_string(exporter.config_path()).unwrap();
    let failures = || exporter.log().matches("reload failed").count();
    for case in cases() {
        let case_dir = tempfile::tempdir().unwrap();
        let (config, case_web) = write_case(case_dir.path(), &case);
        exporter.rewrite_config(&std::fs::read_to_string(&config).unwrap());
        std::fs::copy(&case_web, &web).unwrap();

        let response = raw_request(
            &exporter.address,
            "POST /-/reload HTTP/1.1\r\nHost: exporter\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
        );
        assert_eq!(response.status, 500, "{}: {}", case.what, response.body);
        assert_secret_absent(case.what, "the reload's body", &response.body);

        let before = failures();
        exporter.hangup();
        wait_until("a failed reload on SIGHUP", WAIT, || failures() > before);
        assert_secret_absent(case.what, "the log", &exporter.log());

        exporter.rewrite_config(&good);
        std::fs::write(&web, "").unwrap();
    }
    // The exporter still serves, and never quoted the secret anywhere.
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    assert_secret_absent("after the reloads", "/metrics", &body);
    assert_secret_absent("after the reloads", "the log", &exporter.log());
}
