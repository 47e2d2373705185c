//! The library's modules import one way: down the layers listed in
//! `docs/architecture.md` (the fenced block marked `layers`, highest
//! first). A module may use modules of its own layer and of every layer
//! below; an import of a higher layer fails this test with the file and
//! line, and a module missing from the list fails it too, so a new module
//! has to be placed before it can land.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One import of another top-level module: `crate::NAME` in code.
#[derive(Debug, PartialEq)]
struct Import {
    module: String,
    line: usize,
}

/// The layers, highest first, from the `layers` block of the architecture
/// document: each line names the modules of one layer.
fn layers_from_doc(doc: &str) -> Vec<Vec<String>> {
    let mut layers = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        let trimmed = line.trim();
        if !inside {
            inside = trimmed == "```layers";
            continue;
        }
        if trimmed == "```" {
            break;
        }
        let names = trimmed.split('#').next().unwrap_or("");
        let layer: Vec<String> = names.split_whitespace().map(str::to_owned).collect();
        if !layer.is_empty() {
            layers.push(layer);
        }
    }
    layers
}

/// The source with comments and the contents of string and character
/// literals blanked out (newlines kept, so line numbers stay right): a
/// path in a doc comment or a message is not an import.
fn code_only(src: &str) -> String {
    let bytes = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let blank = |out: &mut String, b: u8| out.push(if b == b'\n' { '\n' } else { ' ' });
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0usize;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, bytes[i]);
                    i += 1;
                }
            }
        } else if let Some(len) = raw_string_len(rest) {
            rest[..len].iter().for_each(|b| blank(&mut out, *b));
            i += len;
        } else if bytes[i] == b'"' {
            out.push('"');
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                if bytes[i] == b'\\' && i + 1 < bytes.len() {
                    blank(&mut out, bytes[i]);
                    i += 1;
                }
                blank(&mut out, bytes[i]);
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if let Some(len) = char_literal_len(rest) {
            rest[..len].iter().for_each(|b| blank(&mut out, *b));
            i += len;
        } else {
            // Copy one whole character (identifiers may be non-ASCII).
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The length of a raw string literal (`r"..."`, `r#"..."#`, `br"..."`)
/// starting at `s`, if one does.
fn raw_string_len(s: &[u8]) -> Option<usize> {
    let start = if s.starts_with(b"br") {
        2
    } else if s.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = s[start..].iter().take_while(|b| **b == b'#').count();
    if s.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = start + hashes + 1;
    s[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map(|p| body + p + close.len())
}

/// The length of a character literal (`'"'`, `'\''`, `'\u{0}'`) at `s`,
/// telling it apart from a lifetime (`'a`).
fn char_literal_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'\'') {
        return None;
    }
    if s.get(1) == Some(&b'\\') {
        return s[2..].iter().position(|b| *b == b'\'').map(|p| p + 3);
    }
    let text = std::str::from_utf8(&s[1..s.len().min(6)]).unwrap_or("");
    let ch = text.chars().next()?;
    (s.get(1 + ch.len_utf8()) == Some(&b'\'')).then_some(2 + ch.len_utf8())
}

/// Every `crate::NAME` in the code, including each name of a
/// `use crate::{a, b::c}` group.
fn imports(src: &str) -> Vec<Import> {
    let code = code_only(src);
    let mut found = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    for (at, _) in code.match_indices("crate::") {
        // `foo_crate::x` is another path.
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1usize;
            let mut expect_name = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_name = true,
                    c if expect_name && (c.is_alphabetic() || c == '_') => {
                        expect_name = false;
                        let name: String = group[k..]
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        found.push(Import {
                            module: name,
                            line: line_of(at + "crate::{".len() + k),
                        });
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(Import {
                    module: name,
                    line: line_of(at),
                });
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/exec/mod.rs` -> `exec`),
/// or `None` for the crate root and the binary.
fn module_of(src_dir: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src_dir).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// Every import that goes up the layers, and every module the layers do
/// not list, as messages.
fn violations(layers: &[Vec<String>], files: &[(String, String, String)]) -> Vec<String> {
    // Rank 0 is the highest layer.
    let rank: HashMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let mut problems = Vec::new();
    for (module, path, src) in files {
        let Some(&mine) = rank.get(module.as_str()) else {
            problems.push(format!(
                "{path}: module `{module}` is not in the `layers` block of docs/architecture.md: \
                 add it to the layer it belongs to"
            ));
            continue;
        };
        for import in imports(src) {
            if import.module == *module {
                continue;
            }
            match rank.get(import.module.as_str()) {
                Some(&theirs) if theirs < mine => problems.push(format!(
                    "{path}:{}: `{module}` imports `crate::{}`, a higher layer (see the `layers` \
                     block of docs/architecture.md): move the shared part down, or pass it in",
                    import.line, import.module
                )),
                _ => {}
            }
        }
    }
    problems
}

#[test]
fn imports_run_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("architecture doc");
    let layers = layers_from_doc(&doc);
    assert!(
        layers.len() >= 5,
        "docs/architecture.md has no `layers` block (or too few layers): {layers:?}"
    );
    let src_dir = root.join("src");
    let mut paths = Vec::new();
    rust_files(&src_dir, &mut paths);
    let files: Vec<(String, String, String)> = paths
        .iter()
        .filter_map(|p| {
            let module = module_of(&src_dir, p)?;
            let text = std::fs::read_to_string(p).expect("source file");
            let shown = p.strip_prefix(root).unwrap_or(p).display().to_string();
            Some((module, shown, text))
        })
        .collect();
    let problems = violations(&layers, &files);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_upward_import_is_reported_with_its_line() {
    let layers = vec![vec!["exec".to_owned()], vec!["events".to_owned()]];
    let src = "//! see crate::exec for the executor\n\
               use crate::{span::Span, exec::redact::Redactor};\n\
               fn f() { let _ = \"crate::exec\"; crate::exec::run(); }\n";
    let files = vec![(
        "events".to_owned(),
        "src/events.rs".to_owned(),
        src.to_owned(),
    )];
    let problems = violations(&layers, &files);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("src/events.rs:2: `events` imports `crate::exec`"));
    assert!(problems[1].starts_with("src/events.rs:3: "));
}

#[test]
fn a_downward_import_and_comments_are_fine_and_unknown_modules_are_reported() {
    let layers = vec![vec!["exec".to_owned()], vec!["events".to_owned()]];
    let down = "use crate::events::Event; /* crate::exec */ const C: char = '\"'; // crate::exec\n";
    let files = vec![
        (
            "exec".to_owned(),
            "src/exec/mod.rs".to_owned(),
            down.to_owned(),
        ),
        (
            "newthing".to_owned(),
            "src/newthing.rs".to_owned(),
            String::new(),
        ),
    ];
    let problems = violations(&layers, &files);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("`newthing` is not in the `layers` block"));
}
