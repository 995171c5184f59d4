//! Diagnostics: every problem reported, each at its file:line:col.

use std::path::PathBuf;

use super::errors;
use crate::policy::{Diagnostic, PolicySet, Severity};

/// A one-rule file with `extra` appended to the rule (indented 4 spaces).
fn rule_with(extra: &str) -> String {
    format!(
        "rules:\n  - id: r\n    match: {{ methods: [GET], path: \"/m/{{id}}\" }}\n    callers: [MEMBER]\n    mode: elevate\n{extra}"
    )
}

fn one_error(extra: &str) -> String {
    let text = rule_with(extra);
    let errors = errors(&[("p.yaml", &text)]);
    assert_eq!(errors.len(), 1, "{extra}: {errors:?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn display_shape() {
    let d = Diagnostic {
        file: PathBuf::from("policies/a.yaml"),
        line: 3,
        column: 7,
        severity: Severity::Error,
        message: "boom".into(),
        code: None,
    };
    assert_eq!(d.to_string(), "policies/a.yaml:3:7: error: boom");
}

#[test]
fn structural_errors_have_positions() {
    let cases: &[(&str, &str)] = &[
        (
            "rules:\n  - id: a\n    match: { methods: [GET], path: /a }\n    callers: [USER]\n    mode: elevate\n    bogus: 1\n",
            "p.yaml:6:5: error: unknown field `bogus`, expected one of id, description, match, callers, mode, identity, when, allow_query, allow_warnings",
        ),
        ("rules: 5\n", "p.yaml:1:8: error: "),
        ("rules:\n  - id: [a\n", "p.yaml:2:"),
        ("rules:\n  - [a]\n", "p.yaml:2:5: error: a rule is a map"),
        ("rules:\n  - id: a\n    match: /a\n    callers: [USER]\n    mode: elevate\n", "p.yaml:3:12: error: `match` takes a map"),
        ("rules:\n  - id: a\n    match: { methods: GET, path: /a }\n    callers: [USER]\n    mode: elevate\n", "p.yaml:3:23: error: `methods` takes a list, like `[GET]`, found a string"),
        ("rules:\n  - id: a\n    match: { methods: [GET], path: /a }\n    callers: [USER]\n    mode: [elevate]\n", "p.yaml:5:11: error: `mode` takes a string, found a list"),
        ("other: 1\nrules:\n  - id: a\n    match: { methods: [GET], path: /a }\n    callers: [USER]\n    mode: elevate\n", "p.yaml:1:1: error: unknown field `other`, expected `rules`"),
        ("", "p.yaml:1:1: error: empty policy file"),
        (
            "rules:\n  - id: a\n    match: { methods: [GET], path: /a, verb: x }\n    callers: [USER]\n    mode: elevate\n",
            "p.yaml:3:40: error: unknown field `verb`, expected one of methods, path",
        ),
        ("rules:\n  - id: a\n    match: { methods: [GET], path: /a }\n    mode: elevate\n", "p.yaml:2:5: error: missing field `callers`"),
    ];
    for (text, expected) in cases {
        let errors = errors(&[("p.yaml", text)]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(expected) || errors[0].contains(expected),
            "{text:?}: {errors:?}"
        );
    }
}

#[test]
fn semantic_errors_point_at_their_node() {
    let cases: &[(&str, &str)] = &[
        ("    when:\n      path.nope: { equals: x }\n", "p.yaml:7:7: error: `path.nope`: path `/m/{id}` has no capture `nope` (its captures are `id`)"),
        ("    when:\n      path.id: { regex: '(' }\n", "p.yaml:7:25: error: invalid regex: unclosed group"),
        // Valid once wrapped as `^(?:a)|(b)$`, but not anchored: refused.
        ("    when:\n      path.id: { regex: 'a)|(b' }\n", "p.yaml:7:25: error: invalid regex: unopened group"),
        ("    when:\n      cookie.a: { equals: x }\n", "p.yaml:7:7: error: unknown selector `cookie.a`"),
        ("    when:\n      caller.email: { equals: x }\n", "p.yaml:7:7: error: unknown caller field `email`"),
        ("    when:\n      path.id: { matches: x }\n", "p.yaml:7:18: error: unknown operator `matches`"),
        ("    when:\n      path.id: { equals: caller.name }\n", "p.yaml:7:26: error: unknown caller field `name`"),
        ("    when:\n      path.id: {}\n", "p.yaml:7:16: error: empty operator map"),
        ("    when:\n      path.id: x\n", "needs an operator map"),
        ("    when: {}\n", "p.yaml:6:11: error: empty condition map"),
        ("    when: [a]\n", "expected a map of conditions"),
        ("    when:\n      path.id: { one_of: [] }\n", "`one_of` needs at least one value"),
        ("    when:\n      path.id: { one_of: x }\n", "`one_of` takes a list, found a string"),
        ("    when:\n      path.id: { one_of: [a, caller.subjectId] }\n", "caller references are only supported by `equals`"),
        ("    when:\n      path.id: { one_of: [a, [b]] }\n", "found a list"),
        ("    when:\n      path.id: { prefix: 5 }\n", "`prefix` takes a string, found a number"),
        ("    when:\n      path.id: { regex: 5 }\n", "`regex` takes a string, found a number"),
        ("    when:\n      path.id: { min: '5' }\n", "`min` takes a finite number, found a string"),
        ("    when:\n      path.id: { max: .nan }\n", "`max` takes a finite number"),
        ("    when:\n      path.id: { min: 5, max: 4 }\n", "min 5 is greater than max 4"),
        ("    when:\n      path.id: { exists: false }\n", "`exists` only takes `true` (for the opposite, use `absent: true`)"),
        ("    when:\n      path.id: { absent: yes please }\n", "`absent` only takes `true`"),
        ("    when:\n      path.id: { equals: ~ }\n", "null never matches"),
        ("    when:\n      path.id: { equals: { a: 1 } }\n", "expected a string, number or boolean"),
        ("    when:\n      body.a..b: { exists: true }\n", "empty segment in body path"),
        ("    when:\n      body.a.99999999999999999999999: { exists: true }\n", "too large"),
        ("    when:\n      query.: { exists: true }\n", "needs a name after the `.`"),
        ("    when:\n      header.bad header: { exists: true }\n", "not a valid header name"),
        ("    when:\n      any: []\n", "`any` needs at least one condition map"),
        ("    when:\n      all: { path.id: { exists: true } }\n", "`all` takes a list of condition maps"),
        ("    when:\n      not: []\n", "expected a map of conditions"),
        ("    when:\n      header.Authorization: { exists: true }\n", "p.yaml:7:7: error: `header.Authorization` is the caller's token"),
        ("    when:\n      query.instance: { exists: true }\n", "p.yaml:7:7: error: `query.instance` is the caller's signed instance"),
        ("    identity: [signed_instance, cookie]\n", "unknown identity source `cookie`"),
        ("    identity: []\n", "`identity` needs at least one"),
    ];
    for (extra, expected) in cases {
        let error = one_error(extra);
        assert!(
            error.contains(expected),
            "{extra:?}: got {error:?}, want {expected:?}"
        );
    }
}

#[test]
fn pass_through_cannot_take_signed_instance() {
    let text = "rules:\n  - id: r\n    match: { methods: [GET], path: /a }\n    callers: [USER]\n    mode: pass_through\n    identity: [access_token, signed_instance]\n";
    let errors = errors(&[("p.yaml", text)]);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("p.yaml:6:30: error: `pass_through` cannot accept `signed_instance`"),
        "{errors:?}"
    );
}

