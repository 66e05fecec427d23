//! The status page at `/` with hostile text in the services table (a host name and a
//! disabled_reason holding markup, quotes and `&`), read as raw HTML and through a
//! real browser: Debian's chromium, headless, must parse every such value as text
//! (no element comes out of it) and lay the page out; its screenshot is kept in
//! the target directory for a person to look at. Likewise the landing page of an
//! exporter with only targets, one of whose databases is down.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::exporter::UNREACHABLE_DATABASE;
use common::{wait_until, Database, Exporter, ExporterOptions, Schema};

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

    let shot = screenshot_path("status_page.png");
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

/// With only targets, `/` lists them worst first: the one whose database is down
/// above the one that is read, each with its health and links, in a real browser too.
#[test]
fn the_landing_page_shows_every_target_worst_first_in_a_browser() {
    let db = fleet_with_hostile_text();
    let config = format!(
        "defaults:\n  poll_interval: 200ms\ntargets:\n  east:\n    database: {{url: {}}}\n  \
         west:\n    database: {{url: {UNREACHABLE_DATABASE}}}\n",
        db.url()
    );
    let exporter = Exporter::start(ExporterOptions::with_yaml(&config));
    wait_until("both targets polled", Duration::from_secs(30), || {
        exporter
            .get("/probe?target=east")
            .1
            .contains("\ncinder_up 1\n")
            && exporter.get("/-/ready").0 == 200
    });
    let url = format!("http://{}/", exporter.address);
    let dom = String::from_utf8(chromium(&["--dump-dom", &url])).unwrap();
    let rows: Vec<&str> = dom.split("<tr class=").skip(1).collect();
    assert_eq!(rows.len(), 2, "one row per target: {dom}");
    // west's database is never read: first, and marked so.
    assert!(
        rows[0].contains("<a href=\"/?target=west\">west</a>"),
        "{dom}"
    );
    assert!(rows[0].contains("never read") && rows[0].contains("/probe?target=west"));
    // east: read, one enabled service down (the hostile host), two up, one disabled.
    assert!(
        rows[1].contains("<a href=\"/?target=east\">east</a>"),
        "{dom}"
    );
    assert!(rows[1].contains(">read<") && rows[1].contains("/probe?target=east"));
    let counts =
        "<span class=\"pill dn\">1</span></td><td class=\"num\">2</td><td class=\"num\">1</td>";
    assert!(rows[1].contains(counts), "{}", rows[1]);
    assert!(
        dom.contains("ready once every target's first poll has ended, well or not (ready now)"),
        "{dom}"
    );

    let shot = screenshot_path("landing_page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1400,600",
        &url,
    ]);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    eprintln!("landing page screenshot: {}", shot.display());
}

/// Kept in the target directory so that a person can look at it after the run.
fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}
