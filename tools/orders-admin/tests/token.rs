//! `orders-admin token` prints a token the local authorizer accepts, with the holder's
//! subject and scopes.

use clap::Parser;
use dev_auth::verify::{Authorizer, verify};
use dev_auth::{Jwks, SigningKey};
use orders_admin::{Cli, run};

/// No AWS call is made: a token needs only the key.
fn sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build()
}

async fn token(args: &[&str], dir: &std::path::Path) -> String {
    let mut argv = vec!["orders-admin", "token", "--key-dir", dir.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let sdk = sdk();
    let mut out = Vec::new();
    run(cli, &sdk, &mut out).await.unwrap();
    String::from_utf8(out).unwrap().trim().to_owned()
}

#[tokio::test]
async fn customer_and_staff_tokens_pass_the_authorizer_with_their_scopes() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("admin-token");
    let customer = token(&["--customer", "c-1"], &dir).await;
    let staff = token(&["--staff"], &dir).await;

    let jwks = Jwks::parse(&SigningKey::load_or_create(&dir).unwrap().jwks());
    let audiences = vec![dev_auth::LOCAL_AUDIENCE.to_owned()];
    let authorizer = Authorizer {
        issuer: "http://127.0.0.1:3002",
        audiences: &audiences,
    };
    let now = orders_core::Timestamp::now().unix_seconds();
    let admin = ["orders/admin".to_owned()];
    let c = verify(Some(&customer), &jwks, &authorizer, &[], now).unwrap();
    assert_eq!(c.claims["sub"], "c-1");
    assert!(verify(Some(&customer), &jwks, &authorizer, &admin, now).is_err());
    let s = verify(Some(&staff), &jwks, &authorizer, &admin, now).unwrap();
    assert_eq!(s.claims["sub"], "staff");

    // Not a customer id: refused before anything is signed.
    let cli = Cli::try_parse_from(["orders-admin", "token", "--customer", "a b"]).unwrap();
    let sdk = sdk();
    assert!(run(cli, &sdk, &mut Vec::new()).await.is_err());
    // One holder, required.
    assert!(Cli::try_parse_from(["orders-admin", "token"]).is_err());
}
