//! Legacy signed-instance identities: verified offline with the app secret.

use std::time::{Duration, SystemTime};

use super::signed_instance::{self, SignedInstance};
use crate::{
    caller::{Caller, CallerType, IdentitySource},
    error::GatewayError,
    secret::Secret,
};

/// How old a signed instance without an `expirationDate` may be. Wix signs
/// the instance when the app's page loads; a day covers any real session
/// while a leaked instance does not stay useful forever.
const MAX_INSTANCE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The caller a legacy `instance` parameter speaks for, if its signature is
/// the app's and it is current.
pub fn caller_from_signed_instance(
    instance: &str,
    app_id: &str,
    secret: &Secret,
) -> Result<Caller, GatewayError> {
    let invalid = || GatewayError::Unauthenticated("the signed instance is not valid");
    let payload = signed_instance::verify(instance, secret).map_err(|error| {
        tracing::debug!(%error, "signed instance refused");
        invalid()
    })?;
    if payload.app_def_id.as_deref().is_some_and(|id| id != app_id) {
        return Err(GatewayError::Unauthenticated(
            "the signed instance was not issued for this app",
        ));
    }
    if !is_current(&payload, SystemTime::now()) {
        return Err(GatewayError::Unauthenticated(
            "the signed instance has expired",
        ));
    }
    let instance_id = payload
        .instance_id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(invalid)?;
    let owner = payload.permissions.as_deref() == Some("OWNER");
    let (subject_type, subject_id) = match (&payload.uid, &payload.site_member_id) {
        (Some(uid), _) if owner => (CallerType::User, uid.clone()),
        (Some(uid), _) => (CallerType::Member, uid.clone()),
        (None, Some(member)) => (CallerType::Member, member.clone()),
        (None, None) => (
            CallerType::Visitor,
            payload.aid.clone().ok_or_else(invalid)?,
        ),
    };
    Ok(Caller::new(
        subject_type,
        subject_id.into(),
        instance_id.into(),
        payload.meta_site_id.as_deref().map(Into::into),
        IdentitySource::SignedInstance,
    ))
}

/// Unexpired: before its `expirationDate` if it has one, otherwise signed
/// within [`MAX_INSTANCE_AGE`]. An unreadable date is not current.
fn is_current(payload: &SignedInstance, now: SystemTime) -> bool {
    let parse = |date: &str| humantime::parse_rfc3339_weak(date).ok();
    if let Some(expiry) = &payload.expiration_date {
        return parse(expiry).is_some_and(|at| at > now);
    }
    match &payload.sign_date {
        Some(signed) => parse(signed).is_some_and(|at| {
            now.duration_since(at)
                .is_ok_and(|age| age <= MAX_INSTANCE_AGE)
        }),
        None => false,
    }
}
