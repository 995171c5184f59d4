//! Allowlist policies: YAML rules saying which frontend calls the gateway
//! may forward, as whom, and under which conditions.
//!
//! # Precedence
//!
//! Rules are ordered: files sorted by file name (or in the order given to
//! [`PolicySet::from_sources`]), then rules in file order. For a request,
//! [`PolicySet::route`] returns every rule whose method and path template
//! match, in that order, and [`authorize`] takes the **first** of them that
//!
//! 1. admits the caller's type (`callers`) and identity source (`identity`), and
//! 2. whose `when` conditions all hold,
//!
//! and allows the request with that rule's [`Mode`]. A rule that matches the
//! route but does not admit the caller, or whose conditions fail, does not
//! block later rules. If no rule decides, the request is denied
//! ([`DenyReason`]). Nothing depends on hashing or load timing, so the same
//! policies and request always give the same decision.
//!
//! # Policy files
//!
//! ```yaml
//! rules:
//!   - id: member-reads-own-profile        # required, unique across files, [A-Za-z0-9_.-]+
//!     description: A member reads their own profile.   # optional
//!     match: { methods: [GET], path: "/members/v1/members/{memberId}" }
//!     callers: [MEMBER]                   # VISITOR | MEMBER | USER, at least one
//!     mode: elevate                       # elevate | pass_through
//!     identity: [access_token]            # default; or signed_instance (not with pass_through)
//!     when:                               # optional; every entry must hold, in this order
//!       path.memberId: { equals: caller.subjectId }
//!       any:
//!         - query.fieldsets: { absent: true }
//!         - query.fieldsets: { one_of: [PUBLIC, FULL] }
//!     allow_warnings: [shadowed-rule]     # optional; lint codes silenced for this rule
//! ```
//!
//! `policies/README.md` is the reference for policy authors, with checked
//! examples of every key, selector, operator and warning.
//!
//! - Path segments: literal, `{capture}` (one whole non-empty segment), a
//!   glob with `*`, `?` or `[...]` (one segment), or `**` last (one or more
//!   segments). `{`/`}` elsewhere, empty segments and `.`/`..` are errors.
//! - `when` maps a selector to operators, or `all: [maps]`, `any: [maps]`,
//!   `not: map`. Selectors: `path.<capture>`, `query.<name>`,
//!   `header.<name>`, `body.<dotted.path>` (digit segments index arrays),
//!   `caller.subjectId|subjectType|instanceId|siteId`. The credentials
//!   `header.authorization` and `query.instance` are refused.
//! - Operators: `equals` (scalar, or `caller.<field>`), `one_of`, `prefix`,
//!   `regex` (whole value), `exists: true`, `absent: true`, `min`, `max`.
//! - Fail closed: a missing value, JSON `null`, a wrong type or a non-UTF-8
//!   header fails every operator but `absent`. Repeated query parameters and
//!   headers must all pass. Body comparisons are type-aware (`"5"` is not `5`).
//! - YAML scalars are read as written: only `true`/`false` are booleans
//!   (`NO` is a string), and `0123` is a string.
//!
//! # Pieces
//!
//! - [`model`] and [`parse`]: the YAML as written, read rule by rule so that
//!   every unknown key or missing field is reported, not only the first.
//! - [`template`]: path templates and the route index.
//! - `when` / `types` / `compile`: checks everything and reports every
//!   problem as a [`Diagnostic`] at its `file:line:col`.
//! - [`lint`]: warnings with stable codes (shadowed rules, conflicting modes,
//!   elevated visitors and wildcards, ...), silenced per rule.
//! - [`condition`] and [`eval`]: compiled conditions and the pure evaluator.

pub mod condition;
pub mod diagnostics;
pub mod eval;
pub mod lint;
pub mod model;
pub mod parse;
pub mod template;

mod compile;
mod selector;
mod types;
mod when;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Method;

pub use self::condition::{Condition, Seen, Test};
pub use self::diagnostics::{Diagnostic, Position, Severity};
pub use self::eval::{
    authorize, authorize_observed, Decision, DenyReason, NoTrace, Observer, QueryPair, RequestView,
    RuleOutcome,
};
pub use self::lint::Lint;
pub use self::template::PathTemplate;

use self::compile::{caller_bit, source_bit};
use self::diagnostics::Diagnostics;
use self::template::{RouteIndex, METHODS};
use crate::caller::{CallerType, IdentitySource};

/// How an allowed request is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// With the app's token for the caller's own instance.
    Elevate,
    /// As the caller.
    PassThrough,
}

