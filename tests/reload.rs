//! Hot reload under load: a steady stream of requests through a real
//! gateway and sandbox while the policy file is rewritten by rename and by
//! truncate-then-write, a broken file that leaves the old rules serving, a
//! burst of saves that is one reload, and SIGHUP.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use tokio::sync::watch;
use wix_elevator::reload::{PolicyReloader, ReloadOptions, ReloadStatus};

const MEMBER: &str = "m-1";

const BASE: &str = r#"rules:
  - id: member-reads-own-profile
    description: base
    match: { methods: [GET], path: "/members/v1/members/{memberId}" }
    callers: [MEMBER]
    mode: elevate
    when:
      path.memberId: { equals: caller.subjectId }
"#;

const CONTACTS_RULE: &str = r#"  - id: member-reads-contact
    match: { methods: [GET], path: "/contacts/v4/contacts/{contactId}" }
    callers: [MEMBER]
    mode: elevate
    when:
      path.contactId: { prefix: "c-" }
"#;

const BROKEN: &str = "rules:\n  - id: broken\n    match: { methods: [GET], path: /a }\n    callers: [ADMIN]\n    mode: elevate\n";

/// Saves like an editor that writes a temporary file and renames it over.
fn save_by_rename(path: &Path, text: &str) {
    let temporary = path.with_extension("yaml.tmp~");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// Saves like an editor that truncates the file, then writes it, in two
/// writes.
fn save_by_truncate(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap();
    let (head, tail) = text.split_at(text.len() / 2);
    file.write_all(head.as_bytes()).unwrap();
    file.flush().unwrap();
    file.write_all(tail.as_bytes()).unwrap();
}

/// Waits (at most 10 s) until the status satisfies `done`.
async fn wait_for(
    status: &mut watch::Receiver<ReloadStatus>,
    done: impl FnMut(&ReloadStatus) -> bool,
) -> ReloadStatus {
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(done))
        .await
        .expect("the reload happens in time")
        .expect("the reloader runs")
        .clone()
}

