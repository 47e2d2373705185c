//! `runbook test --html DIR`: the run page's view for drills, as static
//! files. `DIR/index.html` lists every drill (passed or not) and each
//! runbook's coverage with what was never rehearsed; `DIR/RUNBOOK.DRILL.html`
//! shows one drill: its expectations (expected vs observed), the step
//! graph coloured by what happened, and the decision log, as `runbook
//! serve` shows a run. `DIR/style.css` is the page's stylesheet.

use super::page::{document, esc, row, row_html};
use crate::drill::coverage::Coverage;
use crate::drill::expect::Verdict;
use crate::durable::runs::replay;
use crate::events::Event;
use crate::plan::Graph;
use std::fmt::Write;
use std::path::Path;

/// One drill that ran.
pub struct DrillPage<'a> {
    pub name: &'a str,
    pub graph: &'a Graph,
    pub events: &'a [Event],
    pub verdicts: &'a [Verdict],
}

impl DrillPage<'_> {
    fn file(&self) -> String {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        format!("{}.{}.html", safe(&self.graph.runbook), safe(self.name))
    }

    fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.passed)
    }
}

/// Writes the report; returns the index's path.
pub fn write(
    dir: &Path,
    drills: &[DrillPage],
    coverage: &[Coverage],
) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("style.css"), include_str!("static/style.css"))?;
    let mut b = String::from("<h1>Drills</h1><table class=\"runs\"><thead><tr><th>runbook</th><th>drill</th><th>result</th></tr></thead><tbody>");
    for d in drills {
        let (class, word) = if d.passed() {
            ("succeeded", "passed")
        } else {
            ("rolled_back", "failed")
        };
        let _ = write!(
            b,
            r#"<tr class="drill {class}"><td>{rb}</td><td><a href="{f}">{n}</a></td><td><span class="state {class}">{word}</span></td></tr>"#,
            rb = esc(&d.graph.runbook),
            f = esc(&d.file()),
            n = esc(d.name),
        );
        std::fs::write(dir.join(d.file()), drill_page(d))?;
    }
    b.push_str("</tbody></table><h2>Coverage</h2>");
    for c in coverage {
        let _ = write!(
            b,
            r#"<div class="coverage" data-runbook="{rb}"><p><b>{rb}</b>: {n}/{t} ({p:.0}%)</p><ul>"#,
            rb = esc(&c.runbook),
            n = c.covered(),
            t = c.items.len(),
            p = c.percent(),
        );
        for i in &c.items {
            let _ = write!(
                b,
                r#"<li class="{}">{}{}</li>"#,
                if i.covered { "covered" } else { "missing" },
                esc(&i.what),
                if i.covered {
                    ""
                } else {
                    " — never rehearsed"
                }
            );
        }
        b.push_str("</ul></div>");
    }
    let index = dir.join("index.html");
    std::fs::write(&index, document("drills", "style.css", None, &b))?;
    Ok(index)
}

fn drill_page(d: &DrillPage) -> String {
    let state = replay(d.events);
    let mut b = format!(
        r#"<p><a href="index.html">← drills</a></p><h1>Drill <code>{}</code> of {}</h1><h2>Expectations</h2><table class="verdicts"><thead><tr><th>what</th><th>expected</th><th>observed</th><th></th></tr></thead><tbody>"#,
        esc(d.name),
        esc(&d.graph.runbook)
    );
    for v in d.verdicts {
        let _ = write!(
            b,
            r#"<tr class="{c}"><td>{}</td><td>{}</td><td>{}</td><td>{c}</td></tr>"#,
            esc(&v.name),
            esc(&v.expected),
            esc(&v.observed),
            c = if v.passed { "pass" } else { "fail" },
        );
    }
    b.push_str("</tbody></table>");
    let _ = write!(
        b,
        r#"<h2>Steps</h2><div class="graph-box">{}</div><h2>Decision log</h2><table class="log"><thead><tr><th>#</th><th>time</th><th>event</th><th>step</th><th>detail</th></tr></thead><tbody>"#,
        super::svg::render(d.graph, &state, &[])
    );
    for e in d.events {
        if let Ok(v) = serde_json::to_value(e) {
            b.push_str(&row_html(&row(&v)));
        }
    }
    b.push_str("</tbody></table>");
    document(&format!("drill {}", d.name), "style.css", None, &b)
}
