//! Compiles policy sources into rules: parses each file, checks every rule,
//! and collects every problem across all files before giving up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::condition::Condition;
use super::diagnostics::{Diagnostics, Position};
use super::model::{PolicyFile, RuleDoc};
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
        let doc = match serde_saphyr::from_str_with_options::<PolicyFile>(text, yaml_options()) {
            Ok(doc) => doc,
            Err(err) => {
                diags.yaml_error(&file, text, &err);
                continue;
            }
        };
        if doc.rules.is_empty() {
            diags.warning(&file, Position::START, "this file has no rules");
        }
        for rule_doc in &doc.rules {
            let at = pos(&rule_doc.id);
            let id = rule_doc.id.value.as_str();
            if let Some((first_file, first_at)) = ids.get(id) {
                diags.error(
                    &file,
                    at,
                    format!(
                        "duplicate rule id `{id}`: first defined at {}:{first_at}",
                        first_file.display()
                    ),
                );
            } else {
                ids.insert(id.to_owned(), (file.clone(), at));
            }
            if let Some(mut rule) = compile_rule(&file, rule_doc, diags) {
                rule.order = u32::try_from(rules.len()).unwrap_or(u32::MAX);
                rules.push(rule);
            }
        }
    }
    warn_shadowed(&rules, diags);
    rules
}

/// Compiles one rule; `None` if it has errors (all of them are reported).
fn compile_rule(file: &Arc<Path>, doc: &RuleDoc, diags: &mut Diagnostics) -> Option<Rule> {
    let mut ok = true;
    let mut error = |diags: &mut Diagnostics, at: Position, message: String| {
        ok = false;
        diags.error(file, at, message);
    };

    let id = &doc.id.value;
    let valid_id = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid_id {
        error(
            diags,
            pos(&doc.id),
            format!("rule id `{id}` must be non-empty [A-Za-z0-9_.-]"),
        );
    }

    let mut methods = 0u8;
    if doc.matcher.methods.value.is_empty() {
        error(
            diags,
            pos(&doc.matcher.methods),
            "`methods` needs at least one method".into(),
        );
    }
    for method in &doc.matcher.methods.value {
        match METHODS.iter().position(|m| m.as_str() == method.value) {
            Some(i) if methods & (1 << i) != 0 => {
                diags.warning(
                    file,
                    pos(method),
                    format!("method `{}` is listed twice", method.value),
                );
            }
            Some(i) => methods |= 1 << i,
            None => error(
                diags,
                pos(method),
                format!(
                    "unknown method `{}`: expected GET, HEAD, POST, PUT, PATCH or DELETE",
                    method.value
                ),
            ),
        }
    }

    let template = match PathTemplate::parse(&doc.matcher.path.value) {
        Ok(template) => Some(template),
        Err(messages) => {
            for message in messages {
                error(diags, pos(&doc.matcher.path), message);
            }
            None
        }
    };

    let mut callers = 0u8;
    if doc.callers.value.is_empty() {
        error(
            diags,
            pos(&doc.callers),
            "`callers` needs at least one of VISITOR, MEMBER, USER".into(),
        );
    }
    for caller in &doc.callers.value {
        match CallerType::parse(&caller.value) {
            Some(t) if callers & caller_bit(t) != 0 => {
                diags.warning(
                    file,
                    pos(caller),
                    format!("caller `{}` is listed twice", caller.value),
                );
            }
            Some(t) => callers |= caller_bit(t),
            None => error(
                diags,
                pos(caller),
                format!(
                    "unknown caller type `{}`: expected VISITOR, MEMBER or USER",
                    caller.value
                ),
            ),
        }
    }

    let mode = match doc.mode.value.as_str() {
        "elevate" => Some(Mode::Elevate),
        "pass_through" => Some(Mode::PassThrough),
        other => {
            error(
                diags,
                pos(&doc.mode),
                format!("unknown mode `{other}`: expected elevate or pass_through"),
            );
            None
        }
    };

    let mut sources = 0u8;
    match &doc.identity {
        None => sources = source_bit(IdentitySource::AccessToken),
        Some(list) => {
            if list.value.is_empty() {
                error(
                    diags,
                    pos(list),
                    "`identity` needs at least one of access_token, signed_instance".into(),
                );
            }
            for source in &list.value {
                let parsed = match source.value.as_str() {
                    "access_token" => Some(IdentitySource::AccessToken),
                    "signed_instance" => Some(IdentitySource::SignedInstance),
                    _ => None,
                };
                match parsed {
                    Some(s) if sources & source_bit(s) != 0 => {
                        diags.warning(file, pos(source), format!("identity `{}` is listed twice", source.value));
                    }
                    Some(IdentitySource::SignedInstance) if mode == Some(Mode::PassThrough) => error(
                        diags,
                        pos(source),
                        "`pass_through` cannot accept `signed_instance`: a signed instance carries no caller token to pass through".into(),
                    ),
                    Some(s) => sources |= source_bit(s),
                    None => error(
                        diags,
                        pos(source),
                        format!("unknown identity source `{}`: expected access_token or signed_instance", source.value),
                    ),
                }
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
            ok &= when.ok;
            condition
        }
    };

    let (Some(template), Some(mode), true) = (template, mode, ok) else {
        return None;
    };
    Some(Rule {
        id: id.clone(),
        description: doc.description.clone(),
        mode,
        methods,
        reads_body: condition.reads_body(),
        template,
        callers,
        sources,
        condition,
        file: file.clone(),
        at: pos(&doc.id),
        order: 0,
    })
}

/// Warns about a rule that an earlier, unconditional rule with the same route
/// shape, methods, callers and sources always decides first: it can never apply.
fn warn_shadowed(rules: &[Rule], diags: &mut Diagnostics) {
    let mut unconditional: HashMap<String, Vec<&Rule>> = HashMap::new();
    for rule in rules {
        let shape = rule.template.shape();
        let covered = |earlier: &&&Rule| {
            earlier.methods & rule.methods == rule.methods
                && earlier.callers & rule.callers == rule.callers
                && earlier.sources & rule.sources == rule.sources
        };
        if let Some(earlier) = unconditional
            .get(&shape)
            .and_then(|v| v.iter().find(covered))
        {
            diags.warning(
                &rule.file,
                rule.at,
                format!(
                    "rule `{}` never applies: rule `{}` ({}:{}) has no conditions and matches the same requests and callers first",
                    rule.id,
                    earlier.id,
                    earlier.file.display(),
                    earlier.at
                ),
            );
        }
        if matches!(&rule.condition, Condition::All(items) if items.is_empty()) {
            unconditional.entry(shape).or_default().push(rule);
        }
    }
}
