//! The pure request path, without I/O: canonicalize + route + authorize, on
//! policy sets of 10, 1,000 and 10,000 rules of realistic shape.
//!
//! ```sh
//! cargo bench --bench request_path
//! ```
//!
//! Two measurements per size:
//! - `route_authorize`: `PolicySet::route` + `policy::authorize` for a request
//!   already canonical (the issue's "route + authorize" target);
//! - `canonicalize_route_authorize`: the same, from the raw method, URI and
//!   headers through `CanonicalRequest::parse`.
//!
//! The request matches exactly one rule, one in the middle of the set, and
//! both of its conditions hold, so every condition is evaluated.

use std::{hint::black_box, path::PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderValue, Method, Uri};
use wix_elevator::{
    caller::{Caller, CallerType, IdentitySource},
    gateway::CanonicalRequest,
    policy::{self, Decision, PolicySet, RequestView},
};

/// The sizes the issue asks for.
const SIZES: [usize; 3] = [10, 1_000, 10_000];

/// `n` rules in four shapes Wix apps use, each with its own literal prefix
/// (one per "service"), captures, a glob or a `**`, and two or three
/// conditions. Split over files of 100 rules, as a large deployment would.
fn policies(n: usize) -> PolicySet {
    let mut files = Vec::new();
    let mut text = String::new();
    for i in 0..n {
        if i % 100 == 0 && !text.is_empty() {
            files.push((PathBuf::from(format!("{:05}.yaml", files.len())), text));
            text = String::new();
        }
        if text.is_empty() {
            text.push_str("rules:\n");
        }
        let rule = match i % 4 {
            0 => format!(
                r#"
  - id: members-{i}
    match: {{ methods: [GET], path: "/svc-{i}/members/v1/members/{{memberId}}" }}
    callers: [MEMBER]
    mode: elevate
    when:
      path.memberId: {{ equals: caller.subjectId }}
      query.fieldsets: {{ one_of: [PUBLIC, FULL] }}
"#
            ),
            1 => format!(
                r#"
  - id: data-query-{i}
    match: {{ methods: [POST], path: "/svc-{i}/wix-data/v2/items/query" }}
    callers: [VISITOR, MEMBER]
    mode: elevate
    when:
      header.x-app-client: {{ prefix: "site-" }}
      body.dataCollectionId: {{ one_of: [Reviews, Comments] }}
      body.query.paging.limit: {{ max: 100 }}
"#
            ),
            2 => format!(
                r#"
  - id: contacts-{i}
    match: {{ methods: [GET, DELETE], path: "/svc-{i}/contacts/v4/contacts/{{contactId}}/labels/label-*" }}
    callers: [USER]
    mode: pass_through
    when:
      path.contactId: {{ regex: "[0-9a-f-]{{36}}" }}
      query.debug: {{ absent: true }}
"#
            ),
            _ => format!(
                r#"
  - id: files-{i}
    match: {{ methods: [GET], path: "/svc-{i}/site-media/v1/files/**" }}
    callers: [VISITOR, MEMBER, USER]
    mode: elevate
    when:
      any:
        - query.width: {{ absent: true }}
        - query.width: {{ regex: "[0-9]{{1,4}}" }}
      caller.siteId: {{ exists: true }}
"#
            ),
        };
        text.push_str(&rule);
    }
    files.push((PathBuf::from(format!("{:05}.yaml", files.len())), text));
    let set = PolicySet::from_sources(&files)
        .unwrap_or_else(|errors| panic!("bench policies compile: {errors:#?}"));
    assert_eq!(set.rules().len(), n);
    set
}

/// A member-profile rule in the middle of the set (shape 0).
fn target_rule(n: usize) -> usize {
    (n / 2) / 4 * 4
}

fn caller() -> Caller {
    Caller::new(
        CallerType::Member,
        "0f2c1d7e-8a4b-4c3d-9e5f-1a2b3c4d5e6f".into(),
        "instance-1".into(),
        Some("site-1".into()),
        IdentitySource::AccessToken,
    )
}

fn headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "api.example.com"),
        ("authorization", "OauthNG.JWS.header.payload.signature"),
        ("accept", "application/json"),
        ("user-agent", "Mozilla/5.0 (bench)"),
        ("accept-language", "en-US,en;q=0.9"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
}

/// route + authorize, as the gateway runs them: whether the rule `rule_id`
/// allows the request.
fn allowed_by(
    set: &PolicySet,
    canonical: &CanonicalRequest,
    headers: &HeaderMap,
    caller: &Caller,
    rule_id: &str,
) -> bool {
    let segments = canonical.segment_refs();
    let matches = set.route(&canonical.method, &segments);
    let view = RequestView {
        segments: &segments,
        query: &canonical.query,
        headers,
        body: None,
    };
    match policy::authorize(&matches, &view, caller) {
        Decision::Allow(allowed) => allowed.rule.id() == rule_id,
        Decision::Deny(_) => false,
    }
}

fn request_path(c: &mut Criterion) {
    let caller = caller();
    let headers = headers();
    let mut group = c.benchmark_group("request_path");
    for n in SIZES {
        let set = policies(n);
        let uri: Uri = format!(
            "/svc-{}/members/v1/members/{}?fieldsets=FULL",
            target_rule(n),
            caller.subject_id
        )
        .parse()
        .expect("valid URI");
        let canonical =
            CanonicalRequest::parse(&Method::GET, &uri, &headers).expect("canonical request");
        // The request is allowed by exactly the rule it targets.
        let rule_id = format!("members-{}", target_rule(n));
        assert!(allowed_by(&set, &canonical, &headers, &caller, &rule_id));

        group.bench_with_input(BenchmarkId::new("route_authorize", n), &n, |b, _| {
            b.iter(|| {
                let canonical = black_box(&canonical);
                black_box(allowed_by(
                    &set,
                    canonical,
                    &headers,
                    black_box(&caller),
                    &rule_id,
                ))
            });
        });

        group.bench_with_input(
            BenchmarkId::new("canonicalize_route_authorize", n),
            &n,
            |b, _| {
                b.iter(|| {
                    let canonical =
                        CanonicalRequest::parse(&Method::GET, black_box(&uri), &headers)
                            .expect("canonical request");
                    black_box(allowed_by(
                        &set,
                        &canonical,
                        &headers,
                        black_box(&caller),
                        &rule_id,
                    ))
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
