//! cinder.conf's `[database] connection` read as cinder reads it: by SQLAlchemy's URL
//! parser (`sqlalchemy.engine.url.make_url`), not by RFC 3986.
//!
//! SQLAlchemy splits the text with one regular expression, anchored at the start only:
//!
//! - the scheme is `[\w+]+` followed by `://`;
//! - the user is the longest run of characters other than `:` and `/` (an `@` may be
//!   part of it); a `:` after it starts the password, which runs to the next `@` and may
//!   hold anything but `@` (`#`, `/`, `?`, `%`, `:` included); without a password the
//!   user ends at the last `@` of its run; with neither, there is no user at all;
//! - the host is `[` IPv6 `]` (up to the last `]` before a `/` or `?`) or the longest run
//!   of characters other than `/`, `:` and `?`; a `:` after it starts the port, which
//!   runs to the next `/` or `?` and must be what Python's `int()` reads;
//! - `/` starts the database, which runs to the first `?`; `?` starts the query, which
//!   runs to the end of the line; anything after that line is ignored.
//!
//! User, password and database are then `%`-decoded leniently (Python's
//! `urllib.parse.unquote`: a `%` not followed by two hex digits stays as it is, and
//! bytes that are not UTF-8 become U+FFFD); the host is taken as written. The query is
//! read as `parse_qsl` reads it: `&`-separated `name=value` pairs, `+` for a space,
//! pairs without `=` or with an empty value dropped.
//!
//! The consequence that matters: a password may hold a raw `#`, `/`, `?`, `%` or `:`,
//! and only `@` must be written `%40`.

use super::database_url::{lenient_percent_decode, UrlParts};

/// Splits `text` as SQLAlchemy does. Errors never quote the text: it holds a password.
pub fn parse(text: &str) -> Result<UrlParts, String> {
    let (scheme, rest) = scheme(text).ok_or_else(|| {
        "database URL is not a valid URL (SQLAlchemy's form is \
         dialect+driver://user:password@host:port/database)"
            .to_string()
    })?;
    let (user, password, rest) = userinfo(rest);
    let (host, port, rest) = host_and_port(rest);
    let port = port.map(python_int_port).transpose()?;
    let (database, rest) = match rest.strip_prefix('/') {
        Some(after) => {
            let end = after.find('?').unwrap_or(after.len());
            (Some(&after[..end]), &after[end..])
        }
        None => (None, rest),
    };
    let query = match rest.strip_prefix('?') {
        Some(after) => query_pairs(after.split('\n').next().unwrap_or("")),
        None => Vec::new(),
    };
    Ok(UrlParts {
        scheme: scheme.to_string(),
        user: user.map(lenient_percent_decode),
        password: password.map(lenient_percent_decode),
        host: host.filter(|h| !h.is_empty()).map(str::to_string),
        port,
        database: database.map(lenient_percent_decode),
        query,
    })
}

/// `[\w+]+://`: the scheme and what follows the `://`.
fn scheme(text: &str) -> Option<(&str, &str)> {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '+'))
        .map_or(text.len(), |(i, _)| i);
    let rest = text[end..].strip_prefix("://")?;
    (end > 0).then_some((&text[..end], rest))
}

/// The user and password, if any, and what follows their `@`.
fn userinfo(rest: &str) -> (Option<&str>, Option<&str>, &str) {
    let run = rest.find([':', '/']).unwrap_or(rest.len());
    if rest[run..].starts_with(':') {
        let after_colon = &rest[run + 1..];
        if let Some(at) = after_colon.find('@') {
            return (
                Some(&rest[..run]),
                Some(&after_colon[..at]),
                &after_colon[at + 1..],
            );
        }
    }
    // No password: the user is the longest part of the run that an `@` follows.
    match rest[..run].rfind('@') {
        Some(at) => (Some(&rest[..at]), None, &rest[at + 1..]),
        None => (None, None, rest),
    }
}

