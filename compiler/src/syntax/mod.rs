//! Parsing: model text to the untyped AST (`crate::ast`), with syntax errors as diagnostics.

mod lower;

use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::span::Span;
use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest_derive::Parser;

/// The pest parser generated from `grammar.pest`.
#[derive(Parser)]
#[grammar = "syntax/grammar.pest"]
pub(crate) struct SnnParser;

/// Expressions nested deeper than this are refused (with a diagnostic), so that
/// no input can exhaust the stack of the recursive passes that follow.
pub const MAX_NESTING: usize = 200;

/// Parses a model file into its AST, or returns the syntax errors.
pub fn parse(source: &str) -> Result<ast::File, Vec<Diagnostic>> {
    if let Some(diagnostic) = check_nesting(source) {
        return Err(vec![diagnostic]);
    }
    match SnnParser::parse(Rule::file, source) {
        Ok(mut pairs) => match pairs.next() {
            Some(pair) => lower::file(pair),
            None => Ok(ast::File::default()),
        },
        Err(_) => Err(syntax_errors(source)),
    }
}

/// Syntax errors, one per broken definition: after a failure, the file is cut at the
/// lines that start a definition (a keyword in column 0) and each piece is parsed
/// alone, so that one mistake does not hide the next. If no piece fails alone (the
/// mistake spans pieces, e.g. an unclosed brace), the whole file's error is reported.
fn syntax_errors(source: &str) -> Vec<Diagnostic> {
    let starts = definition_starts(source);
    let mut errors = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(source.len());
        let piece = &source[start..end];
        if SnnParser::parse(Rule::file, piece).is_ok() {
            continue;
        }
        errors.push(detailed_syntax_error(source, start..end));
    }
    if errors.is_empty() { vec![detailed_syntax_error(source, 0..source.len())] } else { errors }
}

/// Byte offsets of the lines that start a definition, the first always 0.
fn definition_starts(source: &str) -> Vec<usize> {
    const STARTS: [&str; 8] =
        ["const ", "neuron ", "synapse ", "shared", "group ", "connect ", "monitor ", "environment "];
    let mut starts = vec![0];
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        if offset > 0 && STARTS.iter().any(|k| line.starts_with(k)) {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
}

/// Re-parses `source[piece]` with pest's error detail on (slower; only after a
/// failure) and turns the result into one diagnostic, positioned in the whole source.
fn detailed_syntax_error(source: &str, piece: std::ops::Range<usize>) -> Diagnostic {
    let offset = piece.start;
    pest::set_error_detail(true);
    let result = SnnParser::parse(Rule::file, &source[piece]);
    pest::set_error_detail(false);
    match result {
        Ok(_) => Diagnostic::error("E0100", Span::new(offset, offset), "syntax error"),
        Err(error) => syntax_error(source, offset, &error),
    }
}

fn syntax_error(source: &str, offset: usize, error: &pest::error::Error<Rule>) -> Diagnostic {
    let mut position = offset
        + match error.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((start, _)) => start,
        };
    // pest places the error where the last rule failed; its parse attempts know the
    // farthest point any token reached, which is where the text stops making sense.
    if let Some(attempts) = error.parse_attempts()
        && offset + attempts.max_position > position
        && offset + attempts.max_position <= source.len()
    {
        position = offset + attempts.max_position;
    }
    let mut expected: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !expected.contains(&s) {
            expected.push(s);
        }
    };
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            if let Some(name) = rule_description(*rule) {
                push(name.to_string());
            }
        }
    }
    if let Some(attempts) = error.parse_attempts() {
        for token in attempts.expected_tokens() {
            if let Some(text) = token_description(&token.to_string()) {
                push(text);
            }
        }
        for stack in attempts.call_stacks() {
            if let Some(name) = stack.deepest.get_rule().copied().and_then(rule_description) {
                push(name.to_string());
            }
        }
    }
    // Inside a block, no top-level definition can follow.
    if !unclosed_brackets(source, position).is_empty() {
        expected.retain(|e| e != "a definition" && e != "end of file");
    }
    // Drop what a broader entry already says.
    let has = |x: &str, list: &[String]| list.iter().any(|e| e == x);
    if has("an expression", &expected) {
        expected.retain(|e| !matches!(e.as_str(), "`(`" | "`[`" | "a name" | "a number"));
    }
    if has("an operator", &expected) {
        expected.retain(|e| !matches!(e.as_str(), "`/`" | "`[`"));
    }
    expected.sort_by_key(|s| (!s.starts_with('`'), s.clone()));
    let found = found_text(source, position);
    let span = found_span(source, position);
    let message = if expected.is_empty() {
        format!("syntax error: unexpected {found}")
    } else {
        format!("syntax error: expected {}, found {found}", join_or(&expected))
    };
    let open = unclosed_brackets(source, position);
    let message = match (found.as_str(), open.last()) {
        ("`}`" | "`)`" | "`]`", None) => format!("syntax error: unmatched {found}"),
        _ => message,
    };
    let mut diagnostic = Diagnostic::error("E0100", span, message).with_label_message(format!("unexpected {found}"));
    if let Some(&(at, bracket)) = open.last() {
        let closer = match bracket {
            '(' => ")",
            '[' => "]",
            _ => "}",
        };
        // A brace usually closes further down: only an unclosed one at the end of the file is certain.
        let certain = found == "end of file" || (bracket != '{' && expected.iter().any(|e| e.contains(closer)));
        if certain {
            diagnostic = diagnostic.with_secondary(Span::new(at, at + 1), format!("this `{bracket}` is not closed"));
        }
    }
    let word = &source[span.range()];
    if KEYWORDS.contains(&word) && expected.iter().any(|e| e == "a name") {
        diagnostic = diagnostic.with_note(format!("`{word}` is a keyword and can not be used as a name"));
    }
    for hint in syntax_hints(source, position, span) {
        diagnostic = diagnostic.with_note(hint);
    }
    diagnostic
}

