//! HTTP/1 spoken by hand over plain TCP, for what a well-behaved client cannot do
//! (stall, send garbage, hold connections), and the `ureq` agent the tests use.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// A response read to the end.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers, lower-cased.
    pub head: String,
    pub body: String,
}

/// A `ureq` agent that returns error statuses as responses and gives up after 10 s.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// An HTTP/1.0 request: the exporter streams `/metrics`, and to a 1.0 client it sends
/// the body plainly until it closes the connection, so no chunked decoding is needed.
pub fn request(path: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!(
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAccept-Encoding: identity\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// Splits a response into status, head and body; `None` if it has no complete head.
pub fn parse_response(bytes: &[u8]) -> Option<Response> {
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Response {
        status,
        head: head.to_lowercase(),
        body: String::from_utf8_lossy(&bytes[split + 4..]).to_string(),
    })
}

/// Sends `request` as is over a new connection and reads until the server closes it.
pub fn raw_request(address: &str, request: &str) -> Response {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).expect("read");
    parse_response(&bytes)
        .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&bytes)))
}

/// GET over plain HTTP with extra headers; the connection is closed after it.
pub fn plain_get(address: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    raw_request(address, &request(path, headers))
}

/// Reads until the server closes the connection (EOF or reset) or `limit` passes;
/// returns what was read and whether it was closed in time.
pub fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (received, true),
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (received, true),
        }
    }
    (received, false)
}
