//! The HTTP endpoint under `--web.config.file` and under abuse: TLS, client
//! certificates, TLS versions, basic auth, bad web config files, many idle connections,
//! slow and oversized and garbage requests, and a SIGTERM with scrapes in flight.
//!
//! The real binary runs with no database behind it (a URL nothing listens on): its
//! polls fail at once and it serves `cinder_up 0`, a whole exposition through the same
//! web layer, so these tests need no MariaDB.
//!
//! Certificates are made at test time with rcgen; every connection goes to 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::Pki;
use common::host::poll_until;
use common::http::{parse_response, plain_get, read_until_closed, request, Response};
use common::https::TlsClient;
use common::{run_exporter_to_exit, Exporter, ExporterOptions, Scrape};

const WAIT: Duration = Duration::from_secs(20);
/// The exporter's RSS must stay under this whatever the clients do.
const RSS_LIMIT_KIB: u64 = 100 * 1024;

/// What hyper reports when a request's headers do not arrive in time.
const HEADER_TIMEOUT_ERROR: &str = "read header from client timeout";

fn assert_rss_bounded(exporter: &Exporter, when: &str) -> u64 {
    let rss = exporter.rss_kib();
    assert!(
        rss < RSS_LIMIT_KIB,
        "{when}: RSS {rss} KiB over {RSS_LIMIT_KIB} KiB"
    );
    rss
}

/// How many log lines of `exporter` contain `needle`.
fn log_count(exporter: &Exporter, needle: &str) -> usize {
    exporter
        .log()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// The exporter with no database behind it, started with `args`: every poll fails at
/// once, and the web layer serves `cinder_up 0` like any other exposition.
fn exporter_with(args: &[&str]) -> Exporter {
    Exporter::start(ExporterOptions::without_database().with_args(args))
}

/// Retries `scrape` until it yields the exposition after a failed poll (`cinder_up 0`,
/// one poll error at least), or panics after [`WAIT`].
fn wait_for_service(exporter: &Exporter, scrape: impl Fn() -> Result<Response, String>) -> Scrape {
    poll_until(WAIT, || {
        let last = scrape();
        if let Ok(response) = &last {
            if response.status == 200 {
                let parsed = Scrape::parse(&response.body);
                let polled = parsed
                    .value("cinder_exporter_poll_errors_total", &[])
                    .is_some_and(|e| e >= 1.0);
                if polled && parsed.value("cinder_up", &[]).is_some() {
                    return Ok(parsed);
                }
            }
        }
        Err(format!(
            "no scrape after a failed poll; last: {last:?}\nlog:\n{}",
            exporter.log()
        ))
    })
}

// ---------------------------------------------------------------------------------
// TLS

#[test]
fn tls_serves_https_and_refuses_plain_http() {
    let pki = Pki::new();
    // Relative file names: resolved against the web config file's directory.
    let web =
        pki.web_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let exporter = exporter_with(&["--web.config.file", web.to_str().unwrap()]);
    let client = TlsClient::default();
    let scrape = wait_for_service(&exporter, || {
        client.get(&pki, &exporter.address, "/metrics")
    });
    assert_eq!(scrape.value("cinder_up", &[]), Some(0.0));
    assert!(
        exporter.log().contains("tls=TLS12..TLS13"),
        "TLS mode logged: {}",
        exporter.log()
    );
    // Both versions are offered by default.
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let only = TlsClient {
            only: Some(version),
            ..TlsClient::default()
        };
        let response = only.get(&pki, &exporter.address, "/-/healthy").unwrap();
        assert_eq!(response.status, 200, "{version:?}");
    }

    // Plain HTTP to the TLS port: no HTTP response, no metrics.
    let mut stream = TcpStream::connect(&exporter.address).unwrap();
    stream
        .write_all(request("/metrics", &[]).as_bytes())
        .unwrap();
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(closed, "the TLS port closes a plain-HTTP connection");
    let text = String::from_utf8_lossy(&received);
    assert!(
        !text.contains("HTTP/1.1 200") && !text.contains("cinder_"),
        "{text}"
    );
    // Still serving afterwards.
    assert_eq!(
        client
            .get(&pki, &exporter.address, "/-/healthy")
            .unwrap()
            .status,
        200
    );
}