impl Mode {
    /// The mode as policies spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Elevate => "elevate",
            Mode::PassThrough => "pass_through",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub(crate) id: String,
    pub(crate) description: Option<String>,
    pub(crate) mode: Mode,
    /// Bit `i` set: `METHODS[i]` is allowed.
    pub(crate) methods: u8,
    pub(crate) template: PathTemplate,
    /// Bits from `caller_bit`.
    pub(crate) callers: u8,
    /// Bits from `source_bit`.
    pub(crate) sources: u8,
    /// Always an [`Condition::All`]; empty when the rule has no `when`.
    pub(crate) condition: Condition,
    pub(crate) reads_body: bool,
    /// The query parameters an elevated request may carry: those the
    /// conditions read, and `allow_query`.
    pub(crate) query_names: Box<[String]>,
    /// Bits from [`Lint::bit`]: warnings silenced with `allow_warnings`.
    pub(crate) allowed_warnings: u16,
    pub(crate) file: Arc<Path>,
    pub(crate) at: Position,
    /// Position in precedence order.
    pub(crate) order: u32,
}

impl Rule {
    /// The rule's unique id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The author's description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// How an allowed request is forwarded.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether a condition reads the JSON body, so the gateway must buffer it.
    pub fn reads_body(&self) -> bool {
        self.reads_body
    }

    /// Whether an elevated request may carry the query parameter `name`.
    /// Elevation acts with the app's permissions, and a Wix API may read any
    /// parameter it is sent, so an elevated request may carry only the ones
    /// the rule names; a pass-through request acts as the caller and may
    /// carry any. `instance` is never forwarded, so it is always allowed.
    pub fn allows_query(&self, name: &str) -> bool {
        self.mode == Mode::PassThrough
            || name == "instance"
            || self
                .query_names
                .iter()
                .any(|allowed| crate::field_name::same(allowed, name))
    }

    /// Whether the rule admits this caller type proven this way.
    pub fn admits(&self, caller_type: CallerType, source: IdentitySource) -> bool {
        self.callers & caller_bit(caller_type) != 0 && self.accepts_source(source)
    }

    /// Whether the rule accepts callers proven this way, whatever their type.
    pub fn accepts_source(&self, source: IdentitySource) -> bool {
        self.sources & source_bit(source) != 0
    }

    /// The path template.
    pub fn template(&self) -> &PathTemplate {
        &self.template
    }

    /// The methods the rule matches.
    pub fn methods(&self) -> impl Iterator<Item = &'static Method> + '_ {
        METHODS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.methods & (1 << i) != 0)
            .map(|(_, m)| m)
    }

    /// The compiled `when` conditions (an empty [`Condition::All`] if none).
    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    /// The file the rule is in.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where the rule's `id` is written.
    pub fn position(&self) -> Position {
        self.at
    }
}

/// The rules a request routed to, in precedence order: inline for the
/// usual few, without an allocation.
pub type RouteMatches<'a> = smallvec::SmallVec<[RouteMatch<'a>; 4]>;

/// A rule whose method and path matched a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    /// The rule.
    pub rule: &'a Rule,
}

impl<'a> RouteMatch<'a> {
    /// The template's captures in `segments`, the ones this match was
    /// routed on, in template order: (name, decoded segment).
    pub fn captures<'s>(&self, segments: &[&'s str]) -> Vec<(&'a str, &'s str)> {
        self.rule.template.captures(segments)
    }
}

