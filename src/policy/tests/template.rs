//! Path templates: parsing, matching, and the index agreeing with a linear scan.

use http::Method;

use super::set;
use crate::policy::{PathTemplate, PolicySet};

fn segs(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

#[test]
fn template_matching_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("/a/b", "/a/b", true),
        ("/a/b", "/a/c", false),
        ("/a/b", "/a", false),
        ("/a/b", "/a/b/c", false),
        ("/a/{id}", "/a/42", true),
        ("/a/{id}", "/a", false),
        ("/a/{id}", "/a/42/x", false),
        ("/a/{id}/c", "/a/42/c", true),
        ("/a/*.json", "/a/x.json", true),
        ("/a/*.json", "/a/x.txt", false),
        ("/a/v?", "/a/v1", true),
        ("/a/v?", "/a/v10", false),
        ("/a/v[12]", "/a/v2", true),
        ("/a/v[12]", "/a/v3", false),
        ("/a/**", "/a/b", true),
        ("/a/**", "/a/b/c/d", true),
        ("/a/**", "/a", false),
        ("/**", "/x", true),
        ("/a/{id}/**", "/a/1/x/y", true),
        ("/a/{id}/**", "/a/1", false),
        // Empty segments never match, even for captures, globs and `**`.
        ("/a/{id}", "/a/", false),
        ("/a/*", "/a/", false),
        ("/a/**", "/a//b", false),
    ];
    for (template, path, expected) in cases {
        let t = PathTemplate::parse(template).expect(template);
        assert_eq!(
            t.matches(&segs(path)),
            *expected,
            "{template} against {path}"
        );
    }
}

#[test]
fn template_errors_table() {
    let cases: &[(&str, &str)] = &[
        ("a/b", "must start with `/`"),
        ("/", "empty segment"),
        ("/a//b", "empty segment"),
        ("/a/", "empty segment"),
        ("/a/**/b", "only allowed as the last segment"),
        ("/a/b**", "must be a whole segment"),
        ("/a/{1x}", "capture names"),
        ("/a/{}", "capture names"),
        ("/a/{x-y}", "capture names"),
        ("/a/x{id}", "whole-segment capture"),
        ("/a/{id}/{id}", "appears twice"),
        ("/a/[b", "invalid glob"),
        ("/a/..", "never reach the router"),
    ];
    for (template, expected) in cases {
        let errors = PathTemplate::parse(template).expect_err(template);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{template}: {errors:?} should mention {expected:?}"
        );
    }
}

