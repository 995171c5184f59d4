//! The shipped example policies, loading from disk, and a timing probe.

use std::path::{Path, PathBuf};

use http::Method;
use serde_json::json;

use super::{caller, member, Req};
use crate::caller::{CallerType, IdentitySource};
use crate::policy::{authorize, Decision, PolicySet, RequestView};

fn shipped() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    PolicySet::load(&dir).unwrap_or_else(|diags| {
        let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
        panic!("shipped policies do not load:\n{}", text.join("\n"))
    })
}

#[test]
fn shipped_policies_load_cleanly() {
    let set = shipped();
    assert!(set.warnings().is_empty(), "{:?}", set.warnings());
    assert!(set.rules().len() >= 8);
    for rule in set.rules() {
        assert!(
            rule.description().is_some_and(|d| !d.is_empty()),
            "{} needs a description",
            rule.id()
        );
    }
    // Files sorted by name: apps, contacts, members, wix-data.
    assert_eq!(set.rules()[0].id(), "dashboard-reads-app-instance");
    assert!(set.rules()[0].file().ends_with("apps.yaml"));
}

#[test]
fn shipped_policies_decide_as_described() {
    let set = shipped();
    let me = member("11111111-2222-4333-8444-555555555555");
    let other = "99999999-2222-4333-8444-555555555555";
    let visitor = caller(CallerType::Visitor, IdentitySource::AccessToken);
    let user = caller(CallerType::User, IdentitySource::AccessToken);
    let legacy_user = caller(CallerType::User, IdentitySource::SignedInstance);
    let query = |collection: &str, limit: Option<i64>| {
        let mut body = json!({ "dataCollectionId": collection, "query": { "filter": {} } });
        if let Some(limit) = limit {
            body["query"]["paging"] = json!({ "limit": limit });
        }
        Req::post("/wix-data/v2/items/query", body)
    };
    let insert = |member_id: &str, rating: serde_json::Value| {
        Req::post(
            "/wix-data/v2/items",
            json!({ "dataCollectionId": "Reviews", "dataItem": { "data": { "memberId": member_id, "rating": rating } } }),
        )
    };
    let own = format!("/members/v1/members/{}", me.subject_id);
    let theirs = format!("/members/v1/members/{other}");
    let cases: Vec<(Req, &crate::caller::Caller, Result<&str, &str>)> = vec![
        (
            query("Reviews", Some(100)),
            &visitor,
            Ok("reviews-query-public"),
        ),
        (query("Reviews", None), &me, Ok("reviews-query-public")),
        (
            query("Reviews", Some(101)),
            &visitor,
            Err("conditions_failed"),
        ),
        (
            query("Orders", Some(10)),
            &visitor,
            Err("conditions_failed"),
        ),
        (
            query("Orders", Some(10)),
            &user,
            Ok("dashboard-user-queries-items"),
        ),
        (
            insert(&me.subject_id, json!(5)),
            &me,
            Ok("reviews-insert-own"),
        ),
        (insert(other, json!(5)), &me, Err("conditions_failed")),
        (
            insert(&me.subject_id, json!("5")),
            &me,
            Err("conditions_failed"),
        ),
        (
            insert(&me.subject_id, json!(6)),
            &me,
            Err("conditions_failed"),
        ),
        (
            insert(&me.subject_id, json!(5)),
            &visitor,
            Err("caller_not_admitted"),
        ),
        (
            Req::get(&own).query("fieldsets", "FULL"),
            &me,
            Ok("member-reads-own-profile"),
        ),
        (Req::get(&own), &me, Ok("member-reads-own-profile")),
        (
            Req::get(&theirs).query("fieldsets", "FULL"),
            &me,
            Err("conditions_failed"),
        ),
        (
            Req::get(&theirs).query("fieldsets", "PUBLIC"),
            &me,
            Ok("anyone-reads-public-profile"),
        ),
        (
            Req::get(&theirs).query("fieldsets", "PUBLIC"),
            &visitor,
            Ok("anyone-reads-public-profile"),
        ),
        (
            Req::get(&theirs)
                .query("fieldsets", "PUBLIC")
                .query("fieldsets", "FULL"),
            &visitor,
            Err("conditions_failed"),
        ),
        (
            Req::post("/members/v1/members/query", json!({})),
            &me,
            Ok("member-queries-members-as-self"),
        ),
        (
            Req::get("/contacts/v4/contacts/00000000-0000-4000-8000-000000000001"),
            &visitor,
            Ok("visitor-reads-business-card"),
        ),
        (
            Req::get(&format!("/contacts/v4/contacts/{other}")),
            &visitor,
            Err("conditions_failed"),
        ),
        (
            Req::get(&format!("/contacts/v4/contacts/{other}")),
            &user,
            Ok("dashboard-user-reads-contact"),
        ),
        (
            Req::get("/apps/v1/instance"),
            &legacy_user,
            Ok("dashboard-reads-app-instance"),
        ),
        (
            Req::get("/apps/v1/instance"),
            &visitor,
            Err("caller_not_admitted"),
        ),
        (
            Req::new(Method::DELETE, "/wix-data/v2/items"),
            &user,
            Err("no_route"),
        ),
    ];
    for (req, who, expected) in cases {
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(
            req.decide(&set, who),
            expected,
            "{} {:?} {:?}",
            req.path,
            req.query,
            req.body
        );
    }
}

