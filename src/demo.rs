//! `wix-elevator demo`: the sandbox standing in for Wix, the gateway in front
//! of it with the repository's `proxy.yaml` and `policies/`, two caller
//! tokens, and curl lines that show what the gateway allows and refuses.

use std::{net::SocketAddr, path::Path};

use crate::{
    config::Config,
    gateway::Gateway,
    policy::PolicySet,
    sandbox::{MintRequest, Sandbox, SandboxConfig},
    serve::{shutdown_signal, StartError},
    server::Server,
};

/// App id the demo uses when `WIX_APP_ID` is not set.
pub const DEMO_APP_ID: &str = "demo-app-id";
/// App secret the demo uses when `WIX_APP_SECRET` is not set.
pub const DEMO_APP_SECRET: &str = "demo-app-secret";
/// The demo site's app instance.
pub const DEMO_INSTANCE: &str = "demo-instance";
/// The demo member's id.
pub const DEMO_MEMBER: &str = "5f1c2b9e-7d3a-4c1e-9b2a-0c8d1e2f3a4b";

/// Which demo caller makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoCaller {
    /// An anonymous visitor (`$VISITOR`).
    Visitor,
    /// A logged-in member (`$MEMBER`).
    Member,
}

/// One call the demo suggests, with the status it must get.
#[derive(Debug, Clone)]
pub struct DemoCall {
    /// What the call shows.
    pub what: &'static str,
    /// The status the gateway answers.
    pub expect: u16,
    /// HTTP method.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// Who calls.
    pub caller: DemoCaller,
    /// JSON body, if any.
    pub body: Option<&'static str>,
}

impl DemoCall {
    /// The call as a curl line against `gateway`, reading the token from
    /// `$VISITOR` or `$MEMBER`.
    pub fn curl(&self, gateway: &str) -> String {
        let token = match self.caller {
            DemoCaller::Visitor => "$VISITOR",
            DemoCaller::Member => "$MEMBER",
        };
        let mut line = format!("curl -s -X {} -H \"Authorization: {token}\"", self.method);
        if let Some(body) = self.body {
            line.push_str(&format!(" -H 'Content-Type: application/json' -d '{body}'"));
        }
        line.push_str(&format!(" '{gateway}{}'", self.path));
        line
    }
}

/// The calls the demo prints, each showing one decision of the shipped
/// policies.
pub fn calls() -> Vec<DemoCall> {
    vec![
        DemoCall {
            what: "allowed, elevated: a member reads their own full profile",
            expect: 200,
            method: "GET",
            path: format!("/members/v1/members/{DEMO_MEMBER}?fieldsets=FULL"),
            caller: DemoCaller::Member,
            body: None,
        },
        DemoCall {
            what: "allowed, elevated: a visitor queries the public Reviews collection",
            expect: 200,
            method: "POST",
            path: "/wix-data/v2/items/query".into(),
            caller: DemoCaller::Visitor,
            body: Some(r#"{"dataCollectionId":"Reviews","query":{"paging":{"limit":10}}}"#),
        },
        DemoCall {
            what: "denied (403): a visitor asks for another collection",
            expect: 403,
            method: "POST",
            path: "/wix-data/v2/items/query".into(),
            caller: DemoCaller::Visitor,
            body: Some(r#"{"dataCollectionId":"Orders","query":{}}"#),
        },
        DemoCall {
            what: "denied (403): a visitor asks for a member's full profile",
            expect: 403,
            method: "GET",
            path: format!("/members/v1/members/{DEMO_MEMBER}?fieldsets=FULL"),
            caller: DemoCaller::Visitor,
            body: None,
        },
        DemoCall {
            what: "allowed, pass-through: a member queries members as themselves",
            expect: 200,
            method: "POST",
            path: "/members/v1/members/query".into(),
            caller: DemoCaller::Member,
            body: Some(r#"{"query":{}}"#),
        },
    ]
}

/// A running demo: sandbox, gateway and the two callers' tokens.
#[derive(Debug)]
pub struct Demo {
    /// The Wix emulator.
    pub sandbox: Sandbox,
    /// The gateway's listener.
    pub server: Server,
    /// A visitor's access token.
    pub visitor: String,
    /// A member's access token.
    pub member: String,
}

impl Demo {
    /// Starts the sandbox on a free loopback port and the gateway from
    /// `config_path` (listening on `listen`, or the config's address) in
    /// front of it.
    pub async fn start(config_path: &Path, listen: Option<SocketAddr>) -> Result<Self, StartError> {
        let env = |name: &str| {
            std::env::var(name).ok().or(match name {
                "WIX_APP_ID" => Some(DEMO_APP_ID.to_owned()),
                "WIX_APP_SECRET" => Some(DEMO_APP_SECRET.to_owned()),
                _ => None,
            })
        };
        let text = std::fs::read_to_string(config_path)
            .map_err(|error| format!("{}: {error}", config_path.display()))?;
        let mut config = Config::parse(config_path, &text, &env)?;
        let policies = PolicySet::load(&config.policies)
            .and_then(PolicySet::into_servable)
            .map_err(crate::diagnostic::Diagnostics)?;

        let sandbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sandbox = Sandbox::start(
            sandbox_listener,
            SandboxConfig::new(config.wix.app_id.clone(), config.wix.app_secret.clone()),
        );
        config.wix.base_url = sandbox.base_url().parse()?;
        config.wix.oauth_base_url = config.wix.base_url.clone();
        config.listen = listen.unwrap_or(config.listen);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", config.listen))?;
        let server = Gateway::new(config, policies)?.start(listener);

        let mint = |subject_type: &str, subject_id: &str| {
            let request = MintRequest::caller(subject_type, subject_id, DEMO_INSTANCE, "demo-site");
            sandbox.mint_token(request).access_token
        };
        let visitor = mint("VISITOR", "3a0e6c1d-visitor");
        let member = mint("MEMBER", DEMO_MEMBER);
        Ok(Self {
            sandbox,
            server,
            visitor,
            member,
        })
    }

    /// The gateway's base URL.
    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    /// What the demo prints: the tokens as shell variables, then the calls.
    pub fn instructions(&self) -> String {
        let gateway = self.gateway_url();
        let mut out = format!(
            "wix-elevator demo\n  gateway  {gateway}\n  sandbox  {} (standing in for Wix)\n\n\
             Paste into another shell:\n\nexport VISITOR='{}'\nexport MEMBER='{}'\n\n",
            self.sandbox.base_url(),
            self.visitor,
            self.member,
        );
        for call in calls() {
            out.push_str(&format!("# {}\n{}\n\n", call.what, call.curl(&gateway)));
        }
        out.push_str(&format!(
            "# what reached \"Wix\", and with which credential\ncurl -s '{}/_sandbox/requests'\n",
            self.sandbox.base_url()
        ));
        out
    }
}

/// Runs the demo until Ctrl-C.
pub async fn run(config_path: &Path, listen: Option<SocketAddr>) -> Result<(), StartError> {
    let demo = Demo::start(config_path, listen).await?;
    println!("{}", demo.instructions());
    println!("Ctrl-C to stop.");
    shutdown_signal().await;
    demo.server.shutdown().await;
    demo.sandbox.shutdown().await;
    Ok(())
}
