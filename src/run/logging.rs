//! The exporter's log lines, as Prometheus' own exporters write them (`--log.format`):
//! one line per event, `ts`, `level` and `msg` first, then the event's fields and those
//! of the spans it is in (a target's name), as logfmt pairs or as one JSON object.
//!
//! tracing-subscriber's own JSON writer names the fields `timestamp`, `level: "INFO"`
//! and `fields.message`, and the logfmt crates write `message=`: a log pipeline built
//! for Prometheus exporters looks for `ts`, `level=info` and `msg`, so the line is
//! written here, inside tracing-subscriber's `fmt` layer.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::{LogFormat, LogLevel};

/// Sends every event at `level` or above to stderr, one `format` line each.
pub(super) fn init(level: LogLevel, format: LogFormat) {
    let lines = Lines { format };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level.as_tracing())
        .fmt_fields(lines)
        .event_format(lines)
        .init();
}

/// Writes events and span fields in one format.
#[derive(Clone, Copy, Debug)]
struct Lines {
    format: LogFormat,
}

/// A field's value as the line shows it: numbers and booleans bare, all else text.
enum Value {
    Text(String),
    Bare(String),
}

/// The fields of an event or span in the order they were written; `message` apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(&'static str, Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                let (Value::Text(text) | Value::Bare(text)) = value;
                self.message = Some(text);
            }
            // Where a `log` crate record came from: not the operator's business.
            name if name.starts_with("log.") => {}
            name => self.pairs.push((name, value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` and format strings arrive here as Display.
        self.push(field, Value::Text(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::Text(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::Bare(value.to_string()));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::Bare(value.to_string()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bare(value.to_string()));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = if value.is_finite() {
            Value::Bare(value.to_string())
        } else {
            Value::Text(value.to_string())
        };
        self.push(field, value);
    }
}

/// One line being written: pairs separated as the format wants.
struct Line {
    format: LogFormat,
    text: String,
}

impl Line {
    fn new(format: LogFormat) -> Line {
        Line {
            format,
            text: String::with_capacity(256),
        }
    }

    fn separate(&mut self) {
        if !self.text.is_empty() {
            self.text.push(match self.format {
                LogFormat::Logfmt => ' ',
                LogFormat::Json => ',',
            });
        }
    }

    fn pair(&mut self, key: &str, value: &Value) {
        self.separate();
        match self.format {
            LogFormat::Logfmt => {
                self.text.push_str(key);
                self.text.push('=');
                match value {
                    Value::Text(text) => logfmt_value(&mut self.text, text),
                    Value::Bare(bare) => self.text.push_str(bare),
                }
            }
            LogFormat::Json => {
                json_string(&mut self.text, key);
                self.text.push(':');
                match value {
                    Value::Text(text) => json_string(&mut self.text, text),
                    Value::Bare(bare) => self.text.push_str(bare),
                }
            }
        }
    }

    /// Pairs already written in this format (a span's fields).
    fn raw(&mut self, written: &str) {
        if !written.is_empty() {
            self.separate();
            self.text.push_str(written);
        }
    }

    fn fields(&mut self, fields: &Fields) {
        for (key, value) in &fields.pairs {
            self.pair(key, value);
        }
    }

    fn finish(self) -> String {
        match self.format {
            LogFormat::Logfmt => self.text,
            LogFormat::Json => format!("{{{}}}", self.text),
        }
    }
}

/// A logfmt value: bare when it can be, else quoted with `"`, `\` and control
/// characters escaped, so that the line stays one line.
fn logfmt_value(out: &mut String, text: &str) {
    let bare = !text.is_empty()
        && !text
            .chars()
            .any(|c| c <= ' ' || c == '=' || c == '"' || c.is_control());
    if bare {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::Value::from(text).to_string());
}

/// promlog's level names.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = Line::new(self.format);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        line.pair("ts", &Value::Text(now));
        let level = level_name(*event.metadata().level());
        line.pair("level", &Value::Text(level.into()));
        if let Some(message) = fields.message.take() {
            line.pair("msg", &Value::Text(message));
        }
        line.fields(&fields);
        for span in context
            .event_scope()
            .into_iter()
            .flat_map(|s| s.from_root())
        {
            if let Some(written) = span.extensions().get::<FormattedFields<N>>() {
                line.raw(&written.fields);
            }
        }
        writeln!(writer, "{}", line.finish())
    }
}

