//! Header hygiene for both directions: hop-by-hop headers and every name a
//! `Connection` header lists are connection-scoped and never cross the proxy;
//! request headers reach Wix only from an allowlist.

use http::{header, HeaderMap, HeaderName, HeaderValue};

use crate::header_list;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1,
/// plus the non-standard ones proxies commonly see).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Request headers forwarded to Wix by default: what a Wix API reads to
/// understand a request, nothing that identifies the caller or the proxy.
/// (`x-request-id` goes too, always the gateway's own: see `request_id`.)
pub const FORWARDED_REQUEST_HEADERS: [HeaderName; 8] = [
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::CONTENT_TYPE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::USER_AGENT,
    HeaderName::from_static("x-wix-consistent"),
];

/// The request id header, set by the gateway on both sides.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wix's own request id, kept on the way back and logged.
pub const WIX_REQUEST_ID: HeaderName = HeaderName::from_static("x-wix-request-id");

/// Names the `Connection` headers of `headers` list, lower-cased.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    // The usual message has no `Connection` field: a look at its few names
    // costs less than a hashed lookup.
    if !headers.keys().any(|name| name == header::CONNECTION) {
        return Vec::new();
    }
    header_list::items(headers, header::CONNECTION)
        .filter_map(|name| HeaderName::try_from(name.to_ascii_lowercase()).ok())
        .collect()
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name)
}

/// Removes hop-by-hop headers and the names `Connection` lists, in place.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // The usual answer has none: one pass over its few names instead of a
    // hashed removal per hop-by-hop name.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The name of the credential field, as a place to point at.
static AUTHORIZATION_NAME: HeaderName = header::AUTHORIZATION;

/// The name of the request id field, as a place to point at.
static REQUEST_ID_NAME: HeaderName = REQUEST_ID;

/// The header fields a request carries upstream: the client's allowlisted
/// ones (built-in plus the configured extras) that are not
/// connection-scoped, then the gateway's credential and request id.
/// Credentials, cookies, forwarding headers and everything else stay
/// behind. A view of the client's headers: a transport writes the fields
/// as they are read, without building a map of its own.
pub struct UpstreamHeaders<'a> {
    inbound: &'a HeaderMap,
    extra: &'a [HeaderName],
    /// What the client's `Connection` header lists (none, usually: then
    /// nothing is allocated).
    listed: Vec<HeaderName>,
    credential: &'a HeaderValue,
    request_id: &'a HeaderValue,
}

/// Names the view only: the fields hold the caller's and the app's
/// credentials.
impl std::fmt::Debug for UpstreamHeaders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamHeaders").finish_non_exhaustive()
    }
}

impl<'a> UpstreamHeaders<'a> {
    /// The fields a request with `inbound` headers carries upstream.
    pub fn new(
        inbound: &'a HeaderMap,
        extra: &'a [HeaderName],
        credential: &'a HeaderValue,
        request_id: &'a HeaderValue,
    ) -> Self {
        Self {
            inbound,
            extra,
            listed: connection_listed(inbound),
            credential,
            request_id,
        }
    }

    /// Every field, in order; the values of one name keep theirs.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        // One pass over the request's few headers rather than a lookup per
        // allowlisted name.
        self.inbound
            .iter()
            .filter(|(name, _)| self.forwards(name))
            .chain([
                (&AUTHORIZATION_NAME, self.credential),
                (&REQUEST_ID_NAME, self.request_id),
            ])
    }

    /// The fields as a map, for a transport that takes one.
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::with_capacity(self.inbound.len() + 2);
        for (name, value) in self.iter() {
            map.append(name.clone(), value.clone());
        }
        map
    }

    fn forwards(&self, name: &HeaderName) -> bool {
        let allowed = FORWARDED_REQUEST_HEADERS.contains(name) || self.extra.contains(name);
        // The gateway's own credential and request id replace the client's.
        allowed
            && !self.listed.contains(name)
            && !is_hop_by_hop(name)
            && name != header::AUTHORIZATION
            && name != REQUEST_ID
    }
}

/// A request id: the client's own when it is short and plain (so it can be
/// correlated end to end without becoming a log-injection vector), a fresh
/// random one otherwise.
pub fn request_id(inbound: &HeaderMap) -> HeaderValue {
    inbound
        .get(&REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 64
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .cloned()
        .unwrap_or_else(crate::error::new_request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::header_list::map_of as map;

    #[test]
    fn only_allowlisted_and_unlisted_headers_go_upstream() {
        let inbound = map(&[
            ("authorization", "caller-token"),
            ("cookie", "a=b"),
            ("x-forwarded-for", "1.2.3.4"),
            ("connection", "keep-alive, Accept-Language"),
            ("accept-language", "fr"),
            ("accept", "application/json"),
            ("x-wix-consistent", "abc"),
            ("te", "trailers"),
            ("x-extra", "kept"),
        ]);
        let extra = [HeaderName::from_static("x-extra")];
        let (credential, id) = (
            HeaderValue::from_static("app"),
            HeaderValue::from_static("id-1"),
        );
        let out = UpstreamHeaders::new(&inbound, &extra, &credential, &id);
        let fields: Vec<(&str, &str)> = out
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [
                ("accept", "application/json"),
                ("x-wix-consistent", "abc"),
                ("x-extra", "kept"),
                ("authorization", "app"),
                ("x-request-id", "id-1"),
            ]
        );
        assert_eq!(out.to_map().len(), fields.len());
    }

    #[test]
    fn repeated_headers_go_upstream_in_order() {
        let inbound = map(&[
            ("if-none-match", "\"a\""),
            ("cookie", "a=b"),
            ("x-request-id", "the-client's"),
            ("if-none-match", "\"b\""),
        ]);
        let (credential, id) = (
            HeaderValue::from_static("app"),
            HeaderValue::from_static("id-1"),
        );
        let out = UpstreamHeaders::new(&inbound, &[], &credential, &id).to_map();
        let values: Vec<_> = out.get_all("if-none-match").iter().collect();
        assert_eq!(values, ["\"a\"", "\"b\""]);
        let ids: Vec<_> = out.get_all("x-request-id").iter().collect();
        assert_eq!(ids, ["id-1"]);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn every_hop_by_hop_name_alone_is_stripped() {
        // Each name on its own must trip the check that skips the removals.
        for name in &HOP_BY_HOP {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("a/b"));
            headers.insert(name.clone(), HeaderValue::from_static("x"));
            strip_hop_by_hop(&mut headers);
            let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
            assert_eq!(names, ["content-type"], "{name}");
        }
    }

    #[test]
    fn hop_by_hop_and_listed_are_stripped() {
        let mut headers = map(&[
            ("connection", "x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
        ]);
        strip_hop_by_hop(&mut headers);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type"]);
    }

    #[test]
    fn request_ids_are_kept_only_when_plain() {
        assert_eq!(request_id(&map(&[("x-request-id", "abc-123")])), "abc-123");
        let fresh = request_id(&map(&[("x-request-id", "evil\"}")]));
        assert_eq!(fresh.len(), 32);
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
    }
}
