//! Compiled conditions and what each operator means for one value.
//!
//! Everything here fails closed: a value of the wrong type, a missing value or
//! a header that is not UTF-8 makes an operator false (only `absent` is true
//! for a missing value). How selectors find their values, and how repeated
//! query and header values combine, is in [`super::eval`].

use std::fmt;

use http::HeaderName;
use regex::Regex;
use serde_json::Value;

use super::diagnostics::Position;
use crate::caller::Caller;

/// A compiled condition tree. A rule's `when` map is an [`Condition::All`].
#[derive(Debug, Clone)]
pub enum Condition {
    /// Every condition holds (a `when` map, or `all: [...]`).
    All(Vec<Condition>),
    /// At least one condition holds (`any: [...]`).
    Any(Vec<Condition>),
    /// The condition does not hold (`not: {...}`).
    Not(Box<Condition>),
    /// One selector tested by one operator.
    Test(Test),
}

impl Condition {
    /// Calls `found` with the selector of every test in this tree.
    pub(crate) fn selectors<'c>(&'c self, found: &mut impl FnMut(&'c Selector)) {
        match self {
            Condition::All(items) | Condition::Any(items) => {
                items.iter().for_each(|item| item.selectors(found))
            }
            Condition::Not(inner) => inner.selectors(found),
            Condition::Test(test) => found(&test.selector),
        }
    }

    /// Calls `found` with every query parameter name a test in this tree
    /// reads.
    pub fn query_names<'c>(&'c self, found: &mut impl FnMut(&'c str)) {
        self.selectors(&mut |selector| {
            if let Selector::Query(name) = selector {
                found(name);
            }
        });
    }

    /// Whether any test in this tree reads the JSON body.
    pub fn reads_body(&self) -> bool {
        match self {
            Condition::All(items) | Condition::Any(items) => items.iter().any(Self::reads_body),
            Condition::Not(inner) => inner.reads_body(),
            Condition::Test(test) => matches!(test.selector, Selector::Body(_)),
        }
    }
}

/// One selector with one operator, e.g. `path.memberId equals caller.subjectId`.
///
/// Its `Display` is that text, for traces.
#[derive(Debug, Clone)]
pub struct Test {
    pub(crate) selector: Selector,
    pub(crate) operator: Operator,
    pub(crate) selector_text: String,
    pub(crate) at: Position,
}

impl Test {
    /// Where the operator was written.
    pub fn position(&self) -> Position {
        self.at
    }

    /// The selector as written, e.g. `query.fieldsets`.
    pub fn selector(&self) -> &str {
        &self.selector_text
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.selector_text, self.operator)
    }
}

/// Where a test reads its value from.
#[derive(Debug, Clone)]
pub(crate) enum Selector {
    /// A capture of the rule's template, by position in the captures.
    Path(usize),
    /// Every value of a query parameter.
    Query(String),
    /// Every value of a header.
    Header(HeaderName),
    /// A value inside the JSON body.
    Body(Vec<BodyStep>),
    /// A field of the verified caller.
    Caller(CallerField),
}

/// One step of a `body.` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyStep {
    /// An object member.
    Key(String),
    /// An array element (a segment made of digits).
    Index(usize),
}

/// A field of the verified [`Caller`] a condition may read or compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallerField {
    SubjectId,
    SubjectType,
    InstanceId,
    SiteId,
}

impl CallerField {
    /// Every field, with its spelling after `caller.`.
    pub(crate) const ALL: [(&'static str, CallerField); 4] = [
        ("subjectId", CallerField::SubjectId),
        ("subjectType", CallerField::SubjectType),
        ("instanceId", CallerField::InstanceId),
        ("siteId", CallerField::SiteId),
    ];

    pub(crate) fn parse(name: &str) -> Option<CallerField> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// The caller's value of this field; `siteId` may be absent.
    pub(crate) fn read(self, caller: &Caller) -> Option<&str> {
        match self {
            CallerField::SubjectId => Some(&caller.subject_id),
            CallerField::SubjectType => Some(caller.subject_type.as_str()),
            CallerField::InstanceId => Some(&caller.instance_id),
            CallerField::SiteId => caller.site_id.as_deref(),
        }
    }
}

/// A compiled operator with its operand.
#[derive(Debug, Clone)]
pub(crate) enum Operator {
    Equals(Operand),
    OneOf(Vec<Scalar>),
    Prefix(String),
    /// The anchored regex, and the pattern as written.
    Regex(Regex, String),
    Exists,
    Absent,
    Min(f64),
    Max(f64),
}

/// What `equals` compares with.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Literal(Scalar),
    Caller(CallerField),
}

