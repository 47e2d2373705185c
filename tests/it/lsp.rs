//! `runbook lsp`: the real binary driven over stdio with JSON-RPC, as an
//! editor does: initialize, open an invalid runbook (diagnostics at the
//! right UTF-16 ranges), fix it, hover, definition, references,
//! completion, symbols, formatting, rename, shutdown and exit.

#[path = "support/lsp_client.rs"]
mod lsp_client;

use lsp_client::{Client, URI};
use serde_json::{json, Value};

/// Every line is formatted already, except the `input` line's spacing.
const FIXED: &str = r#"runbook demo {
  input service: string = "api"
  channel ops = console

  check healthy {
    shell "true"
    expect exit == 0
  }

  step announce {
    notify ops "𝄞 {{service}}"
  }

  step restart {
    when healthy and "𝄞" == service
    run "systemctl restart {{service}}"
    timeout 30s
  }
}
"#;

/// The LSP position (line, UTF-16 column) of the `nth` occurrence of
/// `needle` in `text`, computed independently of the server.
fn position_of(text: &str, needle: &str, nth: usize) -> Value {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .map(|(i, _)| i)
        .expect("needle present");
    let line = text[..at].matches('\n').count();
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({"line": line, "character": text[line_start..at].encode_utf16().count()})
}

fn range_of(text: &str, needle: &str, nth: usize) -> Value {
    let start = position_of(text, needle, nth);
    let end = json!({
        "line": start["line"],
        "character": start["character"].as_u64().expect("n") + needle.encode_utf16().count() as u64,
    });
    json!({"start": start, "end": end})
}

fn at(text: &str, needle: &str, nth: usize) -> Value {
    json!({"textDocument": {"uri": URI}, "position": position_of(text, needle, nth)})
}

#[test]
fn an_editor_session_over_stdio() {
    let mut client = Client::start(env!("CARGO_BIN_EXE_runbook"));
    let init = client.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    let caps = &init["capabilities"];
    for cap in [
        "hoverProvider",
        "definitionProvider",
        "referencesProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
        "renameProvider",
    ] {
        assert_eq!(caps[cap], true, "{cap} in {caps}");
    }
    client.notify("initialized", json!({}));

    // A misspelt name after a character that is two UTF-16 units.
    let broken = FIXED
        .replace("== service", "== servce")
        .replace("input service: string", "input service:   string");
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "runbook", "version": 1, "text": broken}}),
    );
    // The error, and a warning: `restart` changes something without undo.
    let diags = client.diagnostics();
    assert_eq!(diags.len(), 2, "{diags:?}");
    let warning = diags[1].clone();
    assert_eq!(warning["severity"], 2);
    assert_eq!(warning["code"], "runbook::write_without_undo");
    assert_eq!(
        warning["range"]["start"],
        position_of(&broken, "run \"systemctl", 0)
    );
    let d = &diags[0];
    assert_eq!(d["range"], range_of(&broken, "servce", 0), "{d}");
    assert_eq!(d["severity"], 1);
    assert_eq!(d["code"], "runbook::unknown_name", "{d}");
    assert!(
        d["message"].as_str().expect("text").contains("service"),
        "did-you-mean in the help: {d}"
    );

    let text = FIXED.replace("input service: string", "input service:   string");
    client.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    let diags = client.diagnostics();
    assert_eq!(diags, vec![warning], "only the warning is left");

    // Hover: an input's type and default, a check's probe, a step's policy.
    let hover = client.request("textDocument/hover", at(&text, "service}}", 1));
    let shown = hover["contents"]["value"].as_str().expect("markdown");
    assert!(shown.contains("input service: string = \"api\""), "{shown}");
    let hover = client.request("textDocument/hover", at(&text, "healthy", 1));
    let shown = hover["contents"]["value"].as_str().expect("markdown");
    assert!(shown.contains("shell \"true\""), "{shown}");
    let hover = client.request("textDocument/hover", at(&text, "restart {", 0));
    let shown = hover["contents"]["value"].as_str().expect("markdown");
    assert!(
        shown.contains("timeout 30s") && shown.contains("when healthy"),
        "{shown}"
    );

    // Definition and references of the input, used in a placeholder, a
    // condition and a command.
    let def = client.request("textDocument/definition", at(&text, "service", 2));
    assert_eq!(def["uri"], URI);
    assert_eq!(def["range"], range_of(&text, "service", 0));
    let mut params = at(&text, "service", 0);
    params["context"] = json!({"includeDeclaration": true});
    let refs = client.request("textDocument/references", params);
    let ranges: Vec<Value> = refs
        .as_array()
        .expect("locations")
        .iter()
        .map(|l| l["range"].clone())
        .collect();
    let expected: Vec<Value> = (0..4).map(|n| range_of(&text, "service", n)).collect();
    assert_eq!(ranges, expected);
    let refs = client.request(
        "textDocument/references",
        json!({"textDocument": {"uri": URI}, "position": position_of(&text, "ops", 1), "context": {"includeDeclaration": false}}),
    );
    assert_eq!(refs.as_array().map(Vec::len), Some(1), "{refs}");

    let completion = client.request("textDocument/completion", at(&text, "service", 2));
    let labels: Vec<&str> = completion
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    for wanted in ["service", "healthy", "ops", "restart", "timeout", "verify"] {
        assert!(labels.contains(&wanted), "{wanted} in {labels:?}");
    }

    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": URI}}),
    );
    let names: Vec<&str> = symbols
        .as_array()
        .expect("symbols")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["service", "ops", "healthy", "announce", "restart"]);

    let edits = client.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": URI}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let edits = edits.as_array().expect("edits");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["newText"], FIXED);
    assert_eq!(
        edits[0]["range"]["start"],
        json!({"line": 0, "character": 0})
    );

    let rename = client.request(
        "textDocument/rename",
        json!({"textDocument": {"uri": URI}, "position": position_of(&text, "service", 3), "newName": "svc"}),
    );
    let mut edited: Vec<Value> = rename["changes"][URI]
        .as_array()
        .expect("edits")
        .iter()
        .inspect(|e| assert_eq!(e["newText"], "svc"))
        .map(|e| e["range"].clone())
        .collect();
    edited.sort_by_key(|r| {
        (
            r["start"]["line"].as_u64(),
            r["start"]["character"].as_u64(),
        )
    });
    assert_eq!(edited, expected);

    let unknown = client.request_raw(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": URI}}),
    );
    assert_eq!(
        unknown["error"]["code"], -32601,
        "method not found: {unknown}"
    );

    assert_eq!(client.request("shutdown", Value::Null), Value::Null);
    client.notify("exit", Value::Null);
    let status = client.child.wait().expect("exits");
    assert_eq!(status.code(), Some(0));
}
