//! The HTTP endpoint: the server and its connection limits, the routes, the status
//! page, and what `--web.config.file` adds (TLS, client certificates, basic auth,
//! headers).

mod basic_auth;
mod certificate;
mod config;
mod probe;
mod routes;
mod server;
mod status_page;
mod tls;

pub use config::{load as load_web_config, parse as parse_web_config, WebSecurity};
pub use routes::{App, Guard, ReloadRequest};
pub use server::serve;

#[cfg(test)]
mod tests;
