//! `orders-admin token`: a bearer token from the local stack's development issuer, for a
//! customer (`--customer c-1`: its orders only) or for staff (`--staff`: the `orders/admin`
//! scope). Signed with the issuer's key under `.local/dev-oidc` (created at first use, the
//! same key `make run` serves).

use dev_auth::SigningKey;
use dev_auth::token::Subject;
use orders_core::caller::STAFF_SCOPE;
use std::path::Path;

/// Who the token is for.
pub enum Holder<'a> {
    Customer(&'a str),
    Staff(&'a str),
}

pub struct TokenOptions<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub key_dir: &'a Path,
    pub lifetime_minutes: i64,
}

pub fn mint(holder: &Holder<'_>, options: &TokenOptions<'_>, now: i64) -> anyhow::Result<String> {
    let key = SigningKey::load_or_create(options.key_dir)?;
    let subject = match holder {
        Holder::Customer(id) => {
            orders_core::CustomerId::parse(id)
                .map_err(|e| anyhow::anyhow!("--customer {id:?}: {}", e.0))?;
            Subject {
                id,
                scopes: &["openid", "orders/customer"],
            }
        }
        Holder::Staff(name) => Subject {
            id: name,
            scopes: &["openid", "orders/customer", STAFF_SCOPE],
        },
    };
    key.mint(
        options.issuer.trim_end_matches('/'),
        options.audience,
        &subject,
        now,
        options.lifetime_minutes * 60,
    )
}
