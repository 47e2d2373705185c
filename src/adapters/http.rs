//! The real HTTP adapter: reqwest with rustls (ring provider, no OpenSSL).
//!
//! * One request per call, the method, headers and body of the request in
//!   their `send` form. A JSON body gets `Content-Type: application/json`,
//!   a text body `text/plain; charset=utf-8`, unless the request sets one.
//! * The timeout (the request's, else [`RealHttp::default_timeout`]) covers
//!   the whole exchange, connection to the last body byte read, and is
//!   enforced with `tokio::time`; `Call::cancel` drops the request at once.
//! * The body's *head* is kept (`Call::output_cap` bytes); the rest is not
//!   even read. `json` is the body parsed as JSON when it parses (and was
//!   not truncated), whatever the `Content-Type`.
//! * `elapsed` runs from just before the request is sent to the end of the
//!   body read.
//! * Any status is an `Ok`. Errors come from `reqwest::Error::without_url()`
//!   plus its source chain, and any secret of the URL or of a header is
//!   removed from the message as a second line of defence.

use super::*;
use std::sync::OnceLock;
use tokio::time::Instant;

/// Builds a reqwest client lazily, once: the constructor of the real set
/// cannot fail, a client that cannot be built is an error of the first call.
/// Clones share the client (and so its connection pool).
#[derive(Debug, Clone, Default)]
pub struct LazyClient {
    cell: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

/// Installs the ring crypto provider for rustls (once per process; an
/// already installed provider is kept).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl LazyClient {
    pub fn get(&self) -> AdapterResult<&reqwest::Client> {
        self.cell
            .get_or_init(|| {
                install_crypto_provider();
                reqwest::Client::builder()
                    .tls_backend_rustls()
                    .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| error_chain(&e.without_url()))
            })
            .as_ref()
            .map_err(|e| {
                AdapterError::new(
                    ErrorKind::Other,
                    format!("cannot set up the HTTP client: {e}"),
                )
            })
    }
}

/// Sends HTTP requests for real.
#[derive(Debug, Clone, Default)]
pub struct RealHttp {
    pub client: LazyClient,
    /// Timeout when the request has none (`None`: no timeout).
    pub default_timeout: Option<Duration>,
}

impl RealHttp {
    pub fn new(default_timeout: Option<Duration>) -> Self {
        RealHttp {
            client: LazyClient::default(),
            default_timeout,
        }
    }
}

/// The secret values inside a [`Rendered`]: the parts of `send` that are
/// `***` in `display`. Best effort (two adjacent secrets come out as one);
/// if `display` does not line up with `send`, the whole `send` form is
/// returned, so that redacting with the result never under-redacts.
pub fn secret_parts(r: &Rendered) -> Vec<String> {
    const MASK: &str = "***";
    if !r.has_secret() {
        return Vec::new();
    }
    let whole = || vec![r.send.clone()];
    let pieces: Vec<&str> = r.display.split(MASK).collect();
    if pieces.len() < 2 {
        return whole();
    }
    let send = r.send.as_str();
    let Some(mut rest) = send.strip_prefix(pieces[0]) else {
        return whole();
    };
    let mut out = Vec::new();
    let last = pieces.len() - 1;
    for (i, piece) in pieces.iter().enumerate().skip(1) {
        if i == last {
            let Some(secret) = rest.strip_suffix(piece) else {
                return whole();
            };
            out.push(secret.to_string());
            rest = "";
        } else if piece.is_empty() {
            // `******`: two secrets side by side; taken with the next one.
            continue;
        } else {
            // The secret is non-empty: search from the next character.
            let from = rest.chars().next().map_or(0, char::len_utf8);
            let Some(at) = rest.get(from..).and_then(|s| s.find(piece)) else {
                return whole();
            };
            out.push(rest[..from + at].to_string());
            rest = &rest[from + at + piece.len()..];
        }
    }
    out.retain(|s| !s.is_empty());
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// Replaces every secret of `sources` in `message` with `***`.
pub fn redact<'a>(message: &str, sources: impl IntoIterator<Item = &'a Rendered>) -> String {
    let mut secrets: Vec<String> = sources.into_iter().flat_map(secret_parts).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for s in &secrets {
        out = out.replace(s.as_str(), "***");
        // A secret may also show up percent-encoded (e.g. in a URL).
        let encoded = percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        if encoded != *s {
            out = out.replace(encoded.as_str(), "***");
        }
    }
    out
}

/// `e` and its sources, `: `-separated, skipping repeats.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Maps a reqwest error (URL stripped) to an adapter error kind and a
/// message starting with `what`.
pub fn map_reqwest_error(e: reqwest::Error, what: &str) -> AdapterError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() || e.is_request() {
        ErrorKind::Unreachable
    } else if e.is_body() || e.is_decode() || e.is_redirect() {
        ErrorKind::BadResponse
    } else {
        ErrorKind::Other
    };
    let e = e.without_url();
    AdapterError::new(kind, format!("{what}: {}", error_chain(&e)))
}

/// Reads at most `cap` bytes of the body. Returns (head, truncated).
pub async fn read_head(
    resp: &mut reqwest::Response,
    cap: usize,
    what: &str,
) -> AdapterResult<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    if resp.content_length().is_some_and(|n| n == 0) {
        return Ok((buf, false));
    }
    while let Some(chunk) = resp.chunk().await.map_err(|e| map_reqwest_error(e, what))? {
        buf.extend_from_slice(&chunk);
        if buf.len() > cap {
            buf.truncate(cap);
            return Ok((buf, true));
        }
    }
    Ok((buf, false))
}