#[test]
fn mutual_tls_requires_a_client_certificate_signed_by_the_ca() {
    let pki = Pki::new();
    let web = pki.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let exporter = exporter_with(&["--web.config.file", web.to_str().unwrap()]);
    let identity = pki.client();
    let trusted = TlsClient {
        identity: Some(&identity),
        ..TlsClient::default()
    };
    wait_for_service(&exporter, || {
        trusted.get(&pki, &exporter.address, "/metrics")
    });
    assert!(
        exporter
            .log()
            .contains("client_certificates=RequireAndVerifyClientCert"),
        "{}",
        exporter.log()
    );

    let rogue_identity = pki.rogue_client();
    let refused = [
        ("no client certificate", TlsClient::default()),
        (
            "a certificate from another CA",
            TlsClient {
                identity: Some(&rogue_identity),
                ..TlsClient::default()
            },
        ),
    ];
    for (what, client) in refused {
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let client = TlsClient {
                only: Some(version),
                ..client
            };
            let result = client.get(&pki, &exporter.address, "/metrics");
            assert!(
                result.is_err(),
                "{what} over {version:?} was served: {result:?}"
            );
        }
    }
    // The trusted client still gets in, over either version.
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let client = TlsClient {
            identity: Some(&identity),
            only: Some(version),
        };
        let response = client.get(&pki, &exporter.address, "/metrics").unwrap();
        assert_eq!(response.status, 200, "{version:?}");
        assert!(response.body.contains("cinder_up 0"), "{}", response.body);
    }
}

#[test]
fn the_other_client_certificate_policies() {
    let pki = Pki::new();
    let identity = pki.client();
    let rogue_identity = pki.rogue_client();
    let none = TlsClient::default();
    let trusted = TlsClient {
        identity: Some(&identity),
        ..TlsClient::default()
    };
    let rogue = TlsClient {
        identity: Some(&rogue_identity),
        ..TlsClient::default()
    };
    // (policy, served without a certificate, served with one from an unknown CA)
    let policies = [
        ("VerifyClientCertIfGiven", true, false),
        ("RequireAnyClientCert", false, true),
        ("RequestClientCert", true, true),
    ];
    for (policy, without, with_rogue) in policies {
        let ca = if policy.contains("Verify") {
            "  client_ca_file: ca.crt\n"
        } else {
            ""
        };
        let web = pki.web_config(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: {policy}\n{ca}"
        ));
        let exporter = exporter_with(&["--web.config.file", web.to_str().unwrap()]);
        wait_for_service(&exporter, || {
            trusted.get(&pki, &exporter.address, "/metrics")
        });
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let served = |client: &TlsClient| {
                let client = TlsClient {
                    only: Some(version),
                    ..*client
                };
                client
                    .get(&pki, &exporter.address, "/metrics")
                    .is_ok_and(|r| r.status == 200)
            };
            assert_eq!(
                served(&none),
                without,
                "{policy} {version:?}, no certificate"
            );
            assert_eq!(
                served(&rogue),
                with_rogue,
                "{policy} {version:?}, unknown CA"
            );
            assert!(
                served(&trusted),
                "{policy} {version:?}, trusted certificate"
            );
        }
    }
}

#[test]
fn min_version_tls13_refuses_a_tls12_only_client() {
    let pki = Pki::new();
    let web = pki.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS13\n",
    );
    let exporter = exporter_with(&["--web.config.file", web.to_str().unwrap()]);
    let tls13 = TlsClient {
        only: Some(&rustls::version::TLS13),
        ..TlsClient::default()
    };
    wait_for_service(&exporter, || tls13.get(&pki, &exporter.address, "/metrics"));
    let tls12 = TlsClient {
        only: Some(&rustls::version::TLS12),
        ..TlsClient::default()
    };
    let result = tls12.get(&pki, &exporter.address, "/metrics");
    assert!(result.is_err(), "a TLS 1.2 client was served: {result:?}");
}

