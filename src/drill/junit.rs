//! JUnit XML for CI systems: one test suite, one test case per drill.

use std::fmt::Write;

pub struct Case {
    pub suite: String,
    pub name: String,
    pub seconds: f64,
    /// `None`: passed. `Some(text)`: the failure report.
    pub failure: Option<String>,
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

pub fn render(cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let total: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(s, "<testsuites name=\"runbook drills\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">", cases.len());
    let _ = writeln!(
        s,
        "  <testsuite name=\"drills\" tests=\"{}\" failures=\"{failures}\" time=\"{total:.3}\">",
        cases.len()
    );
    for c in cases {
        let _ = write!(
            s,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            esc(&c.suite),
            esc(&c.name),
            c.seconds
        );
        match &c.failure {
            None => s.push_str("/>\n"),
            Some(f) => {
                let first = f.lines().next().unwrap_or("drill failed");
                let _ = writeln!(
                    s,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    esc(first),
                    esc(f)
                );
            }
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_counts_failures() {
        let xml = render(&[
            Case {
                suite: "rb".into(),
                name: "happy <path>".into(),
                seconds: 0.001,
                failure: None,
            },
            Case {
                suite: "rb".into(),
                name: "broken".into(),
                seconds: 0.002,
                failure: Some("outcome: expected \"x\" & got y".into()),
            },
        ]);
        assert!(xml.contains("tests=\"2\" failures=\"1\""));
        assert!(xml.contains("happy &lt;path&gt;"));
        assert!(xml.contains("expected &quot;x&quot; &amp; got y"));
    }
}