/// A scratch folder under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("wix-elevator-policy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn one_rule(id: &str) -> String {
    format!("rules:\n  - {{ id: {id}, match: {{ methods: [GET], path: /x }}, callers: [USER], mode: elevate }}\n")
}

#[test]
fn load_reads_yaml_files_of_a_folder_sorted_by_name() {
    let dir = Scratch::new("folder");
    dir.write("b.yml", &one_rule("b"));
    dir.write("a.yaml", &one_rule("a"));
    dir.write("c.yaml", &one_rule("c"));
    dir.write("notes.txt", "not yaml");
    dir.write(".hidden.yaml", "not even yaml: [");
    std::fs::create_dir(dir.0.join("sub")).unwrap();
    dir.write("sub/d.yaml", &one_rule("d"));
    let set = PolicySet::load(&dir.0).unwrap();
    let ids: Vec<&str> = set.rules().iter().map(|r| r.id()).collect();
    assert_eq!(ids, ["a", "b", "c"]);

    // A single file is loaded whatever its name.
    let single = dir.write("notes.txt", &one_rule("n"));
    assert_eq!(PolicySet::load(&single).unwrap().rules()[0].id(), "n");
}

#[test]
fn load_reports_files_by_path() {
    let dir = Scratch::new("errors");
    let path = dir.write(
        "a.yaml",
        "rules:\n  - id: a\n    nope: 1\n    match: { methods: [GET], path: /a }\n    callers: [USER]\n    mode: elevate\n",
    );
    let errors = PolicySet::load(&dir.0).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].file, path);
    assert_eq!((errors[0].line, errors[0].column), (3, 5));

    let empty = Scratch::new("empty");
    let errors = PolicySet::load(&empty.0).unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("no *.yaml or *.yml policy files"),
        "{errors:?}"
    );

    let errors = PolicySet::load(&empty.0.join("missing.yaml")).unwrap_err();
    assert!(errors[0].message.starts_with("cannot read"), "{errors:?}");
}

/// Times route + authorize over 1,000 rules of realistic shape. Run with
/// `cargo test --release --lib policy::tests::examples::timing -- --ignored --nocapture`.
#[test]
#[ignore = "timing probe, run by hand in release mode"]
fn timing_route_and_authorize_at_1000_rules() {
    let mut yaml = String::from("rules:\n");
    for i in 0..1000 {
        let rule = match i % 4 {
            0 => format!(
                "  - id: q{i}\n    match: {{ methods: [POST], path: /wix-data/v2/c{}/items/query }}\n    callers: [VISITOR, MEMBER]\n    mode: elevate\n    when:\n      body.dataCollectionId: {{ equals: Col{i} }}\n      body.query.paging.limit: {{ max: 100 }}\n",
                i / 40
            ),
            1 => format!(
                "  - id: m{i}\n    match: {{ methods: [GET], path: \"/members/v{i}/members/{{memberId}}\" }}\n    callers: [MEMBER]\n    mode: elevate\n    when:\n      path.memberId: {{ equals: caller.subjectId }}\n      query.fieldsets: {{ one_of: [PUBLIC, FULL] }}\n"
            ),
            2 => format!(
                "  - id: c{i}\n    match: {{ methods: [GET, HEAD], path: \"/contacts/v{i}/contacts/*\" }}\n    callers: [USER]\n    mode: pass_through\n"
            ),
            _ => format!(
                "  - id: s{i}\n    match: {{ methods: [GET], path: \"/static/s{i}/**\" }}\n    callers: [VISITOR]\n    mode: elevate\n    when:\n      header.x-tenant: {{ regex: \"t-[0-9]+\" }}\n"
            ),
        };
        yaml.push_str(&rule);
    }
    let set = super::set(&yaml);
    let me = member("m-1");
    let query = vec![("fieldsets".into(), "FULL".into())];
    let headers = http::HeaderMap::new();
    let body = json!({ "dataCollectionId": "Col400", "query": { "paging": { "limit": 50 } } });
    // In the third case the last of the ten rules on the route decides.
    let last = json!({ "dataCollectionId": "Col436", "query": { "paging": { "limit": 50 } } });
    let data = vec!["wix-data", "v2", "c10", "items", "query"];
    let cases: [(Method, Vec<&str>, Option<&serde_json::Value>, bool); 4] = [
        (
            Method::GET,
            vec!["members", "v501", "members", "m-1"],
            None,
            true,
        ),
        (Method::POST, data.clone(), Some(&body), true),
        (Method::POST, data, Some(&last), true),
        (Method::GET, vec!["nothing", "here"], None, false),
    ];
    for (method, segments, body, allowed) in &cases {
        let view = RequestView {
            segments,
            query: &query,
            headers: &headers,
            body: *body,
        };
        let mut samples = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let start = std::time::Instant::now();
            let matches = set.route(method, segments);
            let decision = authorize(&matches, &view, &me);
            assert_eq!(matches!(decision, Decision::Allow(_)), *allowed);
            std::hint::black_box(&decision);
            samples.push(start.elapsed());
        }
        samples.sort();
        println!(
            "{method} /{}: median {:?}, p99 {:?}",
            segments.join("/"),
            samples[1000],
            samples[1980]
        );
    }
}
