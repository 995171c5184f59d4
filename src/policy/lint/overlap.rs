//! How two rules relate: whether one's route covers or overlaps the other's,
//! and whether one's conditions hold whenever the other's do.
//!
//! Everything here errs towards "no": a relation is only claimed when it
//! holds for every request.
//!
//! - Routes: a capture covers any one segment, a glob covers the literals it
//!   matches and the identical glob, `**` covers one or more segments. Two
//!   different globs are never assumed to overlap.
//! - Conditions: A's conditions are implied by B's when every entry at the
//!   top level of A's `when` (a test, or a whole `all`/`any`/`not` group)
//!   also appears, written the same way, at the top level of B's. A `path.`
//!   test is compared by the segment it reads, not by the capture's name.

use super::super::condition::{Condition, Selector};
use super::super::template::SegmentRef;
use super::super::Rule;

/// A rule with what the cross-rule lints compare, computed once.
pub(super) struct RuleShape<'r> {
    pub(super) rule: &'r Rule,
    segments: Vec<SegmentRef<'r>>,
    /// The top-level entries of `when`, each as a canonical text.
    conditions: Vec<String>,
}

impl<'r> RuleShape<'r> {
    pub(super) fn new(rule: &'r Rule) -> Self {
        let segments: Vec<SegmentRef<'r>> = rule.template.segment_refs().collect();
        let capture_at: Vec<usize> = segments
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, SegmentRef::Capture))
            .map(|(i, _)| i)
            .collect();
        let conditions = match &rule.condition {
            Condition::All(items) => items.iter().map(|c| canonical(c, &capture_at)).collect(),
            other => vec![canonical(other, &capture_at)],
        };
        Self {
            rule,
            segments,
            conditions,
        }
    }

    /// Whether the path ends in `**` or a glob.
    pub(super) fn ends_in_wildcard(&self) -> bool {
        matches!(
            self.segments.last(),
            Some(SegmentRef::Rest | SegmentRef::Glob(..))
        )
    }

    /// Whether `self`, coming first, decides every request `later` could allow.
    pub(super) fn shadows(&self, later: &RuleShape<'_>) -> bool {
        let (a, b) = (self.rule, later.rule);
        a.methods & b.methods == b.methods
            && a.callers & b.callers == b.callers
            && a.sources & b.sources == b.sources
            && covers(&self.segments, &later.segments)
            && self.implied_by(later)
    }

    /// Whether `self`, coming first with another mode, decides some requests
    /// `later` would allow: their routes and callers overlap and `self`'s
    /// conditions hold wherever `later`'s do.
    pub(super) fn conflicts(&self, later: &RuleShape<'_>) -> bool {
        let (a, b) = (self.rule, later.rule);
        a.mode != b.mode
            && a.methods & b.methods != 0
            && a.callers & b.callers != 0
            && a.sources & b.sources != 0
            && overlap(&self.segments, &later.segments)
            && self.implied_by(later)
    }

    fn implied_by(&self, later: &RuleShape<'_>) -> bool {
        self.conditions.iter().all(|c| later.conditions.contains(c))
    }
}

/// A condition as text that is equal for two conditions written the same
/// way; path captures are named by segment position.
fn canonical(condition: &Condition, capture_at: &[usize]) -> String {
    let group = |name: &str, items: &[Condition]| {
        let inner: Vec<String> = items.iter().map(|c| canonical(c, capture_at)).collect();
        format!("{name}({})", inner.join(", "))
    };
    match condition {
        Condition::All(items) => group("all", items),
        Condition::Any(items) => group("any", items),
        Condition::Not(inner) => format!("not({})", canonical(inner, capture_at)),
        Condition::Test(test) => {
            let selector = match &test.selector {
                Selector::Path(i) => format!("path@{}", capture_at.get(*i).unwrap_or(&usize::MAX)),
                _ => test.selector_text.clone(),
            };
            format!("{selector} {}", test.operator)
        }
    }
}

