//! A MariaDB server of one test's own, for tests that stop, crash or restart it, or
//! that need it started with TLS. Started and stopped with `scripts/mariadb-throwaway`
//! in a temporary directory; killed and removed on drop.

use std::path::Path;
use std::process::Command;

use super::certs::Authority;
use super::database::admin_rows;
use super::host::repository;

pub struct PrivateServer {
    dir: tempfile::TempDir,
    url: String,
    /// Extra server arguments, given again on a restart.
    extra_args: String,
}

impl PrivateServer {
    pub fn start() -> PrivateServer {
        PrivateServer::start_with("cinder-exporter-mariadb.", |_| String::new())
    }

    /// A server with TLS whose certificate, issued by `ca`, names `names` (DNS names
    /// or IP addresses). Its CA, certificate and key live in its directory (readable
    /// by the server's user); `performance_schema` is on, to see from the server's
    /// side whether a session uses TLS.
    pub fn start_with_tls(ca: &Authority, names: &[&str]) -> PrivateServer {
        let server = PrivateServer::start_with("cinder-exporter-mariadb-tls.", |dir| {
            let (cert, key) = ca.issue("cinder database", names, true);
            let path = |name: &str| dir.join(name);
            std::fs::write(path("ca.pem"), &ca.pem).unwrap();
            std::fs::write(path("server-cert.pem"), cert).unwrap();
            std::fs::write(path("server-key.pem"), key).unwrap();
            format!(
                "--performance-schema=ON --ssl-ca={} --ssl-cert={} --ssl-key={}",
                path("ca.pem").display(),
                path("server-cert.pem").display(),
                path("server-key.pem").display()
            )
        });
        assert_eq!(
            admin_rows(server.url(), "SELECT @@have_ssl"),
            vec!["YES".to_string()],
            "the server did not enable TLS; error.log:\n{}",
            std::fs::read_to_string(server.dir.path().join("error.log")).unwrap_or_default()
        );
        server
    }

    /// Starts a server in a new directory named with `prefix`; `prepare` writes what
    /// the server needs there and returns extra server arguments.
    fn start_with(prefix: &str, prepare: impl FnOnce(&Path) -> String) -> PrivateServer {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("temp dir");
        let extra_args = prepare(dir.path());
        let url = throwaway(dir.path(), "start", &extra_args);
        PrivateServer {
            dir,
            url,
            extra_args,
        }
    }

    /// Its admin URL (`mysql://admin:admin@127.0.0.1:PORT/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts it again (same port, same data) after [`stop`](Self::stop) or [`kill`](Self::kill).
    pub fn restart(&self) {
        throwaway(self.dir.path(), "start", &self.extra_args);
    }

    pub fn stop(&self) {
        throwaway(self.dir.path(), "stop", "");
    }

    /// SIGKILL, as a crash.
    pub fn kill(&self) {
        throwaway(self.dir.path(), "kill", "");
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new(repository().join("scripts/mariadb-throwaway"))
            .arg("kill")
            .arg(self.dir.path())
            .output();
    }
}

fn throwaway(dir: &Path, action: &str, extra_args: &str) -> String {
    let mut command = Command::new(repository().join("scripts/mariadb-throwaway"));
    command.arg(action).arg(dir);
    if !extra_args.is_empty() {
        command.env("MARIADB_THROWAWAY_EXTRA_ARGS", extra_args);
    }
    let output = command.output().expect("run scripts/mariadb-throwaway");
    assert!(
        output.status.success(),
        "mariadb-throwaway {action} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
