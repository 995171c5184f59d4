//! A gateway and a sandbox on 127.0.0.1:0, in process, for end-to-end tests.

#![allow(dead_code)]

pub mod wire;

use std::{
    io::{Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use wix_elevator::{
    config::{Config, DecisionLogDestination},
    gateway::Gateway,
    policy::PolicySet,
    sandbox::{MintRequest, Sandbox, SandboxConfig},
    secret::Secret,
    server::Server,
};

pub const APP_ID: &str = "test-app";
pub const APP_SECRET: &str = "test-app-secret";
pub const INSTANCE: &str = "instance-1";

/// Policies most tests use.
pub const POLICIES: &str = r#"
rules:
  - id: member-reads-own-profile
    description: A member reads their own profile.
    match: { methods: [GET], path: "/members/v1/members/{memberId}" }
    callers: [MEMBER]
    mode: elevate
    when:
      path.memberId: { equals: caller.subjectId }
      query.fieldsets: { one_of: [PUBLIC, FULL] }
    # The sandbox's knobs, so tests can slow or fail the upstream.
    allow_query: [_sandbox_delay_ms, _sandbox_status]
  - id: reviews-query
    description: Anyone queries the public Reviews collection, a page at a time.
    match: { methods: [POST], path: "/wix-data/v2/items/query" }
    callers: [VISITOR, MEMBER]
    mode: elevate
    when:
      body.dataCollectionId: { equals: Reviews }
      body.query.paging.limit: { max: 100 }
  - id: members-query-as-caller
    description: Members query members as themselves.
    match: { methods: [POST], path: "/members/v1/members/query" }
    callers: [MEMBER]
    mode: pass_through
  - id: contact-with-header
    match: { methods: [GET], path: "/contacts/v4/contacts/{contactId}" }
    callers: [MEMBER]
    mode: elevate
    when:
      header.x-app-client: { prefix: "site-" }
      path.contactId: { regex: "[a-f0-9-]{8,}" }
      query.debug: { absent: true }
  - id: legacy-instance
    match: { methods: [GET], path: "/apps/v1/instance" }
    callers: [VISITOR, MEMBER, USER]
    mode: elevate
    identity: [signed_instance]
"#;

/// One rule: a member reads their own profile, elevated (the sandbox's
/// delay knob allowed), for the tests that run the binary.
pub const OWN_PROFILE_POLICY: &str = r#"
rules:
  - id: member-reads-own-profile
    match: { methods: [GET], path: "/members/v1/members/{memberId}" }
    callers: [MEMBER]
    mode: elevate
    when:
      path.memberId: { equals: caller.subjectId }
    allow_query: [_sandbox_delay_ms]
"#;

/// A running sandbox and gateway.
pub struct Harness {
    /// Where this gateway's decision log is written.
    pub decision_log: PathBuf,
    pub sandbox: Sandbox,
    pub gateway: Gateway,
    pub server: Server,
    pub url: String,
    pub client: reqwest::Client,
}

/// Gateway configuration text; `{base}` is replaced by the sandbox URL.
pub const CONFIG: &str = r#"
listen: 127.0.0.1:0
wix:
  base_url: "{base}"
  app_id: test-app
  app_secret: ${TEST_SECRET}
policies: unused/
limits:
  body_bytes: 4096
timeouts:
  identity: 1s
  upstream: 2s
cors:
  allowed_origins: ["https://site.example.com"]
"#;

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.decision_log);
    }
}

impl Harness {
    /// Gateway + sandbox with [`POLICIES`] and the default config.
    pub async fn start() -> Self {
        Self::build(POLICIES, |_| {}, |_| {}).await
    }

    /// Gateway + sandbox with `policies`, and the configs adjusted.
    pub async fn build(
        policies: &str,
        adjust: impl FnOnce(&mut Config),
        adjust_sandbox: impl FnOnce(&mut SandboxConfig),
    ) -> Self {
        let mut sandbox_config = SandboxConfig::new(APP_ID, Secret::new(APP_SECRET));
        adjust_sandbox(&mut sandbox_config);
        let sandbox = Sandbox::start(loopback().await, sandbox_config);
        let text = CONFIG.replace("{base}", &sandbox.base_url());
        let mut config = Config::parse(&PathBuf::from("test/proxy.yaml"), &text, &|name| {
            (name == "TEST_SECRET").then(|| APP_SECRET.to_owned())
        })
        .expect("test config is valid");
        let decision_log = std::env::temp_dir().join(format!(
            "wix-elevator-decisions-{}-{:x}.jsonl",
            std::process::id(),
            rand_id()
        ));
        config.decision_log = DecisionLogDestination::File(decision_log.clone());
        config.admin = None;
        adjust(&mut config);
        let policies =
            PolicySet::from_sources(&[(PathBuf::from("test.yaml"), policies.to_owned())])
                .unwrap_or_else(|errors| panic!("test policies are valid: {errors:#?}"));
        let gateway = Gateway::new(config, policies).expect("gateway starts");
        let server = gateway.start(loopback().await);
        let url = format!("http://{}", server.local_addr());
        Self {
            decision_log,
            sandbox,
            gateway,
            server,
            url,
            client: reqwest::Client::new(),
        }
    }