/// Reserved words of the language (kept in step with `keyword` in the grammar).
const KEYWORDS: &[&str] = &[
    "const",
    "neuron",
    "synapse",
    "shared",
    "group",
    "connect",
    "monitor",
    "environment",
    "equations",
    "threshold",
    "reset",
    "refractory",
    "method",
    "init",
    "on_pre",
    "on_post",
    "every_step",
    "every",
    "with",
    "and",
    "or",
    "not",
    "if",
    "else",
    "True",
    "False",
    "true",
    "false",
];

/// What the user sees for a grammar rule that was expected; `None` hides internal rules.
fn rule_description(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::expr | Rule::operation => "an expression",
        Rule::ident | Rule::name | Rule::unit_name => "a name",
        Rule::unit_expr | Rule::unit_term | Rule::unit_one => "a unit",
        Rule::number | Rule::quantity => "a number",
        Rule::stmt | Rule::target => "a statement",
        Rule::block => "`{`",
        Rule::flag | Rule::flag_word => "a flag",
        Rule::diff_eq | Rule::sub_eq | Rule::param_eq | Rule::diff_var => "an equation",
        Rule::assign_op => "an assignment operator",
        Rule::const_def
        | Rule::neuron_def
        | Rule::synapse_def
        | Rule::shared_def
        | Rule::group_def
        | Rule::connect_def
        | Rule::monitor_def
        | Rule::environment_def
        | Rule::setting => "a definition",
        Rule::equations_block
        | Rule::threshold_def
        | Rule::reset_def
        | Rule::refractory_def
        | Rule::method_def
        | Rule::init_def
        | Rule::on_pre_def
        | Rule::on_post_def
        | Rule::every_step_def
        | Rule::every_def => "a body item",
        Rule::EOI => "end of file",
        Rule::infix
        | Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::floordiv
        | Rule::modulo
        | Rule::pow
        | Rule::lt
        | Rule::le
        | Rule::gt
        | Rule::ge
        | Rule::eq
        | Rule::ne
        | Rule::and
        | Rule::or => "an operator",
        Rule::endpoint => "a group",
        Rule::kw_with => "`with`",
        Rule::every_clause | Rule::kw_every => "`every`",
        Rule::kw_equations
        | Rule::kw_threshold
        | Rule::kw_reset
        | Rule::kw_refractory
        | Rule::kw_method
        | Rule::kw_init
        | Rule::kw_on_pre
        | Rule::kw_on_post
        | Rule::kw_every_step => "a body item",
        _ => return None,
    })
}