#[test]
fn a_stalled_tls_handshake_is_cut() {
    let pki = Pki::new();
    let web =
        pki.web_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let exporter = exporter_with(&["--web.config.file", web.to_str().unwrap()]);
    wait_for_service(&exporter, || {
        TlsClient::default().get(&pki, &exporter.address, "/metrics")
    });
    // One connection that sends nothing, one that sends half a ClientHello.
    let started = Instant::now();
    let mut silent = TcpStream::connect(&exporter.address).unwrap();
    let mut partial = TcpStream::connect(&exporter.address).unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    for stream in [&mut silent, &mut partial] {
        let (_, closed) = read_until_closed(stream, Duration::from_secs(12));
        assert!(closed, "a stalled handshake was not cut");
    }
    // Cut by the handshake timeout (5 s): never before it, and for that reason (a
    // busy machine may cut later, so no upper bound on the time).
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(4),
        "cut after {elapsed:?}, before the 5 s handshake timeout"
    );
    let timed_out = poll_until(Duration::from_secs(5), || {
        let n = log_count(&exporter, "TLS handshake timed out");
        (n >= 2)
            .then_some(n)
            .ok_or_else(|| format!("{n} handshake timeouts logged:\n{}", exporter.log()))
    });
    eprintln!("cut after {elapsed:?}; {timed_out} handshake timeouts logged");

    // More silent connections than slots: they are closed to let a scrape in.
    let silent: Vec<TcpStream> = (0..600)
        .map(|_| TcpStream::connect(&exporter.address).unwrap())
        .collect();
    let response = TlsClient::default()
        .get(&pki, &exporter.address, "/metrics")
        .unwrap_or_else(|e| panic!("scrape behind 600 silent connections: {e}"));
    assert_eq!(response.status, 200);
    drop(silent);
}

// ---------------------------------------------------------------------------------
// Basic auth

// ---------------------------------------------------------------------------------
// Bad web config files

