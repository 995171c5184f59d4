//! Problems found while loading policies, each pointing at a file, line and
//! column, in the `file:line:col: error: message` shape editors and CI
//! annotations understand.

use std::fmt;
use std::path::Path;

use serde_saphyr::Location;

use super::lint::Lint;

pub use crate::diagnostic::{Diagnostic, Severity};

/// A place in a policy file, kept on compiled rules and conditions so that
/// diagnostics found after parsing (duplicates, shadowing) and later traces
/// can still point at the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl Position {
    /// The start of a file, for problems about the file as a whole.
    pub const START: Position = Position { line: 1, column: 1 };

    /// Converts a serde-saphyr location; unknown locations become the file start.
    pub fn from_location(location: &Location) -> Position {
        if location.line() == 0 {
            Position::START
        } else {
            Position {
                line: location.line(),
                column: location.column(),
            }
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Collects diagnostics for one load, so that every problem is reported,
/// not only the first.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn push(
        &mut self,
        file: &Path,
        at: Position,
        severity: Severity,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            file: file.to_path_buf(),
            line: at.line,
            column: at.column,
            severity,
            message: message.into(),
            code: None,
        });
    }

    /// A warning with its lint's code.
    pub(crate) fn lint(
        &mut self,
        file: &Path,
        at: Position,
        lint: Lint,
        message: impl Into<String>,
    ) {
        self.push(file, at, Severity::Warning, message);
        if let Some(last) = self.items.last_mut() {
            last.code = Some(lint.code());
        }
    }

    pub(crate) fn error(&mut self, file: &Path, at: Position, message: impl Into<String>) {
        self.push(file, at, Severity::Error, message);
    }

    /// Reports a structural error from the YAML deserializer.
    pub(crate) fn yaml_error(&mut self, file: &Path, source: &str, err: &serde_saphyr::Error) {
        if source.trim().is_empty() {
            self.error(
                file,
                Position::START,
                "empty policy file: expected a top-level `rules:` list",
            );
            return;
        }
        let at = err
            .location()
            .map_or(Position::START, |l| Position::from_location(&l));
        let mut message = crate::diagnostic::yaml_message(err);
        if unquoted_capture_near(source, at.line) {
            message.push_str(
                " (hint: quote a path with `{captures}` inside `{ ... }`, e.g. `path: \"/members/{id}\"`)",
            );
        }
        self.error(file, at, message);
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub(crate) fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

/// Whether the line `line` or the one before has an unquoted `path:` with a
/// `{`: in a flow map (`match: { path: /a/{id} }`) YAML reads that brace as
/// the start of a map, and its error does not say why.
fn unquoted_capture_near(source: &str, line: u64) -> bool {
    let Some(index) = usize::try_from(line).ok().and_then(|l| l.checked_sub(1)) else {
        return false;
    };
    let first = index.saturating_sub(1);
    source
        .lines()
        .skip(first)
        .take(index - first + 1)
        .any(|text| {
            text.split("path:").skip(1).any(|after| {
                let value = after.trim_start();
                !value.starts_with(['"', '\'']) && value.contains('{')
            })
        })
}