/// The host (IPv6 without its brackets), the port's text, and what follows them.
fn host_and_port(rest: &str) -> (Option<&str>, Option<&str>, &str) {
    let stop = rest.find(['/', '?']).unwrap_or(rest.len());
    let (host, rest) = match rest.strip_prefix('[').and_then(|r| {
        let close = r[..stop - 1].rfind(']')?;
        (close > 0).then_some((&r[..close], &r[close + 1..]))
    }) {
        Some((ipv6, after)) => (Some(ipv6), after),
        None => {
            let end = rest.find(['/', ':', '?']).unwrap_or(rest.len());
            (Some(&rest[..end]), &rest[end..])
        }
    };
    match rest.strip_prefix(':') {
        Some(after) => {
            let end = after.find(['/', '?']).unwrap_or(after.len());
            (host, Some(&after[..end]), &after[end..])
        }
        None => (host, None, rest),
    }
}

/// The port as Python's `int()` reads it (surrounding whitespace, a sign, `_` between
/// digits; ASCII digits only here), then checked to be a TCP port, which SQLAlchemy
/// leaves to the driver.
fn python_int_port(text: &str) -> Result<u16, String> {
    let digits = text.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !well_formed {
        return Err("database URL port is not a number".into());
    }
    digits
        .replace('_', "")
        .parse::<u16>()
        .map_err(|_| "database URL port is not between 0 and 65535".into())
}

/// `parse_qsl` with its defaults: `&`-separated pairs, `+` a space, pairs without `=`
/// or with an empty value dropped.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            let decode = |s: &str| lenient_percent_decode(&s.replace('+', " "));
            (decode(name), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> UrlParts {
        parse(text).unwrap()
    }

    #[test]
    fn the_password_runs_to_the_next_at_sign() {
        let p = parts("mysql+pymysql://cinder:p#/?%41:x@ctl:3307/cinder?charset=utf8");
        assert_eq!(p.user.as_deref(), Some("cinder"));
        assert_eq!(p.password.as_deref(), Some("p#/?A:x"));
        assert_eq!(p.host.as_deref(), Some("ctl"));
        assert_eq!(p.port, Some(3307));
        assert_eq!(p.database.as_deref(), Some("cinder"));
        assert_eq!(p.query, vec![("charset".into(), "utf8".into())]);
        // A second `@` belongs to the host; a user may hold one.
        let p = parts("mysql://a@b:c@d@e/db");
        assert_eq!(
            (p.user.as_deref(), p.password.as_deref(), p.host.as_deref()),
            (Some("a@b"), Some("c"), Some("d@e"))
        );
        let p = parts("mysql://a@b@h/db");
        assert_eq!((p.user.as_deref(), p.password), (Some("a@b"), None));
    }

    #[test]
    fn percent_signs_are_decoded_leniently() {
        assert_eq!(
            parts("mysql://u:50%zz@h/d").password.as_deref(),
            Some("50%zz")
        );
        assert_eq!(
            parts("mysql://u:%C3@h/d").password.as_deref(),
            Some("\u{fffd}")
        );
        assert_eq!(parts("mysql://u:@h/d").password.as_deref(), Some(""));
    }

    #[test]
    fn hosts_ports_and_what_python_int_reads() {
        let p = parts("mysql://u:p@[::1]:5/db");
        assert_eq!((p.host.as_deref(), p.port), (Some("::1"), Some(5)));
        for (port, read) in [(" 33 ", 33), ("+33", 33), ("3_3", 33)] {
            assert_eq!(parts(&format!("mysql://h:{port}/d")).port, Some(read));
        }
        for bad in ["", "12x", "-1", "99999", "3__3", "_3"] {
            assert!(
                parse(&format!("mysql://u:secret@h:{bad}/d")).is_err(),
                "{bad}"
            );
        }
        // No `]`: the `[` starts an ordinary host, and `:1` a port.
        assert!(parse("mysql://u:p@[::1/db").is_err());
        assert_eq!(parts("mysql://h").host.as_deref(), Some("h"));
        assert_eq!(parts("mysql:///d").host, None);
    }

    #[test]
    fn query_and_lines_as_python_reads_them() {
        let p = parts("mysql://h/db?a=1&b&c=&d=x+y%21\nignored=1");
        assert_eq!(
            p.query,
            vec![("a".into(), "1".into()), ("d".into(), "x y!".into())]
        );
        assert!(parse("not a url").is_err());
        assert!(parse("://h/db").is_err());
    }
}
