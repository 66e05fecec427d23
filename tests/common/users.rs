//! Database accounts of a test's own on a test server, dropped after the test.

use std::sync::atomic::{AtomicU32, Ordering};

use super::database::{admin_rows, port, run_best_effort, Database};

static NEXT_USER: AtomicU32 = AtomicU32::new(0);

/// A database user of one test's own; dropped on drop.
pub struct User {
    server: String,
    pub name: String,
    password: String,
}

impl User {
    /// `CREATE USER '<prefix>_<unique>'@'%' IDENTIFIED BY '<password>' [REQUIRE
    /// <require>]` on the server at `server_url`.
    pub fn create(server_url: &str, prefix: &str, password: &str, require: &str) -> User {
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT_USER.fetch_add(1, Ordering::Relaxed)
        );
        // As an SQL string literal: any punctuation may be in a password under test.
        let literal = password.replace('\\', "\\\\").replace('\'', "\\'");
        let require = if require.is_empty() {
            String::new()
        } else {
            format!(" REQUIRE {require}")
        };
        admin_rows(
            server_url,
            &format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{literal}'{require}"),
        );
        User {
            server: server_url.to_string(),
            name,
            password: password.to_string(),
        }
    }

    pub fn grant_select_on_services(&self, db: &Database) {
        admin_rows(
            &self.server,
            &format!(
                "GRANT SELECT ON `{}`.`services` TO '{}'@'%'",
                db.name(),
                self.name
            ),
        );
    }

    /// The URL the exporter gets: this user, its password, `host` and the server's port.
    pub fn url(&self, host: &str, db: &Database, query: &str) -> String {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!(
            "mysql://{}:{}@{host}:{}/{}{query}",
            self.name,
            self.password,
            port(&self.server),
            db.name()
        )
    }

    /// `SHOW GRANTS` with the password hash cut out.
    pub fn grants(&self) -> Vec<String> {
        admin_rows(
            &self.server,
            &format!("SHOW GRANTS FOR '{}'@'%'", self.name),
        )
        .into_iter()
        .map(|g| match g.find(" IDENTIFIED BY PASSWORD") {
            Some(at) => g[..at].to_string(),
            None => g,
        })
        .collect()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        run_best_effort(
            &self.server,
            format!("DROP USER IF EXISTS '{}'@'%'", self.name),
        );
    }
}

/// `text` as a URL carries it in the user or password part (RFC 3986, as the
/// exporter's `database.url` takes it): everything but the unreserved characters
/// percent-encoded.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
