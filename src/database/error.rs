//! Why a poll failed, said once (the driver's wrappers such as "Input/output error:"
//! are dropped), with what failed, where (the server's `host:port`), and the one likely
//! fix named where there is one.

use std::fmt;
use std::io::ErrorKind;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, IoError, Pool, ServerError};

/// Why a poll failed.
#[derive(Debug)]
pub enum ReadError {
    /// A query or protocol failure on an open connection.
    Database(mysql_async::Error),
    /// No connection to the server at `address` (`host:port`, or the socket's path):
    /// unreachable, TLS refused, or the login refused.
    Connect {
        address: String,
        error: mysql_async::Error,
    },
    /// The poll query was refused a privilege: `account` is the account as the server
    /// matched it (`CURRENT_USER()`), which is where a GRANT goes; the error's own text
    /// names the client's host instead.
    Denied {
        error: ServerError,
        account: String,
        database: String,
    },
    /// The database is reachable but does not hold what we need.
    Schema(String),
    /// The poll did not finish within `query_timeout` (e.g. a locked table).
    TimedOut(std::time::Duration),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Database(e) => {
                write!(f, "the poll query failed: {}", plain(e))?;
                match hint(e) {
                    Some(hint) => write!(f, "; {hint}"),
                    None => Ok(()),
                }
            }
            ReadError::Connect { address, error } => connect_failure(f, address, error),
            ReadError::Denied {
                error,
                account,
                database,
            } => write!(
                f,
                "the poll query was refused: {} (error {}); the exporter needs SELECT on the \
                 whole table: GRANT SELECT ON `{database}`.`services` TO {account}",
                error.message, error.code
            ),
            ReadError::Schema(e) => f.write_str(e),
            ReadError::TimedOut(limit) => write!(
                f,
                "the poll did not finish within query_timeout ({}s): the services table may \
                 be locked, or the server does not answer (a firewall dropping packets, an \
                 overloaded server)",
                limit.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// A connection from `pool`, whose server is at `address`; a failure says so.
pub(crate) async fn connect(pool: &Pool, address: &str) -> Result<Conn, ReadError> {
    pool.get_conn().await.map_err(|error| ReadError::Connect {
        address: address.to_string(),
        error,
    })
}

/// `error` from a query on `conn`; a refused privilege is told with the account and
/// database the GRANT needs, asked of the server on the same connection.
pub(super) async fn query_failed(conn: &mut Conn, error: mysql_async::Error) -> ReadError {
    let mysql_async::Error::Server(server) = &error else {
        return ReadError::Database(error);
    };
    // ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR.
    if !matches!(server.code, 1142 | 1143) {
        return ReadError::Database(error);
    }
    match account_and_database(conn).await {
        Some((account, database)) => ReadError::Denied {
            error: server.clone(),
            account,
            database,
        },
        None => ReadError::Database(error),
    }
}

/// The account the server matched this session to, quoted as a GRANT takes it
/// (`'user'@'host'`), and the session's database.
pub(super) async fn account_and_database(conn: &mut Conn) -> Option<(String, String)> {
    let who: Option<(String, Option<String>)> = conn
        .query_first("SELECT CURRENT_USER(), DATABASE()")
        .await
        .ok()?;
    let (account, database) = who?;
    let account = match account.rsplit_once('@') {
        Some((user, host)) => format!("'{user}'@'{host}'"),
        None => account,
    };
    Some((account, database?))
}

/// The driver's error without its wrappers ("Input/output error: Input/output error:",
/// "Server error: `…'"), which say nothing the rest of the message does not.
fn plain(error: &mysql_async::Error) -> String {
    match error {
        mysql_async::Error::Io(IoError::Io(e)) => e.to_string(),
        mysql_async::Error::Server(e) => format!("{} (error {})", e.message, e.code),
        mysql_async::Error::Driver(e) => e.to_string(),
        mysql_async::Error::Other(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// `cannot connect to ADDRESS: WHAT; LIKELY CAUSE`.
fn connect_failure(
    f: &mut fmt::Formatter<'_>,
    address: &str,
    error: &mysql_async::Error,
) -> fmt::Result {
    let (what, cause) = match error {
        mysql_async::Error::Io(IoError::Io(io)) => match tls_hint(&io.to_string()) {
            Some(hint) => (format!("TLS handshake failed: {io}"), Some(hint)),
            None => unreachable_cause(io),
        },
        mysql_async::Error::Server(server) if server.code == 1045 => (
            format!("login refused: {}", server.message),
            access_hint(server),
        ),
        _ => (plain(error), hint(error)),
    };
    write!(f, "cannot connect to {address}: {what}")?;
    match cause {
        Some(cause) => write!(f, "; {cause}"),
        None => Ok(()),
    }
}

/// What an I/O error while connecting means, and the likely cause.
fn unreachable_cause(io: &std::io::Error) -> (String, Option<String>) {
    let text = io.to_string();
    let (what, cause) = match io.kind() {
        ErrorKind::ConnectionRefused => (
            "connection refused",
            "nothing listens on that port: is the database server running, and is the \
             port of the database URL right?",
        ),
        ErrorKind::TimedOut => (
            "connection timed out",
            "a firewall may be dropping the packets, or the host is down",
        ),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => (
            "no route to the host",
            "check the host of the database URL and the network between the exporter \
             and the database",
        ),
        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => (
            "the server closed the connection before the login",
            "is a MariaDB or MySQL server listening there (not a proxy or another \
             service)? It also does so when it blocks this host (max_connect_errors)",
        ),
        ErrorKind::NotFound | ErrorKind::PermissionDenied => (
            "cannot open the socket",
            "check the unix_socket path of the database URL and its permissions",
        ),
        _ if text.contains("failed to lookup address") => (
            "cannot resolve the host name",
            "is the host of the database URL spelt right, and known to this host's DNS?",
        ),
        _ => return (text, None),
    };
    (what.to_string(), Some(cause.to_string()))
}

/// What to do about an error that has one likely fix: the exporter's account may not
/// log in or lacks a privilege, or TLS to the database cannot be set up. The operator
/// reading the log should not have to look it up.
fn hint(error: &mysql_async::Error) -> Option<String> {
    match error {
        mysql_async::Error::Server(error) => access_hint(error),
        mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => Some(
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

/// Hints for the server's refusals at login.
fn access_hint(error: &ServerError) -> Option<String> {
    let message = error.message.as_str();
    let hint = match error.code {
        // ER_DBACCESS_DENIED_ERROR: "Access denied for user 'u'@'h' to database 'db'".
        // The server names the account it matched (not the client's host).
        1044 => {
            let start = message.find("for user ")? + "for user ".len();
            let (account, database) = message[start..].split_once(" to database ")?;
            let database = database.trim_matches('\'');
            format!("the exporter needs only GRANT SELECT ON `{database}`.`services` TO {account}")
        }
        // ER_ACCESS_DENIED_ERROR: wrong user or password, no such account for this host,
        // or an account that requires TLS reached without it.
        1045 => "check the user and password of the database URL; an account created with \
                 REQUIRE SSL or REQUIRE X509 is refused in the same way without TLS \
                 (ssl_ca=FILE, and ssl_cert/ssl_key for X509)"
            .into(),
        // ER_HOST_NOT_PRIVILEGED.
        1130 => "no account of that user may connect from the exporter's host: create \
                 the account for this host (or '%')"
            .into(),
        // ER_CON_COUNT_ERROR.
        1040 => "the server is at max_connections".into(),
        // ER_HOST_IS_BLOCKED.
        1129 => "the server blocks this host after failed connections (max_connect_errors): \
                 FLUSH HOSTS on the server"
            .into(),
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(ServerError {
            code,
            message: message.into(),
            state: "42000".into(),
        })
    }

    fn connecting(error: mysql_async::Error) -> String {
        ReadError::Connect {
            address: "db.example:3307".into(),
            error,
        }
        .to_string()
    }

    #[test]
    fn access_errors_say_what_to_grant() {
        let shown = connecting(server_error(
            1044,
            "Access denied for user 'exporter'@'%' to database 'cinder'",
        ));
        assert!(
            shown.ends_with("GRANT SELECT ON `cinder`.`services` TO 'exporter'@'%'"),
            "{shown}"
        );
        let shown = connecting(server_error(
            1045,
            "Access denied for user 'exporter'@'10.0.0.1' (using password: YES)",
        ));
        assert!(
            shown.starts_with("cannot connect to db.example:3307: login refused: Access"),
            "{shown}"
        );
        assert!(shown.contains("REQUIRE SSL"), "{shown}");
        // The table's refusal names the client's host: the account comes from the server.
        let shown = ReadError::Denied {
            error: ServerError {
                code: 1142,
                message: "SELECT command denied to user 'exporter'@'10.0.0.1' for table \
                          `cinder`.`services`"
                    .into(),
                state: "42000".into(),
            },
            account: "'exporter'@'%'".into(),
            database: "cinder".into(),
        }
        .to_string();
        assert!(
            shown.ends_with("GRANT SELECT ON `cinder`.`services` TO 'exporter'@'%'"),
            "{shown}"
        );
        let shown =
            ReadError::Database(server_error(1146, "Table 'cinder.services' doesn't exist"))
                .to_string();
        assert_eq!(
            shown,
            "the poll query failed: Table 'cinder.services' doesn't exist (error 1146)"
        );
    }

    #[test]
    fn connection_errors_name_the_address_and_the_cause_once() {
        let io = |kind: ErrorKind, text: &str| {
            connecting(mysql_async::Error::Io(IoError::Io(std::io::Error::new(
                kind, text,
            ))))
        };
        let refused = io(
            ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        assert!(
            refused.starts_with("cannot connect to db.example:3307: connection refused; nothing"),
            "{refused}"
        );
        assert!(!refused.contains("Input/output"), "{refused}");
        let unknown = io(
            ErrorKind::Other,
            "failed to lookup address information: Name or service not known",
        );
        assert!(
            unknown.contains("cannot resolve the host name"),
            "{unknown}"
        );
        let tls = io(
            ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        assert!(tls.contains("TLS handshake failed"), "{tls}");
        assert!(tls.contains("ssl_ca=FILE"), "{tls}");
        let shown = connecting(mysql_async::Error::Driver(
            DriverError::NoClientSslFlagFromServer,
        ));
        assert!(shown.contains("never falls back"), "{shown}");
        assert!(!shown.contains("Driver error"), "{shown}");
        assert!(tls_hint("Connection refused (os error 111)").is_none());
        let late = ReadError::TimedOut(std::time::Duration::from_millis(2500)).to_string();
        assert!(late.contains("(2.5s)"), "{late}");
    }
}
