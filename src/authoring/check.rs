//! `wix-elevator check`: loads the config and every policy file and reports
//! every problem at once, compiler style, with the offending line shown:
//!
//! ```text
//! policies/members.yaml:12:7: error: unknown selector `cookie.a`: expected path.<capture>, ...
//!    |
//! 12 |       cookie.a: { equals: x }
//!    |       ^
//! ```
//!
//! `--format json` prints one array of
//! `{file, line, column, severity, code, message}` for editors and CI.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::json;

use super::{Sources, EXIT_FAILURE, EXIT_OK};
use crate::diagnostic::Diagnostic;
use crate::policy::{PolicySet, PolicySource};

/// How `check` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `file:line:col: severity: message [code]`, the line and a caret.
    #[default]
    Text,
    /// A JSON array of `{file, line, column, severity, code, message}`.
    Json,
}

/// `wix-elevator check`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CheckArgs {
    /// Where the config and policies are.
    #[command(flatten)]
    pub sources: Sources,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 on warnings too, not only on errors.
    #[arg(long)]
    pub deny_warnings: bool,
}

/// Everything `check` found, with the text of each file it read.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Every problem, config first, then policies in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The text of each file read, to show the offending lines.
    pub texts: HashMap<PathBuf, String>,
    /// Rules in the policies, when they compiled.
    pub rules: Option<usize>,
}

impl CheckReport {
    /// How many errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// How many warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// The diagnostics with their lines and carets, and a summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for diagnostic in &self.diagnostics {
            let _ = writeln!(out, "{diagnostic}");
            let line = self.texts.get(&diagnostic.file).and_then(|text| {
                let index = usize::try_from(diagnostic.line).ok()?.checked_sub(1)?;
                text.lines().nth(index)
            });
            if let Some(line) = line {
                let number = diagnostic.line.to_string();
                let gutter = " ".repeat(number.len());
                let column = usize::try_from(diagnostic.column.max(1)).unwrap_or(1);
                // The caret sits under the column's character, wide or not,
                // with the line's own tabs kept so it lines up.
                let pad: String = line
                    .chars()
                    .take(column - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{gutter} |");
                let _ = writeln!(out, "{number} | {line}");
                let _ = writeln!(out, "{gutter} | {pad}^");
            }
        }
        let (errors, warnings) = (self.errors(), self.warnings());
        if errors + warnings == 0 {
            let rules = self.rules.unwrap_or(0);
            let _ = writeln!(out, "no problems: {rules} rules");
        } else {
            let _ = writeln!(
                out,
                "{errors} {}, {warnings} {}",
                plural(errors, "error"),
                plural(warnings, "warning")
            );
        }
        out
    }

    /// The diagnostics as one JSON array.
    pub fn render_json(&self) -> String {
        let items: Vec<serde_json::Value> = self
            .diagnostics
            .iter()
            .map(|d| {
                json!({
                    "file": d.file.display().to_string(),
                    "line": d.line,
                    "column": d.column,
                    "severity": d.severity.to_string(),
                    "code": d.code,
                    "message": d.message,
                })
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&items).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

/// Checks the config (if any) and the policies, collecting every problem.
pub fn check(sources: &Sources) -> CheckReport {
    let mut report = CheckReport::default();
    let loaded = match sources.load(false) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            if let Some(path) = &sources.config {
                if let Ok(text) = std::fs::read_to_string(path) {
                    report.texts.insert(path.clone(), text);
                }
            } else if let Ok(text) = std::fs::read_to_string("proxy.yaml") {
                report.texts.insert(PathBuf::from("proxy.yaml"), text);
            }
            report.diagnostics = diagnostics;
            return report;
        }
    };
    if let Some((path, text)) = loaded.config_source {
        report.texts.insert(path, text);
    }
    let source = PolicySource::read(&loaded.policies);
    report.texts.extend(source.files.iter().cloned());
    match PolicySet::load_source(&source) {
        Ok(set) => {
            report.rules = Some(set.rules().len());
            report.diagnostics = set.warnings().to_vec();
        }
        Err(diagnostics) => report.diagnostics = diagnostics,
    }
    report
}

/// Runs `check` and prints its report; returns the exit status.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> u8 {
    let report = check(&args.sources);
    let text = match args.format {
        Format::Text => report.render_text(),
        Format::Json => report.render_json(),
    };
    let _ = out.write_all(text.as_bytes());
    let failed = report.errors() > 0 || (args.deny_warnings && report.warnings() > 0);
    if failed {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Severity;

    #[test]
    fn carets_point_at_the_column() {
        let mut report = CheckReport::default();
        let file = PathBuf::from("p.yaml");
        report
            .texts
            .insert(file.clone(), "rules:\n  - id: x\n\tmode: é!\n".into());
        report
            .diagnostics
            .push(Diagnostic::error(&file, 2, 9, "bad id"));
        let mut warning = Diagnostic::error(&file, 3, 9, "odd");
        warning.severity = Severity::Warning;
        warning.code = Some("empty-file");
        report.diagnostics.push(warning);
        assert_eq!(
            report.render_text(),
            "p.yaml:2:9: error: bad id\n  |\n2 |   - id: x\n  |         ^\n\
             p.yaml:3:9: warning: odd [empty-file]\n  |\n3 | \tmode: é!\n  | \t       ^\n\
             1 error, 1 warning\n"
        );
        let json: serde_json::Value = serde_json::from_str(&report.render_json()).unwrap();
        assert_eq!(json[1]["code"], "empty-file");
        assert_eq!(json[0]["code"], serde_json::Value::Null);
        assert_eq!(json[0]["severity"], "error");
    }
}