#[test]
fn bad_web_config_exits_2_naming_the_file_and_the_key() {
    let pki = Pki::new();
    let config = pki.path("config.yml");
    std::fs::write(
        &config,
        "database:\n  url: mysql://u:p@127.0.0.1:1/cinder\n",
    )
    .unwrap();
    let write = |name: &str, text: &str| pki.write(name, text);
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let cases: Vec<(PathBuf, &str, &str)> = vec![
        (
            write(
                "unknown.yml",
                &format!("{tls}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
            ),
            "unknown.yml:4:3",
            "cipher_suites",
        ),
        (
            write("unknown-top.yml", "tls_config:\n  cert_file: a\n"),
            "unknown-top.yml:1:1",
            "tls_config",
        ),
        (
            write(
                "missing.yml",
                "tls_server_config:\n  cert_file: nothere.crt\n  key_file: server.key\n",
            ),
            "missing.yml:2:3",
            "nothere.crt",
        ),
        (
            write("hash.yml", "basic_auth_users:\n  alice: hunter2hunter2\n"),
            "hash.yml:2:3",
            "bcrypt",
        ),
        (
            write("tls10.yml", &format!("{tls}  min_version: TLS10\n")),
            "tls10.yml:4:3",
            "TLS10",
        ),
        (
            write(
                "mismatch.yml",
                "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
            ),
            "mismatch.yml:3:3",
            "key_file",
        ),
        (
            write(
                "ca-without-auth.yml",
                &format!("{tls}  client_ca_file: ca.crt\n"),
            ),
            "ca-without-auth.yml:4:3",
            "client_auth_type",
        ),
        (
            write(
                "not-pem.yml",
                "tls_server_config:\n  cert_file: web.yml\n  key_file: server.key\n",
            ),
            "not-pem.yml:2:3",
            "no PEM certificate",
        ),
        (
            write("syntax.yml", "tls_server_config: [\n"),
            "syntax.yml:",
            "",
        ),
    ];
    write("web.yml", "not a certificate\n");
    for (path, location, message) in cases {
        let (code, stderr) = run_exporter_to_exit(
            &[
                "--config.file",
                config.to_str().unwrap(),
                "--web.config.file",
                path.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code, Some(2), "{}: {stderr}", path.display());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        let expected_location = pki.path(location).display().to_string();
        assert!(
            stderr.contains(&expected_location) && stderr.contains(message),
            "{}: expected {expected_location} and {message:?} in {stderr}",
            path.display()
        );
        assert!(
            !stderr.contains("hunter2"),
            "a hash is never echoed: {stderr}"
        );
    }
    let (code, stderr) = run_exporter_to_exit(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--web.config.file",
            "/nonexistent/web.yml",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/web.yml"), "{stderr}");
}

// ---------------------------------------------------------------------------------
// Abuse

#[test]
fn a_thousand_idle_connections_do_not_keep_a_scrape_out() {
    let exporter = exporter_with(&[]);
    wait_for_service(&exporter, || {
        Ok(plain_get(&exporter.address, "/metrics", &[]))
    });
    let before = exporter.rss_kib();

    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle.push(TcpStream::connect(&exporter.address).expect("connect"));
    }
    let mut peak = assert_rss_bounded(&exporter, "1,000 idle connections");
    // Give the shedding its second of idleness, then scrape on a new connection.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let mut response = common::http::agent()
        .get(&format!("http://{}/metrics", exporter.address))
        .call()
        .unwrap_or_else(|e| {
            panic!(
                "scrape under 1,000 idle connections: {e}\n{}",
                exporter.log()
            )
        });
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body_mut().read_to_string().unwrap();
    assert!(body.contains("cinder_up 0"), "{body}");
    let took = started.elapsed();
    peak = peak.max(assert_rss_bounded(&exporter, "after the scrape"));
    // It got in because idle connections were closed to make room, not by waiting for
    // their header timeout.
    assert!(
        exporter.log().contains("closing an idle connection"),
        "no idle connection was shed"
    );
    eprintln!(
        "scrape under 1,000 idle connections took {took:?}; RSS {before} KiB before, peak {peak} KiB"
    );
    drop(idle);
}

#[test]
fn out_of_file_descriptors_idle_connections_make_room_and_accept_errors_are_not_flooded() {
    let exporter = exporter_with(&[]);
    wait_for_service(&exporter, || {
        Ok(plain_get(&exporter.address, "/metrics", &[]))
    });
    // Lower the running exporter's open-files limit: its connection cap (half the
    // limit it read at start) is now far beyond what it can open, so accepting fails
    // with EMFILE long before every slot is taken.
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &exporter.pid().to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit");
    assert!(limited.success(), "prlimit failed");
    let started = Instant::now();
    let idle: Vec<_> = (0..200)
        .map(|_| TcpStream::connect(&exporter.address).expect("connect"))
        .collect();
    wait_until_logged(&exporter, "accept failed");

    let scraping = Instant::now();
    let mut response = common::http::agent()
        .get(&format!("http://{}/metrics", exporter.address))
        .call()
        .unwrap_or_else(|e| panic!("scrape out of descriptors: {e}\n{}", exporter.log()));
    assert_eq!(response.status().as_u16(), 200);
    assert!(response
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("cinder_up 0"));
    let scrape_took = scraping.elapsed();
    assert!(
        exporter.log().contains("closing an idle connection"),
        "no idle connection was shed:\n{}",
        exporter.log()
    );
    // Keep the pressure on a little longer, then count: one line per 10 s at most
    // (before: ten a second).
    std::thread::sleep(Duration::from_secs(3));
    let lines = log_count(&exporter, "accept failed");
    let periods = 1 + started.elapsed().as_secs() / 10;
    eprintln!(
        "out of descriptors: the scrape took {scrape_took:?} behind 200 idle connections; \
         {lines} \"accept failed\" lines in {:?}",
        started.elapsed()
    );
    assert!(
        (1..=periods as usize).contains(&lines),
        "{lines} lines:\n{}",
        exporter.log()
    );
    drop(idle);
}

/// Waits until the log of `exporter` contains `needle`, or panics after [`WAIT`].
fn wait_until_logged(exporter: &Exporter, needle: &str) {
    poll_until(WAIT, || match exporter.log().contains(needle) {
        true => Ok(()),
        false => Err(format!("no {needle:?} in the log:\n{}", exporter.log())),
    })
}

#[test]
fn slow_headers_are_cut_after_the_header_timeout() {
    let exporter = exporter_with(&[]);
    wait_for_service(&exporter, || {
        Ok(plain_get(&exporter.address, "/metrics", &[]))
    });
    let started = Instant::now();
    let mut stream = TcpStream::connect(&exporter.address).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // One more header byte per second, never the blank line that ends the headers.
    let mut closed = false;
    for _ in 0..12 {
        if stream.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        let (_, gone) = read_until_closed(&mut stream, Duration::from_secs(1));
        if gone {
            closed = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "a slowloris client was never cut");
    // Cut by the header timeout (5 s): never before it, and for that reason.
    assert!(
        elapsed >= Duration::from_secs(4),
        "cut after {elapsed:?}, before the 5 s header timeout"
    );
    let header_timeouts = || log_count(&exporter, HEADER_TIMEOUT_ERROR);
    let cut = poll_until(Duration::from_secs(5), || {
        let n = header_timeouts();
        (n >= 1)
            .then_some(n)
            .ok_or_else(|| format!("no header timeout logged:\n{}", exporter.log()))
    });

    // A kept-alive connection idle after a response is closed after the same time.
    let mut stream = TcpStream::connect(&exporter.address).unwrap();
    stream
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(12));
    assert!(
        String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"),
        "{received:?}"
    );
    assert!(closed, "an idle kept-alive connection stayed open");
    // Closed by the same timeout, not by the 10 s write-stall limit or anything else.
    poll_until(Duration::from_secs(5), || {
        (header_timeouts() > cut).then_some(()).ok_or_else(|| {
            format!(
                "closed after {:?}, no second header timeout logged:\n{}",
                started.elapsed(),
                exporter.log()
            )
        })
    });
}

#[test]
fn huge_headers_and_garbage_get_an_error_or_a_close_and_no_crash() {
    let exporter = exporter_with(&[]);
    wait_for_service(&exporter, || {
        Ok(plain_get(&exporter.address, "/metrics", &[]))
    });
    let huge_value = "a".repeat(64 * 1024);
    let many_headers: String = (0..2000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let mut random = vec![0u8; 4096];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for byte in &mut random {
        // xorshift: reproducible junk without another dependency.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *byte = seed as u8;
    }
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        (
            "a 64 KiB header",
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {huge_value}\r\n\r\n").into_bytes(),
            &[431],
        ),
        (
            "2,000 headers",
            format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            &[431],
        ),
        (
            "a 64 KiB request line",
            format!("GET /{huge_value} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            &[400, 414, 431],
        ),
        ("random bytes", random, &[400]),
        ("not HTTP", b"HELLO exporter\r\n\r\n".to_vec(), &[400]),
        (
            "an HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            &[400, 505],
        ),
        (
            "a TLS ClientHello",
            vec![0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00],
            &[400],
        ),
        (
            "a bad chunked body",
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                .to_vec(),
            &[400, 405],
        ),
    ];
    let mut peak = 0;
    for (what, bytes, statuses) in cases {
        let mut stream = TcpStream::connect(&exporter.address).unwrap();
        // The server may answer and close before everything is sent: that's fine.
        let _ = stream.write_all(&bytes);
        let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(10));
        assert!(closed, "{what}: the connection stayed open");
        if let Some(response) = parse_response(&received) {
            assert!(
                statuses.contains(&response.status),
                "{what}: status {} (expected one of {statuses:?} or a close)",
                response.status
            );
            assert!(!response.body.contains("cinder_up"), "{what}");
        }
        peak = peak.max(assert_rss_bounded(&exporter, what));
        // Still alive and serving.
        let response = plain_get(&exporter.address, "/metrics", &[]);
        assert_eq!(response.status, 200, "after {what}");
    }
    eprintln!("peak RSS under malformed requests: {peak} KiB");
}

// ---------------------------------------------------------------------------------
// Shutdown

#[test]
fn sigterm_with_scrapes_in_flight_exits_0_within_a_second() {
    let mut exporter = exporter_with(&[]);
    wait_for_service(&exporter, || {
        Ok(plain_get(&exporter.address, "/metrics", &[]))
    });
    let address = exporter.address.clone();

    // A slowloris connection and an idle one must not hold the shutdown up.
    let mut slow = TcpStream::connect(&address).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let _idle = TcpStream::connect(&address).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicUsize::new(0));
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let (address, stop, completed) =
                (address.clone(), Arc::clone(&stop), Arc::clone(&completed));
            std::thread::spawn(move || {
                let mut broken = Vec::new();
                for _ in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(mut stream) = TcpStream::connect(&address) else {
                        break; // the listener is gone: shutdown has begun
                    };
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    // HTTP/1.1, so the streamed body comes chunked and its end is marked:
                    // a response cut short lacks the final empty chunk.
                    let chunked_request =
                        request("/metrics", &[]).replacen("HTTP/1.0", "HTTP/1.1", 1);
                    if stream.write_all(chunked_request.as_bytes()).is_err() {
                        continue;
                    }
                    let mut bytes = Vec::new();
                    let _ = stream.read_to_end(&mut bytes);
                    if bytes.is_empty() {
                        continue; // closed before the request was read: not in flight
                    }
                    // Any response begun must be a complete 200 with the whole body.
                    match parse_response(&bytes) {
                        Some(response)
                            if response.status == 200
                                && response.head.contains("transfer-encoding: chunked")
                                && response.body.ends_with("\r\n0\r\n\r\n")
                                && response.body.contains("cinder_up") =>
                        {
                            completed.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => broken.push(String::from_utf8_lossy(&bytes).into_owned()),
                    }
                }
                broken
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let before = completed.load(Ordering::Relaxed);
    assert!(before > 0, "scrapes are being served");

    let started = Instant::now();
    // The deadline only keeps a hung exporter from hanging the suite.
    let status = exporter.terminate(Duration::from_secs(30));
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let broken: Vec<String> = scrapers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let status =
        status.unwrap_or_else(|| panic!("still running 30 s after SIGTERM\n{}", exporter.log()));
    assert_eq!(status.code(), Some(0), "{}", exporter.log());
    // The slowloris and idle connections were closed at the end of the shutdown grace
    // period (0.9 s), not waited for until their own 5 s timeouts: what the exporter
    // did, rather than how long a busy machine took to do it.
    assert!(
        exporter
            .log()
            .contains("connections still open after the shutdown grace period; closing them"),
        "exit took {took:?}, and the open connections were not closed at the grace \
         period's end:\n{}",
        exporter.log()
    );
    assert!(broken.is_empty(), "responses cut short: {broken:?}");
    eprintln!(
        "exited {took:?} after SIGTERM; {} scrapes completed, {} after the signal was sent",
        completed.load(Ordering::Relaxed),
        completed.load(Ordering::Relaxed) - before
    );
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(1));
    assert!(closed);
}
