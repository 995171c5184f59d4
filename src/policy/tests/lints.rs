//! Coded warnings (lints), silencing them per rule, and type mismatches.

use std::path::PathBuf;

use super::errors;
use crate::policy::{Lint, PolicySet};

/// The warnings of a set that must load, as `line:col [code]`.
/// The warnings of `yaml`, except `unused-capture`, which the fixtures
/// here (captures on elevated routes with no conditions) all raise and
/// which has a test of its own.
fn warnings(yaml: &str) -> Vec<String> {
    all_warnings(yaml)
        .into_iter()
        .filter(|w| !w.ends_with("[unused-capture]"))
        .collect()
}

fn all_warnings(yaml: &str) -> Vec<String> {
    let set = PolicySet::from_sources(&[(PathBuf::from("l.yaml"), yaml.to_owned())])
        .unwrap_or_else(|d| panic!("{d:#?}"));
    set.warnings()
        .iter()
        .map(|d| format!("{}:{} [{}]", d.line, d.column, d.code.unwrap_or("-")))
        .collect()
}

#[test]
fn an_elevated_capture_no_condition_reads_is_flagged() {
    // A rule cut short before its `when` (a half-written file) looks like this.
    let cut = rule("cut", "GET /members/{memberId}", "MEMBER", "elevate", "");
    let read = rule(
        "read",
        "GET /items/{id}",
        "MEMBER",
        "elevate",
        "    when: { not: { path.id: { prefix: secret- } } }\n",
    );
    let passed = rule("as-caller", "GET /other/{id}", "MEMBER", "pass_through", "");
    assert_eq!(
        all_warnings(&format!("rules:\n{cut}{read}{passed}")),
        ["2:9 [unused-capture]"]
    );
}

fn rule(id: &str, route: &str, callers: &str, mode: &str, extra: &str) -> String {
    let (method, path) = route.split_once(' ').unwrap();
    format!(
        "  - id: {id}\n    match: {{ methods: [{method}], path: \"{path}\" }}\n    callers: [{callers}]\n    mode: {mode}\n{extra}"
    )
}

#[test]
fn every_code_round_trips() {
    for lint in Lint::ALL {
        assert_eq!(Lint::parse(lint.code()), Some(lint));
    }
    assert_eq!(Lint::parse("nope"), None);
}

#[test]
fn elevated_visitor_without_conditions() {
    let open = rule("open", "GET /a", "VISITOR", "elevate", "");
    assert_eq!(
        warnings(&format!("rules:\n{open}")),
        ["2:9 [elevated-visitor-unconditional]"]
    );
    let guarded = rule(
        "guarded",
        "GET /a/{x}",
        "VISITOR",
        "elevate",
        "    when: { path.x: { equals: x } }\n",
    );
    let members = rule("members", "GET /b", "MEMBER", "elevate", "");
    let passed = rule("passed", "GET /c", "VISITOR", "pass_through", "");
    assert!(warnings(&format!("rules:\n{guarded}{members}{passed}")).is_empty());
}

#[test]
fn elevated_wildcards() {
    let rest = rule("rest", "GET /a/**", "MEMBER", "elevate", "");
    let glob = rule("glob", "GET /b/item-*", "MEMBER", "elevate", "");
    let inner = rule("inner", "GET /c/item-*/x", "MEMBER", "elevate", "");
    let passed = rule("passed", "GET /d/**", "MEMBER", "pass_through", "");
    assert_eq!(
        warnings(&format!("rules:\n{rest}{glob}{inner}{passed}")),
        [
            "2:9 [elevated-wildcard-path]",
            "6:9 [elevated-wildcard-path]"
        ]
    );
}

#[test]
fn shadowing_needs_route_callers_and_conditions_covered() {
    let cond = "    when: { query.a: { equals: \"1\" } }\n";
    let more = "    when: { query.a: { equals: \"1\" }, query.b: { exists: true } }\n";
    let first = rule("first", "GET /a/{x}", "MEMBER, USER", "elevate", cond);
    // Same route shape with another capture name, fewer callers, stricter conditions.
    let hidden = rule("hidden", "GET /a/{y}", "MEMBER", "elevate", more);
    // Not covered: admits VISITOR, which `first` does not.
    let wider = rule("wider", "GET /a/{y}", "VISITOR, MEMBER", "elevate", more);
    // Not covered: `first` needs `query.a`, this rule does not.
    let looser = rule(
        "looser",
        "GET /a/lit",
        "MEMBER",
        "elevate",
        "    when: { query.b: { exists: true } }\n",
    );
    assert_eq!(
        warnings(&format!("rules:\n{first}{hidden}{wider}{looser}")),
        ["7:9 [shadowed-rule]"]
    );
    // Path tests compare by segment, whatever the capture is called.
    let a = rule(
        "a",
        "GET /m/{id}",
        "MEMBER",
        "elevate",
        "    when: { path.id: { equals: caller.subjectId } }\n",
    );
    let b = rule(
        "b",
        "GET /m/{memberId}",
        "MEMBER",
        "elevate",
        "    when: { path.memberId: { equals: caller.subjectId }, query.x: { absent: true } }\n",
    );
    assert_eq!(
        warnings(&format!("rules:\n{a}{b}")),
        ["7:9 [shadowed-rule]"]
    );
}

