//! The real PromQL adapter: an instant query against Prometheus' HTTP API.
//!
//! `POST {base}/api/v1/query` with the form body `query=<percent-encoded>`
//! (a form, not a URL parameter: a query holding a long value would pass
//! the length a URL may have) and the answer
//! `{"status":"success","data":{"resultType":...,"result":...}}` turned
//! into a [`PromqlResult`] as it is: the executor decides what a vector of
//! 0 or several samples means. Sample values are strings in the API
//! (`"0.25"`, `"NaN"`, `"+Inf"`, `"-Inf"`) and are parsed into `f64`.
//!
//! * `status: "error"` (bad query, execution error, timeout in Prometheus)
//!   is [`ErrorKind::BadResponse`] with Prometheus' `errorType` and `error`.
//! * An answer that is not the API's JSON is `BadResponse` too.
//! * No base URL, neither in the request nor in [`RealPromql::default_base`]:
//!   [`ErrorKind::Unreachable`], telling the user to set `prometheus.url`.
//! * A base URL's user and password (`http://user:pass@host`) are never
//!   shown in a message.

use super::http::{guarded, map_reqwest_error, redact, LazyClient};
use super::*;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use tokio::time::Instant;

/// Largest answer read from Prometheus (a query selecting many series is
/// an error for the executor anyway).
pub const MAX_ANSWER: usize = 32 * 1024 * 1024;

/// RFC 3986 unreserved characters stay, everything else is `%XX`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The message when no Prometheus is configured.
pub const NO_PROMETHEUS: &str =
    "no Prometheus URL configured: set `prometheus.url` in runbook.yaml \
     (e.g. `prometheus: {url: \"http://prometheus:9090\"}`)";

/// Queries Prometheus for real.
#[derive(Debug, Clone, Default)]
pub struct RealPromql {
    pub client: LazyClient,
    /// Base URL when the request has none (config `prometheus.url`).
    pub default_base: Option<String>,
    /// Timeout when the request has none.
    pub default_timeout: Option<Duration>,
}

impl RealPromql {
    pub fn new(default_base: Option<String>, default_timeout: Option<Duration>) -> Self {
        RealPromql {
            client: LazyClient::default(),
            default_base,
            default_timeout,
        }
    }
}

/// The base URL as it may be shown: without user, password, query or
/// fragment.
pub fn shown_base(base: &str) -> String {
    match reqwest::Url::parse(base) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => "(invalid URL)".to_string(),
    }
}

/// `{base}/api/v1/query`.
pub fn query_url(base: &str) -> String {
    format!("{}/api/v1/query", base.trim_end_matches('/'))
}

/// The form body asking `query`: `query=...`.
pub fn query_form(query: &str) -> String {
    format!("query={}", utf8_percent_encode(query, QUERY_VALUE))
}

/// Parses a sample value as Prometheus writes it.
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn bad(message: impl Into<String>) -> AdapterError {
    AdapterError::new(ErrorKind::BadResponse, message)
}

/// `[<unix time>, "<value>"]` -> the value.
fn sample_value(v: &Value) -> Result<f64, String> {
    let text = v.get(1).and_then(Value::as_str).ok_or_else(|| {
        format!(
            "a sample is not [time, \"value\"]: {}",
            clip(&v.to_string())
        )
    })?;
    parse_value(text).ok_or_else(|| format!("bad sample value {text:?}"))
}

fn clip(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Turns the API's JSON answer into a result. `Err` is a description of
/// what is wrong with it (without the query).
pub fn parse_answer(body: &Value) -> Result<PromqlResult, String> {
    match body.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            let kind = body
                .get("errorType")
                .and_then(Value::as_str)
                .unwrap_or("error");
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            return Err(format!("Prometheus answered {kind}: {error}"));
        }
        _ => {
            return Err(format!(
                "not a Prometheus API answer (no \"status\"): {}",
                clip(&body.to_string())
            ))
        }
    }
    let data = body
        .get("data")
        .ok_or("a successful answer without \"data\"")?;
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .ok_or("an answer without \"data.resultType\"")?;
    let result = data.get("result").unwrap_or(&Value::Null);
    match result_type {
        "scalar" => Ok(PromqlResult::Scalar {
            value: sample_value(result)?,
        }),
        "vector" => {
            let items = result
                .as_array()
                .ok_or("a vector result that is not an array")?;
            let mut samples = Vec::with_capacity(items.len());
            for item in items {
                let labels = item
                    .get("metric")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                                (k.clone(), v)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let value =
                    match item.get("value") {
                        Some(v) => sample_value(v)?,
                        None if item.get("histogram").is_some() => return Err(
                            "a native histogram sample: query a number (e.g. histogram_quantile)"
                                .into(),
                        ),
                        None => {
                            return Err(format!(
                                "a vector sample without a value: {}",
                                clip(&item.to_string())
                            ))
                        }
                    };
                samples.push(PromSample { labels, value });
            }
            Ok(PromqlResult::Vector { samples })
        }
        other => Ok(PromqlResult::Other {
            result_type: other.to_string(),
        }),
    }
}

