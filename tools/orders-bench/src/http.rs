//! The benchmark's HTTP client: signed in as staff when `ORDERS_TOKEN` holds a token (the
//! local stack's authorizer is on; `scripts/bench.sh` mints one with `orders-admin token`).

use anyhow::Context;
use std::time::Duration;

pub fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(token) = std::env::var("ORDERS_TOKEN") {
        let value = format!("Bearer {token}")
            .parse()
            .context("ORDERS_TOKEN is not a valid header value")?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .build()?)
}
