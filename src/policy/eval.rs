//! The authorize phase: pure, synchronous, no I/O.
//!
//! [`authorize`] walks the routed rules in precedence order and lets the first
//! rule that admits the caller and whose conditions all hold decide. The same
//! walk, [`authorize_observed`], reports each rule and each inspected value to
//! an [`Observer`]; [`authorize`] passes one that does nothing, which the
//! compiler removes, so tracing costs nothing when it is off.

use crate::field_name;
use std::{borrow::Cow, fmt};

use http::HeaderMap;
use serde_json::Value;

use super::condition::{BodyStep, Condition, Seen, Selector, Test};
use super::{Mode, RouteMatch, Rule};
use crate::caller::Caller;

/// One decoded query parameter, its name and its value: borrowed from the
/// request line when there was nothing to decode.
pub type QueryPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The parts of a request conditions may read. Built by the gateway after
/// canonicalization, so it holds exactly what will be forwarded.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Decoded path segments, the ones the request was routed on.
    pub segments: &'a [&'a str],
    /// Decoded query pairs, in request order; a name may repeat.
    pub query: &'a [QueryPair<'a>],
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The JSON body, when a routed rule reads it and it parsed.
    pub body: Option<&'a Value>,
}

/// Why no rule allowed a request. `Display` gives a stable snake_case code
/// for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No rule matches the method and path.
    NoRoute,
    /// Rules match the route, but none admits this caller type and identity source.
    CallerNotAdmitted,
    /// Some admitting rule matched the route, but its conditions did not hold.
    ConditionsFailed,
}

impl DenyReason {
    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NoRoute => "no_route",
            DenyReason::CallerNotAdmitted => "caller_not_admitted",
            DenyReason::ConditionsFailed => "conditions_failed",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, Copy)]
pub enum Decision<'a> {
    /// This match decides: forward with its rule's [`Mode`].
    Allow(&'a RouteMatch<'a>),
    /// Nothing allows the request.
    Deny(DenyReason),
}

impl Decision<'_> {
    /// The mode to forward with, if allowed.
    pub fn mode(&self) -> Option<Mode> {
        match self {
            Decision::Allow(m) => Some(m.rule.mode()),
            Decision::Deny(_) => None,
        }
    }
}

/// What happened to one rule during [`authorize_observed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOutcome {
    /// The rule does not admit the caller's type or identity source.
    NotAdmitted,
    /// The rule admits the caller, but a condition failed.
    ConditionsFailed,
    /// The rule elevates, and the request carries a query parameter the
    /// rule does not name.
    QueryNotAllowed,
    /// The rule decides: allow.
    Allowed,
}

/// Receives what the evaluator saw, for traces (`explain`). Every method has
/// an empty default, so an observer implements only what it records.
pub trait Observer {
    /// When true, evaluation does not short-circuit inside a rule: every test
    /// and every repeated value is evaluated and reported. The decision is the
    /// same either way.
    const EXHAUSTIVE: bool = false;

    /// One value a test inspected ([`Seen::Missing`] when there was none),
    /// and whether the operator held for it.
    fn value(&mut self, _test: &Test, _seen: Seen<'_>, _held: bool) {}

    /// The result of one test over all its values.
    fn test(&mut self, _test: &Test, _held: bool) {}

    /// The result of an `all`, `any` or `not` group (including a rule's
    /// top-level `when` map).
    fn group(&mut self, _condition: &Condition, _held: bool) {}

    /// What happened to one routed rule, in precedence order.
    fn rule(&mut self, _rule: &Rule, _outcome: RuleOutcome) {}
}

/// An [`Observer`] that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrace;

impl Observer for NoTrace {}

/// Decides a routed request: the first match (in precedence order) whose
/// rule admits the caller's type and identity source and whose conditions
/// all hold allows it; otherwise it is denied.
pub fn authorize<'a>(
    matches: &'a [RouteMatch<'a>],
    request: &RequestView<'_>,
    caller: &Caller,
) -> Decision<'a> {
    authorize_observed(matches, request, caller, &mut NoTrace)
}

/// [`authorize`], reporting every step to `observer`.
pub fn authorize_observed<'a, O: Observer>(
    matches: &'a [RouteMatch<'a>],
    request: &RequestView<'_>,
    caller: &Caller,
    observer: &mut O,
) -> Decision<'a> {
    if matches.is_empty() {
        return Decision::Deny(DenyReason::NoRoute);
    }
    let mut admitted = false;
    for m in matches {
        if !m.rule.admits(caller.subject_type, caller.source) {
            observer.rule(m.rule, RuleOutcome::NotAdmitted);
            continue;
        }
        admitted = true;
        if request
            .query
            .iter()
            .any(|(name, _)| !m.rule.allows_query(name))
        {
            observer.rule(m.rule, RuleOutcome::QueryNotAllowed);
            continue;
        }
        let scope = Scope {
            rule: m.rule,
            request,
            caller,
        };
        if scope.eval(m.rule.condition(), observer) {
            observer.rule(m.rule, RuleOutcome::Allowed);
            return Decision::Allow(m);
        }
        observer.rule(m.rule, RuleOutcome::ConditionsFailed);
    }
    Decision::Deny(if admitted {
        DenyReason::ConditionsFailed
    } else {
        DenyReason::CallerNotAdmitted
    })
}

