//! One request, top to bottom, in the phases the architecture names:
//! canonicalize → route → authenticate → authorize → credential →
//! upstream_request → forward → response_filter → logging.
//!
//! `handle_request` turns every error into its response and logs the
//! decision; `handle_request_inner` holds the logic and returns early, with
//! an error, at the first doubt.

use std::{net::SocketAddr, pin::pin, time::Instant};

use crate::server::IncomingBody;
use bytes::Bytes;
use http::{header, request::Parts, HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Limited};
use tracing::Instrument;

use super::{
    canonical::CanonicalRequest,
    cors::Cors,
    headers::{self, UpstreamHeaders, REQUEST_ID, WIX_REQUEST_ID},
    inspect,
    log::{DecisionRecord, Pending},
    upstream::Outgoing,
    Gateway, Session,
};
use crate::{
    body::Body,
    caller::{Caller, IdentitySource},
    error::GatewayError,
    identity::{self, token_text, AccessToken, LastToken},
    metrics::RuleLabel,
    policy::{self, Decision, Mode, RequestView, RouteMatch},
};

/// The request body on its way through: untouched until a phase needs it.
enum RequestBody {
    /// Not read yet; streams to the upstream as it arrives.
    Streaming(IncomingBody),
    /// Read in full: these exact bytes are what was inspected and what is
    /// forwarded.
    Buffered(Bytes),
}

impl Gateway {
    /// Answers one request, whatever happens, and logs its decision.
    pub(super) async fn handle_request(
        &self,
        request: Request<IncomingBody>,
        peer: SocketAddr,
        session: &mut Session,
    ) -> Response<Body> {
        let request_id = headers::request_id(request.headers());
        // Plain ASCII by construction: borrowed, not copied, by the record.
        let id_text = request_id.to_str().unwrap_or_default();
        let method = request.method().clone();
        let span = tracing::debug_span!("request", request_id = %id_text, %method);
        let state = &self.0;
        let Session {
            last_token,
            last_series,
        } = session;
        let mut pending = Pending::new(
            id_text,
            method,
            peer,
            &state.decision_log,
            &state.metrics,
            last_series,
        );

        let origin = state.cors.check_origin(request.headers());
        let result = match state.in_flight.enter() {
            Ok(_slot) => {
                self.handle_request_inner(
                    request,
                    peer,
                    &request_id,
                    origin.clone(),
                    pending.record(),
                    last_token,
                )
                .instrument(span)
                .await
            }
            Err(error) => Err(error),
        };
        let mut response = result.unwrap_or_else(|error| {
            pending.record().reject(&error);
            error.to_response(pending.request_id())
        });

        // response_filter
        headers::strip_hop_by_hop(response.headers_mut());
        if let Ok(Some(origin)) = &origin {
            Cors::apply(response.headers_mut(), origin);
        }

        // logging
        pending.finish(response.status());
        response.headers_mut().insert(REQUEST_ID, request_id);
        response
    }

    async fn handle_request_inner(
        &self,
        request: Request<IncomingBody>,
        peer: SocketAddr,
        request_id: &HeaderValue,
        origin: Result<Option<HeaderValue>, GatewayError>,
        record: &mut DecisionRecord,
        last: &mut LastToken,
    ) -> Result<Response<Body>, GatewayError> {
        let (parts, body) = request.into_parts();

        // canonicalize
        let canonical = tracing::debug_span!("canonicalize")
            .in_scope(|| CanonicalRequest::parse(&parts.method, &parts.uri, &parts.headers))?;
        // Encoded once: logged, and forwarded from the record.
        record.path(canonical.path());
        let origin = origin?;
        if let Some(preflight) =
            self.0
                .cors
                .preflight(&parts.method, &parts.headers, origin.as_ref())
        {
            return Ok(preflight);
        }

        // route: the policy set is pinned for the whole request, so a reload
        // never changes the rules under a request in flight.
        let policies = self.0.policies.load_full();
        let matches = tracing::debug_span!("route")
            .in_scope(|| policies.route(&canonical.method, &canonical.segment_refs()));
        if matches.is_empty() {
            record.deny(policy::DenyReason::NoRoute);
            return Err(GatewayError::Forbidden);
        }

        // authenticate
        let (caller, caller_token) = self
            .authenticate(&parts.headers, &canonical, &matches, last)
            .await?;
        record.caller(&caller);

        // authorize: the body is read only when a rule that could admit this
        // caller inspects it.
        let (body, json) = if policy::body_needed(&matches, &caller) {
            let bytes = self.read_body(&parts.headers, body).await?;
            let json = inspect::parse_json(&parts.headers, &bytes)?;
            (RequestBody::Buffered(bytes), json)
        } else {
            (RequestBody::Streaming(body), None)
        };
        let decision = {
            // Collected again rather than kept from routing: kept, they
            // would sit in this future across the awaits in between, and
            // be copied with it.
            let segments = canonical.segment_refs();
            let view = RequestView {
                segments: &segments,
                query: &canonical.query,
                headers: &parts.headers,
                body: json.as_ref(),
            };
            tracing::debug_span!("authorize")
                .in_scope(|| policy::authorize(&matches, &view, &caller))
        };
        let allowed = match decision {
            Decision::Allow(allowed) => allowed,
            Decision::Deny(reason) => {
                record.deny(reason);
                return Err(GatewayError::Forbidden);
            }
        };
        record.allow(allowed.rule);
        self.0
            .rate_limits
            .check(allowed.rule.id(), &caller, peer.ip())
            .inspect_err(|_| {
                self.0
                    .metrics
                    .rate_limited
                    .get_or_create(&RuleLabel {
                        rule: allowed.rule.id().to_owned(),
                    })
                    .inc();
            })?;

        // credential, upstream_request, forward. These phases run in the
        // request's span, without one of their own: a span around a future
        // moves the whole future (KiBs) on every request, logged or not.
        let target = UpstreamTarget {
            parts: &parts,
            canonical: &canonical,
            caller: &caller,
            request_id,
        };
        match allowed.rule.mode() {
            Mode::Elevate => {
                // Buffered so that the one retry after a refused app token
                // sends exactly the same bytes.
                let bytes = match body {
                    RequestBody::Buffered(bytes) => bytes,
                    RequestBody::Streaming(incoming) => {
                        self.read_body(&parts.headers, incoming).await?
                    }
                };
                self.forward_elevated(&target, bytes, record).await
            }
            Mode::PassThrough => {
                let token = caller_token.ok_or(GatewayError::Forbidden)?;
                let credential = self.0.credentials.caller_token(&token).await?;
                let body = match body {
                    RequestBody::Buffered(bytes) => Outgoing::Bytes(bytes),
                    RequestBody::Streaming(incoming) => {
                        if inspect::declared_length(&parts.headers)
                            .is_some_and(|length| length > self.0.config.body_limit as u64)
                        {
                            return Err(GatewayError::PayloadTooLarge(self.0.config.body_limit));
                        }
                        Outgoing::Stream(Limited::new(incoming, self.0.config.body_limit).boxed())
                    }
                };
                self.forward(&target, &credential, body, record).await
            }
        }
    }