#[test]
fn duplicate_ids_across_files_name_the_first() {
    let a = "rules:\n  - id: same\n    match: { methods: [GET], path: /a }\n    callers: [USER]\n    mode: elevate\n";
    let b = "# second file\nrules:\n  - id: other\n    match: { methods: [GET], path: /b }\n    callers: [USER]\n    mode: elevate\n  - id: same\n    match: { methods: [GET], path: /c }\n    callers: [USER]\n    mode: elevate\n";
    assert_eq!(
        errors(&[("a.yaml", a), ("b.yaml", b)]),
        ["b.yaml:7:9: error: duplicate rule id `same`: first defined at a.yaml:2:9"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let a = r#"rules:
  - id: bad id!
    match: { methods: [get, FETCH], path: "/a//{x}" }
    callers: [ADMIN, MEMBER]
    mode: elevated
    when:
      path.y: { equals: 1 }
      query.q: { regex: "[" }
      body.b: { between: [1, 2] }
  - id: fine
    match: { methods: [GET], path: /ok }
    callers: [USER]
    mode: elevate
  - id: two
    match: { methods: [], path: "/ok/{a}" }
    callers: []
    mode: pass_through
    identity: [signed_instance]
    when:
      any:
        - path.b: { exists: true }
        - header.x: { exists: false }
"#;
    let b = "rules:\n  - id: fine\n    oops: 1\n";
    let errors = errors(&[("a.yaml", a), ("b.yaml", b)]);
    let expected = [
        "a.yaml:2:9: error: rule id `bad id!`",
        "a.yaml:3:24: error: unknown method `get`",
        "a.yaml:3:29: error: unknown method `FETCH`",
        "a.yaml:3:43: error: path `/a//{x}`: empty segment",
        "a.yaml:4:15: error: unknown caller type `ADMIN`",
        "a.yaml:5:11: error: unknown mode `elevated`",
        // `path.y` is not checked: the template did not parse, and that is already reported.
        "a.yaml:8:25: error: invalid regex: unclosed character class",
        "a.yaml:9:17: error: unknown operator `between`",
        "a.yaml:15:23: error: `methods` needs at least one method",
        "a.yaml:16:14: error: `callers` needs at least one",
        "a.yaml:18:16: error: `pass_through` cannot accept `signed_instance`",
        "a.yaml:21:11: error: `path.b`: path `/ok/{a}` has no capture `b`",
        "a.yaml:22:31: error: `exists` only takes `true`",
        // An unknown key does not hide the rest of the file.
        "b.yaml:2:5: error: missing field `match`",
        "b.yaml:2:5: error: missing field `callers`",
        "b.yaml:2:5: error: missing field `mode`",
        "b.yaml:2:9: error: duplicate rule id `fine`: first defined at a.yaml:10:9",
        "b.yaml:3:5: error: unknown field `oops`",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (got, want) in errors.iter().zip(expected) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn warnings_do_not_stop_loading() {
    let text = r#"rules:
  - id: open
    match: { methods: [GET, POST], path: "/a/{x}" }
    callers: [MEMBER, USER]
    mode: pass_through
  - id: hidden
    match: { methods: [GET, GET], path: "/a/{y}" }
    callers: [MEMBER]
    mode: elevate
  - id: conditional-is-fine
    match: { methods: [GET], path: "/b/{x}" }
    callers: [MEMBER]
    mode: elevate
    when: { path.x: { equals: caller.subjectId } }
  - id: later-is-reachable
    match: { methods: [GET], path: "/b/{x}" }
    callers: [MEMBER]
    mode: elevate
"#;
    let set = PolicySet::from_sources(&[
        (PathBuf::from("w.yaml"), text.to_owned()),
        (PathBuf::from("empty.yaml"), "rules: []\n".to_owned()),
    ])
    .expect("warnings only");
    let warnings: Vec<String> = set.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "w.yaml:6:9: warning: rule `hidden` elevates any `{y}` on `GET /a/{y}`: no condition reads `path.y` [unused-capture]",
            "w.yaml:6:9: warning: rule `hidden` never applies: rule `open` (w.yaml:2:9) comes first, matches every request it matches, admits the same callers, and its conditions hold whenever these do [shadowed-rule]",
            "w.yaml:7:29: warning: method `GET` is listed twice [duplicate-entry]",
            "w.yaml:15:9: warning: rule `later-is-reachable` elevates any `{x}` on `GET /b/{x}`: no condition reads `path.x` [unused-capture]",
            "empty.yaml:1:1: warning: this file has no rules [empty-file]",
        ]
    );
    assert!(set
        .warnings()
        .iter()
        .all(|d| d.severity == Severity::Warning));
}

#[test]
fn warnings_come_back_with_errors() {
    let text = "rules:\n  - id: r\n    match: { methods: [GET], path: /a }\n    callers: [USER, USER]\n    mode: nope\n";
    let errors = errors(&[("p.yaml", text)]);
    assert_eq!(
        errors,
        [
            "p.yaml:4:21: warning: caller `USER` is listed twice [duplicate-entry]",
            "p.yaml:5:11: error: unknown mode `nope`: expected elevate or pass_through",
        ]
    );
}

#[test]
fn diagnostics_come_in_source_order() {
    // `mode` is checked before `when` but written after it here.
    let text = "rules:\n  - id: r\n    match: { methods: [GET], path: /a }\n    callers: [USER]\n    when: { query.a: { bogus: 1 } }\n    mode: nope\n";
    let errors = errors(&[
        ("z.yaml", "rules:\n  - id: ok\n    nope: 1\n"),
        ("a.yaml", text),
    ]);
    let positions: Vec<&str> = errors.iter().map(|e| &e[..e.find(": ").unwrap()]).collect();
    assert_eq!(
        positions,
        [
            "z.yaml:2:5",
            "z.yaml:2:5",
            "z.yaml:2:5",
            "z.yaml:3:5",
            "a.yaml:5:24",
            "a.yaml:6:11"
        ]
    );
}