/// What the conditions of one routed rule can see.
struct Scope<'s> {
    rule: &'s Rule,
    request: &'s RequestView<'s>,
    caller: &'s Caller,
}

impl Scope<'_> {
    fn eval<O: Observer>(&self, condition: &Condition, observer: &mut O) -> bool {
        let held = match condition {
            Condition::Test(test) => return self.test(test, observer),
            Condition::All(items) => {
                let mut held = true;
                for item in items {
                    if !self.eval(item, observer) {
                        held = false;
                        if !O::EXHAUSTIVE {
                            break;
                        }
                    }
                }
                held
            }
            Condition::Any(items) => {
                let mut held = false;
                for item in items {
                    if self.eval(item, observer) {
                        held = true;
                        if !O::EXHAUSTIVE {
                            break;
                        }
                    }
                }
                held
            }
            Condition::Not(inner) => !self.eval(inner, observer),
        };
        observer.group(condition, held);
        held
    }

    fn test<O: Observer>(&self, test: &Test, observer: &mut O) -> bool {
        let held = match &test.selector {
            Selector::Path(i) => {
                let seen = self
                    .rule
                    .template
                    .capture(*i, self.request.segments)
                    .map(Seen::Str);
                self.single(test, seen, observer)
            }
            Selector::Caller(field) => {
                let seen = field.read(self.caller).map(Seen::Str);
                self.single(test, seen, observer)
            }
            Selector::Body(steps) => {
                let seen = resolve(self.request.body, steps).map(Seen::Json);
                self.single(test, seen, observer)
            }
            Selector::Query(name) => {
                let values = self
                    .request
                    .query
                    .iter()
                    .filter(|(k, _)| field_name::same(k, name))
                    .map(|(_, v)| Seen::Str(v));
                self.every(test, values, observer)
            }
            Selector::Header(name) => {
                let values = self.request.headers.get_all(name).iter().map(|v| {
                    // Not `to_str`, which refuses all non-ASCII: UTF-8 is fine.
                    std::str::from_utf8(v.as_bytes()).map_or(Seen::NotUtf8, Seen::Str)
                });
                self.every(test, values, observer)
            }
        };
        observer.test(test, held);
        held
    }

    /// A source with at most one value.
    fn single<O: Observer>(&self, test: &Test, seen: Option<Seen<'_>>, observer: &mut O) -> bool {
        let seen = seen.unwrap_or(Seen::Missing);
        let held = test.operator.holds(seen, self.caller);
        observer.value(test, seen, held);
        held
    }

    /// A source with any number of values: `exists` wants one, `absent` none,
    /// every other operator at least one and all of them.
    fn every<'v, O: Observer>(
        &self,
        test: &Test,
        values: impl Iterator<Item = Seen<'v>>,
        observer: &mut O,
    ) -> bool {
        let mut count = 0usize;
        let mut all_held = true;
        for seen in values {
            count += 1;
            // `holds` is true for `exists` and false for `absent` on any
            // present value, so one loop gives all three rules.
            let held = test.operator.holds(seen, self.caller);
            observer.value(test, seen, held);
            if !held {
                all_held = false;
                if !O::EXHAUSTIVE {
                    break;
                }
            }
        }
        if count == 0 {
            let held = test.operator.holds(Seen::Missing, self.caller);
            observer.value(test, Seen::Missing, held);
            return held;
        }
        all_held
    }
}

/// Follows a `body.` path; JSON `null` counts as missing. Digit segments
/// index arrays only, so an object cannot stand in for an array.
fn resolve<'v>(body: Option<&'v Value>, steps: &[BodyStep]) -> Option<&'v Value> {
    let mut at = body?;
    for step in steps {
        at = match (step, at) {
            // The exact spelling first; otherwise the one other spelling Wix
            // would read as this field (the body never has two of them).
            (BodyStep::Key(key), Value::Object(map)) => match map.get(key) {
                Some(value) => value,
                None => map.iter().find(|(k, _)| field_name::same(k, key))?.1,
            },
            (BodyStep::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    (!at.is_null()).then_some(at)
}