/// Whether a request whose routed rules are `matches` may be identified by
/// `source`: a signed instance counts only where one of them takes it.
pub fn accepted_by_any(matches: &[RouteMatch<'_>], source: IdentitySource) -> bool {
    matches.iter().any(|m| m.rule.accepts_source(source))
}

/// Whether the body must be read to decide: some routed rule that could
/// admit `caller` inspects it. Otherwise the body streams on unread.
pub fn body_needed(matches: &[RouteMatch<'_>], caller: &crate::caller::Caller) -> bool {
    matches
        .iter()
        .any(|m| m.rule.reads_body() && m.rule.admits(caller.subject_type, caller.source))
}

/// A compiled, immutable set of rules with its route index.
#[derive(Debug)]
pub struct PolicySet {
    rules: Vec<Rule>,
    index: RouteIndex,
    warnings: Vec<Diagnostic>,
    version: String,
}

impl PolicySet {
    /// Loads a policy file, or every `*.yaml` / `*.yml` file directly in a
    /// folder (not in subfolders, not hidden ones), sorted by file name.
    ///
    /// On failure returns every diagnostic found, warnings included.
    pub fn load(path: &Path) -> Result<PolicySet, Vec<Diagnostic>> {
        let (sources, diags) = read_sources(path);
        Self::compile(&sources, diags)
    }

    /// [`PolicySet::load`] for sources already read with [`PolicySource::read`],
    /// so that a caller can also hash or show exactly the text it compiled.
    pub fn load_source(source: &PolicySource) -> Result<PolicySet, Vec<Diagnostic>> {
        let mut diags = Diagnostics::default();
        for problem in &source.problems {
            diags.push(
                &problem.file,
                Position {
                    line: problem.line,
                    column: problem.column,
                },
                problem.severity,
                problem.message.clone(),
            );
        }
        Self::compile(&source.files, diags)
    }

    /// Compiles policies from memory, in the order given (file names are
    /// only used in diagnostics).
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<PolicySet, Vec<Diagnostic>> {
        Self::compile(sources, Diagnostics::default())
    }

    fn compile(
        sources: &[(PathBuf, String)],
        mut diags: Diagnostics,
    ) -> Result<PolicySet, Vec<Diagnostic>> {
        let rules = compile::compile_sources(sources, &mut diags);
        lint::run(&rules, &mut diags);
        let has_errors = diags.has_errors();
        let mut diags = diags.into_vec();
        // Checks run field by field and across rules; readers want source order.
        // Problems with no source (a folder, an unreadable file) come first.
        diags.sort_by_key(|d| {
            let file = sources.iter().position(|(path, _)| *path == d.file);
            (file, d.line, d.column)
        });
        if has_errors {
            return Err(diags);
        }
        let mut index = RouteIndex::default();
        for rule in &rules {
            index.insert(rule.methods, &rule.template, rule.order);
        }
        index.finish();
        Ok(PolicySet {
            rules,
            index,
            warnings: diags,
            version: sources_version(sources),
        })
    }

    /// This set, if it may serve traffic: a running gateway never starts
    /// serving a set `check` would flag, so warnings no rule silenced with
    /// `allow_warnings` refuse it just as errors do.
    pub fn into_servable(self) -> Result<PolicySet, Vec<Diagnostic>> {
        if self.warnings.is_empty() {
            Ok(self)
        } else {
            Err(self.warnings)
        }
    }

    /// A short hash of the sources (file names and contents) this set was
    /// compiled from: two sets with the same version hold the same rules.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The rules, in precedence order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Warnings found while loading (probable mistakes that do not stop it),
    /// each with its [`Lint`] code.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Every rule whose method and path template match, in precedence order.
    ///
    /// `segments` are the decoded path segments (`/a/b` is `["a", "b"]`). A
    /// method no rule can name, or an empty segment, matches nothing.
    pub fn route(&self, method: &Method, segments: &[&str]) -> RouteMatches<'_> {
        let mut matches = RouteMatches::new();
        self.index.lookup(method, segments, &mut |order| {
            matches.push(RouteMatch {
                rule: &self.rules[order as usize],
            });
        });
        matches.sort_unstable_by_key(|m| m.rule.order);
        matches
    }
}

/// The text of every policy file under a path, as [`PolicySet::load`] reads it.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// Each file and its text, in precedence order.
    pub files: Vec<(PathBuf, String)>,
    /// Problems reading them (a missing path, an unreadable file, a folder
    /// with no policy files).
    pub problems: Vec<Diagnostic>,
}

impl PolicySource {
    /// Reads the policy file at `path`, or every `*.yaml` / `*.yml` file
    /// directly in the folder `path`, sorted by file name.
    pub fn read(path: &Path) -> PolicySource {
        let (files, diags) = read_sources(path);
        PolicySource {
            files,
            problems: diags.into_vec(),
        }
    }
}

fn read_sources(path: &Path) -> (Vec<(PathBuf, String)>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut sources = Vec::new();
    for file in policy_files(path, &mut diags) {
        match std::fs::read_to_string(&file) {
            Ok(text) => sources.push((file, text)),
            Err(e) => diags.error(&file, Position::START, format!("cannot read: {e}")),
        }
    }
    (sources, diags)
}

/// The files [`PolicySet::load`] reads for `path`, sorted by file name.
fn policy_files(path: &Path, diags: &mut Diagnostics) -> Vec<PathBuf> {
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            diags.error(path, Position::START, format!("cannot read: {e}"));
            return Vec::new();
        }
    };
    if !metadata.is_dir() {
        return vec![path.to_path_buf()];
    }
    let files = match yaml_files_in(path) {
        Ok(files) => files,
        Err(e) => {
            diags.error(path, Position::START, format!("cannot read folder: {e}"));
            return Vec::new();
        }
    };
    if files.is_empty() {
        diags.error(
            path,
            Position::START,
            "no *.yaml or *.yml policy files in this folder: every request would be denied",
        );
    }
    files
}

/// The version of a set of sources: SHA-256 over each name and text,
/// length-prefixed so that no two different sets can run together.
pub fn sources_version(sources: &[(PathBuf, String)]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (path, text) in sources {
        let name = path.to_string_lossy();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((text.len() as u64).to_le_bytes());
        hasher.update(text.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The `*.yaml` / `*.yml` files directly in `dir`, sorted by name. Like a
/// shell's `*.yaml`, hidden files (editors' locks and backups) stay out.
pub fn yaml_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.')
                && (name.ends_with(".yaml") || name.ends_with(".yml"))
                && p.is_file()
        })
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}
