//! JSON bodies: inside a string a value is escaped for the string; outside
//! strings it must be a JSON number, `true`, `false` or `null` (written as
//! it is). The body is parsed once written: an invalid body is an error,
//! never a request.

use super::{Piece, Refusal, Slot};

pub(super) fn slots(pieces: &[Piece]) -> Vec<Result<Slot, Refusal>> {
    let mut out = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for piece in pieces {
        match piece {
            Piece::Value(_) => {
                out.push(Ok(if in_string {
                    Slot::JsonString
                } else {
                    Slot::JsonScalar
                }));
                escaped = false;
            }
            Piece::Text(t) => {
                for c in t.chars() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' if in_string => escaped = true,
                        '"' => in_string = !in_string,
                        _ => {}
                    }
                }
            }
        }
    }
    out
}

/// The inside of a JSON string holding `v`.
pub(super) fn escape_string(v: &str) -> String {
    let quoted = serde_json::Value::String(v.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .map(str::to_owned)
        .unwrap_or(quoted)
}

pub(super) fn write_scalar(v: &str) -> Result<String, String> {
    match serde_json::from_str::<serde_json::Value>(v) {
        Ok(serde_json::Value::Number(_) | serde_json::Value::Bool(_) | serde_json::Value::Null) => {
            Ok(v.trim().to_owned())
        }
        _ => Err("a value outside the JSON body's strings must be a number, true, false or null; put text inside a JSON string: \"{{x}}\"".into()),
    }
}

pub(super) fn validate(written: &str) -> Result<(), String> {
    serde_json::from_str::<serde::de::IgnoredAny>(written)
        .map(drop)
        .map_err(|e| format!("the JSON body is not valid JSON once its values are in ({e})"))
}

#[cfg(test)]
mod tests {
    use super::super::{assemble, Piece};
    use crate::plan::Escape;

    #[test]
    fn strings_and_scalars() {
        let body = |v| {
            assemble(
                Escape::Json,
                &[
                    Piece::Text("{\"a\": \"x\\\""),
                    Piece::Value(v),
                    Piece::Text("\", \"n\": "),
                    Piece::Value(v),
                    Piece::Text("}"),
                ],
            )
        };
        assert_eq!(body("12").unwrap(), "{\"a\": \"x\\\"12\", \"n\": 12}");
        assert!(body("abc").is_err());
        assert!(body("1, \"admin\": true").is_err());
        assert_eq!(
            assemble(
                Escape::Json,
                &[
                    Piece::Text("{\"a\": \""),
                    Piece::Value("q\"\n"),
                    Piece::Text("\"}")
                ]
            )
            .unwrap(),
            "{\"a\": \"q\\\"\\n\"}"
        );
        assert!(assemble(
            Escape::Json,
            &[Piece::Text("{\"a\": "), Piece::Value("1"), Piece::Text("")]
        )
        .is_err());
    }
}
