//! Writer for the Prometheus text exposition format, version 0.0.4.
//!
//! The per-service families are computed at scrape time from a snapshot (ages move
//! with the clock), so a client-library registry — one object per series, locked and
//! rebuilt on every poll — would cost memory and time per series; and the Rust client
//! (`prometheus-client`) does not escape label values (client_rust issue #151), which
//! free text from the database (disabled reasons) needs. Instead the label sets are
//! escaped once per poll ([`LabelSet`]) and each scrape writes samples straight into a
//! buffer: no allocation per series, output linear in services.

use crate::series::schema::Family;
use crate::series::LabelSet;

/// Accumulates one complete exposition; the HTTP layer sends it only once whole, so
/// a client never sees a half-written scrape.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// An empty exposition with room for `capacity` bytes (a scrape knows roughly how
    /// large the previous one was, which avoids regrowing the buffer).
    pub fn with_capacity(capacity: usize) -> Self {
        Exposition {
            out: String::with_capacity(capacity),
        }
    }

    /// Starts a metric family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, family: &Family) {
        let (name, help, kind) = (family.name, family.help, family.kind);
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        // HELP text escapes only backslash and line feed.
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// Writes one sample line. `labels` and `extra` are already-rendered label lists
    /// (either may be empty); they are joined with a comma.
    pub fn sample(&mut self, name: &str, labels: &LabelSet, extra: &str, value: f64) {
        self.out.push_str(name);
        let labels = labels.as_str();
        if !labels.is_empty() || !extra.is_empty() {
            self.out.push('{');
            self.out.push_str(labels);
            if !labels.is_empty() && !extra.is_empty() {
                self.out.push(',');
            }
            self.out.push_str(extra);
            self.out.push('}');
        }
        self.out.push(' ');
        write_value(&mut self.out, value);
        self.out.push('\n');
    }

    /// Writes a sample without labels.
    pub fn plain(&mut self, name: &str, value: f64) {
        self.sample(name, &LabelSet::default(), "", value);
    }

    /// Appends text that is exposition already (another encoder's output).
    pub fn push_text(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// Length of the text so far, in bytes.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Hands out what has been written so far and starts a new buffer of `capacity`
    /// bytes: the exposition can thus be sent in pieces while it is written.
    pub fn take(&mut self, capacity: usize) -> String {
        std::mem::replace(&mut self.out, String::with_capacity(capacity))
    }
}

/// Formats a sample value the way Prometheus parses it: integers without a fraction,
/// `NaN`, `+Inf`, `-Inf` for the special values.
fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Most values are whole (0/1 verdicts, counters, timestamps): itoa and ryu
        // write them several times faster than `fmt`, which shows at 10^5 samples.
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        out.push_str(ryu::Buffer::new().format_finite(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::schema::MetricType;

    #[test]
    fn writes_family_and_samples() {
        let mut e = Exposition::default();
        e.family(&Family {
            name: "x_total",
            kind: MetricType::Counter,
            help: "Counts \\ things\nfor real.",
            labels: &["a", "b"],
        });
        e.sample("x_total", &LabelSet::new([("a", "1")]), "b=\"2\"", 3.0);
        e.sample("x_total", &LabelSet::default(), "b=\"2\"", 0.25);
        e.plain("x_total", f64::NAN);
        e.plain("x_total", f64::NEG_INFINITY);
        e.plain("x_total", -12.0);
        assert_eq!(
            e.take(0),
            "# HELP x_total Counts \\\\ things\\nfor real.\n# TYPE x_total counter\n\
             x_total{a=\"1\",b=\"2\"} 3\nx_total{b=\"2\"} 0.25\nx_total NaN\nx_total -Inf\nx_total -12\n"
        );
    }

    #[test]
    fn large_and_fractional_values_round_trip() {
        for v in [1e20, 1.5e-7, 1764030000.123456, -0.5] {
            let mut s = String::new();
            write_value(&mut s, v);
            assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
        }
    }
}
