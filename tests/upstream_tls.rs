//! End to end through a TLS upstream, the way Wix itself is reached: the
//! gateway verifies the upstream's certificate, speaks HTTP/2 where ALPN
//! offers it, and what reaches the API is the app token of the caller's own
//! instance. The sandbox sits behind a TLS terminator on loopback.

mod common;

use std::net::SocketAddr;

use common::{assert_elevated, loopback, GatewayProcess, APP_ID, APP_SECRET, OWN_PROFILE_POLICY};
use tokio::{net::TcpStream, sync::mpsc};
use wix_elevator::{
    sandbox::{Sandbox, SandboxConfig},
    secret::Secret,
    tls::TlsTerminator,
};

/// TLS on 127.0.0.1:0 in front of `backend`, with a self-signed certificate
/// for `localhost` (its PEM file is returned). Every accepted connection's
/// ALPN protocol is sent on the channel.
async fn tls_front(
    backend: SocketAddr,
    dir: &std::path::Path,
) -> (
    u16,
    std::path::PathBuf,
    mpsc::UnboundedReceiver<Option<Vec<u8>>>,
) {
    let (_, cert, key) = common::certificate(dir, "upstream");
    let acceptor = TlsTerminator::load(&cert, &key).unwrap().acceptor();
    let listener = loopback().await;
    let port = listener.local_addr().unwrap().port();
    let (alpn_tx, alpn) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, alpn_tx) = (acceptor.clone(), alpn_tx.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    let _ = alpn_tx.send(None);
                    return;
                };
                let _ = alpn_tx.send(Some(
                    tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec(),
                ));
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, cert, alpn)
}

/// A sandbox behind the TLS front, and the gateway in front of both,
/// trusting the front's certificate or (`trusted: false`) another one.
struct Setup {
    sandbox: Sandbox,
    gateway: GatewayProcess,
    alpn: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    member: String,
    _dir: tempfile::TempDir,
}

async fn setup(trusted: bool) -> Setup {
    let sandbox = Sandbox::start(
        loopback().await,
        SandboxConfig::new(APP_ID, Secret::new(APP_SECRET)),
    );
    let dir = tempfile::tempdir().unwrap();
    let (port, cert, alpn) = tls_front(sandbox.local_addr(), dir.path()).await;
    let trust = if trusted {
        cert
    } else {
        common::certificate(dir.path(), "other").1
    };
    let config = format!(
        "listen: 127.0.0.1:0\nadmin:\n  listen: \"off\"\nwix:\n  base_url: https://localhost:{port}\n  oauth_base_url: {}\n  app_id: {APP_ID}\n  app_secret: ${{TEST_SECRET}}\npolicies: policies/\ndecision_log:\n  destination: off\n",
        sandbox.base_url()
    );
    let gateway = GatewayProcess::start(
        &config,
        OWN_PROFILE_POLICY,
        &[
            ("TEST_SECRET", APP_SECRET),
            ("SSL_CERT_FILE", &trust.display().to_string()),
        ],
    );
    let member = common::instance_token(&sandbox, "MEMBER", "member-1");
    Setup {
        sandbox,
        gateway,
        alpn,
        member,
        _dir: dir,
    }
}

impl Setup {
    async fn own_profile(&self, client: &reqwest::Client) -> reqwest::StatusCode {
        client
            .get(format!("http://{}{OWN_PROFILE}", self.gateway.proxy))
            .header("authorization", &self.member)
            .send()
            .await
            .unwrap()
            .status()
    }
}

const OWN_PROFILE: &str = "/members/v1/members/member-1";

#[tokio::test(flavor = "multi_thread")]
async fn elevated_calls_reach_a_tls_upstream_over_http2_with_the_app_token() {
    let mut s = setup(true).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(s.own_profile(&client).await, 200);
    }
    assert_eq!(
        s.alpn.recv().await.unwrap().as_deref(),
        Some(&b"h2"[..]),
        "HTTP/2 by ALPN"
    );
    assert!(
        s.alpn.try_recv().is_err(),
        "the three requests shared one connection"
    );
    let received = s.sandbox.requests();
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_eq!(request.path, "/members/v1/members/member-1");
        assert_elevated(request, &s.member);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_certificate_that_is_not_trusted_fails_closed() {
    let mut s = setup(false).await;
    assert_eq!(s.own_profile(&reqwest::Client::new()).await, 502);
    assert_eq!(s.alpn.recv().await.unwrap(), None, "the handshake failed");
    assert!(s.sandbox.requests().is_empty(), "nothing reached the API");
}
