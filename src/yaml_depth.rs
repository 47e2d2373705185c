//! How deeply a YAML text nests, measured before yaml_serde parses it:
//! the parser's time grows with the square of the depth (40,000 nested
//! `[` took 4.3 s), and no scenario, config or inputs file needs more than
//! a few levels.
//!
//! The scan is a conservative reading of YAML's structure, line by line:
//! block nesting is read off the indentation (and `- ` items opened on one
//! line), flow nesting off `[` and `{` opening a value; quoted strings,
//! comments and block scalars (`|`, `>`) are skipped. It may count a level
//! YAML would not, which at [`MAX_DEPTH`] costs nothing; a text it misreads
//! (an odd quote) goes to yaml_serde as before, which will then reject it
//! or parse it.

/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// Where a text first nests deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooDeep {
    /// Byte offset of the bracket, item or key that goes too deep.
    pub offset: usize,
    /// 1-based line and column of `offset`.
    pub line: usize,
    pub column: usize,
}

impl TooDeep {
    pub fn message(&self) -> String {
        format!(
            "nested more than {MAX_DEPTH} levels deep at line {} column {}",
            self.line, self.column
        )
    }

    pub const HELP: &'static str =
        "no scenario, config or inputs file needs this depth: flatten the value";
}

/// `Err` at the first place `text` nests deeper than [`MAX_DEPTH`].
pub fn check(text: &str) -> Result<(), TooDeep> {
    let mut scan = Scan::default();
    let mut offset = 0;
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if let Some(col) = scan.line(line) {
            return Err(TooDeep {
                offset: offset + col,
                line: n + 1,
                column: line[..col].chars().count() + 1,
            });
        }
        offset += line.len();
    }
    Ok(())
}

#[derive(Default)]
struct Scan {
    /// Indentation of each open block node, innermost last.
    blocks: Vec<usize>,
    /// Open `[` and `{`.
    flow: usize,
    /// Inside a quoted string that goes on past the line: its quote.
    quote: Option<char>,
    /// Inside a block scalar: lines indented more than this belong to it.
    scalar_parent: Option<usize>,
}

impl Scan {
    /// Reads one line; `Some(byte column)` where it goes too deep.
    fn line(&mut self, line: &str) -> Option<usize> {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start_matches(' ').len();
        let blank = body.trim().is_empty() || body.trim_start().starts_with('#');
        if let Some(parent) = self.scalar_parent {
            if blank || indent > parent {
                return None;
            }
            self.scalar_parent = None;
        }
        let mut i = 0;
        if self.quote.is_none() && self.flow == 0 {
            if blank {
                return None;
            }
            while self.blocks.last().is_some_and(|&b| b >= indent) {
                self.blocks.pop();
            }
            self.blocks.push(indent);
            i = indent;
            // `- - - x`: each dash opens one more level on this line.
            while body[i..].starts_with("- ") || &body[i..] == "-" {
                i += 2.min(body.len() - i);
                i += body[i..].len() - body[i..].trim_start_matches(' ').len();
                self.blocks.push(i);
                if self.blocks.len() > MAX_DEPTH {
                    return Some(i.min(body.len()));
                }
            }
            if self.blocks.len() > MAX_DEPTH {
                return Some(indent);
            }
        }
        let bytes = body.as_bytes();
        // Whether the next character starts a value (a flow bracket or a
        // quote opens only there; `a[b` is a plain word).
        let mut at_start = i == indent || self.flow > 0;
        while i < bytes.len() {
            let c = bytes[i] as char;
            if let Some(q) = self.quote {
                if q == '"' && c == '\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == '\'' && bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                }
                i += 1;
                continue;
            }
            match c {
                '#' if i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' => break,
                '"' | '\'' if at_start => self.quote = Some(c),
                '[' | '{' if at_start || self.flow > 0 => {
                    self.flow += 1;
                    if self.blocks.len() + self.flow > MAX_DEPTH {
                        return Some(i);
                    }
                }
                ']' | '}' if self.flow > 0 => self.flow -= 1,
                '|' | '>' if at_start && self.flow == 0 => {
                    // A block scalar: what follows, indented, is text.
                    let rest = body[i + 1..]
                        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
                    let rest = rest.trim_start();
                    if rest.is_empty() || rest.starts_with('#') {
                        self.scalar_parent = Some(indent);
                        return None;
                    }
                }
                _ => {}
            }
            at_start = matches!(c, ' ' | '\t') || (self.flow > 0 && matches!(c, '[' | '{' | ','));
            i += 1;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usual_files_pass() {
        for text in [
            "",
            "runbook: a.runbook\nname: x\ninputs:\n  regions: [eu, us]\n",
            "a:\n  b:\n    - c: {d: [1, 2, {e: f}]}\n    - 'it''s [not'\n",
            "stdout: |\n  [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nnext: 1\n",
            "msg: a[b[c[d # [[[[\n",
        ] {
            assert_eq!(check(text), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn deep_flow_and_block_nesting_are_refused() {
        let flow = format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100));
        let e = check(&flow).unwrap_err();
        assert_eq!((e.line, e.column), (1, 4 + MAX_DEPTH - 1));
        assert_eq!(&flow[e.offset..e.offset + 1], "[");

        let mut block = String::new();
        for d in 0..100 {
            block.push_str(&" ".repeat(d));
            block.push_str("k:\n");
        }
        let e = check(&block).unwrap_err();
        assert_eq!(e.line, MAX_DEPTH + 1);

        let dashes = format!("x:\n{}1\n", "- ".repeat(100));
        assert!(check(&dashes).is_err());
        // Within the limit: accepted.
        let ok = format!("a: {}1{}\n", "[".repeat(60), "]".repeat(60));
        assert_eq!(check(&ok), Ok(()));
    }

    #[test]
    fn forty_thousand_levels_are_refused_at_once() {
        let text = "[".repeat(40_000);
        let start = std::time::Instant::now();
        assert!(check(&text).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
