//! Points the functions' `execute-api` URLs of the WebSocket API at the local listener.
//!
//! Why: Terraform gives the functions the stage's URLs (`wss://{api}.execute-api.{region}.
//! amazonaws.com/live` for clients, `https://…/live` for the `@connections` callback); locally
//! both live on `--ws-listen`. Every function variable holding that origin is rewritten —
//! `https://` → `http://<listen>`, `wss://` → `ws://<listen>` — before the functions start, so
//! no function needs a local special case. Pure apart from logging, for unit tests.

use std::net::SocketAddr;

use tracing::warn;

use crate::instances::FunctionConfig;

/// One rewritten variable, for the startup log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub function: String,
    pub variable: String,
    pub from: String,
    pub to: String,
}

/// Rewrites the origins of API `api_id` in every function's environment to `local`.
pub fn rewrite_functions(
    functions: &mut [FunctionConfig],
    api_id: &str,
    local: SocketAddr,
) -> Vec<Rewrite> {
    let local = local.to_string();
    let host_prefix = format!("{api_id}.execute-api.");
    let mut rewrites = Vec::new();
    for function in functions.iter_mut() {
        for (variable, value) in function.environment.iter_mut() {
            if let Some(rewritten) = rewrite_value(value, api_id, &local) {
                rewrites.push(Rewrite {
                    function: function.name.clone(),
                    variable: variable.clone(),
                    from: std::mem::replace(value, rewritten.clone()),
                    to: rewritten,
                });
            }
            if value.contains(&host_prefix) {
                warn!(
                    function = %function.name,
                    variable = %variable,
                    "names the WebSocket API's host without https:// or wss://; left as it is"
                );
            }
        }
    }
    rewrites
}

/// `value` with each `https://` / `wss://` origin of `{api_id}.execute-api.{region}.
/// amazonaws.com` (optionally `:443`) replaced by `http://` / `ws://` + `local`; `None` if it
/// has none.
pub fn rewrite_value(value: &str, api_id: &str, local: &str) -> Option<String> {
    const SCHEMES: [(&str, &str); 2] = [("https://", "http://"), ("wss://", "ws://")];
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let mut changed = false;
    loop {
        let found = SCHEMES
            .iter()
            .filter_map(|(scheme, local_scheme)| {
                let needle = format!("{scheme}{api_id}.execute-api.");
                let mut from = 0;
                while let Some(offset) = rest[from..].find(&needle) {
                    let start = from + offset;
                    let after = start + needle.len();
                    if let Some(len) = region_and_domain_len(&rest[after..]) {
                        return Some((start, after + len, *local_scheme));
                    }
                    from = after;
                }
                None
            })
            .min_by_key(|(start, _, _)| *start);
        let Some((start, end, local_scheme)) = found else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(local_scheme);
        out.push_str(local);
        rest = &rest[end..];
        changed = true;
    }
    changed.then_some(out)
}

/// Length of `{region}.amazonaws.com[:443]` at the start of `s`, if the host ends there.
fn region_and_domain_len(s: &str) -> Option<usize> {
    let region = s
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        .unwrap_or(s.len());
    if region == 0 {
        return None;
    }
    let mut len = region + s[region..].strip_prefix(".amazonaws.com").map(|_| 14)?;
    if s[len..].starts_with(":443") {
        len += 4;
    }
    let host_goes_on = s[len..]
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':');
    (!host_goes_on).then_some(len)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    #[test]
    fn both_origins_of_the_api_are_rewritten_anywhere_in_a_value() {
        let local = "127.0.0.1:3003";
        let rewrite = |v: &str| rewrite_value(v, "abc123", local);
        assert_eq!(
            rewrite("https://abc123.execute-api.us-east-1.amazonaws.com/live").as_deref(),
            Some("http://127.0.0.1:3003/live")
        );
        assert_eq!(
            rewrite("wss://abc123.execute-api.eu-west-3.amazonaws.com/live?x=1").as_deref(),
            Some("ws://127.0.0.1:3003/live?x=1")
        );
        assert_eq!(
            rewrite("https://abc123.execute-api.us-east-1.amazonaws.com:443").as_deref(),
            Some("http://127.0.0.1:3003")
        );
        assert_eq!(
            rewrite(
                r#"{"ws":"wss://abc123.execute-api.us-east-1.amazonaws.com/live","cb":"https://abc123.execute-api.us-east-1.amazonaws.com/live"}"#
            )
            .as_deref(),
            Some(r#"{"ws":"ws://127.0.0.1:3003/live","cb":"http://127.0.0.1:3003/live"}"#)
        );
        for untouched in [
            "https://other1.execute-api.us-east-1.amazonaws.com/live",
            "https://abc123.execute-api.us-east-1.amazonaws.com.evil.test/live",
            "http://abc123.execute-api.us-east-1.amazonaws.com/live",
            "abc123.execute-api.us-east-1.amazonaws.com",
            "https://xabc123.execute-api.us-east-1.amazonaws.com",
            "",
        ] {
            assert_eq!(rewrite(untouched), None, "{untouched}");
        }
    }

    #[test]
    fn every_functions_environment_is_rewritten_and_reported() {
        let function = |name: &str, env: &[(&str, &str)]| FunctionConfig {
            name: name.to_owned(),
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
            binary: name.into(),
            environment: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            timeout: Duration::from_secs(3),
            memory_mb: 128,
        };
        let mut functions = vec![
            function(
                "live",
                &[
                    (
                        "LIVE_CALLBACK_URL",
                        "https://abc123.execute-api.us-east-1.amazonaws.com/live",
                    ),
                    ("TABLE", "orders"),
                ],
            ),
            function(
                "query",
                &[(
                    "LIVE_URL",
                    "wss://abc123.execute-api.us-east-1.amazonaws.com/live",
                )],
            ),
        ];
        let local: SocketAddr = "127.0.0.1:3003".parse().unwrap();
        let rewrites = rewrite_functions(&mut functions, "abc123", local);
        assert_eq!(rewrites.len(), 2);
        assert_eq!(rewrites[0].function, "live");
        assert_eq!(rewrites[0].variable, "LIVE_CALLBACK_URL");
        assert_eq!(
            rewrites[0].from,
            "https://abc123.execute-api.us-east-1.amazonaws.com/live"
        );
        assert_eq!(
            functions[0].environment["LIVE_CALLBACK_URL"],
            "http://127.0.0.1:3003/live"
        );
        assert_eq!(functions[0].environment["TABLE"], "orders");
        assert_eq!(
            functions[1].environment["LIVE_URL"],
            "ws://127.0.0.1:3003/live"
        );
    }
}
