//! Comma-separated header lists (RFC 9110 §5.6.1), such as `Connection`:
//! read one way wherever the gateway, its server and its upstream transport
//! look for a token.

use http::{header::AsHeaderName, HeaderMap};

/// The items of every `name` header, trimmed, in order; values that are not
/// visible ASCII contribute none.
pub fn items(headers: &HeaderMap, name: impl AsHeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

/// Whether a `name` header lists `token`, in any case.
pub fn lists(headers: &HeaderMap, name: impl AsHeaderName, token: &str) -> bool {
    items(headers, name).any(|item| item.eq_ignore_ascii_case(token))
}

/// A header map of `pairs`, in order, for tests.
#[cfg(test)]
pub(crate) fn map_of(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(*name, http::HeaderValue::from_static(value));
    }
    headers
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn items_of_repeated_and_comma_separated_values() {
        let mut headers = HeaderMap::new();
        headers.append("connection", HeaderValue::from_static("keep-alive, X-A"));
        headers.append("connection", HeaderValue::from_static(" Close "));
        let items: Vec<_> = items(&headers, "connection").collect();
        assert_eq!(items, ["keep-alive", "X-A", "Close"]);
        assert!(lists(&headers, "connection", "close"));
        assert!(!lists(&headers, "connection", "upgrade"));
    }
}
