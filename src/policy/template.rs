//! Path templates (`/members/v1/members/{memberId}`) and the route index that
//! finds every rule matching a request without testing rules one by one.
//!
//! The index is a segment trie per method. A node has sorted literal edges
//! (binary search, no hashing), one shared capture edge (capture names only
//! matter per rule, so `/a/{x}` and `/a/{y}` share a node), glob edges keyed
//! by pattern, and the rules that end there or continue with `**`. A lookup
//! visits each trie node at most once, so its cost grows with path depth and
//! with how many templates overlap, not with the number of rules.

use std::collections::HashMap;

use globset::{GlobBuilder, GlobMatcher};
use http::Method;

/// The methods a rule may name, in the order of the index's per-method tries.
pub(crate) const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Position of `method` in [`METHODS`], if a rule can name it.
pub(crate) fn method_index(method: &Method) -> Option<usize> {
    METHODS.iter().position(|m| m == method)
}

/// One segment of a compiled template.
#[derive(Debug, Clone)]
enum Segment {
    /// Matches exactly this text.
    Literal(Box<str>),
    /// Matches any one non-empty segment and records it under this name.
    Capture(Box<str>),
    /// Matches one segment against a glob (pattern text kept for the index).
    Glob(Box<str>, GlobMatcher),
    /// `**`, last only: one or more remaining segments.
    Rest,
}

/// A read-only view of one template segment, for the lints that compare
/// templates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SegmentRef<'a> {
    /// Exactly this text.
    Literal(&'a str),
    /// Any one segment.
    Capture,
    /// One segment matching the glob (pattern text and matcher).
    Glob(&'a str, &'a GlobMatcher),
    /// `**`: one or more remaining segments.
    Rest,
}

/// A compiled path template.
#[derive(Debug, Clone)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
}

impl PathTemplate {
    /// Parses a template, reporting every bad segment rather than the first.
    pub fn parse(text: &str) -> Result<PathTemplate, Vec<String>> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(vec![format!("path `{text}` must start with `/`")]);
        };
        let mut errors = Vec::new();
        let mut segments = Vec::new();
        let parts: Vec<&str> = rest.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let is_last = i + 1 == parts.len();
            match parse_segment(part, is_last) {
                Ok(segment) => segments.push(segment),
                Err(message) => errors.push(format!("path `{text}`: {message}")),
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for segment in &segments {
            if let Segment::Capture(name) = segment {
                if seen.contains(&name.as_ref()) {
                    errors.push(format!("path `{text}`: capture `{{{name}}}` appears twice"));
                }
                seen.push(name);
            }
        }
        if errors.is_empty() {
            Ok(PathTemplate {
                text: text.to_owned(),
                segments,
            })
        } else {
            Err(errors)
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Capture names, in template order (the order of [`super::RouteMatch::captures`]).
    pub fn capture_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.capture_slots().map(|(_, name)| name)
    }

    /// Each capture, in template order, with the position of the request
    /// segment it takes: every template segment before a `**` takes
    /// exactly one.
    fn capture_slots(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.segments
            .iter()
            .enumerate()
            .filter_map(|(at, segment)| match segment {
                Segment::Capture(name) => Some((at, name.as_ref())),
                _ => None,
            })
    }

    /// Index of a capture among the captures, if the template has it.
    pub(crate) fn capture_index(&self, name: &str) -> Option<usize> {
        self.capture_names().position(|n| n == name)
    }

    /// Whether the template matches these decoded segments, by a direct walk.
    ///
    /// The index gives the same answer faster; this is the reference it is
    /// tested against.
    pub fn matches(&self, segments: &[&str]) -> bool {
        if segments.iter().any(|s| s.is_empty()) {
            return false;
        }
        let mut rest = segments;
        for segment in &self.segments {
            let Some((head, tail)) = rest.split_first() else {
                return false;
            };
            let ok = match segment {
                Segment::Literal(text) => text.as_ref() == *head,
                Segment::Capture(_) => is_plain(head),
                Segment::Glob(_, glob) => is_plain(head) && glob.is_match(head),
                Segment::Rest => return rest.iter().all(|s| is_plain(s)),
            };
            if !ok {
                return false;
            }
            rest = tail;
        }
        rest.is_empty()
    }

    /// The captured values for segments this template matched, borrowed
    /// from the request.
    pub(crate) fn captures<'s>(&self, segments: &[&'s str]) -> Vec<(&str, &'s str)> {
        self.capture_slots()
            .filter_map(|(at, name)| Some((name, *segments.get(at)?)))
            .collect()
    }

    /// The value of capture `index` (in template order) in segments this
    /// template matched.
    pub(crate) fn capture<'s>(&self, index: usize, segments: &[&'s str]) -> Option<&'s str> {
        let (at, _) = self.capture_slots().nth(index)?;
        segments.get(at).copied()
    }

    /// The segments, for comparing templates.
    pub(crate) fn segment_refs(&self) -> impl Iterator<Item = SegmentRef<'_>> + '_ {
        self.segments.iter().map(|segment| match segment {
            Segment::Literal(text) => SegmentRef::Literal(text),
            Segment::Capture(_) => SegmentRef::Capture,
            Segment::Glob(text, glob) => SegmentRef::Glob(text, glob),
            Segment::Rest => SegmentRef::Rest,
        })
    }
}

