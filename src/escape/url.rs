//! URLs: which component a value is in decides how it is written.
//!
//! * At the very start (`{{base}}/healthz`): a base URL, `http(s)://host`
//!   with an optional path, validated (no credentials, query or fragment,
//!   no whitespace) and inserted as it is, trailing `/` removed.
//! * In the host (`https://{{region}}.example.com`): letters, digits, `-`,
//!   `.`, `_` only. In the port: digits.
//! * In the path, query or fragment: percent-encoded (everything but
//!   `A-Za-z0-9-._~`), so a value is one path segment or one query value;
//!   a path segment made `.` or `..` by values is refused.
//! * In the scheme or in credentials (`user:{{x}}@host`): refused.

use super::{Piece, Refusal, Slot};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::ops::Range;

/// Characters left as they are in a URL component (RFC 3986 unreserved).
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(super) fn percent_encode(v: &str) -> String {
    utf8_percent_encode(v, URL_COMPONENT).to_string()
}

const IN_SCHEME: (&str, &str) = (
    "in a URL's scheme",
    "write the scheme literally (`https://...`), or make the whole base URL one placeholder at the start: `{{base}}/path`",
);
const IN_USERINFO: (&str, &str) = (
    "in a URL's credentials (`user:password@`)",
    "credentials in a URL end up in logs; send them in a header: `header \"Authorization\" = \"Bearer {{token}}\"`",
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Scheme,
    Authority { port: bool },
    Path,
    Query,
    Fragment,
}

pub(super) fn slots(pieces: &[Piece]) -> Vec<Result<Slot, Refusal>> {
    let mut out: Vec<Result<Slot, Refusal>> = Vec::new();
    let mut part = Part::Scheme;
    let mut scheme = String::new();
    // Values in the authority being read (refused if it has credentials).
    let mut in_authority: Vec<usize> = Vec::new();
    let mut leading = true;
    for piece in pieces {
        match piece {
            Piece::Value(_) if leading => {
                out.push(Ok(Slot::UrlBase));
                part = Part::Path;
                leading = false;
            }
            Piece::Value(_) => {
                let value = out.len();
                out.push(match part {
                    Part::Scheme => Err(Refusal::at(value, IN_SCHEME)),
                    Part::Authority { port: false } => Ok(Slot::UrlHost),
                    Part::Authority { port: true } => Ok(Slot::UrlPort),
                    Part::Path => Ok(Slot::UrlPath),
                    Part::Query => Ok(Slot::UrlQuery),
                    Part::Fragment => Ok(Slot::UrlFragment),
                });
                if matches!(part, Part::Authority { .. }) {
                    in_authority.push(value);
                }
            }
            Piece::Text(t) => {
                if leading && t.trim().is_empty() {
                    continue;
                }
                leading = false;
                for c in t.chars() {
                    part = match (part, c) {
                        (Part::Scheme, c) => {
                            scheme.push(c);
                            if scheme.ends_with("://") {
                                Part::Authority { port: false }
                            } else {
                                Part::Scheme
                            }
                        }
                        (Part::Authority { .. }, '@') => {
                            for &v in &in_authority {
                                out[v] = Err(Refusal::at(v, IN_USERINFO));
                            }
                            Part::Authority { port: false }
                        }
                        (Part::Authority { .. }, ':') => Part::Authority { port: true },
                        (Part::Authority { .. } | Part::Path, '/') => Part::Path,
                        (Part::Authority { .. } | Part::Path, '?') => Part::Query,
                        (Part::Authority { .. } | Part::Path | Part::Query, '#') => Part::Fragment,
                        (p, _) => p,
                    };
                    if !matches!(part, Part::Authority { .. }) {
                        in_authority.clear();
                    }
                }
            }
        }
    }
    out
}

