//! Reading a request body that a rule inspects: bounded, JSON only, and
//! refused when a JSON parser elsewhere could read it differently.

use std::{collections::HashSet, fmt};

use crate::server::IncomingBody;
use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::{error::GatewayError, field_name};

/// Reads the whole body, refusing more than `limit` bytes. The bytes returned
/// are exactly the ones forwarded.
pub async fn read_body(
    headers: &HeaderMap,
    body: IncomingBody,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    if declared_length(headers).is_some_and(|length| length > limit as u64) {
        return Err(GatewayError::PayloadTooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(GatewayError::PayloadTooLarge(limit)),
        Err(error) => {
            tracing::debug!(%error, "request body could not be read");
            Err(GatewayError::BadRequest(
                "the request body could not be read",
            ))
        }
    }
}

/// The body length the client declared in `Content-Length`, if any.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
}

/// Parses an inspected body. An empty body is `None` (body conditions then
/// fail); a non-empty one must be declared JSON and parse as JSON in which no
/// object names one field twice.
pub fn parse_json(headers: &HeaderMap, bytes: &[u8]) -> Result<Option<Value>, GatewayError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .is_some_and(|mime| mime == "application/json" || mime.ends_with("+json"));
    if !is_json {
        return Err(GatewayError::UnsupportedMediaType);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value.0))
        .map_err(|_| GatewayError::BadRequest("the request body is not unambiguous JSON"))?;
    Ok(Some(value))
}

/// A JSON value whose objects never repeat a field. Wix APIs are gRPC
/// transcoded: their parsers accept both `dataCollectionId` and
/// `data_collection_id`, and which of two duplicates wins is theirs to pick.
/// A body where the gateway and Wix could disagree on a field is refused:
/// fields are compared as [`field_name::same`] does.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = access.next_key::<String>()? {
            if !seen.insert(field_name::fold(&key)) {
                return Err(de::Error::custom("a field appears twice"));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        headers
    }

    #[test]
    fn json_bodies_parse_and_ambiguous_ones_are_refused() {
        let headers = json_headers();
        let value = parse_json(&headers, br#"{"a":{"b":[1,2.5,"x",null,true]}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(value["a"]["b"][2], "x");
        assert_eq!(parse_json(&headers, b"").unwrap(), None);
        for bad in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"x":{"dataCollectionId":"A","data_collection_id":"B"}}"#,
            br#"{"Id":1,"id":2}"#,
            br#"{"a":1} trailing"#,
            b"{not json",
        ] {
            assert!(
                matches!(parse_json(&headers, bad), Err(GatewayError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn non_json_bodies_are_unsupported() {
        let mut headers = HeaderMap::new();
        assert!(matches!(
            parse_json(&headers, b"{}"),
            Err(GatewayError::UnsupportedMediaType)
        ));
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(matches!(
            parse_json(&headers, b"{}"),
            Err(GatewayError::UnsupportedMediaType)
        ));
        headers.insert(
            header::CONTENT_TYPE,
            "application/merge-patch+json".parse().unwrap(),
        );
        assert!(parse_json(&headers, b"{}").is_ok());
    }
}