fn parse_segment(part: &str, is_last: bool) -> Result<Segment, String> {
    if part.is_empty() {
        return Err("empty segment (`//` or a trailing `/`)".into());
    }
    if part == "**" {
        return if is_last {
            Ok(Segment::Rest)
        } else {
            Err("`**` is only allowed as the last segment".into())
        };
    }
    if part.contains("**") {
        return Err(format!("`{part}`: `**` must be a whole segment"));
    }
    if part == "." || part == ".." {
        // The gateway rejects dot segments before routing, so this could never match.
        return Err(format!("`{part}` segments never reach the router"));
    }
    if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        return if is_capture_name(name) {
            Ok(Segment::Capture(name.into()))
        } else {
            Err(format!(
                "`{part}`: capture names are [A-Za-z_][A-Za-z0-9_]*"
            ))
        };
    }
    if part.contains(['{', '}']) {
        return Err(format!(
            "`{part}`: `{{` and `}}` only appear around a whole-segment capture like `{{id}}`"
        ));
    }
    if part.contains(['*', '?', '[']) {
        let glob = GlobBuilder::new(part)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("`{part}`: invalid glob: {}", e.kind()))?;
        return Ok(Segment::Glob(part.into(), glob.compile_matcher()));
    }
    Ok(Segment::Literal(part.into()))
}

/// Whether `name` is a valid capture name.
pub(crate) fn is_capture_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The route index: one segment trie per method in [`METHODS`].
#[derive(Debug, Default)]
pub(crate) struct RouteIndex {
    roots: [TrieNode; 6],
}

#[derive(Debug, Default)]
struct TrieNode {
    /// Sorted by text, for binary search.
    literals: Vec<(Box<str>, TrieNode)>,
    /// For a node with many literal edges (thousands of services under `/`):
    /// text → position in `literals`, built by [`RouteIndex::finish`]. One
    /// hash per lookup instead of a binary search whose every probe is a
    /// likely cache miss, so lookups cost the same at 10 rules or 10,000.
    wide: Option<HashMap<Box<str>, usize>>,
    capture: Option<Box<TrieNode>>,
    globs: Vec<(Box<str>, GlobMatcher, TrieNode)>,
    /// Rules whose template ends with `**` after this node.
    rest: Vec<u32>,
    /// Rules whose template ends exactly at this node.
    end: Vec<u32>,
}

