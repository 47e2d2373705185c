//! A POSIX shell word lexer, enough to know the quoting around each value
//! of a command: unquoted, `"..."`, `'...'`, `$'...'`, and the places where
//! no quoting keeps a value literal (comments, here-document bodies,
//! backticks, `${...}`, `$((...))`, right after a backslash).
//!
//! `$(...)` is followed: inside it a value is in a fresh command, unquoted
//! or quoted as written there, even when the `$(...)` is itself inside
//! `"..."`. Known limit: a `case` pattern's `)` inside `$(...)` is taken
//! for the end of the substitution.

use super::{Piece, Refusal, Slot};

/// The quoting around a value in a shell command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellQuote {
    /// Outside quotes (a whole word or part of one): the value becomes a
    /// quoted word part, `--flag='a b'`.
    Unquoted,
    /// Inside `"..."`: `$`, `` ` ``, `"` and `\` are backslash-escaped.
    Double,
    /// Inside `'...'`: each `'` closes, escapes and reopens: `'\''`.
    Single,
    /// Inside `$'...'`: `\` and `'` are backslash-escaped.
    DollarSingle,
}

/// A character of the literal text, or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Char(char),
    Value,
}

/// What the lexer is inside of. A stack: `"$(echo '...')"` nests three.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// Shell code: the whole command, or the inside of `$(...)` (`parens`
    /// counts open subshell parentheses, so its own `)` is recognised).
    Code {
        parens: usize,
        substitution: bool,
    },
    Double,
    Single,
    DollarSingle,
    Backtick,
    /// `${...}`, with nested `{` counted.
    Param {
        braces: usize,
    },
    /// `$((...))`, with nested `(` counted.
    Arith {
        parens: usize,
    },
    Comment,
    /// The bodies of the here-documents opened on the line before: their
    /// delimiters, in order, each with whether leading tabs are stripped
    /// (`<<-`), and the line read so far.
    Heredoc {
        queue: Vec<(String, bool)>,
        line: String,
    },
}

const AFTER_BACKSLASH: (&str, &str) = (
    "right after a backslash",
    "the backslash would escape the first character of the value's quoting; remove the backslash",
);
const IN_COMMENT: (&str, &str) = (
    "in a shell comment",
    "a newline in the value would end the comment and run what follows; take the placeholder out of the comment",
);
const IN_HEREDOC: (&str, &str) = (
    "in a here-document",
    "no quoting protects a value there (`$(...)` in it runs, a line equal to the delimiter ends it); pass the value as an argument instead, e.g. `printf '%s\\n' {{x}} | cmd`",
);
const IN_HEREDOC_DELIMITER: (&str, &str) = (
    "in a here-document delimiter",
    "write the delimiter literally (`<<'EOF'`)",
);
const IN_BACKTICKS: (&str, &str) = (
    "inside backticks",
    "write `$(...)` instead of backticks: inside `$(...)` values are quoted as anywhere else",
);
const IN_PARAM: (&str, &str) = (
    "inside `${...}`",
    "the shell expands what is there; put the value in a word of its own, outside the expansion",
);
const IN_ARITH: (&str, &str) = (
    "inside `$((...))`",
    "the shell evaluates what is there as arithmetic, names and all; compute outside the shell, or pass the value as an argument (`expr {{x}} + 1`)",
);

pub(super) fn slots(pieces: &[Piece]) -> Vec<Result<Slot, Refusal>> {
    let toks = tokens(pieces);
    let mut lexer = Lexer {
        stack: vec![Frame::Code {
            parens: 0,
            substitution: false,
        }],
        word_start: true,
        pending: Vec::new(),
        out: Vec::new(),
    };
    let mut i = 0;
    while i < toks.len() {
        i += lexer.step(&toks[i..]);
    }
    lexer.out
}

fn tokens(pieces: &[Piece]) -> Vec<Tok> {
    let mut toks = Vec::new();
    for p in pieces {
        match p {
            Piece::Text(t) => toks.extend(t.chars().map(Tok::Char)),
            Piece::Value(_) => toks.push(Tok::Value),
        }
    }
    toks
}

struct Lexer {
    stack: Vec<Frame>,
    /// In code: the next character starts a word (so `#` starts a comment).
    word_start: bool,
    /// Here-documents opened on the current line: their bodies start at
    /// its end.
    pending: Vec<(String, bool)>,
    out: Vec<Result<Slot, Refusal>>,
}

impl Lexer {
    fn refuse(&mut self, why: (&'static str, &'static str)) {
        self.out.push(Err(Refusal::at(self.out.len(), why)));
    }

