//! Every operator against every kind of source, including missing values,
//! wrong types and repeated values.

use serde_json::json;

use super::{caller, member, set, Req};
use crate::caller::{Caller, CallerType, IdentitySource};

/// Whether a rule on `/t/{id}` with this `when` (flow YAML) allows `req`.
pub(super) fn holds(when: &str, req: &Req, who: &Caller) -> bool {
    // Every parameter the request carries is allowed, so that only `when`
    // decides (what an elevated request may carry is tested on its own).
    let names: Vec<&str> = req.query.iter().map(|(name, _)| &**name).collect();
    let allow_query = if names.is_empty() {
        String::new()
    } else {
        format!("    allow_query: [{}]\n", names.join(", "))
    };
    let yaml = format!(
        "rules:\n  - id: r\n    match: {{ methods: [GET, POST], path: \"/t/{{id}}\" }}\n    callers: [VISITOR, MEMBER, USER]\n    mode: elevate\n    identity: [access_token, signed_instance]\n    when: {when}\n{allow_query}"
    );
    match req.decide(&set(&yaml), who) {
        Ok(_) => true,
        Err(code) => {
            assert_eq!(code, "conditions_failed", "{when}");
            false
        }
    }
}

pub(super) fn table(cases: &[(&str, Req, bool)]) {
    let who = member("m-1");
    for (when, req, expected) in cases {
        assert_eq!(
            holds(when, req, &who),
            *expected,
            "when {when} on {} {:?} {:?} {:?}",
            req.path,
            req.query,
            req.headers,
            req.body
        );
    }
}

pub(super) fn get() -> Req {
    Req::get("/t/abc")
}

pub(super) fn body(value: serde_json::Value) -> Req {
    Req::post("/t/abc", value)
}

#[test]
fn path_and_caller_selectors() {
    table(&[
        ("{ path.id: { equals: abc } }", get(), true),
        ("{ path.id: { equals: abd } }", get(), false),
        (
            "{ path.id: { equals: caller.subjectId } }",
            Req::get("/t/m-1"),
            true,
        ),
        ("{ path.id: { equals: caller.subjectId } }", get(), false),
        ("{ path.id: { prefix: ab } }", get(), true),
        ("{ path.id: { regex: 'a.c' } }", get(), true),
        // Whole-value match: a regex matching part of the value is not enough.
        ("{ path.id: { regex: 'b' } }", get(), false),
        ("{ path.id: { regex: 'a|x' } }", get(), false),
        ("{ path.id: { min: 10, max: 20 } }", Req::get("/t/15"), true),
        ("{ path.id: { min: 10 } }", Req::get("/t/9.5"), false),
        ("{ path.id: { min: 10 } }", get(), false),
        ("{ path.id: { max: 10 } }", Req::get("/t/inf"), false),
        ("{ path.id: { max: 10 } }", Req::get("/t/-inf"), false),
        ("{ path.id: { max: 10 } }", Req::get("/t/NaN"), false),
        ("{ path.id: { exists: true } }", get(), true),
        ("{ path.id: { absent: true } }", get(), false),
        ("{ path.id: { equals: 15 } }", Req::get("/t/15"), true),
        ("{ path.id: { equals: true } }", Req::get("/t/true"), true),
        ("{ caller.subjectId: { equals: m-1 } }", get(), true),
        ("{ caller.subjectType: { equals: MEMBER } }", get(), true),
        (
            "{ caller.subjectType: { one_of: [VISITOR, USER] } }",
            get(),
            false,
        ),
        ("{ caller.instanceId: { equals: inst-1 } }", get(), true),
        ("{ caller.siteId: { prefix: site- } }", get(), true),
        ("{ caller.siteId: { equals: caller.siteId } }", get(), true),
    ]);
}

#[test]
fn missing_site_id_fails_closed() {
    let mut who = member("m-1");
    who.site_id = None;
    let cases = [
        ("{ caller.siteId: { absent: true } }", true),
        ("{ caller.siteId: { exists: true } }", false),
        ("{ caller.siteId: { equals: '' } }", false),
        ("{ caller.siteId: { regex: '.*' } }", false),
        // A reference to a missing field equals nothing, not even another missing value.
        ("{ query.site: { equals: caller.siteId } }", false),
    ];
    for (when, expected) in cases {
        let req = get().query("site", "");
        assert_eq!(holds(when, &req, &who), expected, "{when}");
    }
}

#[test]
fn query_values_all_must_hold() {
    table(&[
        (
            "{ query.f: { one_of: [PUBLIC, FULL] } }",
            get().query("f", "FULL"),
            true,
        ),
        (
            "{ query.f: { one_of: [PUBLIC] } }",
            get().query("f", "PUBLIC").query("f", "FULL"),
            false,
        ),
        (
            "{ query.f: { one_of: [PUBLIC, FULL] } }",
            get().query("f", "PUBLIC").query("f", "FULL"),
            true,
        ),
        ("{ query.f: { one_of: [PUBLIC] } }", get(), false),
        ("{ query.f: { exists: true } }", get().query("f", ""), true),
        (
            "{ query.f: { exists: true } }",
            get().query("g", "x"),
            false,
        ),
        ("{ query.f: { absent: true } }", get().query("g", "x"), true),
        (
            "{ query.f: { absent: true } }",
            get().query("f", "x"),
            false,
        ),
        (
            "{ query.f: { equals: caller.subjectId } }",
            get().query("f", "m-1").query("f", "m-1"),
            true,
        ),
        (
            "{ query.f: { equals: caller.subjectId } }",
            get().query("f", "m-1").query("f", "m-2"),
            false,
        ),
        (
            "{ query.limit: { max: 100 } }",
            get().query("limit", "100"),
            true,
        ),
        (
            "{ query.limit: { max: 100 } }",
            get().query("limit", "50").query("limit", "101"),
            false,
        ),
        (
            "{ query.limit: { max: 100 } }",
            get().query("limit", "1e2"),
            true,
        ),
        (
            "{ query.limit: { max: 100 } }",
            get().query("limit", " 5"),
            false,
        ),
        (
            "{ query.limit: { equals: 1.5 } }",
            get().query("limit", "1.5"),
            true,
        ),
        (
            "{ query.flag: { equals: true } }",
            get().query("flag", "true"),
            true,
        ),
        (
            "{ query.flag: { equals: true } }",
            get().query("flag", "True"),
            false,
        ),
        (
            "{ query.f: { prefix: a } }",
            get().query("f", "ab").query("f", "b"),
            false,
        ),
        (
            "{ query.f: { min: 1, max: 2 } }",
            get().query("f", "1").query("f", "2"),
            true,
        ),
    ]);
}

