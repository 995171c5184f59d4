//! `explain`: traces of the shipped policies through the library, exit
//! statuses through the built binary, and a real token checked against the
//! sandbox's token-info.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wix_elevator::authoring::evaluate::{evaluate, Outcome, Probe, ProbeCaller, Settings};
use wix_elevator::authoring::explain::{parse_caller, render, SourceArg};
use wix_elevator::config::PassThroughMode;
use wix_elevator::policy::PolicySet;
use wix_elevator::sandbox::{MintRequest, Sandbox, SandboxConfig};
use wix_elevator::secret::Secret;

const ME: &str = "11111111-2222-4333-8444-555555555555";

fn shipped() -> PolicySet {
    PolicySet::load(Path::new("policies")).expect("shipped policies load")
}

fn explain(probe: &Probe, caller: &str) -> (Outcome, String) {
    let caller = ProbeCaller::Known(parse_caller(caller, SourceArg::AccessToken).unwrap());
    let evaluation = evaluate(&shipped(), probe, &caller, &Settings::default()).unwrap();
    (evaluation.outcome.clone(), render(&evaluation, &caller))
}

fn get(target: &str) -> Probe {
    Probe {
        method: "GET".into(),
        target: target.into(),
        ..Probe::default()
    }
}

#[test]
fn an_allowed_request_shows_every_rule_test_and_value() {
    let (outcome, text) = explain(
        &get(&format!("/members/v1/members/{ME}?fieldsets=FULL")),
        &format!("MEMBER:{ME}:inst-1:site-1"),
    );
    assert!(matches!(outcome, Outcome::Allow { .. }));
    assert_eq!(
        text,
        format!(
            "request     GET /members/v1/members/{ME}?fieldsets=FULL
caller      MEMBER {ME} with an access token (instance inst-1, site site-1)
route       2 rules match
  rule member-reads-own-profile (policies/members.yaml:3:9, elevate): allows
    captures: memberId = \"{ME}\"
    pass path.memberId equals caller.subjectId: saw \"{ME}\"
    pass any:
      FAIL query.fieldsets absent: saw \"FULL\"
      pass query.fieldsets one_of [\"PUBLIC\", \"FULL\"]: saw \"FULL\"
  rule anyone-reads-public-profile (policies/members.yaml:16:9, elevate): not evaluated: an earlier rule decided
decision    allow by member-reads-own-profile (elevate)
credential  app token for instance inst-1 (client_credentials); the caller's credential is not forwarded
"
        )
    );
}

#[test]
fn a_denied_request_shows_why_each_rule_refused() {
    let (outcome, text) = explain(
        &get(&format!("/members/v1/members/{ME}")),
        "VISITOR:v-1:inst-1",
    );
    assert!(
        matches!(
            outcome,
            Outcome::Deny {
                status: 403,
                reason: "conditions_failed",
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(text.contains("rule member-reads-own-profile (policies/members.yaml:3:9, elevate): does not admit VISITOR v-1 with an access token\n"), "{text}");
    assert!(text.contains("rule anyone-reads-public-profile (policies/members.yaml:16:9, elevate): conditions failed\n"), "{text}");
    // Exhaustive: the regex passed and is shown, though `fieldsets` failed.
    assert!(text.contains("    pass path.memberId regex "), "{text}");
    assert!(
        text.contains("    FAIL query.fieldsets equals \"PUBLIC\": saw nothing\n"),
        "{text}"
    );
    assert!(
        text.ends_with("decision    deny 403 (conditions_failed): this request is not allowed\n"),
        "{text}"
    );
}

#[test]
fn every_value_of_a_repeated_parameter_is_shown() {
    let (_, text) = explain(
        &get(&format!(
            "/members/v1/members/{ME}?fieldsets=FULL&fieldsets=EXTENDED"
        )),
        &format!("MEMBER:{ME}:inst-1"),
    );
    assert!(
        text.contains("FAIL query.fieldsets one_of [\"PUBLIC\", \"FULL\"]: saw \"FULL\" (pass), \"EXTENDED\" (fail)\n"),
        "{text}"
    );
}

#[test]
fn bodies_go_through_the_gateways_strict_parser() {
    let probe = |body: &str| Probe {
        method: "POST".into(),
        target: "/wix-data/v2/items/query".into(),
        body: Some(body.as_bytes().to_vec()),
        ..Probe::default()
    };
    let (outcome, text) = explain(
        &probe(r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":10}}}"#),
        "VISITOR:v-1:inst-1",
    );
    assert!(matches!(outcome, Outcome::Allow { .. }), "{text}");
    assert!(
        text.contains("pass body.query.paging.limit min 1: saw 10\n"),
        "{text}"
    );
    let (outcome, _) = explain(
        &probe(r#"{"dataCollectionId":"Reviews","data_collection_id":"Orders"}"#),
        "VISITOR:v-1:inst-1",
    );
    assert!(
        matches!(
            outcome,
            Outcome::Deny {
                status: 400,
                reason: "bad_request",
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[test]
fn what_the_gateway_rejects_before_routing_is_rejected() {
    for target in [
        "/members/v1/members/a%2Fb",
        "/members//v1",
        "/members/v1/members/../x",
    ] {
        let (outcome, text) = explain(&get(target), "MEMBER:m:inst-1");
        assert!(
            matches!(outcome, Outcome::Deny { status: 400, .. }),
            "{target}: {outcome:?}"
        );
        assert!(text.contains("route       no rule matches"), "{text}");
    }
    let (outcome, _) = explain(&get("/nothing/here"), "MEMBER:m:inst-1");
    assert!(matches!(
        outcome,
        Outcome::Deny {
            status: 403,
            reason: "no_route",
            ..
        }
    ));
}

#[test]
fn pass_through_names_the_configured_exchange() {
    let caller =
        ProbeCaller::Known(parse_caller("USER:u-1:inst-1", SourceArg::AccessToken).unwrap());
    let probe = get("/contacts/v4/contacts/c-1");
    for (mode, words) in [
        (
            PassThroughMode::StripBoundSession,
            "the caller's token, exchanged via strip_bound_session",
        ),
        (
            PassThroughMode::Raw,
            "the caller's token, as received (raw)",
        ),
    ] {
        let settings = Settings {
            pass_through: mode,
            ..Settings::default()
        };
        let evaluation = evaluate(&shipped(), &probe, &caller, &settings).unwrap();
        assert!(render(&evaluation, &caller).ends_with(&format!("credential  {words}\n")));
    }
}

fn binary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("WIX_ELEVATOR_CONFIG")
        .env_remove("WIX_ELEVATOR_TOKEN")
        .output()
        .expect("the binary runs")
}

#[test]
fn exit_status_is_0_on_allow_2_on_deny_1_on_usage_errors() {
    let explain = |extra: &[&str]| {
        let mut args = vec!["explain", "--policies", "policies"];
        args.extend_from_slice(extra);
        binary(&args)
    };
    let allowed = explain(&["GET", "/apps/v1/instance", "--caller", "USER:u-1:inst-1"]);
    assert_eq!(allowed.status.code(), Some(0));
    let text = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        text.contains("decision    allow by dashboard-reads-app-instance (elevate)"),
        "{text}"
    );
    let legacy = explain(&[
        "GET",
        "/apps/v1/instance",
        "--caller",
        "USER:u-1:inst-1",
        "--source",
        "signed-instance",
    ]);
    assert_eq!(legacy.status.code(), Some(0));

    assert_eq!(
        explain(&["GET", "/apps/v1/instance", "--caller", "MEMBER:m-1:inst-1"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        explain(&["GET", "/apps/v1/instance"]).status.code(),
        Some(2),
        "anonymous"
    );
    assert_eq!(
        explain(&["DELETE", "/apps/v1/instance", "--caller", "USER:u:i"])
            .status
            .code(),
        Some(2)
    );

    let bad_caller = explain(&["GET", "/apps/v1/instance", "--caller", "ADMIN:x:y"]);
    assert_eq!(bad_caller.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_caller.stderr).contains("unknown type `ADMIN`"));
    assert_eq!(
        explain(&["GET", "/apps/v1/instance", "--bogus"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        explain(&["GET", "/a", "-H", "no-colon"]).status.code(),
        Some(1)
    );
    let missing = binary(&["explain", "--policies", "nowhere", "GET", "/a"]);
    assert_eq!(missing.status.code(), Some(1));

    let body = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        body.path(),
        r#"{"dataCollectionId":"Reviews","dataItem":{"data":{"memberId":"m-1","rating":3}}}"#,
    )
    .unwrap();
    let insert = explain(&[
        "POST",
        "/wix-data/v2/items",
        "--caller",
        "MEMBER:m-1:inst-1",
        "--body",
        body.path().to_str().unwrap(),
    ]);
    assert_eq!(
        insert.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&insert.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_token_is_checked_with_token_info() {
    let sandbox = Sandbox::start(
        common::loopback().await,
        SandboxConfig::new(common::APP_ID, Secret::new(common::APP_SECRET)),
    );
    let dir = tempfile::tempdir().unwrap();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let config = dir.path().join("proxy.yaml");
    std::fs::write(
        &config,
        format!(
            "wix:\n  base_url: \"{}\"\n  app_id: {}\n  app_secret: ${{TEST_SECRET}}\npolicies: \"{}\"\ntimeouts:\n  identity: 2s\n",
            sandbox.base_url(),
            common::APP_ID,
            policies.display()
        ),
    )
    .unwrap();
    let mint = |subject_type: &str, ttl: Option<i64>| {
        sandbox
            .mint_token(MintRequest {
                ttl_seconds: ttl,
                ..MintRequest::caller(subject_type, ME, "inst-7", "site-7")
            })
            .access_token
    };
    let run = |token: String, with_secret: bool| {
        let config: PathBuf = config.clone();
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_wix-elevator"));
            command
                .args(["explain", "--config", config.to_str().unwrap(), "GET"])
                .arg(format!("/members/v1/members/{ME}?fieldsets=FULL"))
                .args(["--token", &token])
                .env_remove("WIX_ELEVATOR_CONFIG");
            if with_secret {
                command.env("TEST_SECRET", common::APP_SECRET);
            } else {
                command.env_remove("TEST_SECRET");
            }
            command.output().unwrap()
        })
    };

    let member = run(mint("MEMBER", None), true).await.unwrap();
    let text = String::from_utf8_lossy(&member.stdout);
    assert_eq!(
        member.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&member.stderr)
    );
    assert!(
        text.contains(&format!(
            "caller      MEMBER {ME} with an access token (instance inst-7, site site-7)"
        )),
        "{text}"
    );
    assert!(
        text.contains("credential  app token for instance inst-7"),
        "{text}"
    );

    let expired = run(mint("MEMBER", Some(-10)), true).await.unwrap();
    let text = String::from_utf8_lossy(&expired.stdout);
    assert_eq!(expired.status.code(), Some(2), "{text}");
    assert!(
        text.contains("decision    deny 401 (unauthenticated): the access token has expired"),
        "{text}"
    );

    // A token needs the real config: an unset `${VAR}` is an error, not a placeholder.
    let unset = run(mint("MEMBER", None), false).await.unwrap();
    assert_eq!(unset.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("TEST_SECRET"));
    sandbox.shutdown().await;
}
