//! A database of the test's own on a real MariaDB server, created from a cinder schema
//! and dropped afterwards, and statements run as the server's admin.
//!
//! The shared server is the one `scripts/test` starts (or the one named by
//! `CINDER_EXPORTER_TEST_DATABASE_URL`); each test creates databases named
//! `cinder_exporter_test_*` and drops them, and touches nothing else there.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;

pub const ADMIN_URL_ENV: &str = "CINDER_EXPORTER_TEST_DATABASE_URL";

/// The admin URL of the shared test server (ends with `/`).
pub fn admin_url() -> String {
    let url = std::env::var(ADMIN_URL_ENV).unwrap_or_else(|_| {
        panic!(
            "{ADMIN_URL_ENV} is not set: run the suite with scripts/test, which starts a \
             throwaway MariaDB, or point {ADMIN_URL_ENV} at a server (mysql://user:pass@host:port/)"
        )
    });
    let url = url.trim_end_matches('/');
    // Drop a database part, if any: tests create their own.
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(slash) => format!("{}/", &url[..scheme_end + slash]),
        None => format!("{url}/"),
    }
}

/// The port of a server given by its admin URL (`mysql://admin:admin@HOST:PORT/`).
pub fn port(server_url: &str) -> String {
    let rest = server_url.split('@').nth(1).expect("admin URL has user@");
    let host_port = rest.trim_end_matches('/');
    host_port.rsplit(':').next().expect("port").to_string()
}

/// Runs `work` to completion on a small runtime of its own (the tests are synchronous).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(work)
}

/// All rows of `sql` run on the server at `url` (an admin URL, or a database's).
pub fn query_on<T: mysql_async::prelude::FromRow + Send + 'static>(url: &str, sql: &str) -> Vec<T> {
    run(url, sql, None)
}

