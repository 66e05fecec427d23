//! The exporter's log as a log pipeline reads it (`--log.format`): every line of a
//! real run, from start through failed polls, a reload and the shutdown, is one event
//! with `ts`, `level` and `msg`, in logfmt or in JSON; and no log call at info level or
//! above prints a Rust debug value.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::exporter::UNREACHABLE_DATABASE;
use common::host::poll_until;

const WAIT: Duration = Duration::from_secs(20);

/// Every stderr line of one run in `format`: a top-level database and a target (both
/// unreachable, so that polls fail), one SIGHUP, then SIGTERM.
fn run_log(format: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "database:\n  url: {UNREACHABLE_DATABASE}\npoll_interval: 200ms\n\
             targets:\n  east: {{database: {{url: '{UNREACHABLE_DATABASE}'}}, poll_interval: 200ms}}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cinder_exporter"))
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.level",
            "debug",
        ])
        .arg(format!("--log.format={format}"))
        .arg("--config.file")
        .arg(&config)
        .env_remove("CINDER_EXPORTER_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let logged = |needle: &str, times: usize| {
        poll_until(WAIT, || {
            let all = lines.lock().unwrap().join("\n");
            (all.matches(needle).count() >= times)
                .then_some(())
                .ok_or_else(|| format!("{needle:?} not logged {times} times:\n{all}"))
        })
    };
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name}");
    };
    // The top-level database and the target each fail once at warn level.
    logged("poll failed", 2);
    signal("-HUP");
    logged("configuration reloaded", 1);
    signal("-TERM");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{status}");
    let lines = lines.lock().unwrap().clone();
    lines
}

/// The line whose `msg` is `msg` and whose `target` field is `target` (absent: "").
fn find<'a, T>(
    events: &'a [T],
    msg: &str,
    target: &str,
    field: impl Fn(&T, &str) -> String,
) -> &'a T {
    events
        .iter()
        .find(|e| field(e, "msg") == msg && field(e, "target") == target)
        .unwrap_or_else(|| panic!("no {msg:?} line for target {target:?}"))
}

/// The error a failed poll logs names the server's address and the failure once.
fn assert_names_the_fix(error: &str) {
    assert!(
        error.starts_with("cannot connect to 127.0.0.1:1: connection refused; "),
        "{error}"
    );
    assert_eq!(error.matches("onnection refused").count(), 1, "{error}");
    assert!(!error.contains("Input/output"), "{error}");
}

#[test]
fn json_lines_each_parse_with_ts_level_and_msg() {
    let lines = run_log("json");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for (event, line) in events.iter().zip(&lines) {
        let text = |key: &str| event[key].as_str().map(str::to_string);
        let ts = text("ts").unwrap_or_else(|| panic!("no ts: {line}"));
        assert!(ts.ends_with('Z') && ts.contains('T'), "ts {ts}: {line}");
        let level = text("level").unwrap_or_default();
        assert!(
            ["debug", "info", "warn", "error"].contains(&level.as_str()),
            "{line}"
        );
        assert!(text("msg").is_some_and(|m| !m.is_empty()), "no msg: {line}");
    }
    let field = |e: &serde_json::Value, key: &str| match &e[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    // Numbers stay numbers; durations and the settings are their own fields.
    let starting = find(&events, "cinder_exporter starting", "", field);
    assert_eq!(starting["targets"], 1, "{starting}");
    let east = find(&events, "database", "east", field);
    assert_eq!(east["poll_interval"], "0.2s", "{east}");
    // A target's poll failure carries its name from the poller's span.
    for target in ["", "east"] {
        let failed = find(&events, "poll failed", target, field);
        assert_eq!(failed["level"], "warn");
        assert_names_the_fix(&field(failed, "error"));
    }
}

#[test]
fn a_start_up_error_is_a_json_line_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "targets: {west: {service_downtime: 20s}}\n").unwrap();
    let shown = config.display().to_string();
    let (code, stderr) =
        common::run_exporter_to_exit(&["--log.format", "json", "--config.file", &shown], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let event: serde_json::Value = serde_json::from_str(&stderr).expect("one JSON line");
    assert_eq!(event["level"], "error", "{event}");
    assert_eq!(event["msg"], "cannot start", "{event}");
    let error = event["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("{shown}:1:18: targets.west: unknown field")),
        "{error}"
    );
}

