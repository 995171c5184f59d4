//! The authenticate phase: who is calling, as Wix vouches for it.
//!
//! Access tokens are opaque (signed with a key only Wix holds), so each is
//! checked with token-info, stricter than `@wix/sdk`'s `elevated()`: the
//! token must be active, unexpired, issued for this app, bound to an
//! installation, and speak for a visitor, member or user. Answers are cached
//! by a hash of the token, never the token itself, with one lookup in flight
//! per token (a busy connection remembers its last token's hash,
//! [`LastToken`], so as not to compute it again). If token-info cannot be
//! asked the request fails with 503 and nothing is cached: doubt never
//! allows.

mod access_token;
mod interner;

pub use access_token::{token_from_header, token_text, AccessToken, IdentityService, LastToken};
mod instance_caller;
pub mod signed_instance;

pub use instance_caller::caller_from_signed_instance;