    /// The decision records written so far, waiting (up to 5 s) until there
    /// are at least `at_least`: the log is written by a background thread.
    pub async fn decision_records(&self, at_least: usize) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&self.decision_log).unwrap_or_default();
            let records: Vec<serde_json::Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).expect("each line is JSON"))
                .collect();
            if records.len() >= at_least || std::time::Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Mints a caller token for the test app's [`INSTANCE`].
    pub fn token(&self, subject_type: &str, subject_id: &str) -> String {
        instance_token(&self.sandbox, subject_type, subject_id)
    }

    /// Mints a token as `request` says.
    pub fn mint(&self, request: MintRequest) -> String {
        self.sandbox.mint_token(request).access_token
    }

    /// `GET path` with `token` as the raw Authorization value.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .header("authorization", token)
            .send()
            .await
            .expect("gateway answers")
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, token: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .header("authorization", token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("gateway answers")
    }

    /// Sends `raw` bytes as one HTTP/1.1 exchange and returns the status line
    /// and the whole answer; for requests a real client would normalize.
    pub fn raw(&self, raw: &str) -> (u16, String) {
        raw_exchange(self.server.local_addr(), raw)
    }
}

/// `request` reached Wix elevated: with one `Authorization`, the app token
/// of [`INSTANCE`], and nowhere the caller's own token.
pub fn assert_elevated(request: &wix_elevator::sandbox::RecordedRequest, caller_token: &str) {
    assert_eq!(
        request.credential,
        wix_elevator::sandbox::Credential::App {
            instance_id: INSTANCE.into()
        }
    );
    assert_eq!(
        wix_elevator::sandbox::header(request, "authorization").len(),
        1
    );
    assert!(
        !request
            .headers
            .iter()
            .any(|(_, value)| value.contains(caller_token)),
        "the caller's token reached Wix"
    );
}

/// A caller token `sandbox` mints for the test app's [`INSTANCE`].
pub fn instance_token(sandbox: &Sandbox, subject_type: &str, subject_id: &str) -> String {
    sandbox
        .mint_token(MintRequest::caller(
            subject_type,
            subject_id,
            INSTANCE,
            "site-1",
        ))
        .access_token
}

/// A self-signed certificate for `localhost`, written as `name.crt` and
/// `name.key` into `dir`: its PEM text and the two paths.
pub fn certificate(dir: &Path, name: &str) -> (String, PathBuf, PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (generated.cert.pem(), cert, key)
}

/// A random number for unique file names.
pub fn rand_id() -> u64 {
    rand::random()
}

/// Waits until `done` holds, checking every 10 ms; fails after 10 s.
pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A listener on 127.0.0.1 with a port the OS picks.
pub async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback binds")
}

/// One HTTP/1.1 exchange over a plain socket, bounded in time.
pub fn raw_exchange(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// The Wix-shaped error of a gateway rejection: its code and request id.
pub async fn wix_error(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let header_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    let error = &body["details"]["applicationError"];
    assert_eq!(error["data"]["requestId"], header_id.as_str(), "{body}");
    assert!(body["message"].is_string(), "{body}");
    (
        status,
        error["code"].as_str().unwrap().to_owned(),
        header_id,
    )
}

/// The first value of header `name` as the sandbox received it.
pub fn first_header(request: &wix_elevator::sandbox::RecordedRequest, name: &str) -> String {
    wix_elevator::sandbox::header(request, name)
        .first()
        .map(|value| (*value).to_owned())
        .unwrap_or_default()
}

/// The real binary serving `config` (YAML, in a fresh folder with
/// `policies` as `policies/policy.yaml`), started with `env`; killed when
/// dropped.
pub struct GatewayProcess {
    pub child: std::process::Child,
    /// Where it listens.
    pub proxy: String,
    /// Where its admin endpoints listen, if they do.
    pub admin: Option<String>,
    pub dir: PathBuf,
}

impl GatewayProcess {
    pub fn start(config: &str, policies: &str, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("wix-elevator-proc-{:x}", rand_id()));
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        std::fs::write(dir.join("policies/policy.yaml"), policies).unwrap();
        std::fs::write(dir.join("proxy.yaml"), config).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wix-elevator"))
            .args(["serve", "--config"])
            .arg(dir.join("proxy.yaml"))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines_tx.send(line);
            }
        });
        let mut seen = Vec::new();
        let ready = loop {
            match lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains("gateway ready") => break line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("the gateway did not report ready:\n{}", seen.join("\n")),
            }
        };
        let proxy = log_field(&ready, "listen=").to_owned();
        let admin = ready
            .contains("admin=Some(")
            .then(|| log_field(&ready, "admin=Some(").to_owned());
        Self {
            child,
            proxy,
            admin,
            dir,
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value after `key=` in a log line.
fn log_field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
    line[start..]
        .split(|c: char| c.is_whitespace() || c == ')')
        .next()
        .unwrap()
}
