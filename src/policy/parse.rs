//! Turns a policy file's YAML tree into [`RuleDoc`]s.
//!
//! Walking the tree by hand, instead of deriving serde structs, is what lets
//! `check` report every unknown key and every missing or mistyped field of
//! every rule in one run, each at its own line and column.

use std::path::Path;

use serde_saphyr::Spanned;

use super::diagnostics::{Diagnostics, Position};
use super::lint::Lint;
use super::model::{Node, RuleDoc};

/// The keys a rule may have, in the order messages list them.
pub const RULE_KEYS: [&str; 9] = [
    "id",
    "description",
    "match",
    "callers",
    "mode",
    "identity",
    "when",
    "allow_query",
    "allow_warnings",
];

/// The keys of a rule's `match:` block.
pub const MATCH_KEYS: [&str; 2] = ["methods", "path"];

fn pos<T>(node: &Spanned<T>) -> Position {
    Position::from_location(&node.referenced)
}

/// Reads the rules of one parsed file, reporting every structural problem.
pub(crate) fn rules(file: &Path, root: &Spanned<Node>, diags: &mut Diagnostics) -> Vec<RuleDoc> {
    let mut reader = Reader { file, diags };
    let entries = match &root.value {
        Node::Map(entries) => entries,
        Node::Null => {
            reader.error(
                Position::START,
                "empty policy file: expected a top-level `rules:` list".into(),
            );
            return Vec::new();
        }
        other => {
            reader.error(
                pos(root),
                format!(
                    "expected a map with a top-level `rules:` list, found {}",
                    other.kind()
                ),
            );
            return Vec::new();
        }
    };
    let mut list = None;
    for (key, value) in entries {
        if key.value == "rules" {
            list = Some(value);
        } else {
            reader.error(
                pos(key),
                format!("unknown field `{}`, expected `rules`", key.value),
            );
        }
    }
    let Some(list) = list else {
        reader.error(pos(root), "missing field `rules`".into());
        return Vec::new();
    };
    match &list.value {
        Node::Seq(items) if !items.is_empty() => {
            items.iter().filter_map(|item| reader.rule(item)).collect()
        }
        Node::Seq(_) | Node::Null => {
            reader.diags.lint(
                file,
                Position::START,
                Lint::EmptyFile,
                "this file has no rules",
            );
            Vec::new()
        }
        other => {
            reader.error(
                pos(list),
                format!("`rules` takes a list of rules, found {}", other.kind()),
            );
            Vec::new()
        }
    }
}

struct Reader<'a> {
    file: &'a Path,
    diags: &'a mut Diagnostics,
}

impl Reader<'_> {
    fn error(&mut self, at: Position, message: String) {
        self.diags.error(self.file, at, message);
    }

    /// One rule; `None` only when the item is not a map at all.
    fn rule(&mut self, item: &Spanned<Node>) -> Option<RuleDoc> {
        let Node::Map(entries) = &item.value else {
            self.error(
                pos(item),
                format!(
                    "a rule is a map with `id`, `match`, `callers` and `mode`, found {}",
                    item.value.kind()
                ),
            );
            return None;
        };
        let fields = self.fields(entries, &RULE_KEYS);
        let [id, description, matcher, callers, mode, identity, when, allow_query, allow_warnings] =
            fields;
        let id = self
            .required(item, "id", id)
            .and_then(|n| self.string("id", n));
        let description = description
            .filter(|n| n.value != Node::Null)
            .and_then(|n| self.string("description", n))
            .map(|s| s.value);
        let (mut methods, mut path) = (None, None);
        if let Some(matcher) = self.required(item, "match", matcher) {
            match &matcher.value {
                Node::Map(entries) => {
                    let [m, p] = self.fields(entries, &MATCH_KEYS);
                    methods = self
                        .required(matcher, "methods", m)
                        .and_then(|n| self.strings("methods", n));
                    path = self
                        .required(matcher, "path", p)
                        .and_then(|n| self.string("path", n));
                }
                other => self.error(
                    pos(matcher),
                    format!(
                        "`match` takes a map like `{{ methods: [GET], path: /a }}`, found {}",
                        other.kind()
                    ),
                ),
            }
        }
        let doc = RuleDoc {
            at: item.referenced,
            id,
            description,
            methods,
            path,
            callers: self
                .required(item, "callers", callers)
                .and_then(|n| self.strings("callers", n)),
            mode: self
                .required(item, "mode", mode)
                .and_then(|n| self.string("mode", n)),
            identity: identity.and_then(|n| self.strings("identity", n)),
            when: when.cloned(),
            allow_query: allow_query.and_then(|n| self.strings("allow_query", n)),
            allow_warnings: allow_warnings.and_then(|n| self.strings("allow_warnings", n)),
        };
        Some(doc)
    }

    /// The values of the known keys of a map, in `known` order; unknown keys
    /// are reported.
    fn fields<'n, const N: usize>(
        &mut self,
        entries: &'n [(Spanned<String>, Spanned<Node>)],
        known: &[&str; N],
    ) -> [Option<&'n Spanned<Node>>; N] {
        let mut found = [None; N];
        for (key, value) in entries {
            match known.iter().position(|k| *k == key.value) {
                Some(i) => found[i] = Some(value),
                None => {
                    let hint = known
                        .iter()
                        .find(|k| edit_distance(k, &key.value) <= 2)
                        .map_or(String::new(), |k| format!(" (did you mean `{k}`?)"));
                    self.error(
                        pos(key),
                        format!(
                            "unknown field `{}`, expected one of {}{hint}",
                            key.value,
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        found
    }

    fn required<'n>(
        &mut self,
        parent: &Spanned<Node>,
        key: &str,
        node: Option<&'n Spanned<Node>>,
    ) -> Option<&'n Spanned<Node>> {
        if node.is_none() {
            self.error(pos(parent), format!("missing field `{key}`"));
        }
        node
    }

    /// A scalar read as text: YAML integers are accepted as written (`id: 7`).
    fn string(&mut self, key: &str, node: &Spanned<Node>) -> Option<Spanned<String>> {
        let text = match &node.value {
            Node::String(s) => s.clone(),
            Node::Int(i) => i.to_string(),
            Node::UInt(u) => u.to_string(),
            other => {
                self.error(
                    pos(node),
                    format!("`{key}` takes a string, found {}", other.kind()),
                );
                return None;
            }
        };
        Some(Spanned::new(text, node.referenced, node.defined))
    }

    /// A list of strings; a lone string is refused with the list spelling, so
    /// `callers: MEMBER` does not silently mean something else.
    fn strings(
        &mut self,
        key: &str,
        node: &Spanned<Node>,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        let items = match &node.value {
            Node::Seq(items) => items,
            Node::String(s) => {
                self.error(
                    pos(node),
                    format!("`{key}` takes a list, like `[{s}]`, found a string"),
                );
                return None;
            }
            other => {
                self.error(
                    pos(node),
                    format!("`{key}` takes a list, found {}", other.kind()),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.string(key, item) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then(|| Spanned::new(out, node.referenced, node.defined))
    }
}

/// Levenshtein distance, for "did you mean" hints on short keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}
