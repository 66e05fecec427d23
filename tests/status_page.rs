//! The status page at `/` with hostile text in the services table (a host name and a
//! disabled_reason holding markup, quotes and `&`), read as raw HTML and through a
//! real browser: Debian's chromium, headless, must parse every such value as text
//! (no element comes out of it) and lay the page out; its screenshot is kept in
//! the target directory for a person to look at.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Database, Exporter, ExporterOptions, Schema};

const HOSTILE_HOST: &str = "<script>alert(\"x\")</script>&'q'@lvm";
const HOSTILE_REASON: &str = "<img src=x onerror=alert(1)> \"maint\" & 'q'";

fn fleet_with_hostile_text() -> Database {
    let db = Database::create(Schema::Cinder29);
    let insert = "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, \
                  report_count, disabled, disabled_reason, availability_zone, cluster_name) \
                  VALUES (UTC_TIMESTAMP(), UTC_TIMESTAMP() - INTERVAL ? SECOND, 0, ?, \
                  'cinder-volume', 'cinder-volume', 3, ?, ?, 'nova', ?)";
    // (heartbeat age in seconds, host, disabled, disabled_reason, cluster_name)
    let rows = [
        (2, "ok@lvm", false, None, Some("c1@lvm")),
        (300, HOSTILE_HOST, false, None, Some("c1@lvm")),
        (2, "off@lvm", true, Some(HOSTILE_REASON), None),
        (3, "ok2@ceph", false, None, None),
    ];
    for (age, host, disabled, reason, cluster) in rows {
        db.exec_with(insert, (age, host, disabled, reason, cluster));
    }
    db
}

/// Runs headless chromium with the flags a root container needs and a fresh profile.
fn chromium(args: &[&str]) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium (scripts/test installs Debian's chromium)");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).ok();
        out
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?}: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[test]
fn the_status_page_escapes_database_text_and_renders_in_a_browser() {
    let db = fleet_with_hostile_text();
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    exporter.wait_for("a poll", Duration::from_secs(30), |s| {
        s.value("cinder_up", &[]) == Some(1.0)
            && s.value("cinder_service_up", &[("host", "ok@lvm")])
                .is_some()
    });

    // The HTML as served: no markup from the database, every value escaped.
    let (status, html) = exporter.get("/");
    assert_eq!(status, 200);
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    let escaped_host = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;q&#39;@lvm";
    assert!(html.contains(escaped_host), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt; &quot;maint&quot; &amp; &#39;q&#39;"));
    assert!(html.contains("<meta http-equiv=\"refresh\""));
    for link in [
        "href=\"/metrics\"",
        "href=\"/-/healthy\"",
        "href=\"/-/ready\"",
    ] {
        assert!(html.contains(link), "{link}");
    }
    // The enabled service that is down comes first, and its cluster is still up.
    let down = html.find(escaped_host).unwrap();
    assert!(down < html.find(">ok@lvm<").unwrap());
    assert!(html.contains("<tr class=\"down\"><td>&lt;script"));
    assert!(
        html.contains("1 of 2</td>"),
        "c1@lvm: one of two members up"
    );
    assert!(html.contains("reachable"));

    // Through a real browser: the text stays text.
    let url = format!("http://{}/", exporter.address);
    let dom = String::from_utf8(chromium(&["--dump-dom", &url])).unwrap();
    assert!(dom.contains("<h1>Cinder services</h1>"), "{dom}");
    assert!(!dom.contains("<script") && !dom.contains("<img"), "{dom}");
    assert!(
        dom.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt;&amp;'q'@lvm"),
        "the host name is a text node: {dom}"
    );
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt; \"maint\" &amp; 'q'"));
    assert_eq!(
        dom.matches("<tr class=").count(),
        4 + 1,
        "four services, one cluster"
    );

    let shot = screenshot_path();
    let _ = std::fs::remove_file(&shot);
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1400,900",
        &url,
    ]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    eprintln!("status page screenshot: {}", shot.display());
}

/// Kept in the target directory so that a person can look at it after the run.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page.png")
}