fn options(debounce_ms: u64) -> ReloadOptions {
    ReloadOptions {
        debounce: Duration::from_millis(debounce_ms),
        sighup: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_a_steady_stream_of_requests() {
    let h = Arc::new(Harness::build(BASE, |_| {}, |_| {}).await);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policies.yaml");
    std::fs::write(&file, BASE).unwrap();
    let reloader = PolicyReloader::start(h.gateway.clone(), dir.path(), options(200));
    let mut status = reloader.handle().subscribe();
    let token = h.token("MEMBER", MEMBER);
    let profile = format!("/members/v1/members/{MEMBER}");
    let contact = "/contacts/v4/contacts/c-1";

    // Four clients, each sending one request at a time until told to stop
    // (at most 2000 requests or 20 s each). Every answer is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (h, stop, token, profile) =
                (h.clone(), stop.clone(), token.clone(), profile.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let started = std::time::Instant::now();
                for n in 0..2000 {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(20) {
                        break;
                    }
                    let path = if (n + i) % 2 == 0 {
                        profile.as_str()
                    } else {
                        contact
                    };
                    let status = h
                        .client
                        .get(format!("{}{path}", h.url))
                        .header("authorization", &token)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .map_err(|e| e.to_string());
                    seen.push((path == contact, status));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                seen
            })
        })
        .collect();
    let status_of = |path: &'static str| {
        let h = h.clone();
        let token = token.clone();
        async move { h.get(path, &token).await.status().as_u16() }
    };

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status_of(contact).await, 403, "no contact rule yet");

    // A new rule, saved by rename: it takes effect without a restart.
    save_by_rename(&file, &format!("{BASE}{CONTACTS_RULE}"));
    let after_add = wait_for(&mut status, |s| s.successes == 1).await;
    assert_eq!(status_of(contact).await, 200);
    assert!(after_add.last_error.is_none());

    // A broken file, saved by truncate-then-write: the old rules keep serving.
    save_by_truncate(&file, BROKEN);
    let broken = wait_for(&mut status, |s| s.failures == 1).await;
    let error = broken.last_error.expect("the failure is reported");
    assert!(
        error.contains("policies.yaml:4:15: error: unknown caller type `ADMIN`"),
        "{error}"
    );
    assert_eq!(
        broken.version, after_add.version,
        "still serving the last good set"
    );
    assert_eq!(broken.successes, 1);
    assert_eq!(status_of(contact).await, 200);

    // Fixed, by truncate-then-write, without the contact rule: gone again.
    save_by_truncate(&file, BASE);
    let fixed = wait_for(&mut status, |s| s.successes == 2).await;
    assert!(fixed.last_error.is_none());
    assert_ne!(fixed.version, after_add.version);
    assert_eq!(status_of(contact).await, 403);
    tokio::time::sleep(Duration::from_millis(200)).await;

    stop.store(true, Ordering::Relaxed);
    let mut counts = [0usize; 2];
    for client in clients {
        for (is_contact, status) in client.await.unwrap() {
            let status = status.unwrap_or_else(|e| panic!("a request failed during reload: {e}"));
            if is_contact {
                assert!(status == 200 || status == 403, "contact answered {status}");
            } else {
                assert_eq!(status, 200, "the profile rule was always there");
            }
            counts[usize::from(is_contact)] += 1;
        }
    }
    assert!(counts[0] > 10 && counts[1] > 10, "{counts:?}");
    let final_status = reloader.handle().status();
    assert_eq!((final_status.successes, final_status.failures), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_saves_is_one_reload() {
    let h = Harness::build(BASE, |_| {}, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    // A single policy file: its folder is watched.
    let file = dir.path().join("only.yaml");
    std::fs::write(&file, BASE).unwrap();
    let reloader = PolicyReloader::start(h.gateway.clone(), &file, options(300));
    let mut status = reloader.handle().subscribe();

    // Ten saves within about 100 ms, alternating both kinds of save.
    for i in 0..10 {
        let text = BASE.replace("description: base", &format!("description: save {i}"));
        if i % 2 == 0 {
            save_by_rename(&file, &text);
        } else {
            save_by_truncate(&file, &text);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_for(&mut status, |s| s.successes >= 1).await;
    // Several debounce periods more: nothing else may come.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let settled = reloader.handle().status();
    assert_eq!((settled.successes, settled.failures), (1, 0));
    assert_eq!(
        h.gateway.policies().rules()[0].description(),
        Some("save 9")
    );

    // Touching the file without changing it reloads nothing.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"")
        .unwrap();
    save_by_rename(&file, &std::fs::read_to_string(&file).unwrap());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(reloader.handle().status().successes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_reload_now_force_a_reload() {
    let h = Harness::build(BASE, |_| {}, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), BASE).unwrap();
    let reloader = PolicyReloader::start(
        h.gateway.clone(),
        dir.path(),
        ReloadOptions {
            debounce: Duration::from_millis(200),
            sighup: true,
        },
    );
    let mut status = reloader.handle().subscribe();

    // The handler is installed by `start`, so the signal cannot kill the test.
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let reloaded = wait_for(&mut status, |s| s.successes == 1).await;
    assert!(reloaded.last_error.is_none());

    reloader.handle().reload_now();
    wait_for(&mut status, |s| s.successes == 2).await;
}

#[tokio::test]
async fn a_set_with_unsilenced_warnings_is_refused_like_a_broken_one() {
    // What a slow writer leaves behind: the rule cut short before its `when`.
    let cut = "rules:\n  - id: member-reads-own-profile\n    match: { methods: [GET], path: \"/members/v1/members/{memberId}\" }\n    callers: [MEMBER]\n    mode: elevate\n";
    let dir = std::env::temp_dir().join(format!("wix-elevator-cut-{:x}", common::rand_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("members.yaml");
    std::fs::write(&file, BASE).unwrap();
    let h = Harness::build(BASE, |_| {}, |_| {}).await;
    let reloader = PolicyReloader::start(h.gateway.clone(), &dir, ReloadOptions::default());
    let mut status = reloader.handle().subscribe();
    save_by_rename(&file, cut);
    let after = wait_for(&mut status, |s| s.failures >= 1).await;
    assert!(after.last_error.unwrap().contains("unused-capture"));
    let member = h.token("MEMBER", MEMBER);
    let other = h.get("/members/v1/members/m-2", &member).await;
    assert_eq!(other.status(), 403, "the old rules still serve");
    let _ = std::fs::remove_dir_all(&dir);
}