/// Literal tokens worth naming; operators are summarized as "an operator".
fn token_description(token: &str) -> Option<String> {
    const SHOWN: &[&str] = &["{", "}", "(", ")", "[", "]", "=", ":", ",", "->", "/", "dt"];
    SHOWN.contains(&token).then(|| format!("`{token}`"))
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The token at `position`, quoted, for "found ...".
fn found_text(source: &str, position: usize) -> String {
    let rest = source.get(position..).unwrap_or("");
    let Some(first) = rest.chars().next() else {
        return "end of file".to_string();
    };
    if first == '\n' || first == '\r' {
        return "end of line".to_string();
    }
    let word: String = if first.is_alphanumeric() || first == '_' {
        rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect()
    } else {
        first.to_string()
    };
    let word: String = word.chars().take(24).collect();
    format!("`{word}`")
}

fn found_span(source: &str, position: usize) -> Span {
    let rest = source.get(position..).unwrap_or("");
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let len = match rest.chars().next() {
        None | Some('\n') => 0,
        Some(c) if is_word(c) => rest.find(|c: char| !is_word(c)).unwrap_or(rest.len()),
        Some(c) => c.len_utf8(),
    };
    Span::new(position, position + len)
}

/// Brackets opened before `position` and not closed (comments skipped), innermost last.
fn unclosed_brackets(source: &str, position: usize) -> Vec<(usize, char)> {
    let mut stack = Vec::new();
    let mut in_comment = false;
    for (at, c) in source[..position.min(source.len())].char_indices() {
        match c {
            '\n' => in_comment = false,
            _ if in_comment => {}
            '#' => in_comment = true,
            '(' | '[' | '{' => stack.push((at, c)),
            ')' | ']' | '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack
}

/// Hints for common mistakes at the error position.
fn syntax_hints(source: &str, position: usize, found: Span) -> Vec<String> {
    let position = position.min(source.len());
    let mut hints = Vec::new();
    let line_start = source[..position].rfind('\n').map_or(0, |i| i + 1);
    let line_end = source[line_start..].find('\n').map_or(source.len(), |i| line_start + i);
    let line = &source[line_start..line_end];
    let before = source[line_start..position].trim_end();
    let word = &source[found.range()];
    let at_line_start = before.trim().is_empty();
    let previous = source[..line_start.saturating_sub(1)].lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let code = |l: &str| l.split('#').next().unwrap_or("").trim_end().to_string();
    let unitless = |l: &str| {
        let l = code(l);
        l.contains('=') && !l.contains(':') && !l.contains("==")
    };
    if (line.contains("/dt") && unitless(line)) || (at_line_start && previous.contains("/dt") && unitless(previous)) {
        hints.push("an equation ends with its unit: `dx/dt = expression : unit (flags)`".to_string());
    }
    // The word just before the error (on this line, or ending the previous one) and what
    // precedes it: a word after a number that breaks the parse was meant as its unit.
    let lines_before: Vec<String> = source[..line_start].lines().map(&code).filter(|l| !l.trim().is_empty()).collect();
    let context =
        if before.trim().is_empty() { lines_before.last().cloned().unwrap_or_default() } else { before.to_string() };
    let word_start = after_last(&context, |c: char| !(c.is_alphanumeric() || c == '_'));
    let previous_word = &context[word_start..];
    let before_word = context[..word_start].trim_end();
    if previous_word.chars().next().is_some_and(char::is_alphabetic) && crate::units::lookup(previous_word).is_none() {
        if before_word.ends_with(|c: char| c.is_ascii_digit()) {
            hints.push(not_a_unit(previous_word));
        }
    } else if before.trim().is_empty()
        && crate::units::lookup(previous_word).is_some()
        && before_word.trim().is_empty()
        && lines_before.len() >= 2
        && lines_before[lines_before.len() - 2].ends_with(|c: char| c.is_ascii_digit())
    {
        hints.push("a unit must be on the same line as its number: `20 ms`".to_string());
    }
    let number_before = before.ends_with(|c: char| c.is_ascii_digit() || c == '.');
    let is_word = !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_');
    if is_word && number_before {
        hints.push(not_a_unit(word));
    }
    if is_word
        && at_line_start
        && crate::units::lookup(word).is_some()
        && code(previous).ends_with(|c: char| c.is_ascii_digit())
    {
        hints.push("a unit must be on the same line as its number: `20 ms`".to_string());
    }
    if word == "." && number_before {
        hints.push("invalid number: a number has at most one decimal point".to_string());
    }
    if word == "," && before.ends_with(|c: char| c.is_ascii_digit()) && !before.contains('[') && !before.contains('(') {
        hints.push("numbers use a decimal point: `1.5`".to_string());
    }
    if let Some(&(open, '{')) = unclosed_brackets(source, position).last() {
        let owner_line = source[..open].rsplit('\n').next().unwrap_or("").trim_start();
        let equation_like = line.contains("/dt") || (line.contains(':') && !line.contains('{'));
        if ["neuron", "synapse", "shared"].iter().any(|k| owner_line.starts_with(k)) && equation_like && at_line_start {
            hints.push("equations go inside an `equations { ... }` block".to_string());
        }
    }
    if before.trim_start().starts_with("monitor ")
        || (before.trim().is_empty() && lines_before.last().is_some_and(|l| l.trim_start().starts_with("monitor ")))
    {
        hints.push("separate the targets of a monitor with `,`: `monitor spikes E, I`".to_string());
    }
    if word == "[" && before.contains(':') {
        hints.push("flags are written in parentheses: `(constant)`".to_string());
    }
    if word == "=" {
        if let Some(keyword) = ["threshold", "refractory", "reset", "method"].into_iter().find(|k| before.trim() == *k)
        {
            hints.push(format!("write `{keyword}` followed by its value, without `=`"));
        }
        if before.ends_with('=') || source[position..].starts_with("==") {
            hints.push("`==` compares; an assignment is written `=`".to_string());
        }
    }
    // Two views of one mistake may give the same hint.
    let mut unique: Vec<String> = Vec::new();
    for hint in hints {
        if !unique.contains(&hint) {
            unique.push(hint);
        }
    }
    unique
}

/// The byte offset just after the last character of `text` matching `p` (0 if none).
fn after_last(text: &str, p: impl Fn(char) -> bool) -> usize {
    text.char_indices().rev().find(|&(_, c)| p(c)).map_or(0, |(i, c)| i + c.len_utf8())
}

/// "`mv` is not a unit; did you mean `mV`?"
fn not_a_unit(word: &str) -> String {
    let units: Vec<String> = crate::units::common_names().collect();
    match crate::sema::suggest_name(word, units.iter().map(String::as_str)) {
        Some(suggestion) => format!("`{word}` is not a unit; did you mean `{suggestion}`?"),
        None => format!("`{word}` is not a unit"),
    }
}

/// Refuses inputs that would make the parser or later passes recurse too deeply:
/// brackets nested deeper than `MAX_NESTING`, and long runs of prefix operators
/// (`- - - x`) or of `**` (right-associative), which pest's Pratt parser recurses on.
fn check_nesting(source: &str) -> Option<Diagnostic> {
    let refuse = |offset: usize, what: &str| {
        Some(
            Diagnostic::error("E0101", Span::new(offset, offset + 1), "expression nested too deeply")
                .with_label_message(format!("more than {MAX_NESTING} {what}"))
                .with_note("split the expression with subexpressions or constants"),
        )
    };
    let bytes = source.as_bytes();
    let (mut depth, mut prefix_run, mut pow_run) = (0usize, 0usize, 0usize);
    let mut in_comment = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_comment {
            in_comment = b != b'\n';
            i += 1;
            continue;
        }
        match b {
            b'#' => in_comment = true,
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return refuse(i, "levels of brackets");
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'+' => {
                prefix_run += 1;
                if prefix_run > MAX_NESTING {
                    return refuse(i, "operators in a row");
                }
            }
            b'*' if bytes.get(i + 1) == Some(&b'*') => {
                pow_run += 1;
                if pow_run > MAX_NESTING {
                    return refuse(i, "`**` in a chain");
                }
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' => {
                let word_end = bytes[i..].iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.'));
                let word_end = i + word_end.unwrap_or(bytes.len() - i);
                if &bytes[i..word_end] == b"not" {
                    prefix_run += 1;
                    if prefix_run > MAX_NESTING {
                        return refuse(i, "operators in a row");
                    }
                } else {
                    prefix_run = 0;
                }
                i = word_end;
                continue;
            }
            _ => pow_run = 0,
        }
        if !matches!(b, b'-' | b'+' | b' ' | b'\t' | b'\r' | b'\n') {
            prefix_run = 0;
        }
        i += 1;
    }
    None
}

/// The span of a pest pair, without the whitespace and comments pest's implicit
/// whitespace leaves at the end of a rule whose optional tail did not match.
pub(crate) fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    let mut text = span.as_str();
    loop {
        let trimmed = text.trim_end();
        // A comment runs to the end of its line, and `#` appears nowhere else.
        let last_line_start = trimmed.rfind('\n').map_or(0, |i| i + 1);
        match trimmed[last_line_start..].find('#') {
            Some(hash) => text = &trimmed[..last_line_start + hash],
            None => {
                text = trimmed;
                break;
            }
        }
    }
    Span::new(span.start(), span.start() + text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_handle_multibyte_characters_before_a_word() {
        // Found by the fuzz test: a multibyte character before the word at the error.
        let source = "\u{20ac}a b";
        let position = "\u{20ac}a".len();
        let _ = syntax_hints(source, position, Span::new(position, position + 1));
        assert!(parse("const x = 1\u{20ac}mv\nconst y = 2").is_err());
    }
}
