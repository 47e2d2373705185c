//! PromQL queries: inside a string literal (`"..."` or `'...'`) a value is
//! escaped for the string (backslash, the quote, control characters), and
//! after `=~`/`!~` also for the regular expression, so it matches itself
//! only. Elsewhere a value must be a number. Raw strings (`` `...` ``) and
//! comments cannot hold a value.

use super::{Piece, Refusal, Slot};

const IN_RAW_STRING: (&str, &str) = (
    "in a PromQL raw string (`` `...` ``)",
    "nothing can be escaped in a raw string; use a double-quoted string: label=\"{{x}}\"",
);
const IN_COMMENT: (&str, &str) = (
    "in a PromQL comment",
    "a newline in the value would end the comment; take the placeholder out of the comment",
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Str {
        quote: char,
        regex: bool,
        escaped: bool,
    },
    Raw,
    Comment,
}

pub(super) fn slots(pieces: &[Piece]) -> Vec<Result<Slot, Refusal>> {
    let mut out = Vec::new();
    let mut state = State::Code;
    // The last two characters of code that are not blanks: `=~` or `!~`
    // before a string makes it a regular expression.
    let mut last = ['\0'; 2];
    for piece in pieces {
        match piece {
            Piece::Value(_) => {
                let value = out.len();
                out.push(match state {
                    State::Code => Ok(Slot::PromqlNumber),
                    State::Str { quote, regex, .. } => Ok(Slot::PromqlString { quote, regex }),
                    State::Raw => Err(Refusal::at(value, IN_RAW_STRING)),
                    State::Comment => Err(Refusal::at(value, IN_COMMENT)),
                });
                if state == State::Code {
                    last = ['0', '0'];
                }
            }
            Piece::Text(t) => {
                for c in t.chars() {
                    state = match (state, c) {
                        (State::Code, '"' | '\'') => State::Str {
                            quote: c,
                            regex: matches!(last, ['=' | '!', '~']),
                            escaped: false,
                        },
                        (State::Code, '`') => State::Raw,
                        (State::Code, '#') => State::Comment,
                        (State::Code, c) => {
                            if !c.is_whitespace() {
                                last = [last[1], c];
                            }
                            State::Code
                        }
                        (
                            State::Str {
                                quote,
                                regex,
                                escaped,
                            },
                            c,
                        ) => {
                            if escaped {
                                State::Str {
                                    quote,
                                    regex,
                                    escaped: false,
                                }
                            } else if c == '\\' {
                                State::Str {
                                    quote,
                                    regex,
                                    escaped: true,
                                }
                            } else if c == quote {
                                last = [quote, quote];
                                State::Code
                            } else {
                                State::Str {
                                    quote,
                                    regex,
                                    escaped: false,
                                }
                            }
                        }
                        (State::Raw, '`') => {
                            last = ['`', '`'];
                            State::Code
                        }
                        (State::Comment, '\n') => State::Code,
                        (s, _) => s,
                    };
                }
            }
        }
    }
    out
}

/// The inside of a PromQL string quoted with `quote` that reads as `v`
/// (or, for a regular expression, that matches exactly `v`).
pub(super) fn escape_string(v: &str, quote: char, regex: bool) -> String {
    let v = if regex {
        regex::escape(v)
    } else {
        v.to_owned()
    };
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A number outside strings: digits, sign, point and exponent only (no
/// `Inf`, `NaN`, hexadecimal or durations), finite.
pub(super) fn write_number(v: &str) -> Result<String, String> {
    let v = v.trim();
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && v.parse::<f64>().is_ok_and(f64::is_finite);
    if ok {
        Ok(v.to_owned())
    } else {
        Err("a value outside the strings of a PromQL query must be a number; put text in a label matcher's string: {job=\"{{x}}\"}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{assemble, interleave};
    use crate::plan::Escape;

    fn q(parts: &[&str], values: &[&str]) -> Result<String, String> {
        assemble(Escape::Promql, &interleave(parts, values))
    }

    #[test]
    fn strings_regexes_and_numbers() {
        let attack = "api\"}) or vector(1) or sum(up{job=\"x";
        assert_eq!(
            q(&["up{job=\"", "\"}"], &[attack]).unwrap(),
            "up{job=\"api\\\"}) or vector(1) or sum(up{job=\\\"x\"}"
        );
        assert_eq!(
            q(&["up{job='", "'}"], &["a'b\\"]).unwrap(),
            "up{job='a\\'b\\\\'}"
        );
        assert_eq!(
            q(&["up{i=~\"", ":.*\"}"], &["a.b"]).unwrap(),
            "up{i=~\"a\\\\.b:.*\"}"
        );
        assert_eq!(q(&["up > ", ""], &["1.5e3"]).unwrap(), "up > 1.5e3");
        for bad in ["1 or vector(1)", "Inf", "NaN", "0x10", "", "5m"] {
            assert!(q(&["up > ", ""], &[bad]).is_err(), "{bad}");
        }
        assert!(q(&["up{job=`", "`}"], &["a"]).is_err());
        assert!(q(&["up # ", "\n"], &["a"]).is_err());
    }
}
