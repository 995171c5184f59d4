//! Body selectors: dotted paths, arrays, type-aware comparison, and which
//! rules make the gateway read the body.

use http::Method;
use serde_json::json;

use super::operators::{body, get, table};
use super::set;

#[test]
fn body_values_are_type_aware() {
    let doc = json!({
        "s": "5", "n": 5, "f": 2.5, "b": true, "z": null, "big": 18446744073709551615u64,
        "o": { "k": "v", "0": "zero" }, "a": [ { "id": "x" }, { "id": "y" } ]
    });
    table(&[
        ("{ body.s: { equals: '5' } }", body(doc.clone()), true),
        ("{ body.s: { equals: 5 } }", body(doc.clone()), false),
        ("{ body.n: { equals: 5 } }", body(doc.clone()), true),
        ("{ body.n: { equals: 5.0 } }", body(doc.clone()), true),
        ("{ body.n: { equals: '5' } }", body(doc.clone()), false),
        ("{ body.f: { equals: 2.5 } }", body(doc.clone()), true),
        (
            "{ body.big: { equals: 18446744073709551615 } }",
            body(doc.clone()),
            true,
        ),
        (
            "{ body.big: { equals: 18446744073709551614 } }",
            body(doc.clone()),
            false,
        ),
        ("{ body.b: { equals: true } }", body(doc.clone()), true),
        ("{ body.b: { equals: 'true' } }", body(doc.clone()), false),
        (
            "{ body.s: { equals: true } }",
            body(json!({"s": "true"})),
            false,
        ),
        ("{ body.n: { one_of: ['5', 6] } }", body(doc.clone()), false),
        ("{ body.n: { one_of: ['x', 5] } }", body(doc.clone()), true),
        ("{ body.s: { prefix: '5' } }", body(doc.clone()), true),
        ("{ body.n: { prefix: '5' } }", body(doc.clone()), false),
        ("{ body.n: { regex: '5' } }", body(doc.clone()), false),
        ("{ body.n: { min: 5, max: 5 } }", body(doc.clone()), true),
        ("{ body.s: { min: 1 } }", body(doc.clone()), false),
        ("{ body.f: { max: 2 } }", body(doc.clone()), false),
        ("{ body.z: { absent: true } }", body(doc.clone()), true),
        ("{ body.z: { exists: true } }", body(doc.clone()), false),
        ("{ body.z: { equals: '' } }", body(doc.clone()), false),
        ("{ body.nope: { absent: true } }", body(doc.clone()), true),
        ("{ body.o: { exists: true } }", body(doc.clone()), true),
        ("{ body.o: { equals: v } }", body(doc.clone()), false),
        ("{ body.o.k: { equals: v } }", body(doc.clone()), true),
        ("{ body.a.1.id: { equals: y } }", body(doc.clone()), true),
        ("{ body.a.2.id: { absent: true } }", body(doc.clone()), true),
        // Digits index arrays only: an object does not stand in for an array.
        ("{ body.o.0: { absent: true } }", body(doc.clone()), true),
        ("{ body.a.id: { absent: true } }", body(doc.clone()), true),
        ("{ body.s.x: { absent: true } }", body(doc.clone()), true),
        (
            "{ body.s: { equals: caller.subjectId } }",
            body(json!({"s": "m-1"})),
            true,
        ),
        (
            "{ body.n: { equals: caller.subjectId } }",
            body(json!({"n": 1})),
            false,
        ),
        // No body at all: every body value is missing.
        ("{ body.s: { absent: true } }", get(), true),
        ("{ body.s: { equals: '5' } }", get(), false),
    ]);
}

#[test]
fn reads_body_only_with_body_selectors() {
    let yaml = |when: &str| {
        format!("rules:\n  - {{ id: r, match: {{ methods: [POST], path: /x }}, callers: [USER], mode: elevate, when: {when} }}\n")
    };
    let reads = |when: &str| set(&yaml(when)).rules()[0].reads_body();
    assert!(reads("{ body.a: { exists: true } }"));
    assert!(reads(
        "{ not: { any: [ { query.a: { exists: true } }, { body.a.0: { equals: 1 } } ] } }"
    ));
    assert!(!reads(
        "{ query.a: { exists: true }, header.b: { absent: true } }"
    ));
    let no_when = set("rules:\n  - { id: r, match: { methods: [POST], path: /x }, callers: [USER], mode: elevate }\n");
    assert!(!no_when.rules()[0].reads_body());
    // The request method is irrelevant to whether a rule reads the body.
    assert!(set(&yaml("{ body.a: { exists: true } }"))
        .route(&Method::POST, &["x"])
        .iter()
        .all(|m| m.rule.reads_body()));
}
