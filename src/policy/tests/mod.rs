//! Unit tests of the policy engine, one file per concern.

mod body;
mod diagnostics;
mod examples;
mod lints;
mod operators;
mod precedence;
mod template;

use std::path::PathBuf;

use http::{HeaderMap, Method};
use serde_json::Value;

use super::{authorize, Decision, PolicySet, QueryPair, RequestView};
use crate::caller::{Caller, CallerType, IdentitySource};

/// Compiles one in-memory file, panicking with the diagnostics on failure.
pub(super) fn set(yaml: &str) -> PolicySet {
    PolicySet::from_sources(&[(PathBuf::from("test.yaml"), yaml.to_owned())]).unwrap_or_else(
        |diags| {
            let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
            panic!("policy did not compile:\n{}", text.join("\n"))
        },
    )
}

/// The rendered diagnostics of sources that must fail.
pub(super) fn errors(sources: &[(&str, &str)]) -> Vec<String> {
    let sources: Vec<(PathBuf, String)> = sources
        .iter()
        .map(|(name, text)| (PathBuf::from(name), (*text).to_owned()))
        .collect();
    match PolicySet::from_sources(&sources) {
        Ok(_) => panic!("expected diagnostics"),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

/// A member with an access token, on a site.
pub(super) fn member(id: &str) -> Caller {
    Caller::new(
        CallerType::Member,
        id.into(),
        "inst-1".into(),
        Some("site-1".into()),
        IdentitySource::AccessToken,
    )
}

/// A caller of the given type, otherwise like [`member`].
pub(super) fn caller(kind: CallerType, source: IdentitySource) -> Caller {
    Caller::new(
        kind,
        "subject-1".into(),
        "inst-1".into(),
        Some("site-1".into()),
        source,
    )
}

/// A request to evaluate: path, query pairs, headers, optional JSON body.
pub(super) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<QueryPair<'static>>,
    pub headers: HeaderMap,
    pub body: Option<Value>,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Req {
        Req {
            method,
            path: path.to_owned(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub fn get(path: &str) -> Req {
        Req::new(Method::GET, path)
    }

    pub fn post(path: &str, body: Value) -> Req {
        Req {
            body: Some(body),
            ..Req::new(Method::POST, path)
        }
    }

    pub fn query(mut self, name: &str, value: &str) -> Req {
        self.query
            .push((name.to_owned().into(), value.to_owned().into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: &[u8]) -> Req {
        self.headers.append(
            name,
            http::HeaderValue::from_bytes(value).expect("test header value"),
        );
        self
    }

    pub fn segments(&self) -> Vec<&str> {
        self.path.trim_start_matches('/').split('/').collect()
    }

    /// Routes and authorizes; `Ok(rule id)` or `Err(deny code)`.
    pub fn decide(&self, set: &PolicySet, caller: &Caller) -> Result<String, String> {
        let segments = self.segments();
        let matches = set.route(&self.method, &segments);
        let view = RequestView {
            segments: &segments,
            query: &self.query,
            headers: &self.headers,
            body: self.body.as_ref(),
        };
        match authorize(&matches, &view, caller) {
            Decision::Allow(m) => Ok(m.rule.id().to_owned()),
            Decision::Deny(reason) => Err(reason.to_string()),
        }
    }
}

#[test]
fn policy_set_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<PolicySet>();
    assert::<std::sync::Arc<PolicySet>>();
}