/// Runs `sql` as a text query, or as a prepared statement with `params`.
fn run<T: mysql_async::prelude::FromRow + Send + 'static>(
    url: &str,
    sql: &str,
    params: Option<mysql_async::Params>,
) -> Vec<T> {
    let url = url.to_string();
    let sql = sql.to_string();
    block_on(async move {
        let mut conn = mysql_async::Conn::from_url(url.as_str())
            .await
            .expect("connect");
        let rows: Result<Vec<T>, _> = match params {
            Some(params) => conn.exec(&sql, params).await,
            None => conn.query(&sql).await,
        };
        conn.disconnect().await.ok();
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

/// Runs `sql` on the server at `url`; returns the first column of every row, as
/// text (empty for NULL).
pub fn admin_rows(url: &str, sql: &str) -> Vec<String> {
    query_on::<mysql_async::Row>(url, sql)
        .into_iter()
        .map(|mut row| {
            match row
                .take::<mysql_async::Value, _>(0)
                .unwrap_or(mysql_async::Value::NULL)
            {
                mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                mysql_async::Value::NULL => String::new(),
                other => other.as_sql(true),
            }
        })
        .collect()
}

/// Runs `sql` on the server at `server_url` if it can be reached within 5 s, ignoring
/// failures: for clean-ups in `Drop`, where a test may have stopped its server already.
pub fn run_best_effort(server_url: &str, sql: String) {
    let url = server_url.to_string();
    // A thread of its own: `Drop` may run inside another runtime.
    let _ = std::thread::spawn(move || {
        block_on(async move {
            if let Ok(Ok(mut conn)) = tokio::time::timeout(
                Duration::from_secs(5),
                mysql_async::Conn::from_url(url.as_str()),
            )
            .await
            {
                let _ = conn.query_drop(sql).await;
                let _ = conn.disconnect().await;
            }
        })
    })
    .join();
}

/// Which `services` table to create.
#[derive(Clone, Copy, Debug)]
pub enum Schema {
    /// `SHOW CREATE TABLE` of cinder 29 after `db sync`.
    Cinder29,
    /// Only the columns every cinder release has had.
    Oldest,
}

impl Schema {
    fn sql(self) -> &'static str {
        match self {
            Schema::Cinder29 => include_str!("../fixtures/cinder-29-schema.sql"),
            Schema::Oldest => include_str!("../fixtures/cinder-oldest-schema.sql"),
        }
    }
}

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// A database of this test's own, created from a cinder schema and dropped on drop.
pub struct Database {
    server: String,
    name: String,
}

impl Database {
    /// A fresh database on the shared test server.
    pub fn create(schema: Schema) -> Database {
        Database::create_on(&admin_url(), schema)
    }

    /// A fresh database on the server at `server_url` (`mysql://…/`).
    pub fn create_on(server_url: &str, schema: Schema) -> Database {
        let name = format!(
            "cinder_exporter_test_{}_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let db = Database {
            server: server_url.to_string(),
            name,
        };
        admin_rows(
            &db.server,
            &format!("CREATE DATABASE `{}` CHARACTER SET utf8mb3", db.name),
        );
        for statement in schema
            .sql()
            .split(';')
            .filter(|s| !strip_comments(s).is_empty())
        {
            db.exec(statement);
        }
        db
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL the exporter is given.
    pub fn url(&self) -> String {
        format!("{}{}", self.server, self.name)
    }

    /// Runs one statement.
    pub fn exec(&self, sql: &str) {
        admin_rows(&self.url(), sql);
    }

    /// Runs a statement with parameters.
    pub fn exec_with(&self, sql: &str, params: impl Into<mysql_async::Params> + Send) {
        run::<mysql_async::Row>(&self.url(), sql, Some(params.into()));
    }

    /// One value of a query returning one row and column.
    pub fn query_one<T: mysql_async::prelude::FromValue + Send + 'static>(&self, sql: &str) -> T {
        let mut rows = self.query::<(T,)>(sql);
        assert!(!rows.is_empty(), "{sql}: no row");
        rows.swap_remove(0).0
    }

    /// All rows of a query.
    pub fn query<T: mysql_async::prelude::FromRow + Send + 'static>(&self, sql: &str) -> Vec<T> {
        query_on(&self.url(), sql)
    }

    /// Holds `LOCK TABLES services WRITE` from a connection of its own until the lock
    /// is released or dropped: the exporter's polls then wait on it.
    pub fn lock_services(&self) -> TableLock {
        let url = self.url();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            block_on(async move {
                let mut conn = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
                conn.query_drop("LOCK TABLES services WRITE").await.unwrap();
                let id: u64 = conn
                    .query_first("SELECT CONNECTION_ID()")
                    .await
                    .unwrap()
                    .unwrap();
                locked_tx.send(id).unwrap();
                tokio::task::spawn_blocking(move || release_rx.recv())
                    .await
                    .ok();
                conn.query_drop("UNLOCK TABLES").await.unwrap();
                conn.disconnect().await.ok();
            })
        });
        TableLock {
            connection_id: locked_rx.recv().unwrap(),
            release: Some(release_tx),
            holder: Some(holder),
        }
    }

    /// Inserts a live service row; times are offsets in seconds from the database's
    /// `UTC_TIMESTAMP()` (NULL where `None`).
    pub fn insert_service(
        &self,
        host: &str,
        binary: &str,
        created: Option<i64>,
        updated: Option<i64>,
        count: i64,
    ) {
        let at = |offset: Option<i64>| match offset {
            Some(s) => format!("UTC_TIMESTAMP() + INTERVAL {s} SECOND"),
            None => "NULL".into(),
        };
        self.exec(&format!(
            "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, \
             report_count, disabled, availability_zone) VALUES ({}, {}, 0, '{host}', \
             '{binary}', '{binary}', {count}, 0, 'nova')",
            at(created),
            at(updated)
        ));
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        run_best_effort(
            &self.server,
            format!("DROP DATABASE IF EXISTS `{}`", self.name),
        );
    }
}

fn strip_comments(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// A lock on a test database's `services` table ([`Database::lock_services`]).
pub struct TableLock {
    /// The server's id of the connection holding the lock.
    pub connection_id: u64,
    release: Option<std::sync::mpsc::Sender<()>>,
    holder: Option<std::thread::JoinHandle<()>>,
}

impl TableLock {
    /// Unlocks the table and waits until it is unlocked.
    pub fn release(mut self) {
        self.unlock();
    }

    fn unlock(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Some(holder) = self.holder.take() {
            holder.join().expect("the lock holder");
        }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.unlock();
        } else if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}
