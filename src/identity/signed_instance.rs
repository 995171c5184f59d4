//! The legacy signed `instance` parameter: `<signature>.<payload>`.
//!
//! `payload` is base64url (no padding) of a JSON object; `signature` is
//! base64url (no padding) of HMAC-SHA256, keyed with the app secret, over the
//! payload segment exactly as received. Verifying it needs no round trip to
//! Wix, so it is the cheapest identity the gateway can accept, and also the
//! easiest to get subtly wrong: everything here is strict on purpose.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The fields Wix has been seen to put in a signed instance. None is
/// guaranteed to be present, so every one is optional; unknown fields are
/// ignored so that a new Wix field does not lock callers out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedInstance {
    /// The app's installation on the site.
    pub instance_id: Option<String>,
    /// The app the instance belongs to.
    pub app_def_id: Option<String>,
    /// When Wix signed the instance (ISO 8601).
    pub sign_date: Option<String>,
    /// The current user or member, when there is one.
    pub uid: Option<String>,
    /// The caller's permissions on the site (e.g. `OWNER`).
    pub permissions: Option<String>,
    /// The site owner's user id.
    pub site_owner_id: Option<String>,
    /// The logged-in site member, when there is one.
    pub site_member_id: Option<String>,
    /// The premium package the site bought for the app.
    pub vendor_product_id: Option<String>,
    /// The anonymous visitor id.
    pub aid: Option<String>,
    /// The instance this one was copied from (site duplication).
    pub origin_instance_id: Option<String>,
    /// Whether the site is a template in demo mode.
    pub demo_mode: Option<bool>,
    /// The site's meta site id.
    pub meta_site_id: Option<String>,
    /// When the instance stops being valid (ISO 8601).
    pub expiration_date: Option<String>,
}

/// Why a signed instance was refused. The variants are distinct so that logs
/// can tell a broken client from a forgery attempt; clients never see which.
#[derive(Debug, thiserror::Error)]
pub enum SignedInstanceError {
    /// Not `<base64url>.<base64url>` (wrong number of dots, padding, bad
    /// characters, empty segments).
    #[error("the signed instance is malformed")]
    Malformed,
    /// The signature was not made with the app secret over this payload.
    #[error("the signed instance signature does not match")]
    BadSignature,
    /// Correctly signed, but the payload is not a JSON object of the
    /// expected shape.
    #[error("the signed instance payload is not a valid instance object")]
    BadPayload,
}

fn mac(secret: &Secret) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.expose().as_bytes()).expect("HMAC accepts keys of any length")
}

/// Signs `payload` the way Wix does. Used by the sandbox to hand out
/// instances that the gateway must accept.
pub fn sign(payload: &serde_json::Value, secret: &Secret) -> String {
    let encoded = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signature = mac(secret)
        .chain_update(encoded.as_bytes())
        .finalize()
        .into_bytes();
    format!("{}.{}", URL_SAFE_NO_PAD.encode(signature), encoded)
}

