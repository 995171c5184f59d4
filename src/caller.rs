//! Who is calling: the identity the authenticate phase establishes and the
//! authorize phase reads.

use std::{fmt, sync::Arc};

use crate::secret::Fingerprint;

/// The kinds of caller a rule can admit. Wix's `APP` and `UNKNOWN` subjects
/// are never admitted, so they have no variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallerType {
    /// An anonymous site visitor.
    Visitor,
    /// A logged-in site member.
    Member,
    /// A Wix user (site owner or collaborator).
    User,
}

impl CallerType {
    /// Parses Wix's `subjectType` spelling (`VISITOR`, `MEMBER`, `USER`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "VISITOR" => Some(Self::Visitor),
            "MEMBER" => Some(Self::Member),
            "USER" => Some(Self::User),
            _ => None,
        }
    }

    /// Wix's spelling of this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Visitor => "VISITOR",
            Self::Member => "MEMBER",
            Self::User => "USER",
        }
    }
}

impl fmt::Display for CallerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentitySource {
    /// A Wix access token in `Authorization`, vouched for by token-info.
    AccessToken,
    /// The legacy `instance` query parameter, signed with the app secret.
    SignedInstance,
}

/// A verified caller. Every field came from Wix (token-info) or from a
/// signature made with the app secret, never from the request itself.
///
/// The ids are shared strings: a caller is cloned out of the identity cache
/// on every request, and one instance's id is shared by all its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Visitor, member or user.
    pub subject_type: CallerType,
    /// The visitor, member or user id.
    pub subject_id: Arc<str>,
    /// The app's installation on the caller's site: the only instance an
    /// elevated call may act for.
    pub instance_id: Arc<str>,
    /// The site, when Wix said.
    pub site_id: Option<Arc<str>>,
    /// How the identity was established.
    pub source: IdentitySource,
    /// The subject id's fingerprint, as the decision log names the caller:
    /// computed with the caller (for an access token, once per cached
    /// identity), not per log line. Set by [`Caller::new`] from the subject
    /// id it is given.
    fingerprint: Fingerprint,
}

impl Caller {
    /// A caller, with the fingerprint of `subject_id`.
    pub fn new(
        subject_type: CallerType,
        subject_id: Arc<str>,
        instance_id: Arc<str>,
        site_id: Option<Arc<str>>,
        source: IdentitySource,
    ) -> Self {
        Self {
            fingerprint: Fingerprint::of(subject_id.as_bytes()),
            subject_type,
            subject_id,
            instance_id,
            site_id,
            source,
        }
    }

    /// The subject id's fingerprint, as logged.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}