#[async_trait]
impl PromqlAdapter for RealPromql {
    async fn query(&self, call: &Call, req: &PromqlQuery) -> AdapterResult<PromqlAnswer> {
        let Some(base) = req
            .base_url
            .as_deref()
            .or(self.default_base.as_deref())
            .filter(|b| !b.trim().is_empty())
        else {
            return Err(AdapterError::new(ErrorKind::Unreachable, NO_PROMETHEUS));
        };
        let shown = shown_base(base);
        let url = reqwest::Url::parse(&query_url(base)).map_err(|e| {
            AdapterError::new(
                ErrorKind::Other,
                format!("invalid Prometheus URL {shown:?} (`prometheus.url` in runbook.yaml): {e}"),
            )
        })?;
        let client = self.client.get()?;
        let what = format!("Prometheus at {shown}");
        let timeout = req.timeout.or(self.default_timeout);
        let answer = guarded(call, timeout, async {
            let started = Instant::now();
            let mut resp = client
                .post(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(query_form(&req.query.send))
                .send()
                .await
                .map_err(|e| map_reqwest_error(e, &what))?;
            let status = resp.status().as_u16();
            let (body, truncated) = super::http::read_head(&mut resp, MAX_ANSWER, &what).await?;
            let elapsed = started.elapsed();
            if truncated {
                return Err(bad(format!(
                    "{what}: the answer to {:?} is larger than {} MiB",
                    req.query.display,
                    MAX_ANSWER >> 20
                )));
            }
            let json: Value = serde_json::from_slice(&body).map_err(|e| {
                bad(format!(
                    "{what} answered HTTP {status} with something that is not JSON ({e}): {:?}",
                    clip(&String::from_utf8_lossy(&body))
                ))
            })?;
            let result = parse_answer(&json).map_err(|e| {
                bad(format!(
                    "{what}: query {:?} (HTTP {status}): {e}",
                    req.query.display
                ))
            })?;
            Ok(PromqlAnswer { result, elapsed })
        })
        .await;
        answer.map_err(|mut e| {
            e.message = redact(&e.message, [&req.query]);
            e
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_the_query() {
        assert_eq!(query_url("http://p:9090/"), "http://p:9090/api/v1/query");
        assert_eq!(
            query_form("rate(x{a=\"b c\"}[1m]) + 1"),
            "query=rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29%20%2B%201"
        );
    }

    #[test]
    fn hides_credentials_of_the_base() {
        assert_eq!(
            shown_base("http://u:p@prom:9090/sub/?x=1"),
            "http://prom:9090/sub"
        );
    }

    #[test]
    fn parses_special_values() {
        assert!(parse_value("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("0.25"), Some(0.25));
        assert_eq!(parse_value("1e3"), Some(1000.0));
        assert_eq!(parse_value("x"), None);
    }

    #[test]
    fn parses_answers() {
        let v = json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1.5,"1"]},
            {"metric":{},"value":[1.5,"+Inf"]}]}});
        let PromqlResult::Vector { samples } = parse_answer(&v).expect("vector") else {
            panic!("not a vector")
        };
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].labels["job"], "a");
        assert_eq!(samples[1].value, f64::INFINITY);

        let v = json!({"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}});
        assert!(matches!(parse_answer(&v), Ok(PromqlResult::Scalar { value }) if value.is_nan()));
        let v = json!({"status":"success","data":{"resultType":"matrix","result":[]}});
        assert_eq!(
            parse_answer(&v),
            Ok(PromqlResult::Other {
                result_type: "matrix".into()
            })
        );
        let v = json!({"status":"error","errorType":"bad_data","error":"parse error"});
        assert_eq!(
            parse_answer(&v),
            Err("Prometheus answered bad_data: parse error".into())
        );
        assert!(parse_answer(&json!({"a":1})).is_err());
        let v = json!({"status":"success","data":{"resultType":"scalar","result":[1.5, 2]}});
        assert!(parse_answer(&v).is_err());
    }
}