    fn quoted(&mut self, q: ShellQuote) {
        self.out.push(Ok(Slot::Shell(q)));
    }

    /// Consumes a backslash and what it escapes; a value right after it is
    /// refused (the backslash would escape the value's opening quote).
    fn backslash(&mut self, rest: &[Tok]) -> usize {
        match rest.get(1) {
            Some(Tok::Value) => {
                self.refuse(AFTER_BACKSLASH);
                2
            }
            Some(Tok::Char(_)) => 2,
            None => 1,
        }
    }

    /// Reads one step from `rest` (never empty); returns how many tokens
    /// it consumed (at least one).
    fn step(&mut self, rest: &[Tok]) -> usize {
        let next = |n: usize| match rest.get(n) {
            Some(Tok::Char(c)) => Some(*c),
            _ => None,
        };
        let top = self.stack.last().cloned();
        let Some(top) = top else {
            return rest.len();
        };
        match (top, rest[0]) {
            (Frame::Code { .. }, Tok::Value) => {
                self.quoted(ShellQuote::Unquoted);
                self.word_start = false;
                1
            }
            (
                Frame::Code {
                    parens,
                    substitution,
                },
                Tok::Char(c),
            ) => {
                let at_word_start = std::mem::replace(&mut self.word_start, false);
                match c {
                    '\\' => self.backslash(rest),
                    '\'' => {
                        self.stack.push(Frame::Single);
                        1
                    }
                    '"' => {
                        self.stack.push(Frame::Double);
                        1
                    }
                    '`' => {
                        self.stack.push(Frame::Backtick);
                        1
                    }
                    '$' => self.dollar(rest, true),
                    '#' if at_word_start => {
                        self.stack.push(Frame::Comment);
                        1
                    }
                    // `<<<word` (a here-string) is a plain word.
                    '<' if next(1) == Some('<') && next(2) == Some('<') => {
                        self.word_start = true;
                        3
                    }
                    '<' if next(1) == Some('<') => self.heredoc(rest),
                    '(' => {
                        self.set_parens(parens + 1, substitution);
                        self.word_start = true;
                        1
                    }
                    ')' => {
                        if parens == 0 && substitution {
                            self.stack.pop();
                        } else {
                            self.set_parens(parens.saturating_sub(1), substitution);
                            self.word_start = true;
                        }
                        1
                    }
                    '\n' => {
                        self.word_start = true;
                        self.start_pending_heredocs();
                        1
                    }
                    c if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>') => {
                        self.word_start = true;
                        1
                    }
                    _ => 1,
                }
            }
            (Frame::Double, Tok::Value) => {
                self.quoted(ShellQuote::Double);
                1
            }
            (Frame::Double, Tok::Char(c)) => match c {
                '"' => {
                    self.stack.pop();
                    1
                }
                '\\' => self.backslash(rest),
                '`' => {
                    self.stack.push(Frame::Backtick);
                    1
                }
                '$' => self.dollar(rest, false),
                _ => 1,
            },
            (Frame::Single, Tok::Value) => {
                self.quoted(ShellQuote::Single);
                1
            }
            (Frame::Single, Tok::Char(c)) => {
                if c == '\'' {
                    self.stack.pop();
                }
                1
            }
            (Frame::DollarSingle, Tok::Value) => {
                self.quoted(ShellQuote::DollarSingle);
                1
            }
            (Frame::DollarSingle, Tok::Char(c)) => match c {
                '\\' => self.backslash(rest),
                '\'' => {
                    self.stack.pop();
                    1
                }
                _ => 1,
            },
            (Frame::Backtick, Tok::Value) => {
                self.refuse(IN_BACKTICKS);
                1
            }
            (Frame::Backtick, Tok::Char(c)) => match c {
                '\\' => self.backslash(rest),
                '`' => {
                    self.stack.pop();
                    1
                }
                _ => 1,
            },
            (Frame::Param { .. }, Tok::Value) => {
                self.refuse(IN_PARAM);
                1
            }
            (Frame::Param { braces }, Tok::Char(c)) => {
                match c {
                    '{' => self.replace_top(Frame::Param { braces: braces + 1 }),
                    '}' if braces == 0 => {
                        self.stack.pop();
                    }
                    '}' => self.replace_top(Frame::Param { braces: braces - 1 }),
                    '\\' => return self.backslash(rest),
                    _ => {}
                }
                1
            }
            (Frame::Arith { .. }, Tok::Value) => {
                self.refuse(IN_ARITH);
                1
            }
            (Frame::Arith { parens }, Tok::Char(c)) => match c {
                '(' => {
                    self.replace_top(Frame::Arith { parens: parens + 1 });
                    1
                }
                ')' if parens == 0 && next(1) == Some(')') => {
                    self.stack.pop();
                    2
                }
                ')' => {
                    self.replace_top(Frame::Arith {
                        parens: parens.saturating_sub(1),
                    });
                    1
                }
                _ => 1,
            },
            (Frame::Comment, Tok::Value) => {
                self.refuse(IN_COMMENT);
                1
            }
            (Frame::Comment, Tok::Char(c)) => {
                if c == '\n' {
                    // The newline ends the comment and is code again (it
                    // may start a here-document body).
                    self.stack.pop();
                    return self.step(rest);
                }
                1
            }
            (Frame::Heredoc { .. }, Tok::Value) => {
                self.refuse(IN_HEREDOC);
                1
            }
            (
                Frame::Heredoc {
                    mut queue,
                    mut line,
                },
                Tok::Char(c),
            ) => {
                if c != '\n' {
                    line.push(c);
                    self.replace_top(Frame::Heredoc { queue, line });
                    return 1;
                }
                let ends = queue.first().is_some_and(|(delimiter, strip_tabs)| {
                    let l = if *strip_tabs {
                        line.trim_start_matches('\t')
                    } else {
                        line.as_str()
                    };
                    l == delimiter
                });
                if ends {
                    queue.remove(0);
                }
                if queue.is_empty() {
                    self.stack.pop();
                    self.word_start = true;
                } else {
                    self.replace_top(Frame::Heredoc {
                        queue,
                        line: String::new(),
                    });
                }
                1
            }
        }
    }

    fn start_pending_heredocs(&mut self) {
        if !self.pending.is_empty() {
            let queue = std::mem::take(&mut self.pending);
            self.stack.push(Frame::Heredoc {
                queue,
                line: String::new(),
            });
        }
    }

    fn replace_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            *top = frame;
        }
    }

    fn set_parens(&mut self, parens: usize, substitution: bool) {
        self.replace_top(Frame::Code {
            parens,
            substitution,
        });
    }

    /// `$` in code (`in_code`) or in `"..."`: the start of `$((`, `$(`,
    /// `${`, or in code `$'`; otherwise a plain character.
    fn dollar(&mut self, rest: &[Tok], in_code: bool) -> usize {
        let next = |n: usize| match rest.get(n) {
            Some(Tok::Char(c)) => Some(*c),
            _ => None,
        };
        match (next(1), next(2)) {
            (Some('('), Some('(')) => {
                self.stack.push(Frame::Arith { parens: 0 });
                3
            }
            (Some('('), _) => {
                self.stack.push(Frame::Code {
                    parens: 0,
                    substitution: true,
                });
                self.word_start = true;
                2
            }
            (Some('{'), _) => {
                self.stack.push(Frame::Param { braces: 0 });
                2
            }
            (Some('\''), _) if in_code => {
                self.stack.push(Frame::DollarSingle);
                2
            }
            _ => 1,
        }
    }

    /// `<<` or `<<-`, blanks, then the delimiter word (its quotes removed).
    /// The body starts after the end of the line.
    fn heredoc(&mut self, rest: &[Tok]) -> usize {
        let mut i = 2;
        let strip_tabs = rest.get(i) == Some(&Tok::Char('-'));
        if strip_tabs {
            i += 1;
        }
        while matches!(rest.get(i), Some(Tok::Char(' ' | '\t'))) {
            i += 1;
        }
        let mut delimiter = String::new();
        let mut quote: Option<char> = None;
        while let Some(tok) = rest.get(i) {
            match (*tok, quote) {
                (Tok::Value, _) => {
                    self.refuse(IN_HEREDOC_DELIMITER);
                }
                (Tok::Char(c), Some(q)) if c == q => quote = None,
                (Tok::Char(c), Some(_)) => delimiter.push(c),
                (Tok::Char(c @ ('\'' | '"')), None) => quote = Some(c),
                (Tok::Char('\\'), None) => {}
                (Tok::Char(c), None)
                    if c.is_whitespace()
                        || matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')') =>
                {
                    break
                }
                (Tok::Char(c), None) => delimiter.push(c),
            }
            i += 1;
        }
        self.pending.push((delimiter, strip_tabs));
        self.word_start = true;
        i
    }
}

