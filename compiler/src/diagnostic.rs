//! Diagnostics: what went wrong, where, and how to fix it; rendered like a compiler.

use crate::span::Span;
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;
use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The model can not be used.
    Error,
    /// The model works but probably not as intended.
    Warning,
}

/// A labelled span of source.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What is there (may be empty).
    pub message: String,
    /// The primary label marks the location of the problem; others give context.
    pub primary: bool,
}

/// One problem found in a model file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code such as `E0301`; `docs` list them.
    pub code: &'static str,
    /// Lowercase, no trailing period, quoting the user's syntax.
    pub message: String,
    /// Primary label first.
    pub labels: Vec<Label>,
    /// Hints and explanations.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error with a primary label.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: vec![Label { span, message: String::new(), primary: true }],
            notes: Vec::new(),
        }
    }

    /// A warning with a primary label.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, span, message) }
    }

    /// Sets the text of the primary label.
    pub fn with_label_message(mut self, message: impl Into<String>) -> Diagnostic {
        if let Some(label) = self.labels.first_mut() {
            label.message = message.into();
        }
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// The primary span.
    pub fn span(&self) -> Span {
        self.labels.first().map(|l| l.span).unwrap_or_default()
    }

    /// Whether this diagnostic is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    fn to_codespan(&self) -> cs::Diagnostic<()> {
        let severity = match self.severity {
            Severity::Error => cs::Severity::Error,
            Severity::Warning => cs::Severity::Warning,
        };
        let labels = self
            .labels
            .iter()
            .map(|label| {
                let style = if label.primary { cs::LabelStyle::Primary } else { cs::LabelStyle::Secondary };
                cs::Label::new(style, (), label.span.range()).with_message(label.message.clone())
            })
            .collect();
        cs::Diagnostic::new(severity)
            .with_code(self.code)
            .with_message(self.message.clone())
            .with_labels(labels)
            .with_notes(self.notes.clone())
    }
}

/// Diagnostics collected by a pass; passes keep going after an error.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records a diagnostic; an identical one (same code, span and message) is recorded once.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        let duplicate = self
            .items
            .iter()
            .any(|d| d.code == diagnostic.code && d.span() == diagnostic.span() && d.message == diagnostic.message);
        if !duplicate {
            self.items.push(diagnostic);
        }
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The diagnostics, in source order.
    pub fn into_vec(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| (d.span().start, d.span().end));
        self.items
    }

    /// The diagnostics recorded so far, in recording order.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.items
    }
}

/// The rendering config: plain ASCII-art carets, as rustc does.
fn config() -> term::Config {
    term::Config::default()
}

/// Renders diagnostics as plain text (no colour): what tests and files get.
pub fn render_to_string(diagnostics: &[Diagnostic], file_name: &str, source: &str) -> String {
    let file = SimpleFile::new(file_name, source);
    let mut out = String::new();
    for diagnostic in diagnostics {
        match term::emit_into_string(&config(), &file, &diagnostic.to_codespan()) {
            Ok(text) => out.push_str(&text),
            // Rendering only fails if a span lies outside the file; fall back to a plain line.
            Err(_) => {
                let (line, col) = crate::span::line_col(source, diagnostic.span().start as usize);
                out.push_str(&format!(
                    "error[{}]: {}\n --> {file_name}:{line}:{col}\n",
                    diagnostic.code, diagnostic.message
                ));
            }
        }
    }
    out
}

/// Writes diagnostics to standard error, in colour when it is a terminal.
pub fn emit_to_stderr(diagnostics: &[Diagnostic], file_name: &str, source: &str) {
    let choice =
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) { ColorChoice::Auto } else { ColorChoice::Never };
    let stream = StandardStream::stderr(choice);
    let mut lock = stream.lock();
    let file = SimpleFile::new(file_name, source);
    for diagnostic in diagnostics {
        if term::emit_to_write_style(&mut lock, &config(), &file, &diagnostic.to_codespan()).is_err() {
            eprint!("{}", render_to_string(std::slice::from_ref(diagnostic), file_name, source));
        }
    }
}
