//! Sign-in for the local stack, the way API Gateway does it on AWS.
//!
//! - [`keys`]: the development issuer's RSA signing key (generated once under `.local/`),
//!   its JWKS and its OIDC discovery document.
//! - [`token`]: minting RS256 tokens (`orders-admin token`, tests, the sign-in page).
//! - [`verify`]: what API Gateway's JWT authorizer checks before it invokes a function —
//!   signature (RS256 by `kid` from the issuer's JWKS), `iss`, `aud` (or `client_id`),
//!   `exp`, `nbf`, and the route's scopes — and the claims it passes on.

pub mod keys;
pub mod token;
pub mod verify;

pub use keys::SigningKey;
pub use verify::{Jwks, Rejection, Verified};

/// The audience (app client id) of the local stack's tokens: `infra/envs/local` configures
/// the authorizer with it.
pub const LOCAL_AUDIENCE: &str = "orders-local";

/// A PKCE S256 challenge: base64url(SHA-256(verifier)).
pub fn s256(verifier: &str) -> String {
    use sha2::{Digest, Sha256};
    b64(&Sha256::digest(verifier.as_bytes()))
}

/// base64url without padding, as JWTs use it.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}
