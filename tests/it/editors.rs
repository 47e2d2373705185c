//! The VS Code extension's TextMate grammar stays in step with the
//! language: every keyword of `grammar/runbook.pest` is highlighted.

use std::path::Path;

#[test]
fn the_textmate_grammar_knows_every_keyword() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pest = std::fs::read_to_string(root.join("grammar/runbook.pest")).expect("grammar");
    let tm = std::fs::read_to_string(root.join("editors/vscode/syntaxes/runbook.tmLanguage.json"))
        .expect("TextMate grammar");
    let tm: serde_json::Value = serde_json::from_str(&tm).expect("valid JSON");
    let repo = &tm["repository"];
    let patterns = [
        &repo["keyword"]["match"],
        &repo["declaration"]["match"],
        &repo["type"]["match"],
    ];
    let highlighted: Vec<&str> = patterns
        .iter()
        .filter_map(|p| p.as_str())
        .flat_map(|p| p.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    let keywords: Vec<&str> = pest
        .lines()
        .filter(|l| l.starts_with("kw_"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(keywords.len() > 50, "{} keywords", keywords.len());
    let missing: Vec<&&str> = keywords
        .iter()
        .filter(|k| !highlighted.contains(k))
        .collect();
    assert!(missing.is_empty(), "not highlighted: {missing:?}");
    let package =
        std::fs::read_to_string(root.join("editors/vscode/package.json")).expect("package.json");
    let package: serde_json::Value = serde_json::from_str(&package).expect("valid JSON");
    assert_eq!(
        package["contributes"]["grammars"][0]["path"],
        "./syntaxes/runbook.tmLanguage.json"
    );
}
