//! Compiles policy sources into rules: parses each file, checks every rule,
//! and collects every problem across all files before giving up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::condition::Condition;
use super::diagnostics::{Diagnostics, Position};
use super::lint::Lint;
use super::model::{Node, RuleDoc};
use super::parse;
use super::template::{PathTemplate, METHODS};
use super::when::WhenCompiler;
use super::{Mode, Rule};
use crate::caller::{CallerType, IdentitySource};

/// Bit of a caller type in [`Rule`]'s caller set.
pub(crate) fn caller_bit(caller: CallerType) -> u8 {
    match caller {
        CallerType::Visitor => 1,
        CallerType::Member => 2,
        CallerType::User => 4,
    }
}

/// Bit of an identity source in [`Rule`]'s source set.
pub(crate) fn source_bit(source: IdentitySource) -> u8 {
    match source {
        IdentitySource::AccessToken => 1,
        IdentitySource::SignedInstance => 2,
    }
}

fn pos<T>(node: &Spanned<T>) -> Position {
    Position::from_location(&node.referenced)
}

/// How policy YAML is read.
///
/// - Only `true`/`false` are booleans: with YAML 1.1 spellings, `equals: NO`
///   (Norway) or `one_of: [y, n]` would silently compare against booleans.
/// - `0123` stays the string it looks like (zip codes, ids), not 123.
/// - `.nan` / `.inf` reach the compiler, which explains why they are refused,
///   instead of stopping the whole file at the parser.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::PassThrough;
    options
}

/// Compiles every source, in the order given, into rules in precedence order.
pub(crate) fn compile_sources(sources: &[(PathBuf, String)], diags: &mut Diagnostics) -> Vec<Rule> {
    let mut rules = Vec::new();
    let mut ids: HashMap<String, (Arc<Path>, Position)> = HashMap::new();
    for (path, text) in sources {
        let file: Arc<Path> = Arc::from(path.as_path());
        if text.trim().is_empty() {
            diags.error(
                &file,
                Position::START,
                "empty policy file: expected a top-level `rules:` list",
            );
            continue;
        }
        let root = match serde_saphyr::from_str_with_options::<Spanned<Node>>(text, yaml_options())
        {
            Ok(root) => root,
            Err(err) => {
                diags.yaml_error(&file, text, &err);
                continue;
            }
        };
        for rule_doc in parse::rules(&file, &root, diags) {
            if let Some(id) = &rule_doc.id {
                let at = pos(id);
                if let Some((first_file, first_at)) = ids.get(&id.value) {
                    diags.error(
                        &file,
                        at,
                        format!(
                            "duplicate rule id `{}`: first defined at {}:{first_at}",
                            id.value,
                            first_file.display()
                        ),
                    );
                } else {
                    ids.insert(id.value.clone(), (file.clone(), at));
                }
            }
            if let Some(mut rule) = compile_rule(&file, &rule_doc, diags) {
                rule.order = u32::try_from(rules.len()).unwrap_or(u32::MAX);
                rules.push(rule);
            }
        }
    }
    rules
}

/// Parses a list of names against `known`, reporting unknown and repeated
/// ones; returns the set as bits and whether every name was known.
struct Names<'a> {
    file: &'a Path,
    silenced: u16,
}

impl Names<'_> {
    fn parse<T: Copy>(
        &self,
        diags: &mut Diagnostics,
        list: &[Spanned<String>],
        what: &str,
        lookup: impl Fn(&str) -> Option<T>,
        bit: impl Fn(T) -> u16,
        unknown: impl Fn(&str) -> String,
    ) -> (u16, bool) {
        let (mut bits, mut ok) = (0u16, true);
        for name in list {
            match lookup(&name.value) {
                Some(item) if bits & bit(item) != 0 => {
                    if self.silenced & Lint::DuplicateEntry.bit() == 0 {
                        diags.lint(
                            self.file,
                            pos(name),
                            Lint::DuplicateEntry,
                            format!("{what} `{}` is listed twice", name.value),
                        );
                    }
                }
                Some(item) => bits |= bit(item),
                None => {
                    ok = false;
                    diags.error(self.file, pos(name), unknown(&name.value));
                }
            }
        }
        (bits, ok)
    }
}

