//! Alertmanager's webhook payload, version 4
//! (<https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>),
//! read strictly: a payload of another version, an alert without
//! `alertname`, a `status` other than `firing` / `resolved`, or a
//! fingerprint that is not a plain token is refused as a whole (400), so
//! that nothing is started from half a message.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The webhook body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub receiver: String,
    pub status: AlertStatus,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert of the payload.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: AlertStatus,
    pub labels: IndexMap<String, String>,
    #[serde(default)]
    pub annotations: IndexMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// Alertmanager's identity of the alert (a hash of its labels).
    pub fingerprint: String,
}

/// The most alerts one payload may carry.
pub const MAX_ALERTS: usize = 1000;

/// Parses and checks a webhook body; the message says what is wrong.
pub fn parse(body: &[u8]) -> Result<Payload, String> {
    let p: Payload = serde_json::from_slice(body)
        .map_err(|e| format!("not an Alertmanager webhook payload: {e}"))?;
    if p.version != "4" {
        return Err(format!(
            "payload version `{}`: only version 4 is understood",
            p.version
        ));
    }
    if p.alerts.is_empty() {
        return Err("the payload has no alerts".into());
    }
    if p.alerts.len() > MAX_ALERTS {
        return Err(format!(
            "{} alerts in one payload: at most {MAX_ALERTS}",
            p.alerts.len()
        ));
    }
    for (i, a) in p.alerts.iter().enumerate() {
        if !a.labels.contains_key("alertname") {
            return Err(format!("alerts[{i}] has no `alertname` label"));
        }
        let plain = !a.fingerprint.is_empty()
            && a.fingerprint.len() <= 64
            && a.fingerprint.chars().all(|c| c.is_ascii_alphanumeric());
        if !plain {
            return Err(format!(
                "alerts[{i}]: the fingerprint `{}` is not a plain token (letters and digits, at most 64)",
                a.fingerprint.escape_default()
            ));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(version: &str, alert: &str) -> Vec<u8> {
        format!(r#"{{"version":"{version}","status":"firing","receiver":"r","groupKey":"g","alerts":[{alert}]}}"#).into_bytes()
    }

    const ALERT: &str = r#"{"status":"firing","labels":{"alertname":"A","x":"1"},"annotations":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"abc123"}"#;

    #[test]
    fn reads_version_4() {
        let p = parse(&body("4", ALERT)).unwrap();
        assert_eq!(p.alerts[0].fingerprint, "abc123");
        assert_eq!(p.alerts[0].labels["x"], "1");
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        assert!(parse(&body("3", ALERT)).unwrap_err().contains("version"));
        assert!(parse(b"{").unwrap_err().contains("not an Alertmanager"));
        let no_name = ALERT.replace("\"alertname\":\"A\",", "");
        assert!(parse(&body("4", &no_name))
            .unwrap_err()
            .contains("alertname"));
        let bad_fp = ALERT.replace("abc123", "../x");
        assert!(parse(&body("4", &bad_fp))
            .unwrap_err()
            .contains("fingerprint"));
        let bad_status = ALERT.replace("\"firing\"", "\"burning\"");
        assert!(parse(&body("4", &bad_status)).is_err());
        assert!(parse(&body("4", "")).unwrap_err().contains("no alerts"));
    }
}
