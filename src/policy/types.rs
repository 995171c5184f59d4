//! Type mismatches that can be known when a policy is compiled: operators
//! on one selector that no value could pass together, and operators on a
//! caller field that can never hold.
//!
//! Path captures, query parameters and headers are text, and `min`/`max`
//! read them as numbers when they parse, so `query.limit: { max: 100 }` is
//! fine. A body value has one JSON type, so `prefix` (a string) with `min`
//! (a number) on the same body field never holds. Caller fields are
//! identifiers, never numbers, and `caller.subjectType` is one of three words.

use super::condition::{CallerField, Condition, Operand, Operator, ScalarKind, Selector, Test};
use super::diagnostics::Position;

const STRING: u8 = 1;
const NUMBER: u8 = 2;
const BOOL: u8 = 4;

/// Every mismatch among the tests one selector entry compiled to (all on
/// the same selector), as (position, message).
pub(crate) fn mismatches(tests: &[Condition]) -> Vec<(Position, String)> {
    let tests: Vec<&Test> = tests
        .iter()
        .filter_map(|c| match c {
            Condition::Test(test) => Some(test),
            _ => None,
        })
        .collect();
    let mut found = Vec::new();
    for test in &tests {
        if let Some(message) = caller_mismatch(test) {
            found.push((test.at, message));
        }
    }
    if tests
        .first()
        .is_some_and(|t| matches!(t.selector, Selector::Body(_)))
    {
        // The first operator that leaves no JSON type possible is reported,
        // naming the one it contradicts.
        let mut allowed = STRING | NUMBER | BOOL;
        let mut narrowed_by: Option<&Test> = None;
        for test in &tests {
            let Some(kinds) = json_kinds(&test.operator) else {
                continue;
            };
            if allowed & kinds == 0 {
                let other = narrowed_by.map_or(String::new(), |t| format!("`{}`", op_name(t)));
                found.push((
                    test.at,
                    format!(
                        "`{}`: `{}` needs {} but {other} needs {}: no JSON value passes both",
                        test.selector_text,
                        op_name(test),
                        kinds_text(kinds),
                        kinds_text(allowed)
                    ),
                ));
                break;
            }
            allowed &= kinds;
            narrowed_by = Some(test);
        }
    }
    found
}

fn caller_mismatch(test: &Test) -> Option<String> {
    let Selector::Caller(field) = test.selector else {
        return None;
    };
    match &test.operator {
        Operator::Min(_) | Operator::Max(_) => Some(format!(
            "`{}` is an identifier, never a number: `{}` never holds",
            test.selector_text,
            op_name(test)
        )),
        Operator::Equals(Operand::Literal(s)) if field == CallerField::SubjectType => {
            unknown_type(test, [&s.text].into_iter())
        }
        Operator::OneOf(list) if field == CallerField::SubjectType => {
            unknown_type(test, list.iter().map(|s| &s.text))
        }
        _ => None,
    }
}

fn unknown_type<'a>(test: &Test, mut values: impl Iterator<Item = &'a String>) -> Option<String> {
    values
        .find(|v| crate::caller::CallerType::parse(v).is_none())
        .map(|v| {
            format!(
                "`{}` is VISITOR, MEMBER or USER: `{v}` never matches",
                test.selector_text
            )
        })
}

/// The JSON types an operator can hold for; `None` if it holds for any.
fn json_kinds(operator: &Operator) -> Option<u8> {
    let scalar = |kind: &ScalarKind| match kind {
        ScalarKind::Str => STRING,
        ScalarKind::Int(_) | ScalarKind::Float(_) => NUMBER,
        ScalarKind::Bool(_) => BOOL,
    };
    match operator {
        Operator::Prefix(_) | Operator::Regex(..) | Operator::Equals(Operand::Caller(_)) => {
            Some(STRING)
        }
        Operator::Min(_) | Operator::Max(_) => Some(NUMBER),
        Operator::Equals(Operand::Literal(s)) => Some(scalar(&s.kind)),
        Operator::OneOf(list) => Some(list.iter().fold(0, |acc, s| acc | scalar(&s.kind))),
        Operator::Exists | Operator::Absent => None,
    }
}

fn kinds_text(kinds: u8) -> String {
    let names: Vec<&str> = [
        (STRING, "a string"),
        (NUMBER, "a number"),
        (BOOL, "a boolean"),
    ]
    .iter()
    .filter(|(bit, _)| kinds & bit != 0)
    .map(|(_, name)| *name)
    .collect();
    names.join(" or ")
}

fn op_name(test: &Test) -> &'static str {
    match test.operator {
        Operator::Equals(_) => "equals",
        Operator::OneOf(_) => "one_of",
        Operator::Prefix(_) => "prefix",
        Operator::Regex(..) => "regex",
        Operator::Exists => "exists",
        Operator::Absent => "absent",
        Operator::Min(_) => "min",
        Operator::Max(_) => "max",
    }
}