/// A base URL at the start of a URL text.
pub(super) fn write_base(v: &str) -> Result<String, String> {
    const RULE: &str =
        "a URL that starts with a placeholder takes a base URL there: http(s)://host[:port][/path]";
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{RULE}; the value holds whitespace or control characters"
        ));
    }
    let url =
        reqwest::Url::parse(v).map_err(|e| format!("{RULE}; the value is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{RULE}; the value's scheme is `{}`", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{RULE}; the value has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{RULE}; the value holds credentials (send them in a header instead)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{RULE}; the value has a query or fragment"));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

pub(super) fn write_host(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !v.contains("..");
    if ok {
        Ok(v.to_owned())
    } else {
        Err(
            "a value in a URL's host may hold only letters, digits, `-`, `.` and `_` (and no `..`)"
                .into(),
        )
    }
}

pub(super) fn write_port(v: &str) -> Result<String, String> {
    if (1..=5).contains(&v.len()) && v.chars().all(|c| c.is_ascii_digit()) {
        Ok(v.to_owned())
    } else {
        Err("a value in a URL's port must be a number".into())
    }
}

/// The whole URL, once written: no path segment made `.` or `..` by a value
/// (a client would resolve it: `/flags/../state` is `/state`), and an
/// http(s) URL with a host. `values` are the slots of the values and where
/// they were written in `written`.
pub(super) fn validate(written: &str, values: &[(Slot, Range<usize>)]) -> Result<(), String> {
    let boundary = |c: char| matches!(c, '/' | '?' | '#');
    for (slot, at) in values {
        if *slot != Slot::UrlPath {
            continue;
        }
        let start = written[..at.start].rfind(boundary).map_or(0, |i| i + 1);
        let end = written[at.end..]
            .find(boundary)
            .map_or(written.len(), |i| at.end + i);
        let segment = written[start..end].to_ascii_lowercase();
        if matches!(
            segment.as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        ) {
            return Err(
                "a value makes a URL path segment `.` or `..` (the request would go to another path)"
                    .into(),
            );
        }
    }
    let url = reqwest::Url::parse(written)
        .map_err(|e| format!("the URL is not valid once its values are in ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("the URL is not an http(s) URL with a host once its values are in".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{assemble, interleave};
    use crate::plan::Escape;

    fn url(parts: &[&str], values: &[&str]) -> Result<String, String> {
        assemble(Escape::Url, &interleave(parts, values))
    }

    #[test]
    fn components() {
        assert_eq!(
            url(
                &["https://", ".example.com:", "/a/", "?q=", "#"],
                &["eu-1", "8443", "x/y", "a&b=c", "f g"]
            )
            .unwrap(),
            "https://eu-1.example.com:8443/a/x%2Fy?q=a%26b%3Dc#f%20g"
        );
    }

    #[test]
    fn dot_segments_from_values_are_refused() {
        assert!(url(&["https://h/flags/", "/state"], &[".."]).is_err());
        assert!(url(&["https://h/flags/", ""], &["."]).is_err());
        assert!(url(&["https://h/flags/.", "/x"], &["."]).is_err());
        assert!(url(&["https://h/flags/", "/x"], &["..."]).is_ok());
        assert!(url(&["https://h/flags/", "?a=1"], &[".."]).is_err());
        assert!(url(&["https://h/flags?x=", ""], &[".."]).is_ok());
    }

    #[test]
    fn base_urls() {
        assert_eq!(
            url(&["", "/healthz"], &["http://127.0.0.1:8080/"]).unwrap(),
            "http://127.0.0.1:8080/healthz"
        );
        assert_eq!(
            url(&["", "/healthz"], &["https://h/api"]).unwrap(),
            "https://h/api/healthz"
        );
        for bad in [
            "ftp://h",
            "http://u:p@h",
            "http://h/?a",
            "h",
            "http://h/ x",
            "http://h#f",
            "file:///etc/passwd",
        ] {
            assert!(url(&["", "/x"], &[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_ports_and_credentials() {
        assert!(url(&["https://", ".example.com/"], &["evil.com/x?"]).is_err());
        assert!(url(&["https://", ".example.com/"], &["a b"]).is_err());
        assert!(url(&["https://h:", "/"], &["80a"]).is_err());
        assert!(url(&["https://u:", "@h/"], &["pw"]).is_err());
        assert!(url(&["http", "://h/"], &["s"]).is_err());
    }
}