/// Compiles one rule; `None` if it has errors (all of them are reported).
fn compile_rule(file: &Arc<Path>, doc: &RuleDoc, diags: &mut Diagnostics) -> Option<Rule> {
    // Fields the parser could not read are already reported.
    let mut ok = doc.id.is_some()
        && doc.methods.is_some()
        && doc.path.is_some()
        && doc.callers.is_some()
        && doc.mode.is_some();
    let mut error = |diags: &mut Diagnostics, at: Position, message: String| {
        ok = false;
        diags.error(file, at, message);
    };

    let mut names_ok = true;
    let mut silenced = 0u16;
    if let Some(list) = &doc.allow_warnings {
        for code in &list.value {
            match Lint::parse(&code.value) {
                Some(lint) => silenced |= lint.bit(),
                None => error(
                    diags,
                    pos(code),
                    format!(
                        "unknown warning code `{}` in `allow_warnings`: expected {}",
                        code.value,
                        Lint::codes()
                    ),
                ),
            }
        }
    }
    let names = Names { file, silenced };

    if let Some(id) = &doc.id {
        let valid_id = !id.value.is_empty()
            && id
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid_id {
            error(
                diags,
                pos(id),
                format!("rule id `{}` must be non-empty [A-Za-z0-9_.-]", id.value),
            );
        }
    }

    let mut methods = 0u8;
    if let Some(list) = &doc.methods {
        if list.value.is_empty() {
            error(
                diags,
                pos(list),
                "`methods` needs at least one method".into(),
            );
        }
        let (bits, known) = names.parse(
            diags,
            &list.value,
            "method",
            |m| METHODS.iter().position(|known| known.as_str() == m),
            |i| 1 << i,
            |m| format!("unknown method `{m}`: expected GET, HEAD, POST, PUT, PATCH or DELETE"),
        );
        names_ok &= known;
        methods = bits as u8;
    }

    let template = doc
        .path
        .as_ref()
        .and_then(|path| match PathTemplate::parse(&path.value) {
            Ok(template) => Some(template),
            Err(messages) => {
                for message in messages {
                    error(diags, pos(path), message);
                }
                None
            }
        });

    let mut callers = 0u8;
    if let Some(list) = &doc.callers {
        if list.value.is_empty() {
            error(
                diags,
                pos(list),
                "`callers` needs at least one of VISITOR, MEMBER, USER".into(),
            );
        }
        let (bits, known) = names.parse(
            diags,
            &list.value,
            "caller",
            CallerType::parse,
            |t| u16::from(caller_bit(t)),
            |c| format!("unknown caller type `{c}`: expected VISITOR, MEMBER or USER"),
        );
        names_ok &= known;
        callers = bits as u8;
    }

    let mode = doc
        .mode
        .as_ref()
        .and_then(|mode| match mode.value.as_str() {
            "elevate" => Some(Mode::Elevate),
            "pass_through" => Some(Mode::PassThrough),
            other => {
                error(
                    diags,
                    pos(mode),
                    format!("unknown mode `{other}`: expected elevate or pass_through"),
                );
                None
            }
        });

    let mut sources = source_bit(IdentitySource::AccessToken);
    if let Some(list) = &doc.identity {
        if list.value.is_empty() {
            error(
                diags,
                pos(list),
                "`identity` needs at least one of access_token, signed_instance".into(),
            );
        }
        let (bits, known) = names.parse(
            diags,
            &list.value,
            "identity",
            |s| match s {
                "access_token" => Some(IdentitySource::AccessToken),
                "signed_instance" => Some(IdentitySource::SignedInstance),
                _ => None,
            },
            |s| u16::from(source_bit(s)),
            |s| format!("unknown identity source `{s}`: expected access_token or signed_instance"),
        );
        names_ok &= known;
        sources = bits as u8;
        if mode == Some(Mode::PassThrough) {
            if let Some(at) = list.value.iter().find(|s| s.value == "signed_instance") {
                error(
                    diags,
                    pos(at),
                    "`pass_through` cannot accept `signed_instance`: a signed instance carries no caller token to pass through".into(),
                );
            }
        }
    }

    let condition = match &doc.when {
        None => Condition::All(Vec::new()),
        Some(node) => {
            let mut when = WhenCompiler {
                file,
                diags,
                template: template.as_ref(),
                ok: true,
            };
            let condition = when.map(node);
            names_ok &= when.ok;
            condition
        }
    };

    let mut query_names: Vec<String> = Vec::new();
    condition.query_names(&mut |name| query_names.push(name.to_owned()));
    if let Some(list) = &doc.allow_query {
        if mode == Some(Mode::PassThrough) {
            error(
                diags,
                pos(list),
                "`allow_query` applies to `elevate` rules only: a pass-through request may carry any query parameter".into(),
            );
        }
        for name in &list.value {
            if name.value.is_empty() || name.value == "instance" {
                error(
                    diags,
                    pos(name),
                    format!(
                        "`{}` cannot be allowed: the signed `instance` is a credential and is never forwarded",
                        name.value
                    ),
                );
            }
            query_names.push(name.value.clone());
        }
    }

    let (Some(id), Some(template), Some(mode), true) = (&doc.id, template, mode, ok && names_ok)
    else {
        return None;
    };
    Some(Rule {
        id: id.value.clone(),
        description: doc.description.clone(),
        mode,
        methods,
        reads_body: condition.reads_body(),
        query_names: query_names.into(),
        template,
        callers,
        sources,
        condition,
        allowed_warnings: silenced,
        file: file.clone(),
        at: pos(id),
        order: 0,
    })
}