/// Runs `fut` under the timeout and the call's cancellation token.
pub async fn guarded<T>(
    call: &Call,
    timeout: Option<Duration>,
    fut: impl std::future::Future<Output = AdapterResult<T>>,
) -> AdapterResult<T> {
    if call.cancel.is_cancelled() {
        return Err(AdapterError::cancelled());
    }
    let timed = async {
        match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .unwrap_or_else(|_| Err(AdapterError::timeout(t))),
            None => fut.await,
        }
    };
    tokio::select! {
        r = timed => r,
        _ = call.cancel.cancelled() => Err(AdapterError::cancelled()),
    }
}

/// Adds the headers of `req` to `builder` (send forms, secret ones marked
/// sensitive). Errors name the header and show the display form only.
fn add_headers(
    mut builder: reqwest::RequestBuilder,
    headers: &[(String, Rendered)],
) -> AdapterResult<reqwest::RequestBuilder> {
    for (name, value) in headers {
        let header_name =
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                AdapterError::new(ErrorKind::Other, format!("invalid header name {name:?}"))
            })?;
        let mut header_value =
            reqwest::header::HeaderValue::from_str(&value.send).map_err(|_| {
                AdapterError::new(
                    ErrorKind::Other,
                    format!(
                        "invalid value for header {name}: {:?} (control characters or non-ASCII)",
                        value.display
                    ),
                )
            })?;
        header_value.set_sensitive(value.has_secret());
        builder = builder.header(header_name, header_value);
    }
    Ok(builder)
}

fn has_header(headers: &[(String, Rendered)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// Sends `req` with `client`; the shared core of the http and notify
/// adapters. Error messages are redacted of every secret in `req`.
pub async fn send_with(
    client: &reqwest::Client,
    call: &Call,
    req: &HttpCall,
    timeout: Option<Duration>,
) -> AdapterResult<HttpResponse> {
    let sources = std::iter::once(&req.url)
        .chain(req.headers.iter().map(|(_, v)| v))
        .chain(req.body.iter().map(|b| &b.text));
    let what = format!("{} {}", req.method, req.url.display);
    send_inner(client, call, req, timeout, &what)
        .await
        .map_err(|mut e| {
            e.message = redact(&e.message, sources);
            e
        })
}

async fn send_inner(
    client: &reqwest::Client,
    call: &Call,
    req: &HttpCall,
    timeout: Option<Duration>,
    what: &str,
) -> AdapterResult<HttpResponse> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|_| {
        AdapterError::new(
            ErrorKind::Other,
            format!("invalid HTTP method {:?}", req.method),
        )
    })?;
    let url = reqwest::Url::parse(&req.url.send).map_err(|e| {
        AdapterError::new(
            ErrorKind::Other,
            format!("invalid URL {:?}: {e}", req.url.display),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(AdapterError::new(
            ErrorKind::Other,
            format!(
                "invalid URL {:?}: only http:// and https:// are supported",
                req.url.display
            ),
        ));
    }
    let mut builder = add_headers(client.request(method, url), &req.headers)?;
    if let Some(body) = &req.body {
        if !has_header(&req.headers, "content-type") {
            let ct = match body.kind {
                crate::plan::BodyKind::Json => "application/json",
                crate::plan::BodyKind::Text => "text/plain; charset=utf-8",
            };
            builder = builder.header(reqwest::header::CONTENT_TYPE, ct);
        }
        builder = builder.body(body.text.send.clone());
    }
    let cap = call.output_cap;
    guarded(call, timeout, async move {
        let started = Instant::now();
        let mut resp = builder
            .send()
            .await
            .map_err(|e| map_reqwest_error(e, what))?;
        let status = resp.status().as_u16();
        let (head, body_truncated) = read_head(&mut resp, cap, what).await?;
        let elapsed = started.elapsed();
        let json = if body_truncated || head.is_empty() {
            None
        } else {
            serde_json::from_slice(&head).ok()
        };
        Ok(HttpResponse {
            status,
            elapsed,
            body: String::from_utf8_lossy(&head).into_owned(),
            body_truncated,
            json,
        })
    })
    .await
}

#[async_trait]
impl HttpAdapter for RealHttp {
    async fn send(&self, call: &Call, req: &HttpCall) -> AdapterResult<HttpResponse> {
        let client = self.client.get()?;
        send_with(client, call, req, req.timeout.or(self.default_timeout)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(send: &str, display: &str) -> Rendered {
        Rendered {
            send: send.into(),
            display: display.into(),
        }
    }

    #[test]
    fn secret_parts_finds_the_substituted_values() {
        assert!(secret_parts(&Rendered::plain("abc")).is_empty());
        assert_eq!(
            secret_parts(&r(
                "https://h/x?token=s3cr3t&a=1",
                "https://h/x?token=***&a=1"
            )),
            ["s3cr3t"]
        );
        assert_eq!(secret_parts(&r("Bearer abc", "Bearer ***")), ["abc"]);
        assert_eq!(secret_parts(&r("k1-k2", "***-***")), ["k1", "k2"]);
        // Adjacent secrets come out together.
        assert_eq!(secret_parts(&r("ab", "******")), ["ab"]);
        // The secret contains the following literal.
        assert_eq!(secret_parts(&r("x/a/b/y", "x/***/y")), ["a/b"]);
        // Not lined up: everything is secret.
        assert_eq!(secret_parts(&r("zzz", "a***")), ["zzz"]);
    }

    #[test]
    fn redact_removes_plain_and_encoded_secrets() {
        let url = r("http://h/?t=a b", "http://h/?t=***");
        assert_eq!(
            redact("failed: a b and a%20b", [&url]),
            "failed: *** and ***"
        );
    }
}