/// A logfmt line's `key=value` pairs, or why it is not one.
fn logfmt_pairs(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = line.chars().peekable();
    while chars.peek().is_some() {
        let key: String = std::iter::from_fn(|| chars.next_if(|c| !"= \"".contains(*c))).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return Err(format!("no key=value at {key:?}"));
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated value of {key}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => return Err("a lone backslash".into()),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ' ')));
            if value.contains('"') || value.contains('=') {
                return Err(format!("{key}: unquoted value {value:?}"));
            }
        }
        pairs.push((key, value));
        match chars.next() {
            None | Some(' ') => {}
            Some(c) => return Err(format!("{c:?} after the value of {}", pairs.len())),
        }
    }
    Ok(pairs)
}

#[test]
fn logfmt_lines_are_key_value_pairs_led_by_ts_level_and_msg() {
    let lines = run_log("logfmt");
    let events: Vec<Vec<(String, String)>> = lines
        .iter()
        .map(|line| logfmt_pairs(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for (pairs, line) in events.iter().zip(&lines) {
        let keys: Vec<&str> = pairs.iter().take(3).map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["ts", "level", "msg"], "{line}");
    }
    let field = |pairs: &Vec<(String, String)>, key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let east = find(&events, "database", "east", field);
    assert_eq!(field(east, "stale_after"), "30s");
    for target in ["", "east"] {
        let failed = find(&events, "poll failed", target, field);
        assert_names_the_fix(&field(failed, "error"));
    }
    assert!(
        lines.iter().any(|l| l.contains(" address=127.0.0.1:")),
        "the address stays bare: {lines:?}"
    );
}

#[test]
fn the_logfmt_reader_of_these_tests_refuses_what_is_not_logfmt() {
    assert!(logfmt_pairs("ts=1 level=info msg=\"a \\\"b\\\"\" n=2").is_ok());
    assert!(logfmt_pairs("2026-01-01T00:00:00Z INFO starting").is_err());
    assert!(logfmt_pairs("msg=\"open").is_err());
    assert!(logfmt_pairs("stamps=StampWindow { from: 0.0 }").is_err());
}

// ---------------------------------------------------------------------------------------
// No debug formatting at info level and above
// ---------------------------------------------------------------------------------------

/// The argument text of every `info!`, `warn!` and `error!` call in `source`.
fn log_calls(source: &str) -> Vec<&str> {
    let mut calls = Vec::new();
    for macro_name in ["info!(", "warn!(", "error!("] {
        for (at, _) in source.match_indices(macro_name) {
            let before = source[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let start = at + macro_name.len();
            calls.push(&source[start..start + arguments_length(&source[start..])]);
        }
    }
    calls
}

/// The length of a macro's arguments up to its closing parenthesis, strings skipped.
fn arguments_length(text: &str) -> usize {
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        match (in_string, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '"') | (false, '"') => in_string = !in_string,
            (false, '(') => depth += 1,
            (false, ')') if depth == 0 => return index,
            (false, ')') => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

/// Debug formatting in a log call's arguments: a `?` sigil outside string literals
/// (`?value`, `field = ?value`), or `:?}` inside one (`{value:?}`).
fn debug_formatting(arguments: &str) -> bool {
    let mut in_string = false;
    let mut escaped = false;
    let mut previous = ' ';
    for c in arguments.chars() {
        match (in_string, c) {
            (true, _) if escaped => escaped = false,
            (true, '\\') => escaped = true,
            (true, '}') if previous == '?' => return true,
            (_, '"') => in_string = !in_string,
            (false, '?') => return true,
            _ => {}
        }
        previous = c;
    }
    false
}

fn rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_log_call_at_info_or_above_prints_a_debug_value() {
    assert!(debug_formatting("stamps = ?server.stamps, \"identified\""));
    assert!(debug_formatting("\"took {took:?}\""));
    assert!(debug_formatting("?absent, \"x\""));
    assert!(!debug_formatting(
        "\"columns changed (cinder db sync?); reading\""
    ));
    assert!(!debug_formatting("%error, \"say \\\"why?\\\"\""));
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 20, "{files:?}");
    let mut calls = 0;
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        for arguments in log_calls(&source) {
            calls += 1;
            assert!(
                !debug_formatting(arguments),
                "{}: debug formatting in a log call: ({arguments})",
                file.display()
            );
        }
    }
    assert!(calls > 30, "only {calls} log calls found");
}
