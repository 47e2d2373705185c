//! The real notify adapter: Slack incoming webhooks, generic webhooks and
//! the console.
//!
//! * Slack: `POST url` with `{"text": TEXT}` (`Content-Type:
//!   application/json`).
//! * Webhook: `POST url` with the channel's headers and
//!   `{"runbook", "run_id", "step", "channel", "text", "fields": {...}}`,
//!   plus `"item"` for a notification sent from a fan-out item.
//! * Console: `[channel] TEXT` on stderr, in the *display* form (a console
//!   is a log: secrets stay `***`).
//!
//! The posts go through the HTTP adapter's core ([`super::http::send_with`]):
//! same timeout, cancellation, error mapping and redaction. Any status is an
//! `Ok(NotifyReceipt { status: Some(code) })`; the executor decides that a
//! non-2xx fails the step.

use super::http::{send_with, LazyClient};
use super::*;
use std::io::Write;
use std::sync::Mutex;
use tokio::time::Instant;

/// Where console notifications are written.
pub type ConsoleWriter = Arc<Mutex<dyn Write + Send>>;

/// Sends notifications for real.
#[derive(Clone)]
pub struct RealNotify {
    pub client: LazyClient,
    /// Timeout when the request has none.
    pub default_timeout: Option<Duration>,
    /// Console notifications go here (stderr by default).
    pub console: ConsoleWriter,
}

impl std::fmt::Debug for RealNotify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealNotify")
            .field("default_timeout", &self.default_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for RealNotify {
    fn default() -> Self {
        RealNotify::new(None)
    }
}

impl RealNotify {
    pub fn new(default_timeout: Option<Duration>) -> Self {
        RealNotify {
            client: LazyClient::default(),
            default_timeout,
            console: Arc::new(Mutex::new(std::io::stderr())),
        }
    }

    /// Writes console notifications to `w` instead of stderr.
    pub fn with_console(mut self, w: ConsoleWriter) -> Self {
        self.console = w;
        self
    }
}

/// The Slack payload, in one form (`send` or `display`) of the text.
pub fn slack_payload(text: &str) -> serde_json::Value {
    serde_json::json!({ "text": text })
}

/// The generic webhook payload; `pick` chooses the form of each rendered
/// value (`send` for the wire, `display` for a log).
pub fn webhook_payload(
    call: &Call,
    req: &NotifyRequest,
    pick: fn(&Rendered) -> &str,
) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = req
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(pick(v))))
        .collect();
    let mut payload = serde_json::json!({
        "runbook": call.runbook,
        "run_id": call.run_id,
        "step": call.node,
        "channel": req.channel,
        "text": pick(&req.text),
        "fields": fields,
    });
    if let (Some(item), Some(obj)) = (&call.item, payload.as_object_mut()) {
        obj.insert("item".into(), item.clone().into());
    }
    payload
}

fn json_body(send: serde_json::Value, display: serde_json::Value) -> Option<HttpBody> {
    Some(HttpBody {
        kind: crate::plan::BodyKind::Json,
        text: Rendered {
            send: send.to_string(),
            display: display.to_string(),
        },
    })
}

#[async_trait]
impl NotifyAdapter for RealNotify {
    async fn send(&self, call: &Call, req: &NotifyRequest) -> AdapterResult<NotifyReceipt> {
        let started = Instant::now();
        let timeout = req.timeout.or(self.default_timeout);
        let post = match &req.target {
            NotifyTarget::Console => {
                if call.cancel.is_cancelled() {
                    return Err(AdapterError::cancelled());
                }
                let mut w = self.console.lock().unwrap_or_else(|p| p.into_inner());
                writeln!(w, "[{}] {}", req.channel, req.text.display)
                    .and_then(|()| w.flush())
                    .map_err(|e| {
                        AdapterError::new(
                            ErrorKind::Other,
                            format!("cannot write to the console: {e}"),
                        )
                    })?;
                return Ok(NotifyReceipt {
                    status: None,
                    elapsed: started.elapsed(),
                });
            }
            NotifyTarget::Slack { url } => HttpCall {
                method: "POST".into(),
                url: url.clone(),
                headers: Vec::new(),
                body: json_body(
                    slack_payload(&req.text.send),
                    slack_payload(&req.text.display),
                ),
                timeout,
            },
            NotifyTarget::Webhook { url, headers } => HttpCall {
                method: "POST".into(),
                url: url.clone(),
                headers: headers.clone(),
                body: json_body(
                    webhook_payload(call, req, |r| &r.send),
                    webhook_payload(call, req, |r| &r.display),
                ),
                timeout,
            },
        };
        let client = self.client.get()?;
        let resp = send_with(client, call, &post, timeout)
            .await
            .map_err(|mut e| {
                e.message = format!("notify {}: {}", req.channel, e.message);
                e
            })?;
        Ok(NotifyReceipt {
            status: Some(resp.status),
            elapsed: started.elapsed(),
        })
    }
}