#[test]
fn template_reports_every_bad_segment() {
    let errors = PathTemplate::parse("/a//{9}/**/x").unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn route_returns_captures_in_template_order() {
    let set = set(r#"
rules:
  - id: r
    match: { methods: [GET], path: "/sites/{site}/items/{item}" }
    callers: [VISITOR]
    mode: elevate
"#);
    let segments = ["sites", "s1", "items", "i9"];
    let matches = set.route(&Method::GET, &segments);
    assert_eq!(matches.len(), 1);
    assert_eq!(
        matches[0].captures(&segments),
        [("site", "s1"), ("item", "i9")]
    );
    // What a `path.<name>` condition reads: one capture, by its place.
    let template = PathTemplate::parse("/sites/{site}/*/{item}/**").expect("valid template");
    let long = ["sites", "s1", "items", "i9", "a", "b"];
    assert_eq!(template.capture(0, &long), Some("s1"));
    assert_eq!(template.capture(1, &long), Some("i9"));
    assert_eq!(template.capture(2, &long), None);
    assert!(set
        .route(&Method::POST, &["sites", "s1", "items", "i9"])
        .is_empty());
    assert!(set
        .route(&Method::OPTIONS, &["sites", "s1", "items", "i9"])
        .is_empty());
    assert!(set.route(&Method::GET, &[]).is_empty());
}

#[test]
fn route_returns_every_match_in_rule_order() {
    let set = set(r#"
rules:
  - { id: rest, match: { methods: [GET, POST], path: "/a/**" }, callers: [USER], mode: elevate }
  - { id: glob, match: { methods: [GET], path: "/a/b*" }, callers: [USER], mode: elevate }
  - { id: capture, match: { methods: [GET], path: "/a/{x}" }, callers: [USER], mode: elevate }
  - { id: literal, match: { methods: [GET], path: "/a/bc" }, callers: [USER], mode: elevate }
  - { id: other-capture, match: { methods: [GET], path: "/a/{y}" }, callers: [USER], mode: elevate }
  - { id: deeper, match: { methods: [GET], path: "/a/bc/d" }, callers: [USER], mode: elevate }
"#);
    let ids = |method: Method, path: &str| -> Vec<String> {
        set.route(&method, &segs(path))
            .iter()
            .map(|m| m.rule.id().to_owned())
            .collect()
    };
    assert_eq!(
        ids(Method::GET, "/a/bc"),
        ["rest", "glob", "capture", "literal", "other-capture"]
    );
    assert_eq!(
        ids(Method::GET, "/a/zz"),
        ["rest", "capture", "other-capture"]
    );
    assert_eq!(ids(Method::POST, "/a/bc"), ["rest"]);
    assert_eq!(ids(Method::GET, "/a/bc/d"), ["rest", "deeper"]);
    assert!(ids(Method::GET, "/b").is_empty());
}

/// The index must agree with testing every template directly, for many
/// overlapping templates and paths.
#[test]
fn index_agrees_with_linear_scan() {
    let templates = [
        "/a",
        "/a/b",
        "/a/{x}",
        "/a/*",
        "/a/b*",
        "/a/**",
        "/{x}/b",
        "/{x}/{y}",
        "/{x}/**",
        "/a/b/c",
        "/a/{x}/c",
        "/a/?/c",
        "/**",
        "/a/[bc]/**",
        "/c/{x}",
    ];
    let mut yaml = String::from("rules:\n");
    for (i, t) in templates.iter().enumerate() {
        yaml.push_str(&format!(
            "  - {{ id: r{i}, match: {{ methods: [GET], path: \"{t}\" }}, callers: [USER], mode: elevate }}\n"
        ));
    }
    let set = set(&yaml);
    let words = ["a", "b", "c", "bb", "x"];
    let mut paths: Vec<Vec<&str>> = Vec::new();
    for a in words {
        paths.push(vec![a]);
        for b in words {
            paths.push(vec![a, b]);
            for c in words {
                paths.push(vec![a, b, c]);
                paths.push(vec![a, b, c, "d"]);
            }
        }
    }
    for path in &paths {
        assert_routing_agrees_with_linear_scan(&set, path);
    }
}

/// The trie finds exactly the rules whose templates match `path`, in order.
fn assert_routing_agrees_with_linear_scan(set: &PolicySet, path: &[&str]) {
    let routed: Vec<&str> = set
        .route(&Method::GET, path)
        .iter()
        .map(|m| m.rule.id())
        .collect();
    let linear: Vec<&str> = set
        .rules()
        .iter()
        .filter(|r| r.template().matches(path))
        .map(|r| r.id())
        .collect();
    assert_eq!(routed, linear, "path {path:?}");
}

/// A node with more literal edges than the binary-search limit is indexed
/// by hash; lookups through it must find exactly what the templates match.
#[test]
fn wide_nodes_agree_with_linear_scan() {
    let mut yaml = String::from("rules:\n");
    for i in 0..100 {
        yaml.push_str(&format!(
            "  - {{ id: s{i}, match: {{ methods: [GET], path: \"/svc-{i}/items/{{id}}\" }}, callers: [USER], mode: elevate }}\n"
        ));
    }
    yaml.push_str(
        "  - { id: any, match: { methods: [GET], path: \"/{x}/items/{id}\" }, callers: [USER], mode: elevate }\n",
    );
    let set = set(&yaml);
    for first in ["svc-0", "svc-42", "svc-99", "svc-100", "svc", "other"] {
        assert_routing_agrees_with_linear_scan(&set, &[first, "items", "7"]);
    }
}
