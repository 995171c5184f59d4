//! `wix-elevator check`, through the built binary: a folder of deliberately
//! broken policies gives every expected diagnostic, at the right line, and
//! the shipped configuration is clean.

use std::path::Path;
use std::process::{Command, Output};

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("WIX_ELEVATOR_CONFIG")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// Each expected diagnostic as `file:line:col: severity: start of message`,
/// and its code if it has one.
const EXPECTED: &[(&str, Option<&str>)] = &[
    ("a-syntax.yaml:5:12: error: while parsing a flow mapping", None),
    ("b-rules.yaml:3:5: error: missing field `callers`", None),
    ("b-rules.yaml:5:5: error: unknown field `caller`, expected one of id, description, match, callers, mode, identity, when, allow_query, allow_warnings (did you mean `callers`?)", None),
    ("b-rules.yaml:11:29: error: unknown method `FETCH`", None),
    ("b-rules.yaml:12:23: error: unknown caller type `ADMIN`: expected VISITOR, MEMBER or USER", None),
    ("b-rules.yaml:13:11: error: unknown mode `elevated`", None),
    ("b-rules.yaml:15:7: error: `path.id`: path `/contacts/v4/contacts/{contactId}` has no capture `id` (its captures are `contactId`)", None),
    ("b-rules.yaml:16:7: error: unknown selector `cookie.session`", None),
    ("b-rules.yaml:17:26: error: unknown operator `in`", None),
    ("b-rules.yaml:20:36: error: path `/wix-data/v2/items/[z-a]`: `[z-a]`: invalid glob", None),
    ("b-rules.yaml:24:25: error: invalid regex: unclosed group", None),
    ("b-rules.yaml:30:22: error: unknown warning code `shadowed` in `allow_warnings`", None),
    ("b-rules.yaml:32:47: error: `body.query.paging.limit`: `max` needs a number but `prefix` needs a string", None),
    ("b-rules.yaml:33:27: error: `caller.subjectId` is an identifier, never a number", None),
    ("c-duplicate.yaml:3:9: error: duplicate rule id `bad-types`: first defined at tests/fixtures/broken/b-rules.yaml:26:9", None),
    ("d-warnings.yaml:3:9: warning: rule `anyone-elevated` elevates every anonymous visitor", Some("elevated-visitor-unconditional")),
    ("d-warnings.yaml:8:9: warning: rule `everything-under-data` elevates a path ending in a wildcard", Some("elevated-wildcard-path")),
    ("d-warnings.yaml:22:9: warning: rule `own-profile-full` never applies: rule `own-profile` (tests/fixtures/broken/d-warnings.yaml:15:9)", Some("shadowed-rule")),
    ("d-warnings.yaml:30:9: warning: rule `profile-as-self` (pass_through) and the earlier rule `own-profile` (elevate", Some("conflicting-modes")),
    ("d-warnings.yaml:31:29: warning: method `GET` is listed twice", Some("duplicate-entry")),
    ("d-warnings.yaml:36:22: warning: rule `profile-as-self` reads the body but matches GET", Some("body-condition-without-body")),
    ("e-empty.yaml:1:1: warning: this file has no rules", Some("empty-file")),
];

#[test]
fn broken_policies_give_every_diagnostic_at_its_line() {
    let output = check(&["--policies", "tests/fixtures/broken"]);
    assert_eq!(output.status.code(), Some(1), "errors exit 1");
    let text = stdout(&output);
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tests/fixtures/broken/"))
        .collect();
    assert_eq!(headers.len(), EXPECTED.len(), "{text}");
    for (line, (want, code)) in headers.iter().zip(EXPECTED) {
        let line = line.strip_prefix("tests/fixtures/broken/").unwrap();
        assert!(line.starts_with(want), "got {line:?}\nwant {want:?}");
        match code {
            Some(code) => assert!(line.ends_with(&format!(" [{code}]")), "{line}"),
            None => assert!(!line.ends_with(']'), "{line}"),
        }
    }
    assert!(text.ends_with("15 errors, 7 warnings\n"), "{text}");
    // The offending line is shown, with a caret under the column.
    assert!(
        text.contains(
            "17 |       query.fieldsets: { in: [PUBLIC] }\n   |                          ^\n"
        ),
        "{text}"
    );
    // `allow_warnings` silenced the wildcard on rule `silenced`.
    assert!(!text.contains("`silenced`"), "{text}");
}

#[test]
fn json_format_lists_the_same_diagnostics() {
    let output = check(&["--policies", "tests/fixtures/broken", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(items.len(), EXPECTED.len());
    for (item, (want, code)) in items.iter().zip(EXPECTED) {
        let header = format!(
            "{}:{}:{}: {}: {}",
            Path::new(item["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_str()
                .unwrap(),
            item["line"],
            item["column"],
            item["severity"].as_str().unwrap(),
            item["message"].as_str().unwrap()
        );
        assert!(header.starts_with(want), "{header} / {want}");
        assert_eq!(item["code"].as_str(), *code, "{item}");
    }
}

#[test]
fn warnings_alone_pass_unless_denied() {
    let warnings_only = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken/d-warnings.yaml"),
        warnings_only.path().join("d.yaml"),
    )
    .unwrap();
    let dir = warnings_only.path().to_str().unwrap();
    let output = check(&["--policies", dir]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).ends_with("0 errors, 6 warnings\n"));
    let output = check(&["--policies", dir, "--deny-warnings"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn the_shipped_config_and_policies_are_clean_without_secrets() {
    // No WIX_APP_ID / WIX_APP_SECRET: `check` needs no secrets.
    let output = Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
        .args(["check", "--config", "proxy.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("WIX_APP_ID")
        .env_remove("WIX_APP_SECRET")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stdout(&output), "no problems: 10 rules\n");
}

#[test]
fn config_errors_are_reported_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.yaml");
    std::fs::write(
        &config,
        "wix:\n  app_id: a\n  app_secret: b\npolicies: policies/\ncolour: red\n",
    )
    .unwrap();
    let output = check(&["--config", config.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("proxy.yaml:5:1: error: unknown field `colour`"),
        "{text}"
    );
    assert!(text.contains("5 | colour: red\n  | ^\n"), "{text}");
}
