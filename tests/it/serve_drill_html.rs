//! `runbook test --html DIR`: the run page's view for drills, with coverage.

use crate::support::{run_cli, temp_dir};
use std::path::{Path, PathBuf};

/// `runbook test runbooks/ --html DIR/report`, which must pass: the report.
pub fn drill_report(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let html = dir.join("report");
    let o = run_cli(
        [
            "test".as_ref(),
            root.join("runbooks").as_os_str(),
            "--html".as_ref(),
            html.as_os_str(),
        ],
        root,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    html
}

#[test]
fn html_report_shows_each_drill_graph_and_coverage() {
    let out = temp_dir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let html = drill_report(out.path());
    let index = std::fs::read_to_string(html.join("index.html")).unwrap();
    // Every drill is listed and linked, and every runbook's coverage shown.
    let drills = std::fs::read_dir(root.join("runbooks"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".drill.yaml")
        })
        .count();
    assert_eq!(
        index.matches("<tr class=\"drill succeeded\"").count(),
        drills
    );
    assert!(index.contains(r#"data-runbook="api_config_rollback""#));
    assert!(index.contains("(100%)"), "{index}");
    // The drill where one region's drain fails: that step failed, its undo
    // ran, the later step never started; expectations with what was seen.
    let page = std::fs::read_to_string(
        html.join("api_config_rollback.drain_fails_in_one_region__rollback_in_reverse_order.html"),
    )
    .unwrap();
    assert!(
        page.contains(r#"<g class="node failed" data-node="drain_canaries""#),
        "{page}"
    );
    assert!(
        page.contains(r#"<g class="undo undone" data-undo="drain_canaries""#),
        "{page}"
    );
    assert!(
        page.contains(r#"<g class="node pending" data-node="unfreeze""#),
        "{page}"
    );
    assert!(
        page.contains("<td>includes drain_canaries</td><td>drain_canaries</td><td>pass</td>"),
        "{page}"
    );
    assert!(page.contains("condition_evaluated"), "{page}");
    assert!(html.join("style.css").is_file());
}