    /// Reads a body the gateway must see whole, bounded in size and time.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: IncomingBody,
    ) -> Result<Bytes, GatewayError> {
        // Nothing to wait for (a GET): no timer to arm.
        if hyper::body::Body::is_end_stream(&body) {
            return Ok(Bytes::new());
        }
        let config = &self.0.config;
        tokio::time::timeout(
            config.timeouts.body_read,
            inspect::read_body(headers, body, config.body_limit),
        )
        .await
        .map_err(|_| GatewayError::BodyTimeout)?
    }

    /// authenticate: the caller's access token, or the legacy signed
    /// instance where a candidate rule accepts it. Returns the caller and,
    /// for access tokens, the token itself (pass-through needs it).
    async fn authenticate<'h>(
        &self,
        headers: &'h HeaderMap,
        canonical: &CanonicalRequest<'_>,
        matches: &[RouteMatch<'_>],
        last: &mut LastToken,
    ) -> Result<(Caller, Option<AccessToken<'h>>), GatewayError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = last.token(token_text(value)?);
            let caller = self.0.identity.authenticate(&token).await?;
            return Ok((caller, Some(token)));
        }
        if policy::accepted_by_any(matches, IdentitySource::SignedInstance) {
            let mut instances = canonical.query_values("instance");
            match (instances.next(), instances.next()) {
                (Some(instance), None) => {
                    let caller = identity::caller_from_signed_instance(
                        instance,
                        &self.0.config.wix.app_id,
                        &self.0.config.wix.app_secret,
                    )?;
                    return Ok((caller, None));
                }
                (Some(_), Some(_)) => {
                    return Err(GatewayError::BadRequest("more than one instance parameter"))
                }
                _ => {}
            }
        }
        Err(GatewayError::Unauthenticated("missing access token"))
    }

    /// Forwards with the app token of the caller's own instance; if Wix
    /// refuses that token, drops it, mints a fresh one and tries once more.
    async fn forward_elevated(
        &self,
        target: &UpstreamTarget<'_>,
        bytes: Bytes,
        record: &mut DecisionRecord,
    ) -> Result<Response<Body>, GatewayError> {
        let instance = &target.caller.instance_id;
        let token = self.0.credentials.app_token(instance).await?;
        // Pinned where it is made: awaited as it comes, the forward's future
        // (some KiB) is copied twice on its way into this one's state.
        let response =
            pin!(self.forward(target, &token, Outgoing::Bytes(bytes.clone()), record)).await?;
        if response.status() != http::StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.0.credentials.drop_app_token(instance, &token);
        let token = self.0.credentials.app_token(instance).await?;
        record.retried();
        self.forward(target, &token, Outgoing::Bytes(bytes), record)
            .await
    }

    /// upstream_request + forward: builds the request Wix receives and sends it.
    async fn forward(
        &self,
        target: &UpstreamTarget<'_>,
        credential: &HeaderValue,
        body: Outgoing,
        record: &mut DecisionRecord,
    ) -> Result<Response<Body>, GatewayError> {
        // A signed instance is a credential: it never travels on, whether or
        // not it was the one used.
        let path = record
            .logged_path()
            .map(|path| target.canonical.with_query(path, |key| key == "instance"))
            .ok_or(GatewayError::BadRequest("the request cannot be forwarded"))?;
        let headers = UpstreamHeaders::new(
            &target.parts.headers,
            &self.0.config.forward_headers,
            credential,
            target.request_id,
        );

        let sent = Instant::now();
        let response = self
            .0
            .upstream
            .send(&target.canonical.method, &path, &headers, body, sent)
            .await?;
        record.upstream(
            response.status(),
            response.headers().get(WIX_REQUEST_ID),
            sent.elapsed(),
        );
        Ok(response)
    }
}

/// What the upstream request is built from.
struct UpstreamTarget<'a> {
    parts: &'a Parts,
    canonical: &'a CanonicalRequest<'a>,
    caller: &'a Caller,
    request_id: &'a HeaderValue,
}
