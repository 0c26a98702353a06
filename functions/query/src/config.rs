//! Configuration, read once at cold start.

use crate::dashboard::SignIn;
use orders_aws::config::{ConfigError, optional, required};

#[derive(Debug, Clone)]
pub struct Config {
    pub orders_table: String,
    pub products_table: String,
    pub analytics_table: String,
    /// How the dashboard signs in; `None` when the API has no sign-in.
    pub sign_in: Option<SignIn>,
    /// The live updates' socket URL (the dashboard may connect there); `None` without.
    pub live_url: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            orders_table: required("ORDERS_TABLE")?,
            products_table: required("PRODUCTS_TABLE")?,
            analytics_table: required("ANALYTICS_TABLE")?,
            sign_in: sign_in()?,
            live_url: optional("LIVE_URL", None, |v| Some(Some(v.to_owned())))?,
        })
    }
}

/// `SIGN_IN_CLIENT_ID` switches the dashboard's sign-in on; the others must then be set.
fn sign_in() -> Result<Option<SignIn>, ConfigError> {
    let text = |v: &str| Some(Some(v.to_owned()));
    let client_id = optional("SIGN_IN_CLIENT_ID", None, text)?;
    let authorize_url = optional("SIGN_IN_AUTHORIZE_URL", None, text)?;
    let token_url = optional("SIGN_IN_TOKEN_URL", None, text)?;
    let scope = optional("SIGN_IN_SCOPE", None, text)?;
    let Some(client_id) = client_id else {
        return Ok(None);
    };
    Ok(Some(SignIn {
        authorize_url: authorize_url.ok_or(ConfigError::Missing("SIGN_IN_AUTHORIZE_URL"))?,
        token_url: token_url.ok_or(ConfigError::Missing("SIGN_IN_TOKEN_URL"))?,
        client_id,
        scope: scope.ok_or(ConfigError::Missing("SIGN_IN_SCOPE"))?,
    }))
}
