//! The shipped policy tests (`policies/tests/*.yaml`) pass and cover every
//! shipped rule, through the library and through the built binary; a policy
//! change that breaks a case fails the run.

use std::path::{Path, PathBuf};
use std::process::Command;

use wix_elevator::authoring::evaluate::Settings;
use wix_elevator::authoring::policy_tests::{run, test_files};
use wix_elevator::policy::PolicySet;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_policy_tests_pass_and_cover_every_rule() {
    let policies = PolicySet::load(&root().join("policies")).expect("shipped policies load");
    let files = test_files(&[root().join("policies/tests")]).unwrap();
    assert_eq!(files.len(), 4, "one test file per policy file");
    let report = run(&policies, &files, &Settings::default());
    let text = report.render(false);
    assert_eq!(report.failed(), 0, "{text}");
    assert!(report.uncovered.is_empty(), "{text}");
    assert!(report.passed() >= 2 * policies.rules().len(), "{text}");
    // Every rule has a case it allows and a near miss it denies.
    for rule in policies.rules() {
        let mentions = report
            .results
            .iter()
            .filter(|r| {
                r.evaluation
                    .rules
                    .iter()
                    .any(|t| t.id == rule.id() && t.outcome.is_some())
            })
            .filter(|r| !r.evaluation.allowed())
            .count();
        assert!(mentions > 0, "no denied case evaluates rule {}", rule.id());
    }
}

#[test]
fn the_binary_runs_them_from_the_config_and_ends_with_the_summary() {
    let output = Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
        .args(["test", "--config", "proxy.yaml", "--require-coverage"])
        .current_dir(root())
        .env_remove("WIX_APP_ID")
        .env_remove("WIX_APP_SECRET")
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{text}");
    let last = text.lines().last().unwrap();
    let (passed, failed) = last.split_once(" passed, ").expect("summary line");
    assert!(passed.parse::<usize>().unwrap() >= 20, "{last}");
    assert_eq!(failed, "0 failed");
    assert!(
        text.contains("coverage: every rule (10) allowed at least one case"),
        "{text}"
    );
}

/// A copy of the shipped policies and tests to break.
fn scratch_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    for sub in ["", "tests"] {
        for entry in std::fs::read_dir(root().join("policies").join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let to: PathBuf = dir.path().join(sub).join(path.file_name().unwrap());
                std::fs::copy(&path, to).unwrap();
            }
        }
    }
    dir
}

#[test]
fn a_policy_change_that_breaks_a_case_fails_with_its_trace() {
    let dir = scratch_copy();
    let data = dir.path().join("wix-data.yaml");
    let text = std::fs::read_to_string(&data).unwrap();
    // Loosen the rating bound: the "rating above 5" case must now fail.
    std::fs::write(
        &data,
        text.replace("{ min: 1, max: 5 }", "{ min: 1, max: 10 }"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
        .args(["test", "--policies"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("wix-data.yaml:79:5 a rating above 5 is refused\n  expected deny (conditions_failed), got allow by reviews-insert-own (elevate)\n"), "{text}");
    assert!(
        text.contains("    pass body.dataItem.data.rating max 10: saw 6\n"),
        "{text}"
    );
    assert!(text.ends_with(" passed, 1 failed\n"), "{text}");
}

#[test]
fn uncovered_rules_and_bad_cases_are_reported() {
    let dir = scratch_copy();
    std::fs::remove_file(dir.path().join("tests/apps.yaml")).unwrap();
    std::fs::write(
        dir.path().join("tests/zz-bad.yaml"),
        "cases:\n  - name: typo\n    request: { method: GET, path: /apps/v1/instance }\n    expect: { decision: allow, mode: elevate, rule: no-such-rule }\n  - name: bad caller\n    request: { method: GET, path: /a }\n    caller: { type: ADMIN, id: a, instance: i }\n    expect: { decision: deny }\n",
    )
    .unwrap();
    let policies = PolicySet::load(dir.path()).unwrap();
    let files = test_files(&[dir.path().join("tests")]).unwrap();
    let report = run(&policies, &files, &Settings::default());
    let text = report.render(false);
    assert_eq!(report.failed(), 2, "{text}");
    assert!(
        text.contains("zz-bad.yaml:2:5: error: case `typo`: no rule has the id `no-such-rule`"),
        "{text}"
    );
    assert!(
        text.contains("zz-bad.yaml:5:5: error: case `bad caller`: unknown caller type `ADMIN`"),
        "{text}"
    );
    assert!(
        text.contains("coverage: 1 of 10 rules allowed no case:\n  dashboard-reads-app-instance ("),
        "{text}"
    );
}