/// Verifies `instance` with `secret` and returns its payload.
///
/// The signature is checked (in constant time) before the payload is parsed,
/// so unauthenticated bytes never reach the JSON parser.
pub fn verify(instance: &str, secret: &Secret) -> Result<SignedInstance, SignedInstanceError> {
    let (signature, payload) = instance
        .split_once('.')
        .ok_or(SignedInstanceError::Malformed)?;
    if signature.is_empty() || payload.is_empty() || payload.contains('.') {
        return Err(SignedInstanceError::Malformed);
    }
    // The no-padding engine rejects '=' and non-canonical trailing bits, so
    // one signature has exactly one accepted spelling.
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| SignedInstanceError::Malformed)?;
    let decoded = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| SignedInstanceError::Malformed)?;
    mac(secret)
        .chain_update(payload.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| SignedInstanceError::BadSignature)?;
    let value: serde_json::Value =
        serde_json::from_slice(&decoded).map_err(|_| SignedInstanceError::BadPayload)?;
    if !value.is_object() {
        return Err(SignedInstanceError::BadPayload);
    }
    serde_json::from_value(value).map_err(|_| SignedInstanceError::BadPayload)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secret() -> Secret {
        Secret::new("app-secret")
    }

    fn sample() -> serde_json::Value {
        json!({
            "instanceId": "inst-1",
            "appDefId": "app-1",
            "signDate": "2024-01-01T00:00:00.000Z",
            "uid": "user-1",
            "permissions": "OWNER",
            "demoMode": false,
            "someFutureField": {"nested": true},
        })
    }

    fn split(instance: &str) -> (&str, &str) {
        instance.split_once('.').unwrap()
    }

    #[test]
    fn round_trip() {
        let instance = sign(&sample(), &secret());
        let verified = verify(&instance, &secret()).unwrap();
        assert_eq!(verified.instance_id.as_deref(), Some("inst-1"));
        assert_eq!(verified.app_def_id.as_deref(), Some("app-1"));
        assert_eq!(verified.permissions.as_deref(), Some("OWNER"));
        assert_eq!(verified.demo_mode, Some(false));
        assert_eq!(verified.site_member_id, None);
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let instance = sign(&sample(), &secret());
        let (signature, _) = split(&instance);
        let forged = URL_SAFE_NO_PAD.encode(r#"{"instanceId":"someone-else"}"#);
        assert!(matches!(
            verify(&format!("{signature}.{forged}"), &secret()),
            Err(SignedInstanceError::BadSignature)
        ));
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let instance = sign(&sample(), &secret());
        let (signature, payload) = split(&instance);
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[0] ^= 1;
        let forged = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(bytes));
        assert!(matches!(
            verify(&forged, &secret()),
            Err(SignedInstanceError::BadSignature)
        ));
        let short = format!("{}.{payload}", URL_SAFE_NO_PAD.encode([0u8; 16]));
        assert!(matches!(
            verify(&short, &secret()),
            Err(SignedInstanceError::BadSignature)
        ));
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let instance = sign(&sample(), &secret());
        assert!(matches!(
            verify(&instance, &Secret::new("other-secret")),
            Err(SignedInstanceError::BadSignature)
        ));
    }

    #[test]
    fn malformed_shapes_are_rejected() {
        let instance = sign(&sample(), &secret());
        let (signature, payload) = split(&instance);
        let cases = [
            String::new(),
            "no-dot".to_owned(),
            format!(".{payload}"),
            format!("{signature}."),
            format!("{signature}.{payload}."),
            format!("{signature}.{payload}.extra"),
            format!("{signature}=.{payload}"),
            format!("{signature}.{payload}=="),
            format!("{signature}.{payload}!"),
            format!(
                "{}.{payload}",
                signature.replace('-', "+").replace('_', "/")
            ),
        ];
        for case in cases {
            if case == instance {
                continue;
            }
            assert!(
                matches!(
                    verify(&case, &secret()),
                    Err(SignedInstanceError::Malformed)
                ),
                "accepted {case:?}"
            );
        }
    }

    #[test]
    fn non_object_payloads_are_rejected() {
        for payload in [json!([1, 2]), json!("text"), json!(null), json!(42)] {
            let instance = sign(&payload, &secret());
            assert!(matches!(
                verify(&instance, &secret()),
                Err(SignedInstanceError::BadPayload)
            ));
        }
    }

    #[test]
    fn fields_of_the_wrong_type_are_rejected() {
        let instance = sign(&json!({"instanceId": 7}), &secret());
        assert!(matches!(
            verify(&instance, &secret()),
            Err(SignedInstanceError::BadPayload)
        ));
        let instance = sign(&json!({"demoMode": "yes"}), &secret());
        assert!(matches!(
            verify(&instance, &secret()),
            Err(SignedInstanceError::BadPayload)
        ));
    }
}
