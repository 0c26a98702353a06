//! Minting RS256 tokens with the development key.

use crate::{SigningKey, b64};
use serde_json::{Value, json};

/// Who a token is for.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// `sub`: the customer id, or a staff member's name.
    pub id: &'a str,
    /// `scope`, space-separated in the token.
    pub scopes: &'a [&'a str],
}

impl SigningKey {
    /// A signed token for `subject` from `issuer` to `audience`, valid for `lifetime_seconds`
    /// from `now` (Unix seconds).
    pub fn mint(
        &self,
        issuer: &str,
        audience: &str,
        subject: &Subject<'_>,
        now: i64,
        lifetime_seconds: i64,
    ) -> anyhow::Result<String> {
        let claims = json!({
            "iss": issuer, "aud": audience, "client_id": audience,
            "sub": subject.id, "scope": subject.scopes.join(" "),
            "iat": now, "nbf": now, "exp": now + lifetime_seconds,
            "token_use": "access",
        });
        self.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            &claims,
        )
    }

    /// `header.claims.signature` with any header and claims (tests build bad tokens with it).
    pub fn sign(&self, header: &Value, claims: &Value) -> anyhow::Result<String> {
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        Ok(format!("{signing_input}.{}", b64(&signature)))
    }
}
