//! The dashboard page as served: the compiled-in page with the deployment's sign-in settings
//! filled in, and a Content-Security-Policy that allows exactly its own inline script and
//! style (by hash), requests to its own origin and to the issuer's token endpoint, and no
//! framing. Built once at cold start.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The page: one self-contained file (no CDN at run time), compiled into the binary.
const PAGE: &str = include_str!("../assets/dashboard.html");
/// Where the sign-in settings go (empty: the API has no sign-in).
const SIGN_IN_META: &str = r#"<meta name="orders-sign-in" content="">"#;

/// How the dashboard signs in: OIDC authorization code + PKCE with a public client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub scope: String,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    pub page: String,
    pub policy: String,
}

impl Dashboard {
    /// `live_url`: where the page opens its socket (`wss://…/live`), if the deployment has
    /// live updates.
    pub fn new(sign_in: Option<&SignIn>, live_url: Option<&str>) -> Self {
        let (page, token_origin) = match sign_in {
            None => (PAGE.to_owned(), None),
            Some(sign_in) => {
                let settings = serde_json::json!({
                    "authorize": sign_in.authorize_url,
                    "token": sign_in.token_url,
                    "clientId": sign_in.client_id,
                    "scope": sign_in.scope,
                })
                .to_string();
                let meta = format!(
                    r#"<meta name="orders-sign-in" content="{}">"#,
                    attribute(&settings)
                );
                (
                    PAGE.replacen(SIGN_IN_META, &meta, 1),
                    origin(&sign_in.token_url),
                )
            }
        };
        let also: Vec<String> = token_origin
            .into_iter()
            .chain(live_url.and_then(origin))
            .collect();
        let policy = content_security_policy(&page, &also);
        Self { page, policy }
    }
}

/// `default-src 'none'`, plus the SHA-256 of each inline `<script>` and `<style>` of `page`,
/// and `connect-src` to the page's origin and `also` (the token endpoint's and the live
/// socket's origins).
pub fn content_security_policy(page: &str, also: &[String]) -> String {
    let hashes = |tag: &str| -> String {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        page.split(&open)
            .skip(1)
            .filter_map(|rest| rest.split_once(&close).map(|(inline, _)| inline))
            .map(|inline| {
                let digest = Sha256::digest(inline.as_bytes());
                format!(
                    " 'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
            })
            .collect()
    };
    let connect = std::iter::once("'self'")
        .chain(also.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "default-src 'none'; script-src{}; style-src{}; connect-src {connect}; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hashes("script"),
        hashes("style")
    )
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// Text safe inside a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_settings_fill_the_meta_and_open_the_token_origin_only() {
        let sign_in = SignIn {
            authorize_url: "http://127.0.0.1:3002/authorize".into(),
            token_url: "http://127.0.0.1:3002/token".into(),
            client_id: "orders-local".into(),
            scope: "openid orders/admin".into(),
        };
        let dashboard = Dashboard::new(Some(&sign_in), None);
        assert!(dashboard.page.contains(
            r#"content="{&quot;authorize&quot;:&quot;http://127.0.0.1:3002/authorize&quot;"#
        ));
        assert!(
            dashboard
                .policy
                .contains("connect-src 'self' http://127.0.0.1:3002;")
        );
        let plain = Dashboard::new(None, None);
        assert!(plain.page.contains(SIGN_IN_META));
        assert!(plain.policy.contains("connect-src 'self';"));
        // The script is the same either way: its hash does not depend on the settings.
        assert_eq!(
            plain
                .policy
                .split("script-src")
                .nth(1)
                .unwrap()
                .split(';')
                .next(),
            dashboard
                .policy
                .split("script-src")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
        );
    }

    #[test]
    fn the_live_sockets_origin_may_be_connected_to() {
        let live = Dashboard::new(
            None,
            Some("wss://abc.execute-api.eu-west-1.amazonaws.com/live"),
        );
        assert!(
            live.policy
                .contains("connect-src 'self' wss://abc.execute-api.eu-west-1.amazonaws.com;")
        );
    }
}
