//! The development OIDC issuer the local stack signs in with, on 127.0.0.1: its discovery
//! document and JWKS (what API Gateway's JWT authorizer fetches from any issuer), and the
//! authorization-code flow with PKCE the dashboard uses — `/authorize` shows a development
//! sign-in page (no password: choose staff or a customer id), `/token` trades the code for
//! an access token. Keys live under `.local/` (`dev_auth::keys`).

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Redirect, Response};
use axum::routing::get;
use dev_auth::SigningKey;
use dev_auth::keys::discovery;
use dev_auth::token::Subject;
use orders_core::caller::STAFF_SCOPE;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A code is good for one exchange within this long.
const CODE_LIFETIME: Duration = Duration::from_secs(120);
/// Access tokens the sign-in flow issues last this long.
const TOKEN_LIFETIME_SECONDS: i64 = 3_600;
const CUSTOMER_SCOPES: [&str; 2] = ["openid", "orders/customer"];
const STAFF_SCOPES: [&str; 3] = ["openid", "orders/customer", STAFF_SCOPE];

struct Issuer {
    url: String,
    key: SigningKey,
    /// The one client (the dashboard's), also the tokens' audience.
    client_id: String,
    grants: Mutex<HashMap<String, Grant>>,
}

struct Grant {
    subject: String,
    staff: bool,
    challenge: String,
    redirect_uri: String,
    expires: Instant,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    url: String,
    key: SigningKey,
    client_id: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let issuer = Arc::new(Issuer {
        url,
        key,
        client_id,
        grants: Mutex::default(),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(configuration))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/authorize", get(sign_in_page).post(authorize))
        .route("/token", axum::routing::post(token))
        .with_state(issuer);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn configuration(State(issuer): State<Arc<Issuer>>) -> impl IntoResponse {
    Json(discovery(&issuer.url))
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> impl IntoResponse {
    Json(issuer.key.jwks())
}

/// What a client sends to `/authorize` (and the sign-in page posts back, with the choice).
#[derive(Debug, Deserialize)]
struct AuthorizeRequest {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    #[serde(default)]
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    #[serde(default)]
    scope: String,
    /// From the sign-in page: `staff`, or a customer id.
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

impl AuthorizeRequest {
    fn problem(&self, issuer: &Issuer) -> Option<&'static str> {
        if self.response_type != "code" {
            return Some("response_type must be code");
        }
        if self.client_id != issuer.client_id {
            return Some("unknown client_id");
        }
        if !(self.redirect_uri.starts_with("http://127.0.0.1:")
            || self.redirect_uri.starts_with("http://localhost:"))
        {
            return Some("the development issuer redirects only to 127.0.0.1 or localhost");
        }
        if self.code_challenge_method != "S256" || self.code_challenge.len() < 43 {
            return Some("PKCE with S256 is required");
        }
        None
    }
}

async fn sign_in_page(
    State(issuer): State<Arc<Issuer>>,
    Query(request): Query<AuthorizeRequest>,
) -> Response {
    if let Some(problem) = request.problem(&issuer) {
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    let hidden: String = [
        ("response_type", &request.response_type),
        ("client_id", &request.client_id),
        ("redirect_uri", &request.redirect_uri),
        ("state", &request.state),
        ("code_challenge", &request.code_challenge),
        ("code_challenge_method", &request.code_challenge_method),
        ("scope", &request.scope),
    ]
    .iter()
    .map(|(name, value)| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            escape(value)
        )
    })
    .collect();
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in (development)</title></head>
<body><main><h1>Sign in to the orders system</h1>
<p>Development issuer of the local stack: no password. Staff see every order and the analytics; a customer only its own orders.</p>
<form method="post" action="/authorize">{hidden}
<p><label><input type="radio" name="role" value="staff" checked> Staff</label>
<label><input type="radio" name="role" value="customer"> Customer</label></p>
<p><label>Name or customer id <input name="subject" value="staff" required></label></p>
<p><button type="submit" data-testid="sign-in-submit">Sign in</button></p>
</form></main></body></html>"#
    );
    let mut response = Html(page).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; form-action 'self' http://127.0.0.1:* http://localhost:*; frame-ancestors 'none'"),
    );
    response
}

async fn authorize(
    State(issuer): State<Arc<Issuer>>,
    Form(request): Form<AuthorizeRequest>,
) -> Response {
    if let Some(problem) = request.problem(&issuer) {
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    let staff = request.role.as_deref() == Some("staff");
    let subject = request.subject.clone().unwrap_or_default();
    if orders_core::CustomerId::parse(&subject).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            "the name must be 1 to 64 of A–Z a–z 0–9 - _ . :",
        )
            .into_response();
    }
    let code = random_string();
    let mut grants = issuer.grants.lock().unwrap_or_else(|p| p.into_inner());
    grants.retain(|_, g| g.expires > Instant::now());
    grants.insert(
        code.clone(),
        Grant {
            subject,
            staff,
            challenge: request.code_challenge.clone(),
            redirect_uri: request.redirect_uri.clone(),
            expires: Instant::now() + CODE_LIFETIME,
        },
    );
    let separator = if request.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    Redirect::to(&format!(
        "{}{separator}code={code}&state={}",
        request.redirect_uri,
        percent_encode(&request.state)
    ))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: String,
    code: String,
    redirect_uri: String,
    client_id: String,
    code_verifier: String,
}

async fn token(State(issuer): State<Arc<Issuer>>, Form(request): Form<TokenRequest>) -> Response {
    let grant = issuer
        .grants
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&request.code);
    let valid = grant.filter(|g| {
        request.grant_type == "authorization_code"
            && request.client_id == issuer.client_id
            && g.redirect_uri == request.redirect_uri
            && g.expires > Instant::now()
            && dev_auth::s256(&request.code_verifier) == g.challenge
    });
    let mut response = match valid {
        None => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "invalid_grant"})),
        )
            .into_response(),
        Some(grant) => {
            let scopes: &[&str] = if grant.staff {
                &STAFF_SCOPES
            } else {
                &CUSTOMER_SCOPES
            };
            let subject = Subject {
                id: &grant.subject,
                scopes,
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            match issuer.key.mint(
                &issuer.url,
                &issuer.client_id,
                &subject,
                now,
                TOKEN_LIFETIME_SECONDS,
            ) {
                Ok(token) => Json(serde_json::json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                    "scope": scopes.join(" "),
                }))
                .into_response(),
                Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}")).into_response(),
            }
        }
    };
    // The dashboard (another origin: the API's) calls this from the browser.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn random_string() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
