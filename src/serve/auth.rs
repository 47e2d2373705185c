//! Who is asking: bearer tokens from the config (`serve.tokens`, each
//! value read from an environment variable or a file), their roles, the
//! web page's login sessions (an `HttpOnly`, `SameSite=Strict` cookie) and
//! their CSRF tokens.
//!
//! * A request with `Authorization: Bearer TOKEN` is that token's identity
//!   (no CSRF token needed: a browser never sends the header by itself).
//! * A request with the session cookie is the identity that logged in;
//!   every form it posts carries the session's CSRF token (`csrf` field),
//!   compared in constant time.
//! * Tokens are kept as SHA-256 digests; a token is never logged or shown.

use crate::config::{Role, Serve};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// The web session cookie.
pub const COOKIE: &str = "runbook_session";

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's name: what the journal records as approver.
    pub name: String,
    pub roles: Vec<Role>,
}

impl Identity {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    pub identity: Identity,
    pub csrf: String,
}

/// Tokens and web sessions.
#[derive(Debug, Default)]
pub struct Auth {
    tokens: Vec<([u8; 32], Identity)>,
    sessions: Mutex<HashMap<String, WebSession>>,
}

/// The most web sessions kept (the oldest are not tracked: a new login
/// past this clears them all).
const MAX_SESSIONS: usize = 10_000;

impl Auth {
    /// Reads every token's value; an unreadable, empty or shared value is
    /// an error naming the token (never its value).
    pub fn from_config(serve: &Serve) -> Result<Auth, String> {
        let mut tokens: Vec<([u8; 32], Identity)> = Vec::new();
        for spec in &serve.tokens {
            let value = match (&spec.env, &spec.file) {
                (Some(var), None) => std::env::var(var).map_err(|_| {
                    format!(
                        "serve token `{}`: the environment variable {var} is not set",
                        spec.name
                    )
                })?,
                (None, Some(path)) => crate::fs_read::read_to_string(path, crate::fs_read::SECRET)
                    .map_err(|e| {
                        format!(
                            "serve token `{}`: cannot read {}: {e}",
                            spec.name,
                            path.display()
                        )
                    })?,
                _ => {
                    return Err(format!(
                        "serve token `{}`: give exactly one of `env` or `file`",
                        spec.name
                    ))
                }
            };
            let value = value.trim();
            if value.len() < 16 {
                return Err(format!(
                    "serve token `{}`: the token is shorter than 16 characters",
                    spec.name
                ));
            }
            if spec.name.trim().is_empty() || spec.roles.is_empty() {
                return Err(format!(
                    "serve token `{}`: needs a name and at least one role (view, approve, trigger)",
                    spec.name
                ));
            }
            let digest = digest(value);
            if tokens.iter().any(|(d, _)| *d == digest) {
                return Err(format!(
                    "serve token `{}`: the same value as another token",
                    spec.name
                ));
            }
            tokens.push((
                digest,
                Identity {
                    name: spec.name.clone(),
                    roles: spec.roles.clone(),
                },
            ));
        }
        Ok(Auth {
            tokens,
            sessions: Mutex::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The identity of a token value.
    pub fn token(&self, value: &str) -> Option<Identity> {
        let d = digest(value.trim());
        self.tokens
            .iter()
            .find(|(t, _)| constant_time_eq(t, &d))
            .map(|(_, id)| id.clone())
    }

    /// The identity of an `Authorization` header value.
    pub fn bearer(&self, header: &str) -> Option<Identity> {
        let v = header.strip_prefix("Bearer ")?;
        self.token(v)
    }

    /// A new web session for `identity`: its cookie value.
    pub fn login(&self, identity: Identity) -> Result<String, String> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let mut s = self
            .sessions
            .lock()
            .map_err(|_| "session table poisoned".to_string())?;
        if s.len() >= MAX_SESSIONS {
            s.clear();
        }
        s.insert(id.clone(), WebSession { identity, csrf });
        Ok(id)
    }

    pub fn logout(&self, cookie: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(cookie);
        }
    }

    /// The web session of a cookie value.
    pub fn session(&self, cookie: &str) -> Option<WebSession> {
        self.sessions.lock().ok()?.get(cookie).cloned()
    }
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE).then_some(v)
    })
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Equal, in a time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random bytes from the kernel, hex.
pub fn random_hex(n: usize) -> Result<String, String> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TokenSpec;

    fn spec(name: &str, var: &str, roles: Vec<Role>) -> TokenSpec {
        TokenSpec {
            name: name.into(),
            roles,
            env: Some(var.into()),
            file: None,
        }
    }

    #[test]
    fn tokens_roles_and_sessions() {
        std::env::set_var("RUNBOOK_AUTH_TEST_A", "a-token-of-sixteen-chars");
        std::env::set_var("RUNBOOK_AUTH_TEST_SHORT", "tiny-x");
        let serve = Serve {
            tokens: vec![spec("alice", "RUNBOOK_AUTH_TEST_A", vec![Role::View])],
        };
        let auth = Auth::from_config(&serve).unwrap();
        let alice = auth.bearer("Bearer a-token-of-sixteen-chars").unwrap();
        assert_eq!(alice.name, "alice");
        assert!(alice.has(Role::View) && !alice.has(Role::Approve));
        assert!(auth.bearer("Bearer a-token-of-sixteen-charz").is_none());
        assert!(auth.bearer("a-token-of-sixteen-chars").is_none());
        let cookie = auth.login(alice.clone()).unwrap();
        let s = auth.session(&cookie).unwrap();
        assert_eq!(s.identity, alice);
        assert_eq!(s.csrf.len(), 64);
        assert_eq!(
            cookie_value(&format!("x=1; {COOKIE}={cookie}")),
            Some(cookie.as_str())
        );
        let short = Serve {
            tokens: vec![spec("bob", "RUNBOOK_AUTH_TEST_SHORT", vec![Role::View])],
        };
        let e = Auth::from_config(&short).unwrap_err();
        assert!(e.contains("bob") && !e.contains("tiny-x"), "{e}");
        let unset = Serve {
            tokens: vec![spec("carol", "RUNBOOK_AUTH_TEST_UNSET", vec![Role::View])],
        };
        assert!(Auth::from_config(&unset).unwrap_err().contains("not set"));
    }
}
