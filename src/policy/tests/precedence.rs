//! First match wins, deny reasons, admission by caller type and identity
//! source, and the observer seeing what the evaluator saw.

use std::path::PathBuf;

use http::Method;
use serde_json::json;

use super::{caller, member, set, Req};
use crate::caller::{CallerType, IdentitySource};
use crate::policy::{
    authorize_observed, Condition, Decision, DenyReason, Mode, Observer, PolicySet, RequestView,
    Rule, RuleOutcome, Seen, Test,
};

const RULES: &str = r#"
rules:
  - id: own-profile
    match: { methods: [GET], path: "/members/{id}" }
    callers: [MEMBER]
    mode: elevate
    when:
      path.id: { equals: caller.subjectId }
  - id: users-any-profile
    match: { methods: [GET], path: "/members/{id}" }
    callers: [USER]
    mode: pass_through
  - id: public-profile
    match: { methods: [GET], path: "/members/{id}" }
    callers: [VISITOR, MEMBER]
    mode: pass_through
    when:
      query.fieldsets: { equals: PUBLIC }
  - id: legacy-only
    match: { methods: [GET], path: "/legacy" }
    callers: [USER]
    mode: elevate
    identity: [signed_instance]
"#;

#[test]
fn first_admitting_rule_with_holding_conditions_decides() {
    let set = set(RULES);
    let visitor = caller(CallerType::Visitor, IdentitySource::AccessToken);
    let user = caller(CallerType::User, IdentitySource::AccessToken);
    let me = member("m-1");
    let legacy_user = caller(CallerType::User, IdentitySource::SignedInstance);
    let cases: Vec<(Req, &crate::caller::Caller, Result<&str, &str>)> = vec![
        (Req::get("/members/m-1"), &me, Ok("own-profile")),
        // The earlier, more privileged rule fails its condition; a later one still applies.
        (
            Req::get("/members/m-2").query("fieldsets", "PUBLIC"),
            &me,
            Ok("public-profile"),
        ),
        (Req::get("/members/m-2"), &me, Err("conditions_failed")),
        // Earlier rules that do not admit the caller type do not block later ones.
        (
            Req::get("/members/m-2").query("fieldsets", "PUBLIC"),
            &visitor,
            Ok("public-profile"),
        ),
        (Req::get("/members/m-2"), &visitor, Err("conditions_failed")),
        (Req::get("/members/m-2"), &user, Ok("users-any-profile")),
        (Req::get("/nothing"), &me, Err("no_route")),
        (Req::new(Method::POST, "/members/m-1"), &me, Err("no_route")),
        (Req::get("/legacy"), &me, Err("caller_not_admitted")),
        // Right type, wrong identity source.
        (Req::get("/legacy"), &user, Err("caller_not_admitted")),
        (Req::get("/legacy"), &legacy_user, Ok("legacy-only")),
    ];
    for (req, who, expected) in cases {
        let got = req.decide(&set, who);
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(
            got, expected,
            "{} {:?} as {:?}",
            req.path, req.query, who.subject_type
        );
    }
}

#[test]
fn allow_carries_the_rule_mode_and_captures() {
    let set = set(RULES);
    let segments = ["members", "m-1"];
    let matches = set.route(&Method::GET, &segments);
    let headers = http::HeaderMap::new();
    let view = RequestView {
        segments: &segments,
        query: &[],
        headers: &headers,
        body: None,
    };
    match crate::policy::authorize(&matches, &view, &member("m-1")) {
        Decision::Allow(m) => {
            assert_eq!(m.rule.mode(), Mode::Elevate);
            assert_eq!(m.captures(&segments), [("id", "m-1")]);
        }
        other => panic!("expected allow, got {other:?}"),
    }
    let user = caller(CallerType::User, IdentitySource::AccessToken);
    let decision = crate::policy::authorize(&matches, &view, &user);
    assert_eq!(decision.mode(), Some(Mode::PassThrough));
}

#[test]
fn rule_order_follows_source_order() {
    let a = "rules:\n  - { id: a, match: { methods: [GET], path: /x }, callers: [USER], mode: pass_through }\n";
    let b = "rules:\n  - { id: b, match: { methods: [GET], path: /x }, callers: [USER], mode: elevate }\n";
    let user = caller(CallerType::User, IdentitySource::AccessToken);
    for (first, second, winner) in [(a, b, "a"), (b, a, "b")] {
        let set = PolicySet::from_sources(&[
            (PathBuf::from("1.yaml"), first.to_owned()),
            (PathBuf::from("2.yaml"), second.to_owned()),
        ])
        .unwrap();
        assert_eq!(Req::get("/x").decide(&set, &user), Ok(winner.to_owned()));
    }
}

