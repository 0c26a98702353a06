//! Every way a token can be wrong gets API Gateway's answer (401, or 403 for a missing
//! scope), and a good one passes with its claims as API Gateway passes them on.

use dev_auth::token::Subject;
use dev_auth::verify::{Authorizer, verify};
use dev_auth::{Jwks, Rejection, SigningKey};
use serde_json::json;
use std::sync::OnceLock;

const ISSUER: &str = "http://127.0.0.1:3002";
const NOW: i64 = 1_795_305_316;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("dev-auth-{}", std::process::id()));
        let key = SigningKey::load_or_create(&dir).unwrap();
        // Loading it again gives the same key: the file is the key.
        assert_eq!(SigningKey::load_or_create(&dir).unwrap().kid, key.kid);
        key
    })
}

fn audiences() -> Vec<String> {
    vec!["orders-local".to_owned()]
}

fn check(token: &str, scopes: &[&str]) -> Result<dev_auth::Verified, Rejection> {
    let jwks = Jwks::parse(&key().jwks());
    let route: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let audiences = audiences();
    let authorizer = Authorizer {
        issuer: ISSUER,
        audiences: &audiences,
    };
    verify(Some(token), &jwks, &authorizer, &route, NOW)
}

fn customer() -> String {
    let subject = Subject {
        id: "c-1",
        scopes: &["openid"],
    };
    key()
        .mint(ISSUER, "orders-local", &subject, NOW - 10, 3600)
        .unwrap()
}

fn claims() -> serde_json::Value {
    json!({"iss": ISSUER, "aud": "orders-local", "sub": "c-1", "scope": "openid",
           "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600})
}

fn signed(claims: &serde_json::Value) -> String {
    key()
        .sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": key().kid}),
            claims,
        )
        .unwrap()
}

#[test]
fn a_good_token_passes_with_its_claims_as_strings() {
    let token = customer();
    let verified = check(&format!("Bearer {token}"), &[]).unwrap();
    assert_eq!(verified.claims["sub"], "c-1");
    assert_eq!(verified.claims["exp"], (NOW - 10 + 3600).to_string());
    assert_eq!(verified.scopes, ["openid"]);
    // The identity source may hold the bare token too.
    assert!(check(&token, &[]).is_ok());
}

#[test]
fn a_route_scope_the_token_lacks_is_403_and_one_it_has_passes() {
    let token = customer();
    assert_eq!(check(&token, &["orders/admin"]), Err(Rejection::Forbidden));
    assert!(check(&token, &["orders/admin", "openid"]).is_ok());
}

#[test]
fn every_bad_token_is_401() {
    let mut bad: Vec<(&str, String)> = Vec::new();
    bad.push(("empty", String::new()));
    bad.push(("not a JWT", "not-a-token".into()));
    bad.push(("two parts", "a.b".into()));
    for (what, field, value) in [
        ("expired", "exp", json!(NOW - 1)),
        ("exp now", "exp", json!(NOW)),
        ("not yet valid", "nbf", json!(NOW + 60)),
        ("issued in the future", "iat", json!(NOW + 60)),
        ("wrong issuer", "iss", json!("http://127.0.0.1:9999")),
        ("wrong audience", "aud", json!("someone-else")),
    ] {
        let mut c = claims();
        c[field] = value;
        bad.push((what, signed(&c)));
    }
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    bad.push(("no exp", signed(&no_exp)));

    // Tampered claims under the original signature.
    let good = customer();
    let parts: Vec<&str> = good.split('.').collect();
    let mut staff = claims();
    staff["scope"] = json!("openid orders/admin");
    let forged_payload = signed(&staff);
    let forged: Vec<&str> = forged_payload.split('.').collect();
    bad.push((
        "tampered",
        format!("{}.{}.{}", parts[0], forged[1], parts[2]),
    ));
    // `alg: none`, HS256 and an unknown kid.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims())
    );
    bad.push(("alg none", none));
    let hs = key()
        .sign(&json!({"alg": "HS256", "kid": key().kid}), &claims())
        .unwrap();
    bad.push(("HS256", hs));
    let unknown = key()
        .sign(&json!({"alg": "RS256", "kid": "someone-elses"}), &claims())
        .unwrap();
    bad.push(("unknown kid", unknown));

    for (what, token) in bad {
        assert!(
            matches!(check(&token, &[]), Err(Rejection::Unauthorized(_))),
            "{what} must be 401"
        );
    }
}

#[test]
fn client_id_stands_in_for_a_missing_audience_only() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    c["client_id"] = json!("orders-local");
    assert!(check(&signed(&c), &[]).is_ok());
    // With both, aud decides.
    c["aud"] = json!("someone-else");
    assert!(check(&signed(&c), &[]).is_err());
}

#[test]
fn the_discovery_document_names_the_jwks_and_endpoints() {
    let doc = dev_auth::keys::discovery(ISSUER);
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert!(Jwks::parse(&key().jwks()).has(&key().kid));
}

fn b64(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}
