//! Secrets taken out of text that quotes configuration, before anyone reads it.
//!
//! Errors about configuration quote what the operator wrote, and what they wrote may
//! hold a password: a database URL pasted into the wrong key, used as a mapping key,
//! referred to by another cinder.conf option. [`ConfigError`](super::ConfigError)
//! passes every message through [`redact_secrets`] on its way out, so a new error
//! cannot forget to.
//!
//! What is taken out, on each line:
//! - in anything URL-shaped (`scheme://`), the user and password: everything from the
//!   `://` to the line's last `@` (a password may hold `@`, `:`, `/`, `#` or spaces,
//!   so the last `@` is the only safe end);
//! - in a `user:password@host` without a scheme, the word before the `@`.
//!
//! Hosts, ports, database names and paths stay: they say which setting is wrong.

use std::borrow::Cow;

/// What replaces a user and password.
const HIDDEN: &str = "***";

/// `text` with every URL's credentials and every `user:password@` replaced by `***`.
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    if !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let lines: Vec<String> = text.split('\n').map(redact_line).collect();
    Cow::Owned(lines.join("\n"))
}

/// One line: credentials of URLs first, then of scheme-less `user:password@`.
fn redact_line(line: &str) -> String {
    let Some(last_at) = line.rfind('@') else {
        return line.to_string();
    };
    // A scheme anywhere before the last `@`: everything between its `://` and that `@`
    // is the userinfo of one URL or another, or text we can do without.
    if let Some(start) = line[..last_at].find("://") {
        let after = start + "://".len();
        return format!("{}{HIDDEN}{}", &line[..after], &line[last_at..]);
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find('@') {
        let word_start = rest[..at]
            .char_indices()
            .rev()
            .find(|(_, c)| is_delimiter(*c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &rest[word_start..at];
        out.push_str(&rest[..word_start]);
        out.push_str(if word.contains(':') { HIDDEN } else { word });
        out.push('@');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

/// What ends a word in an error message: space and the quotes messages put around
/// what they quote.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | '[' | '{' | ',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_user_and_password_whatever_the_password_holds() {
        for password in ["s3cret", "p@ss", "a b", "x#/?%:y", "q\"uote", "@@"] {
            let url = format!("mysql+pymysql://cinder:{password}@ctl1:3306/cinder");
            for text in [
                format!("invalid duration {url:?}: expected e.g. 500ms"),
                format!("unknown field `{url}`, expected one of `url`, `url_file`"),
                format!("[DEFAULT] x = {url}"),
            ] {
                let shown = redact_secrets(&text);
                assert!(!shown.contains(password), "{shown}");
                assert!(!shown.contains("cinder:"), "{shown}");
                assert!(
                    shown.contains("mysql+pymysql://***@ctl1:3306/cinder"),
                    "{shown}"
                );
            }
        }
    }

    #[test]
    fn scheme_less_credentials_and_each_line_alone() {
        let shown = redact_secrets("at `cinder:s3cret@ctl1/cinder`\nhost ctl1@lvm is fine");
        assert_eq!(shown, "at `***@ctl1/cinder`\nhost ctl1@lvm is fine");
        // A delimiter of more than one byte (a no-break space) before the word.
        assert_eq!(redact_secrets("x\u{a0}u:pw@h"), "x\u{a0}***@h");
        assert!(matches!(
            redact_secrets("no secrets: a=1"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            redact_secrets("see http://example.com/x"),
            "see http://example.com/x"
        );
    }
}