/// Whether every path `b` matches, `a` matches.
fn covers(a: &[SegmentRef<'_>], b: &[SegmentRef<'_>]) -> bool {
    for (i, sa) in a.iter().enumerate() {
        if matches!(sa, SegmentRef::Rest) {
            return b.len() > i;
        }
        match b.get(i) {
            None | Some(SegmentRef::Rest) => return false,
            Some(sb) if !segment_covers(sa, sb) => return false,
            Some(_) => {}
        }
    }
    a.len() == b.len()
}

fn segment_covers(a: &SegmentRef<'_>, b: &SegmentRef<'_>) -> bool {
    match (a, b) {
        (SegmentRef::Capture, _) => true,
        (SegmentRef::Literal(x), SegmentRef::Literal(y)) => x == y,
        (SegmentRef::Glob(_, glob), SegmentRef::Literal(y)) => glob.is_match(y),
        (SegmentRef::Glob(p, _), SegmentRef::Glob(q, _)) => p == q,
        _ => false,
    }
}

/// Whether some path matches both `a` and `b`.
fn overlap(a: &[SegmentRef<'_>], b: &[SegmentRef<'_>]) -> bool {
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(SegmentRef::Rest), Some(_)) | (Some(_), Some(SegmentRef::Rest)) => return true,
            (Some(sa), Some(sb)) if segments_overlap(sa, sb) => {}
            _ => return false,
        }
    }
    true
}

fn segments_overlap(a: &SegmentRef<'_>, b: &SegmentRef<'_>) -> bool {
    match (a, b) {
        (SegmentRef::Capture, _) | (_, SegmentRef::Capture) => true,
        (SegmentRef::Literal(x), SegmentRef::Literal(y)) => x == y,
        (SegmentRef::Glob(_, glob), SegmentRef::Literal(y))
        | (SegmentRef::Literal(y), SegmentRef::Glob(_, glob)) => glob.is_match(y),
        (SegmentRef::Glob(p, _), SegmentRef::Glob(q, _)) => p == q,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PathTemplate;

    fn check(relation: fn(&[SegmentRef<'_>], &[SegmentRef<'_>]) -> bool, a: &str, b: &str) -> bool {
        let (a, b) = (
            PathTemplate::parse(a).unwrap(),
            PathTemplate::parse(b).unwrap(),
        );
        let (a, b): (Vec<_>, Vec<_>) = (a.segment_refs().collect(), b.segment_refs().collect());
        relation(&a, &b)
    }

    #[test]
    fn coverage_of_templates() {
        for (a, b, want) in [
            ("/a/{x}", "/a/{y}", true),
            ("/a/{x}", "/a/b", true),
            ("/a/b", "/a/{x}", false),
            ("/a/**", "/a/b/c", true),
            ("/a/**", "/a", false),
            ("/a/**", "/a/{x}/**", true),
            ("/a/{x}/**", "/a/**", false),
            ("/a/item-*", "/a/item-1", true),
            ("/a/item-*", "/a/other", false),
            ("/a/item-*", "/a/item-*", true),
            ("/a/item-*", "/a/{x}", false),
            ("/a/{x}", "/a/item-*", true),
            ("/a/{x}", "/a/{x}/b", false),
        ] {
            assert_eq!(check(covers, a, b), want, "{a} covers {b}");
        }
    }

    #[test]
    fn overlap_of_templates() {
        for (a, b, want) in [
            ("/a/b", "/a/{x}", true),
            ("/a/{x}", "/a/b", true),
            ("/a/b", "/a/c", false),
            ("/a/**", "/a/b/c", true),
            ("/a/b/c", "/a/**", true),
            ("/a/**", "/a", false),
            ("/a/**", "/b/**", false),
            ("/a/item-*", "/a/item-7", true),
            ("/a/item-*", "/a/x-*", false),
            ("/a/{x}", "/a/{x}/b", false),
        ] {
            assert_eq!(check(overlap, a, b), want, "{a} overlaps {b}");
        }
    }
}