impl<'writer> FormatFields<'writer> for Lines {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut recorded = Fields::default();
        fields.record(&mut recorded);
        let mut line = Line::new(self.format);
        if let Some(message) = recorded.message.take() {
            line.pair("msg", &Value::Text(message));
        }
        line.fields(&recorded);
        writer.write_str(&line.text)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut added = String::new();
        self.format_fields(Writer::new(&mut added), fields)?;
        let mut line = Line::new(self.format);
        line.raw(&current.fields);
        line.raw(&added);
        current.fields = line.text;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logfmt(text: &str) -> String {
        let mut out = String::new();
        logfmt_value(&mut out, text);
        out
    }

    #[test]
    fn logfmt_values_are_quoted_only_when_they_must_be() {
        assert_eq!(logfmt("127.0.0.1:9847"), "127.0.0.1:9847");
        assert_eq!(logfmt("C:\\dir"), "C:\\dir");
        assert_eq!(logfmt(""), "\"\"");
        assert_eq!(logfmt("poll failed"), "\"poll failed\"");
        assert_eq!(logfmt("a=b"), "\"a=b\"");
        assert_eq!(
            logfmt("target \"west\"\nC:\\dir\u{7}"),
            "\"target \\\"west\\\"\\nC:\\\\dir\\u0007\""
        );
    }

    #[test]
    fn both_formats_write_the_same_pairs() {
        let fields = Fields {
            message: None,
            pairs: vec![
                ("address", Value::Text("0.0.0.0:9847".into())),
                ("targets", Value::Bare("2".into())),
                ("tls", Value::Text("off (plain HTTP)".into())),
            ],
        };
        let mut line = Line::new(LogFormat::Logfmt);
        line.pair("msg", &Value::Text("starting".into()));
        line.fields(&fields);
        line.raw("target=east");
        assert_eq!(
            line.finish(),
            "msg=starting address=0.0.0.0:9847 targets=2 tls=\"off (plain HTTP)\" target=east"
        );
        let mut line = Line::new(LogFormat::Json);
        line.pair("msg", &Value::Text("starting".into()));
        line.fields(&fields);
        line.raw("\"target\":\"east\"");
        let json = line.finish();
        assert_eq!(
            json,
            "{\"msg\":\"starting\",\"address\":\"0.0.0.0:9847\",\"targets\":2,\
             \"tls\":\"off (plain HTTP)\",\"target\":\"east\"}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["targets"], 2);
    }
}

#[cfg(test)]
mod span_tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Where a test subscriber writes its lines.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines `events` logs in `format`.
    fn logged(format: LogFormat, events: impl FnOnce()) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let lines = Lines { format };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(lines)
            .event_format(lines)
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn events_in_a_span_carry_its_fields() {
        let events = || {
            let span = tracing::info_span!("poller", target = "east");
            let _entered = span.enter();
            tracing::warn!(failures = 2, "poll failed");
        };
        let line = logged(LogFormat::Logfmt, events);
        assert!(
            line.ends_with(" level=warn msg=\"poll failed\" failures=2 target=east\n"),
            "{line}"
        );
        let line = logged(LogFormat::Json, events);
        assert!(
            line.ends_with(
                ",\"level\":\"warn\",\"msg\":\"poll failed\",\"failures\":2,\"target\":\"east\"}\n"
            ),
            "{line}"
        );
    }
}
