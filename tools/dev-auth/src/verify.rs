//! The checks of API Gateway's JWT authorizer, in its order: a token in the identity source
//! (`Authorization`, with or without `Bearer `), RS256 signature by a `kid` of the issuer's
//! JWKS (only RSA is supported), `iss`, `aud` (or `client_id` when there is no `aud`),
//! `exp` after now, `nbf` and `iat` not after now, and at least one of the route's scopes
//! in `scope` / `scp`. Any failure is 401, but a missing scope 403, as API Gateway answers.

use crate::unb64;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An issuer's public keys by `kid` (RSA only).
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: BTreeMap<String, RsaPublicKeyComponents<Vec<u8>>>,
}

impl Jwks {
    /// Reads a JWKS document; keys that are not RSA signing keys are skipped.
    pub fn parse(document: &Value) -> Self {
        let keys = document["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| k["kty"] == "RSA" && k["use"].as_str().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let kid = k["kid"].as_str()?.to_owned();
                let n = unb64(k["n"].as_str()?)?;
                let e = unb64(k["e"].as_str()?)?;
                Some((kid, RsaPublicKeyComponents { n, e }))
            })
            .collect();
        Self { keys }
    }

    pub fn has(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 401: no token, or one that fails a check (the reason is for logs only).
    Unauthorized(&'static str),
    /// 403: a valid token without any of the route's scopes.
    Forbidden,
}

/// A token that passed: its claims as API Gateway passes them on
/// (`requestContext.authorizer.jwt.claims`: every claim a string), and its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub claims: BTreeMap<String, String>,
    pub scopes: Vec<String>,
}

/// What an authorizer is configured with.
#[derive(Debug, Clone)]
pub struct Authorizer<'a> {
    pub issuer: &'a str,
    pub audiences: &'a [String],
}

/// The token of an `Authorization` header value: the value, less a `Bearer ` prefix.
pub fn token_of(header: &str) -> &str {
    let header = header.trim();
    match header.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => header[7..].trim(),
        _ => header,
    }
}

/// Checks `token` for a route that requires one of `route_scopes` (none: any valid token).
pub fn verify(
    token: Option<&str>,
    jwks: &Jwks,
    authorizer: &Authorizer<'_>,
    route_scopes: &[String],
    now: i64,
) -> Result<Verified, Rejection> {
    let token = token.map(token_of).filter(|t| !t.is_empty());
    let token = token.ok_or(Rejection::Unauthorized("no token"))?;
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Unauthorized("not a JWS compact token"));
    };
    let header = json_part(header).ok_or(Rejection::Unauthorized("unreadable header"))?;
    let claims = json_part(payload).ok_or(Rejection::Unauthorized("unreadable claims"))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(Rejection::Unauthorized("only RS256 is accepted"));
    }
    let key = header
        .get("kid")
        .and_then(Value::as_str)
        .and_then(|kid| jwks.keys.get(kid))
        .ok_or(Rejection::Unauthorized("no key of the issuer has this kid"))?;
    let signature = unb64(signature).ok_or(Rejection::Unauthorized("unreadable signature"))?;
    let signed = &token[..header_and_payload_len(token)];
    key.verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
        .map_err(|_| Rejection::Unauthorized("bad signature"))?;

    if claims.get("iss").and_then(Value::as_str) != Some(authorizer.issuer) {
        return Err(Rejection::Unauthorized("wrong issuer"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => claims
            .get("client_id")
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
    };
    if !audiences
        .iter()
        .any(|a| authorizer.audiences.iter().any(|want| want == a))
    {
        return Err(Rejection::Unauthorized("wrong audience"));
    }
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    match time("exp") {
        Some(exp) if exp > now => {}
        _ => return Err(Rejection::Unauthorized("expired, or no exp")),
    }
    if time("nbf").is_some_and(|nbf| nbf > now) || time("iat").is_some_and(|iat| iat > now) {
        return Err(Rejection::Unauthorized("not valid yet"));
    }
    let scopes: Vec<String> = match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if !route_scopes.is_empty() && !route_scopes.iter().any(|s| scopes.contains(s)) {
        return Err(Rejection::Forbidden);
    }
    Ok(Verified {
        claims: claims
            .into_iter()
            .map(|(name, value)| (name, claim_text(&value)))
            .collect(),
        scopes,
    })
}

fn json_part(part: &str) -> Option<Map<String, Value>> {
    serde_json::from_slice::<Value>(&unb64(part)?)
        .ok()?
        .as_object()
        .cloned()
}

/// `header.payload`: what the signature covers.
fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

/// A claim as API Gateway passes it: strings as they are, anything else as JSON text
/// (arrays as `[a b]`, as API Gateway writes them).
fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_text).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}
