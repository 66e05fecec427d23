//! Why a poll failed, with the one likely fix named where there is one.

use std::fmt;

/// Why a poll failed.
#[derive(Debug)]
pub enum ReadError {
    /// Connection, query or protocol failure (includes access denied).
    Database(mysql_async::Error),
    /// The database is reachable but does not hold what we need.
    Schema(String),
    /// The poll did not finish within `query_timeout` (e.g. a locked table).
    TimedOut(std::time::Duration),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Database(e) => {
                write!(f, "database error: {e}")?;
                match hint(e) {
                    Some(hint) => write!(f, "; {hint}"),
                    None => Ok(()),
                }
            }
            ReadError::Schema(e) => f.write_str(e),
            ReadError::TimedOut(limit) => {
                write!(f, "poll did not finish within query_timeout ({limit:?}); is the services table locked?")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// What to do about an error that has one likely fix: the exporter's account may not
/// log in or lacks a privilege, or TLS to the database cannot be set up. The operator
/// reading the log should not have to look it up.
fn hint(error: &mysql_async::Error) -> Option<String> {
    match error {
        mysql_async::Error::Server(error) => access_hint(error),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => Some(
            "the database URL asks for TLS but the server does not offer it: enable TLS on \
             the server (its ssl_cert and ssl_key settings); the exporter never falls back \
             to an unencrypted connection"
                .into(),
        ),
        mysql_async::Error::Io(_) => tls_hint(&error.to_string()),
        _ => None,
    }
}

/// Hints for rustls' handshake failures, which mysql_async passes on as I/O errors:
/// recognised by their text (rustls' error types are not ours to name).
fn tls_hint(text: &str) -> Option<String> {
    let hint = if text.contains("invalid peer certificate: UnknownIssuer") {
        "the server's certificate is not issued by a CA the exporter trusts: give the CA \
         that issued it as ssl_ca=FILE (without ssl_ca only public web CAs are trusted)"
    } else if text.contains("invalid peer certificate: certificate not valid for name") {
        "the server's certificate does not name the host of the database URL: connect by a \
         name the certificate holds, or set ssl_mode=VERIFY_CA to verify the CA but not the name"
    } else if text.contains("received fatal alert: UnknownCA")
        || text.contains("received fatal alert: CertificateRequired")
    {
        "the server refused the client certificate: ssl_cert must be issued by a CA the \
         server trusts (the server's ssl_ca)"
    } else {
        return None;
    };
    Some(hint.into())
}

/// Hints for the server's privilege errors.
fn access_hint(error: &mysql_async::ServerError) -> Option<String> {
    let message = error.message.as_str();
    // The account as the server quotes it (`'user'@'host'`), between two phrases.
    let between = |after: &str, before: &str| {
        let start = message.find(after)? + after.len();
        let end = start + message[start..].find(before)?;
        Some(message[start..end].to_string())
    };
    match error.code {
        // ER_DBACCESS_DENIED_ERROR: "Access denied for user 'u'@'h' to database 'db'".
        1044 => {
            let account = between("for user ", " to database ")?;
            let database = message.rsplit_once(" to database ")?.1.trim_matches('\'');
            Some(format!(
                "the exporter needs only GRANT SELECT ON `{database}`.`services` TO {account}"
            ))
        }
        // ER_ACCESS_DENIED_ERROR: wrong user or password, no such account for this host,
        // or an account that requires TLS reached without it.
        1045 => Some(
            "check the user and password of the database URL; an account created with \
             REQUIRE SSL or REQUIRE X509 is refused in the same way without TLS (ssl_ca=FILE, \
             and ssl_cert/ssl_key for X509)"
                .into(),
        ),
        // ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR.
        1142 | 1143 => {
            let account = between("to user ", " for ").unwrap_or_else(|| "the exporter".into());
            Some(format!(
                "the exporter needs SELECT on the whole table: \
                 GRANT SELECT ON <database>.`services` TO {account}"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_errors_say_what_to_grant() {
        let server = |code: u16, message: &str| {
            ReadError::Database(mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: message.into(),
                state: "42000".into(),
            }))
            .to_string()
        };
        let shown = server(
            1044,
            "Access denied for user 'exporter'@'%' to database 'cinder'",
        );
        assert!(
            shown.ends_with("GRANT SELECT ON `cinder`.`services` TO 'exporter'@'%'"),
            "{shown}"
        );
        let shown = server(
            1045,
            "Access denied for user 'exporter'@'10.0.0.1' (using password: YES)",
        );
        assert!(shown.contains("REQUIRE SSL"), "{shown}");
        let shown = server(
            1142,
            "SELECT command denied to user 'exporter'@'%' for table `cinder`.`services`",
        );
        assert!(
            shown.ends_with("GRANT SELECT ON <database>.`services` TO 'exporter'@'%'"),
            "{shown}"
        );
        let shown = server(1146, "Table 'cinder.services' doesn't exist");
        assert!(shown.ends_with("doesn't exist'"), "{shown}");
        let shown = ReadError::Database(mysql_async::Error::Driver(
            mysql_async::DriverError::NoClientSslFlagFromServer,
        ))
        .to_string();
        assert!(shown.contains("never falls back"), "{shown}");
        assert!(tls_hint("invalid peer certificate: UnknownIssuer")
            .is_some_and(|h| h.contains("ssl_ca=FILE")));
        assert!(tls_hint("Connection refused (os error 111)").is_none());
    }
}
