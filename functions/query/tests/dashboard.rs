//! The dashboard page under its Content-Security-Policy: the policy names the hash of each
//! inline script and style, and the page has nothing else a strict policy would block
//! (style attributes, inline event handlers, `javascript:` URLs). The browser test loads it
//! in Chromium under that policy.

use base64::Engine;
use query::dashboard::content_security_policy;
use sha2::{Digest, Sha256};

const PAGE: &str = include_str!("../assets/dashboard.html");

fn hash(inline: &str) -> String {
    let digest = Sha256::digest(inline.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn between<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
    let start = page.find(open).expect("the tag") + open.len();
    let end = page[start..].find(close).expect("its end") + start;
    &page[start..end]
}

#[test]
fn the_policy_allows_exactly_the_pages_own_script_and_style() {
    let policy = content_security_policy(PAGE, &[]);
    assert_eq!(PAGE.matches("<script").count(), 1, "one inline script");
    assert_eq!(PAGE.matches("<style").count(), 1, "one inline style");
    let script = hash(between(PAGE, "<script>", "</script>"));
    let style = hash(between(PAGE, "<style>", "</style>"));
    assert!(
        policy.contains(&format!("script-src {script};")),
        "{policy}"
    );
    assert!(policy.contains(&format!("style-src {style};")), "{policy}");
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
}

#[test]
fn the_page_has_nothing_a_strict_policy_blocks() {
    let markup = PAGE.replace(between(PAGE, "<script>", "</script>"), "");
    assert!(!markup.contains("style=\""), "style attributes");
    assert!(!markup.contains("javascript:"), "javascript: URLs");
    let handlers = inline_handlers(&markup);
    assert!(handlers.is_empty(), "inline handlers: {handlers:?}");
}

/// ` onclick=`-like attributes in the markup.
fn inline_handlers(markup: &str) -> Vec<String> {
    markup
        .split(|c: char| c.is_whitespace())
        .filter(|word| {
            word.starts_with("on")
                && word.contains('=')
                && word[2..word.find('=').unwrap_or(2)]
                    .chars()
                    .all(|c| c.is_ascii_lowercase())
                && word.len() > 3
        })
        .map(str::to_owned)
        .collect()
}