#[test]
fn conflicting_modes_on_overlapping_routes() {
    let users = rule("users-as-self", "GET /c/{id}", "USER", "pass_through", "");
    let card = rule(
        "card",
        "GET /c/{id}",
        "VISITOR, USER",
        "elevate",
        "    when: { path.id: { equals: \"42\" } }\n",
    );
    assert_eq!(
        warnings(&format!("rules:\n{users}{card}")),
        ["6:9 [conflicting-modes]"]
    );
    // The specific rule first, the general one after: ordinary layering.
    assert!(warnings(&format!("rules:\n{card}{users}")).is_empty());
    // Disjoint callers never conflict.
    let visitors = rule(
        "card",
        "GET /c/{id}",
        "VISITOR",
        "elevate",
        "    when: { path.id: { equals: \"42\" } }\n",
    );
    assert!(warnings(&format!("rules:\n{users}{visitors}")).is_empty());
}

#[test]
fn body_conditions_on_bodyless_methods() {
    let get = rule(
        "get",
        "GET /a",
        "MEMBER",
        "elevate",
        "    when:\n      body.x: { exists: true }\n",
    );
    let post = rule(
        "post",
        "POST /b",
        "MEMBER",
        "elevate",
        "    when:\n      body.x: { exists: true }\n",
    );
    assert_eq!(
        warnings(&format!("rules:\n{get}{post}")),
        ["7:17 [body-condition-without-body]"]
    );
}

#[test]
fn warnings_are_silenced_per_rule_and_codes_are_checked() {
    let quiet = rule(
        "quiet",
        "GET /a/**",
        "VISITOR",
        "elevate",
        "    allow_warnings: [elevated-visitor-unconditional, elevated-wildcard-path]\n",
    );
    let loud = rule("loud", "GET /b/**", "MEMBER", "elevate", "");
    assert_eq!(
        warnings(&format!("rules:\n{quiet}{loud}")),
        ["7:9 [elevated-wildcard-path]"]
    );
    let twice = rule(
        "twice",
        "GET /a",
        "USER, USER",
        "elevate",
        "    allow_warnings: [duplicate-entry]\n",
    );
    assert!(warnings(&format!("rules:\n{twice}")).is_empty());

    let bad = rule(
        "bad",
        "GET /a",
        "USER",
        "elevate",
        "    allow_warnings: [shadowed, empty-file]\n",
    );
    let errors = errors(&[("p.yaml", &format!("rules:\n{bad}"))]);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("p.yaml:6:22: error: unknown warning code `shadowed` in `allow_warnings`: expected elevated-visitor-unconditional, "),
        "{errors:?}"
    );
}

#[test]
fn knowable_type_mismatches_are_errors() {
    let cases: &[(&str, &str)] = &[
        ("body.x: { prefix: a, min: 1 }", "p.yaml:7:28: error: `body.x`: `min` needs a number but `prefix` needs a string: no JSON value passes both"),
        ("body.x: { equals: 5, regex: \"a+\" }", "`regex` needs a string but `equals` needs a number"),
        ("body.x: { one_of: [a, 1], equals: true }", "`equals` needs a boolean but `one_of` needs a string or a number"),
        ("caller.subjectId: { min: 1 }", "p.yaml:7:27: error: `caller.subjectId` is an identifier, never a number: `min` never holds"),
        ("caller.subjectType: { equals: ADMIN }", "`caller.subjectType` is VISITOR, MEMBER or USER: `ADMIN` never matches"),
        ("caller.subjectType: { one_of: [MEMBER, Member] }", "`Member` never matches"),
    ];
    for (when, want) in cases {
        let text = format!(
            "rules:\n  - id: r\n    match: {{ methods: [POST], path: /a }}\n    callers: [MEMBER]\n    mode: elevate\n    when:\n      {when}\n"
        );
        let errors = errors(&[("p.yaml", &text)]);
        assert_eq!(errors.len(), 1, "{when}: {errors:?}");
        assert!(
            errors[0].contains(want),
            "{when}: got {errors:?}, want {want:?}"
        );
    }
    // Text sources are read as numbers when they parse, so these are fine.
    let fine = rule(
        "fine",
        "POST /a",
        "MEMBER",
        "elevate",
        "    when:\n      query.limit: { max: 100, regex: \"[0-9]+\" }\n      body.n: { min: 1, one_of: [1, 2] }\n      caller.subjectType: { one_of: [MEMBER] }\n",
    );
    assert!(warnings(&format!("rules:\n{fine}")).is_empty());
}
