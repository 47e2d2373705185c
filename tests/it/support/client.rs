//! A tiny blocking HTTP/1.1 client on `std::net::TcpStream`.
//!
//! It exists so that the harness (and tests) can talk to `TestHttpServer` and
//! Prometheus without depending on the engine's own HTTP stack. It sends
//! `Connection: close`, reads until EOF, and understands `Content-Length` and
//! `Transfer-Encoding: chunked` responses. `http://` URLs only.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Read timeout of the raw client; long enough for `/slow?ms=N` with N of a
/// few tens of seconds.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete HTTP response as read by [`http_request`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names as sent by the server (case preserved), in order.
    pub headers: Vec<(String, String)>,
    /// The body, with any chunked transfer-encoding already removed.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body in the message if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body: {:?}",
                self.status,
                self.text()
            )
        })
    }
}

/// Splits `http://host:port/path?query` into (`host:port`, `/path?query`).
fn split_url(url: &str) -> io::Result<(String, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("only http:// URLs are supported, got {url:?}"),
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// Sends one request and reads the whole response.
///
/// `headers` are added verbatim; `Host`, `Connection: close` and (when `body`
/// is not empty or the method is not GET/HEAD) `Content-Length` are added
/// automatically.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let (authority, path) = split_url(url)?;
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;

    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let is_bodyless = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    if !body.is_empty() || !is_bodyless {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw, method.eq_ignore_ascii_case("HEAD"))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn parse_response(raw: &[u8], is_head: bool) -> io::Result<HttpResponse> {
    let mut rest = raw;
    // Skip interim 1xx responses (e.g. `100 Continue`).
    loop {
        let end = find(rest, b"\r\n\r\n").ok_or_else(|| {
            invalid(format!(
                "incomplete HTTP response head: {:?}",
                String::from_utf8_lossy(rest)
            ))
        })?;
        let head = std::str::from_utf8(&rest[..end])
            .map_err(|e| invalid(format!("response head is not UTF-8: {e}")))?;
        let body = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut resp = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if is_head || status == 204 || status == 304 {
            return Ok(resp);
        }
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        resp.body = if chunked {
            decode_chunked(body)?
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|e| invalid(format!("bad Content-Length {len:?}: {e}")))?;
            if body.len() < len {
                return Err(invalid(format!(
                    "body truncated: Content-Length {len}, got {} bytes",
                    body.len()
                )));
            }
            body[..len].to_vec()
        } else {
            body.to_vec()
        };
        return Ok(resp);
    }
}

fn decode_chunked(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end =
            find(data, b"\r\n").ok_or_else(|| invalid("truncated chunk size line".into()))?;
        let size_str = std::str::from_utf8(&data[..line_end])
            .map_err(|e| invalid(format!("chunk size is not UTF-8: {e}")))?;
        let size_hex = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|e| invalid(format!("bad chunk size {size_str:?}: {e}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(invalid("truncated chunk".into()));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `GET url`; panics (with the URL) if the request cannot be made.
pub fn http_get(url: &str) -> HttpResponse {
    http_request("GET", url, &[], b"")
        .unwrap_or_else(|e| panic!("GET {url} failed at the transport level: {e}"))
}

/// `POST url` with a body and content type; panics if the request cannot be made.
pub fn http_post(url: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    http_request("POST", url, &[("Content-Type", content_type)], body)
        .unwrap_or_else(|e| panic!("POST {url} failed at the transport level: {e}"))
}

/// Percent-encodes a string for use as a URL query value (RFC 3986 unreserved
/// characters are kept, everything else is `%XX`).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
