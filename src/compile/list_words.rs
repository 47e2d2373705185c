//! A list placeholder in a shell command is one word per item.
//!
//! handlebars writes a list as one text (`[a, b]`), which would reach the
//! command as one quoted word holding brackets and commas. In a shell
//! command `{{pods}}` of type `list<...>` is rewritten, once, when the
//! runbook is compiled, to
//! `{{#each pods}}{{#unless @first}} {{/unless}}{{this}}{{/each}}`: each
//! item is then a value of its own, placed and quoted by the shell lexer
//! like any other (`src/escape/`), and the items are separated by a space
//! the author did not quote, as `"${pods[@]}"` does in bash. Inside
//! quotes the items stay in that one quoted word, separated by spaces.
//! An empty list writes nothing. Only a whole `{{name}}` placeholder of a
//! declared list type is rewritten; `{{{x}}}` is refused before this.

use super::placeholders::Tag;
use crate::plan::Type;

/// `text` with every list placeholder spread into one value per item.
pub(super) fn spread_lists(text: &str, tags: &[Tag], types: &[(usize, Type)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for tag in tags {
        if tag.raw || !tag.writes(text) {
            continue;
        }
        let inner = &text[tag.inner_start..tag.inner_end];
        let name = inner.trim();
        let name_start = tag.inner_start + (inner.len() - inner.trim_start().len());
        let is_list = types
            .iter()
            .any(|(start, ty)| *start == name_start && matches!(ty, Type::List(_)));
        // A bare name only: a helper call (`len pods`) writes one value.
        // (`failure.undone`: a built-in record's list field.)
        if !is_list
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            continue;
        }
        out.push_str(&text[at..tag.open]);
        out.push_str("{{#each ");
        out.push_str(name);
        out.push_str("}}{{#unless @first}} {{/unless}}{{this}}{{/each}}");
        at = tag.end;
    }
    if at == 0 {
        return text.to_owned();
    }
    out.push_str(&text[at..]);
    out
}
