//! A JWT authorizer of the HTTP API, enforced the way API Gateway does it: the issuer's
//! keys come from its discovery document (`<issuer>/.well-known/openid-configuration` →
//! `jwks_uri`), cached, and fetched again when a token names a key not seen yet; the checks
//! themselves are `dev_auth::verify`.

use dev_auth::Jwks;
use dev_auth::verify::{Authorizer, Rejection, Verified, verify};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tracing::warn;

/// How soon a token with an unknown key may make us fetch the keys again.
const REFETCH_AFTER: Duration = Duration::from_secs(10);

pub struct JwtAuthorizer {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    http: reqwest::Client,
    keys: Mutex<Option<(Arc<Jwks>, Instant)>>,
}

impl JwtAuthorizer {
    pub fn new(name: String, issuer: String, audiences: Vec<String>) -> Self {
        Self {
            name,
            issuer: issuer.trim_end_matches('/').to_owned(),
            audiences,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            keys: Mutex::new(None),
        }
    }

    /// Checks the `Authorization` header for a route requiring one of `scopes`.
    pub async fn check(
        &self,
        authorization: Option<&str>,
        scopes: &[String],
        now: i64,
    ) -> Result<Verified, Rejection> {
        let authorizer = Authorizer {
            issuer: &self.issuer,
            audiences: &self.audiences,
        };
        let jwks = self.keys(false).await;
        match verify(authorization, &jwks, &authorizer, scopes, now) {
            // A key we have not seen: the issuer may have rotated; look again (not too often).
            Err(Rejection::Unauthorized("no key of the issuer has this kid")) => {
                let jwks = self.keys(true).await;
                verify(authorization, &jwks, &authorizer, scopes, now)
            }
            other => other,
        }
    }

    /// The issuer's keys, shared (not copied) by the requests that check against them.
    async fn keys(&self, refresh: bool) -> Arc<Jwks> {
        let mut cached = self.keys.lock().await;
        let stale = match &*cached {
            None => true,
            Some((_, at)) => refresh && at.elapsed() >= REFETCH_AFTER,
        };
        if stale {
            match self.fetch().await {
                Ok(jwks) => *cached = Some((Arc::new(jwks), Instant::now())),
                Err(err) => {
                    warn!(authorizer = %self.name, issuer = %self.issuer, "fetching the issuer's keys: {err:#}")
                }
            }
        }
        cached
            .as_ref()
            .map(|(jwks, _)| jwks.clone())
            .unwrap_or_default()
    }

    async fn fetch(&self) -> anyhow::Result<Jwks> {
        let configuration: serde_json::Value = self
            .http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let jwks_uri = configuration["jwks_uri"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("the discovery document has no jwks_uri"))?;
        let document: serde_json::Value = self
            .http
            .get(jwks_uri)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(Jwks::parse(&document))
    }
}
