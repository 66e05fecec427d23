//! A label list rendered and escaped once, as the text exposition format writes it:
//! built at poll time from a row, written by every scrape as is.

/// A rendered, escaped label list such as `host="a",binary="b"` (without braces).
///
/// Built once per poll so that escaping database text (host names, free-text
/// disabled reasons) is paid once, not on every scrape.
/// Held as a boxed `str`, exactly as long as its text: there is one per service and
/// poll, so capacity left over from building it would be memory held for nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSet(Box<str>);

impl LabelSet {
    /// Builds the label list from `(name, value)` pairs; values are escaped here.
    /// Names must be valid Prometheus label names (they are constants in this crate).
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut text = String::new();
        for (name, value) in pairs {
            if !text.is_empty() {
                text.push(',');
            }
            text.push_str(name);
            text.push_str("=\"");
            escape_label_value(value, &mut text);
            text.push('"');
        }
        LabelSet(text.into_boxed_str())
    }

    /// The rendered list, as it appears between the braces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Escapes a label value as the text format requires: backslash, double quote and
/// line feed. Everything else, including non-ASCII text, is written as is (UTF-8).
pub fn escape_label_value(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        let set = LabelSet::new([("reason", "say \"hi\"\\ now\nnext é")]);
        assert_eq!(set.as_str(), r#"reason="say \"hi\"\\ now\nnext é""#);
    }
}