/// A YAML scalar from a policy, with its string form computed once.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub(crate) kind: ScalarKind,
    /// What the scalar equals when compared with a string source.
    pub(crate) text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ScalarKind {
    Str,
    Bool(bool),
    /// Any YAML integer (`i64` or `u64`).
    Int(i128),
    Float(f64),
}

impl Scalar {
    pub(crate) fn string(text: String) -> Scalar {
        Scalar {
            kind: ScalarKind::Str,
            text,
        }
    }

    /// Type-aware equality with a JSON value: strings with strings, booleans
    /// with booleans, numbers numerically; anything else is unequal.
    fn equals_json(&self, value: &Value) -> bool {
        match (&self.kind, value) {
            (ScalarKind::Str, Value::String(s)) => *s == self.text,
            (ScalarKind::Bool(b), Value::Bool(v)) => b == v,
            (ScalarKind::Int(i), Value::Number(n)) => match json_int(n) {
                Some(v) => v == *i,
                // i128 -> f64 rounds only beyond 2^53, where a JSON float
                // cannot tell integers apart anyway.
                None => n.as_f64() == Some(*i as f64),
            },
            (ScalarKind::Float(f), Value::Number(n)) => n.as_f64() == Some(*f),
            _ => false,
        }
    }
}

fn json_int(n: &serde_json::Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// One value a selector produced, as an operator (and a trace) sees it.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// Nothing there (missing field, JSON `null`, no such parameter).
    Missing,
    /// A string from the path, query, a header or the caller.
    Str(&'a str),
    /// A JSON value from the body.
    Json(&'a Value),
    /// A header value that is not UTF-8: fails every operator but `exists`.
    NotUtf8,
}

impl Operator {
    /// Whether the operator holds for one value ([`Seen::Missing`] included).
    pub(crate) fn holds(&self, seen: Seen<'_>, caller: &Caller) -> bool {
        match (self, seen) {
            (Operator::Exists, seen) => !matches!(seen, Seen::Missing),
            (Operator::Absent, seen) => matches!(seen, Seen::Missing),
            (_, Seen::Missing | Seen::NotUtf8) => false,
            (Operator::Equals(Operand::Literal(s)), seen) => scalar_equals(s, seen),
            (Operator::Equals(Operand::Caller(field)), seen) => {
                match (field.read(caller), as_str(seen)) {
                    (Some(want), Some(got)) => want == got,
                    _ => false,
                }
            }
            (Operator::OneOf(list), seen) => list.iter().any(|s| scalar_equals(s, seen)),
            (Operator::Prefix(prefix), seen) => {
                as_str(seen).is_some_and(|s| s.starts_with(prefix.as_str()))
            }
            (Operator::Regex(re, _), seen) => as_str(seen).is_some_and(|s| re.is_match(s)),
            (Operator::Min(bound), seen) => as_number(seen).is_some_and(|n| n >= *bound),
            (Operator::Max(bound), seen) => as_number(seen).is_some_and(|n| n <= *bound),
        }
    }
}

fn scalar_equals(scalar: &Scalar, seen: Seen<'_>) -> bool {
    match seen {
        Seen::Str(s) => s == scalar.text,
        Seen::Json(v) => scalar.equals_json(v),
        Seen::Missing | Seen::NotUtf8 => false,
    }
}

/// String sources as they are; body values only if they are JSON strings.
fn as_str(seen: Seen<'_>) -> Option<&str> {
    match seen {
        Seen::Str(s) => Some(s),
        Seen::Json(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Body values only if they are JSON numbers; string sources parsed, finite only.
fn as_number(seen: Seen<'_>) -> Option<f64> {
    let n = match seen {
        Seen::Str(s) => s.parse::<f64>().ok()?,
        Seen::Json(Value::Number(n)) => n.as_f64()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operator::Equals(Operand::Literal(s)) => write!(f, "equals {s}"),
            Operator::Equals(Operand::Caller(field)) => write!(f, "equals caller.{}", field.name()),
            Operator::OneOf(list) => {
                f.write_str("one_of [")?;
                for (i, s) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{s}")?;
                }
                f.write_str("]")
            }
            Operator::Prefix(p) => write!(f, "prefix {p:?}"),
            Operator::Regex(_, pattern) => write!(f, "regex {pattern:?}"),
            Operator::Exists => f.write_str("exists"),
            Operator::Absent => f.write_str("absent"),
            Operator::Min(n) => write!(f, "min {n}"),
            Operator::Max(n) => write!(f, "max {n}"),
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            // Quoted, so a trace tells the string "5" from the number 5.
            ScalarKind::Str => write!(f, "{:?}", self.text),
            _ => f.write_str(&self.text),
        }
    }
}