impl RouteIndex {
    /// Adds rule number `rule` under every method in `methods` (indexes into [`METHODS`]).
    pub(crate) fn insert(&mut self, methods: u8, template: &PathTemplate, rule: u32) {
        for (i, root) in self.roots.iter_mut().enumerate() {
            if methods & (1 << i) == 0 {
                continue;
            }
            let mut node = root;
            for segment in &template.segments {
                node = match segment {
                    Segment::Literal(text) => {
                        let at = match node
                            .literals
                            .binary_search_by(|(k, _)| k.as_ref().cmp(text.as_ref()))
                        {
                            Ok(at) => at,
                            Err(at) => {
                                node.literals
                                    .insert(at, (text.clone(), TrieNode::default()));
                                // Positions moved: `finish` rebuilds the map.
                                node.wide = None;
                                at
                            }
                        };
                        &mut node.literals[at].1
                    }
                    Segment::Capture(_) => node.capture.get_or_insert_with(Default::default),
                    Segment::Glob(text, glob) => {
                        let at = match node.globs.iter().position(|(k, _, _)| k == text) {
                            Some(at) => at,
                            None => {
                                node.globs
                                    .push((text.clone(), glob.clone(), TrieNode::default()));
                                node.globs.len() - 1
                            }
                        };
                        &mut node.globs[at].2
                    }
                    Segment::Rest => {
                        node.rest.push(rule);
                        break;
                    }
                };
            }
            if !matches!(template.segments.last(), Some(Segment::Rest)) {
                node.end.push(rule);
            }
        }
    }

    /// Indexes wide nodes by hash; call once every rule is inserted (lookups
    /// are correct without it, only slower on wide nodes).
    pub(crate) fn finish(&mut self) {
        for root in &mut self.roots {
            root.finish();
        }
    }

    /// Calls `found` with every rule whose method and template match, in no
    /// particular order (the caller sorts by precedence).
    pub(crate) fn lookup(&self, method: &Method, segments: &[&str], found: &mut impl FnMut(u32)) {
        let Some(i) = method_index(method) else {
            return;
        };
        // Empty segments are ambiguous and never match, the same as in `matches`.
        if segments.iter().any(|s| s.is_empty()) {
            return;
        }
        self.roots[i].walk(segments, found);
    }
}

impl TrieNode {
    /// Literal fan-out from which a hash map beats a binary search.
    const WIDE: usize = 32;

    fn finish(&mut self) {
        self.wide = (self.literals.len() >= Self::WIDE).then(|| {
            self.literals
                .iter()
                .enumerate()
                .map(|(at, (text, _))| (text.clone(), at))
                .collect()
        });
        for (_, node) in &mut self.literals {
            node.finish();
        }
        if let Some(node) = &mut self.capture {
            node.finish();
        }
        for (_, _, node) in &mut self.globs {
            node.finish();
        }
    }

    fn literal(&self, text: &str) -> Option<&TrieNode> {
        let at = match &self.wide {
            Some(wide) => *wide.get(text)?,
            None => self
                .literals
                .binary_search_by(|(k, _)| k.as_ref().cmp(text))
                .ok()?,
        };
        Some(&self.literals[at].1)
    }

    fn walk(&self, segments: &[&str], found: &mut impl FnMut(u32)) {
        let Some((head, tail)) = segments.split_first() else {
            self.end.iter().copied().for_each(&mut *found);
            return;
        };
        if !self.rest.is_empty() && segments.iter().all(|s| is_plain(s)) {
            self.rest.iter().copied().for_each(&mut *found);
        }
        if let Some(node) = self.literal(head) {
            node.walk(tail, found);
        }
        if !is_plain(head) {
            return;
        }
        if let Some(node) = &self.capture {
            node.walk(tail, found);
        }
        for (_, glob, node) in &self.globs {
            if glob.is_match(head) {
                node.walk(tail, found);
            }
        }
    }
}

/// Whether a captures, glob or `**` may take `segment`. A `:` in a segment
/// can select a different method on a gRPC-transcoded API (`{id}:export`),
/// so only a literal written with its `:` matches one.
fn is_plain(segment: &str) -> bool {
    !segment.contains(':')
}