/// `v` written so that the shell reads it back as exactly `v`, in quoting
/// `q`. A NUL byte cannot be in a shell argument at all.
pub(super) fn write(q: ShellQuote, v: &str) -> Result<String, String> {
    if v.contains('\0') {
        return Err("a value in a shell command cannot hold a NUL byte".into());
    }
    Ok(match q {
        ShellQuote::Unquoted => match shlex::try_quote(v) {
            Ok(quoted) => quoted.into_owned(),
            Err(_) => return Err("a value in a shell command cannot hold a NUL byte".into()),
        },
        ShellQuote::Double => backslash_escaped(v, &['$', '`', '"', '\\']),
        ShellQuote::Single => v.replace('\'', "'\\''"),
        ShellQuote::DollarSingle => backslash_escaped(v, &['\\', '\'']),
    })
}

fn backslash_escaped(v: &str, special: &[char]) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if special.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot of each `{}` of `text`, or the place it is refused.
    fn of(text: &str) -> Vec<Result<ShellQuote, &'static str>> {
        let parts: Vec<&str> = text.split("{}").collect();
        let mut pieces = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                pieces.push(Piece::Value("v"));
            }
            pieces.push(Piece::Text(p));
        }
        slots(&pieces)
            .into_iter()
            .map(|s| match s {
                Ok(Slot::Shell(q)) => Ok(q),
                Ok(other) => panic!("{other:?}"),
                Err(r) => Err(r.place),
            })
            .collect()
    }

    use ShellQuote::*;

    #[test]
    fn quoting_contexts() {
        assert_eq!(of("echo {} --flag={}x"), vec![Ok(Unquoted), Ok(Unquoted)]);
        assert_eq!(
            of(r#"echo "note: {}" '{}' $'a{}'"#),
            vec![Ok(Double), Ok(Single), Ok(DollarSingle)]
        );
        assert_eq!(
            of(r#"echo "it's {}" 'say "{}"'"#),
            vec![Ok(Double), Ok(Single)]
        );
        assert_eq!(of(r#"echo "\"{}\"" '\'{}"#), vec![Ok(Double), Ok(Unquoted)]);
    }

    #[test]
    fn command_substitution_is_a_fresh_context() {
        assert_eq!(
            of(r#"echo "$(cat {} | grep '{}')" {}"#),
            vec![Ok(Unquoted), Ok(Single), Ok(Unquoted)]
        );
        assert_eq!(
            of("echo $( (cd x; ls) {} ) \"{}\""),
            vec![Ok(Unquoted), Ok(Double)]
        );
    }

    #[test]
    fn refused_places() {
        assert_eq!(
            of("echo a # {}\nrm {}"),
            vec![Err(IN_COMMENT.0), Ok(Unquoted)]
        );
        assert_eq!(of("echo a#{}"), vec![Ok(Unquoted)]);
        assert_eq!(
            of("echo `cat {}` {}"),
            vec![Err(IN_BACKTICKS.0), Ok(Unquoted)]
        );
        assert_eq!(of("echo ${X:-{}} {}"), vec![Err(IN_PARAM.0), Ok(Unquoted)]);
        assert_eq!(
            of("echo $(( {} + 1 )) {}"),
            vec![Err(IN_ARITH.0), Ok(Unquoted)]
        );
        assert_eq!(
            of(r"echo \{} a\\{}"),
            vec![Err(AFTER_BACKSLASH.0), Ok(Unquoted)]
        );
        assert_eq!(of(r#"echo "\{}""#), vec![Err(AFTER_BACKSLASH.0)]);
    }

    #[test]
    fn heredocs() {
        assert_eq!(
            of("cat <<EOF > f\nhello {}\nEOF\necho {}"),
            vec![Err(IN_HEREDOC.0), Ok(Unquoted)]
        );
        assert_eq!(
            of("cat <<-'EOF' # c\n\tx {}\n\tEOF\necho '{}'"),
            vec![Err(IN_HEREDOC.0), Ok(Single)]
        );
        assert_eq!(of("cat <<{}\nx\n"), vec![Err(IN_HEREDOC_DELIMITER.0)]);
        assert_eq!(of("cat <<<{}"), vec![Ok(Unquoted)]);
    }

    #[test]
    fn writing() {
        let w = |q, v| write(q, v).unwrap();
        assert_eq!(w(Unquoted, "a b"), "'a b'");
        assert_eq!(w(Unquoted, "plain"), "plain");
        assert_eq!(w(Double, r#"$(x) `y` "z" \n"#), r#"\$(x) \`y\` \"z\" \\n"#);
        assert_eq!(w(Single, "it's"), r"it'\''s");
        assert_eq!(w(DollarSingle, r"it's \n"), r"it\'s \\n");
        assert!(write(Unquoted, "a\0b").is_err());
        assert!(write(Single, "a\0b").is_err());
    }
}