#[test]
fn admits_and_accepts_source() {
    let set = set(RULES);
    let rule = |id: &str| set.rules().iter().find(|r| r.id() == id).unwrap();
    let own = rule("own-profile");
    assert!(own.admits(CallerType::Member, IdentitySource::AccessToken));
    assert!(!own.admits(CallerType::Member, IdentitySource::SignedInstance));
    assert!(!own.admits(CallerType::Visitor, IdentitySource::AccessToken));
    assert!(own.accepts_source(IdentitySource::AccessToken));
    assert!(!own.accepts_source(IdentitySource::SignedInstance));
    let legacy = rule("legacy-only");
    assert!(legacy.accepts_source(IdentitySource::SignedInstance));
    assert!(!legacy.accepts_source(IdentitySource::AccessToken));
}

#[test]
fn codes_and_modes_display() {
    assert_eq!(DenyReason::NoRoute.to_string(), "no_route");
    assert_eq!(
        DenyReason::CallerNotAdmitted.to_string(),
        "caller_not_admitted"
    );
    assert_eq!(
        DenyReason::ConditionsFailed.to_string(),
        "conditions_failed"
    );
    assert_eq!(Mode::Elevate.to_string(), "elevate");
    assert_eq!(Mode::PassThrough.to_string(), "pass_through");
}

/// A trace the way `explain` will build one.
#[derive(Default)]
struct Trace<const ALL: bool> {
    lines: Vec<String>,
}

impl<const ALL: bool> Observer for Trace<ALL> {
    const EXHAUSTIVE: bool = ALL;

    fn value(&mut self, test: &Test, seen: Seen<'_>, held: bool) {
        let seen = match seen {
            Seen::Missing => "missing".to_owned(),
            Seen::Str(s) => format!("{s:?}"),
            Seen::Json(v) => v.to_string(),
            Seen::NotUtf8 => "not utf-8".to_owned(),
        };
        self.lines.push(format!("  {test} <- {seen}: {held}"));
    }

    fn group(&mut self, condition: &Condition, held: bool) {
        let kind = match condition {
            Condition::All(_) => "all",
            Condition::Any(_) => "any",
            Condition::Not(_) => "not",
            Condition::Test(_) => "test",
        };
        self.lines.push(format!("  {kind}: {held}"));
    }

    fn rule(&mut self, rule: &Rule, outcome: RuleOutcome) {
        self.lines.push(format!("{}: {outcome:?}", rule.id()));
    }
}

#[test]
fn observer_sees_values_in_yaml_order() {
    let set = set(r#"
rules:
  - id: skip-me
    match: { methods: [POST], path: /q }
    callers: [USER]
    mode: elevate
  - id: query
    match: { methods: [POST], path: /q }
    callers: [MEMBER]
    mode: elevate
    when:
      body.limit: { max: 10 }
      query.f: { one_of: [A] }
      body.name: { equals: caller.subjectId }
"#);
    let matches = set.route(&Method::POST, &["q"]);
    let query = vec![("f".into(), "A".into()), ("f".into(), "B".into())];
    let headers = http::HeaderMap::new();
    let body = json!({ "limit": 5 });
    let view = RequestView {
        segments: &["q"],
        query: &query,
        headers: &headers,
        body: Some(&body),
    };

    let mut short = Trace::<false>::default();
    let decision = authorize_observed(&matches, &view, &member("m-1"), &mut short);
    assert!(matches!(
        decision,
        Decision::Deny(DenyReason::ConditionsFailed)
    ));
    assert_eq!(
        short.lines,
        [
            "skip-me: NotAdmitted",
            "  body.limit max 10 <- 5: true",
            "  query.f one_of [\"A\"] <- \"A\": true",
            "  query.f one_of [\"A\"] <- \"B\": false",
            "  all: false",
            "query: ConditionsFailed",
        ]
    );

    let mut full = Trace::<true>::default();
    authorize_observed(&matches, &view, &member("m-1"), &mut full);
    assert_eq!(
        full.lines[4..],
        [
            "  body.name equals caller.subjectId <- missing: false".to_owned(),
            "  all: false".to_owned(),
            "query: ConditionsFailed".to_owned(),
        ]
    );
}
