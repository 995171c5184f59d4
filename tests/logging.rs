//! No token or secret ever reaches a log line, whatever the level.

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use common::{Harness, APP_SECRET};
use wix_elevator::sandbox::Fault;

/// Collects everything every subscriber layer writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_token_or_secret_appears_in_any_log_line() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let h = Harness::start().await;
    let member = h.token("MEMBER", "member-1");
    let visitor = h.token("VISITOR", "visitor-1");
    let revoked = h.token("MEMBER", "member-1");
    h.sandbox.revoke(&revoked);
    let body = r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":5}}}"#;

    // Allowed elevated, pass-through, denied, unauthenticated, retried, failed.
    assert_eq!(
        h.get("/members/v1/members/member-1?fieldsets=FULL", &member)
            .await
            .status(),
        200
    );
    assert_eq!(
        h.post_json("/members/v1/members/query", &member, "{}")
            .await
            .status(),
        200
    );
    assert_eq!(
        h.get("/members/v1/members/member-2?fieldsets=FULL", &member)
            .await
            .status(),
        403
    );
    assert_eq!(
        h.get("/members/v1/members/member-1?fieldsets=FULL", &revoked)
            .await
            .status(),
        401
    );
    assert_eq!(
        h.get("/members/v1/members/member-1?fieldsets=FULL", "Bearer x y")
            .await
            .status(),
        401
    );
    h.sandbox.expire_app_tokens();
    assert_eq!(
        h.post_json("/wix-data/v2/items/query", &visitor, body)
            .await
            .status(),
        200
    );
    h.sandbox.set_token_info_fault(Some(Fault::Status(500)));
    let fresh = h.token("MEMBER", "member-1");
    assert_eq!(
        h.get("/members/v1/members/member-1?fieldsets=FULL", &fresh)
            .await
            .status(),
        503
    );

    let records = h.decision_records(7).await;
    assert_eq!(records.len(), 7, "one decision record per request");
    let decisions = std::fs::read_to_string(&h.decision_log).unwrap();
    let traced = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        traced.contains("token-info call failed"),
        "the trace is captured"
    );
    let logged = format!("{traced}\n{decisions}");
    let mut secrets = vec![member, visitor, revoked, fresh, APP_SECRET.to_owned()];
    // Every token the sandbox issued: app tokens and exchanged caller tokens.
    for request in h.sandbox.requests() {
        secrets.extend(
            wix_elevator::sandbox::header(&request, "authorization")
                .iter()
                .map(|v| v.to_string()),
        );
    }
    assert!(secrets.len() > 5);
    for secret in &secrets {
        // The opaque tail of a token is what must not leak.
        let needle = secret.rsplit('.').next().unwrap();
        assert!(!logged.contains(needle), "a token or secret was logged");
    }
}