/// YAML 1.1 spellings are strings here: `NO` is Norway, not `false`, and
/// `0123` keeps its leading zero.
#[test]
fn yaml_scalars_mean_what_they_look_like() {
    table(&[
        (
            "{ query.c: { one_of: [NO, y, on] } }",
            get().query("c", "NO"),
            true,
        ),
        (
            "{ query.c: { one_of: [NO, y, on] } }",
            get().query("c", "false"),
            false,
        ),
        (
            "{ query.c: { equals: 0123 } }",
            get().query("c", "0123"),
            true,
        ),
        (
            "{ query.c: { equals: 0123 } }",
            get().query("c", "123"),
            false,
        ),
        (
            "{ body.c: { equals: 0123 } }",
            body(json!({ "c": 123 })),
            false,
        ),
        (
            "{ body.c: { equals: yes } }",
            body(json!({ "c": true })),
            false,
        ),
        (
            "{ body.c: { equals: true } }",
            body(json!({ "c": true })),
            true,
        ),
    ]);
}

#[test]
fn header_values() {
    table(&[
        (
            "{ header.X-Tenant: { equals: blue } }",
            get().header("x-tenant", b"blue"),
            true,
        ),
        (
            "{ header.x-tenant: { equals: blue } }",
            get().header("x-tenant", b"red"),
            false,
        ),
        (
            "{ header.x-tenant: { equals: blue } }",
            get().header("x-tenant", b"blue").header("x-tenant", b"red"),
            false,
        ),
        ("{ header.x-tenant: { equals: blue } }", get(), false),
        ("{ header.x-tenant: { absent: true } }", get(), true),
        (
            "{ header.x-tenant: { exists: true } }",
            get().header("x-tenant", b"\xff"),
            true,
        ),
        // Not UTF-8: fails every comparison, whatever the operator.
        (
            "{ header.x-tenant: { regex: '.*' } }",
            get().header("x-tenant", b"\xff"),
            false,
        ),
        (
            "{ header.x-tenant: { absent: true } }",
            get().header("x-tenant", b"\xff"),
            false,
        ),
        // UTF-8 beyond ASCII is a string like any other.
        (
            "{ header.x-name: { equals: 'zoë' } }",
            get().header("x-name", "zoë".as_bytes()),
            true,
        ),
    ]);
}

#[test]
fn groups_and_multiple_operators() {
    let q = |v: &str| get().query("v", v);
    table(&[
        ("{ query.v: { prefix: a, regex: '.b' } }", q("ab"), true),
        ("{ query.v: { prefix: a, regex: '.b' } }", q("ac"), false),
        (
            "{ all: [ { query.v: { prefix: a } }, { query.v: { regex: '.b' } } ] }",
            q("ab"),
            true,
        ),
        (
            "{ all: [ { query.v: { prefix: a } }, { query.v: { regex: '.b' } } ] }",
            q("cb"),
            false,
        ),
        (
            "{ any: [ { query.v: { equals: x } }, { query.v: { equals: y } } ] }",
            q("y"),
            true,
        ),
        (
            "{ any: [ { query.v: { equals: x } }, { query.v: { equals: y } } ] }",
            q("z"),
            false,
        ),
        ("{ not: { query.v: { equals: x } } }", q("y"), true),
        ("{ not: { query.v: { equals: x } } }", q("x"), false),
        // `not` of a missing value holds: use it with care, `absent` says it directly.
        ("{ not: { query.v: { equals: x } } }", get(), true),
        (
            "{ not: { query.v: { exists: true }, path.id: { equals: abc } } }",
            q("x"),
            false,
        ),
        // `not` of a map: it holds when any entry of the map fails.
        (
            "{ not: { query.v: { exists: true }, path.id: { equals: abc } } }",
            Req::get("/t/xyz").query("v", "x"),
            true,
        ),
        (
            "{ any: [ { not: { query.v: { exists: true } } }, { query.v: { max: 3 } } ] }",
            q("2"),
            true,
        ),
        (
            "{ any: [ { not: { query.v: { exists: true } } }, { query.v: { max: 3 } } ] }",
            q("4"),
            false,
        ),
        (
            "{ any: [ { not: { query.v: { exists: true } } }, { query.v: { max: 3 } } ] }",
            get(),
            true,
        ),
    ]);
}

#[test]
fn caller_subject_type_reads_wix_spelling() {
    for (kind, name) in [
        (CallerType::Visitor, "VISITOR"),
        (CallerType::Member, "MEMBER"),
        (CallerType::User, "USER"),
    ] {
        let who = caller(kind, IdentitySource::SignedInstance);
        let when = format!("{{ caller.subjectType: {{ equals: {name} }} }}");
        assert!(holds(&when, &get(), &who), "{name}");
    }
}
