//! Route selection: which route a message goes to.
//!
//! Why: API Gateway evaluates the API's `route_selection_expression` (for JSON messages,
//! `$request.body.<path>`) against each message and picks the route whose key equals the
//! value, else `$default`. Functions are written against that choice, so the local server must
//! make the same one. Pure, for unit tests.

use std::collections::BTreeMap;

use serde_json::Value;

/// The route API Gateway invokes when a client connects.
pub const CONNECT_ROUTE: &str = "$connect";
/// The route API Gateway invokes once a connection is gone.
pub const DISCONNECT_ROUTE: &str = "$disconnect";
/// The route of messages no other route matches.
pub const DEFAULT_ROUTE: &str = "$default";

/// A parsed `route_selection_expression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSelectionExpression {
    raw: String,
    /// The JSON path into the body (`["action"]` for `$request.body.action`); `None` if the
    /// expression is not a `$request.body` selection (every message then goes to `$default`).
    body_path: Option<Vec<String>>,
}

impl RouteSelectionExpression {
    /// Parses `$request.body.a.b` or `${request.body.a.b}`; anything else is kept but selects
    /// nothing (see [`Self::is_supported`]).
    pub fn parse(expression: &str) -> Self {
        let trimmed = expression.trim();
        let inner = trimmed
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
            .map(|inner| format!("${inner}"))
            .unwrap_or_else(|| trimmed.to_owned());
        let body_path = inner
            .strip_prefix("$request.body.")
            .map(|path| path.split('.').map(str::to_owned).collect::<Vec<_>>())
            .filter(|path| {
                path.iter().all(|segment| {
                    !segment.is_empty()
                        && segment
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
            });
        Self {
            raw: expression.to_owned(),
            body_path,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether messages can select a route other than `$default` with this expression.
    pub fn is_supported(&self) -> bool {
        self.body_path.is_some()
    }

    /// The value the expression selects from a message: a string, number or boolean at the
    /// path of a JSON object body; `None` for a non-JSON body or a missing / structured value.
    pub fn evaluate(&self, message: &[u8]) -> Option<String> {
        let path = self.body_path.as_ref()?;
        let body: Value = serde_json::from_slice(message).ok()?;
        let mut value = &body;
        for segment in path {
            value = value.as_object()?.get(segment)?;
        }
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// The route a message goes to: the one whose key the expression selects (never `$connect` or
/// `$disconnect`), else `$default`; `None` when neither exists (API Gateway then answers
/// `Forbidden` on the socket).
pub fn select_route<'a, R>(
    routes: &'a BTreeMap<String, R>,
    expression: &RouteSelectionExpression,
    message: &[u8],
) -> Option<(&'a str, &'a R)> {
    let selected = expression
        .evaluate(message)
        .filter(|key| key != CONNECT_ROUTE && key != DISCONNECT_ROUTE)
        .and_then(|key| routes.get_key_value(&key));
    selected
        .or_else(|| routes.get_key_value(DEFAULT_ROUTE))
        .map(|(key, route)| (key.as_str(), route))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(keys: &[&str]) -> BTreeMap<String, ()> {
        keys.iter().map(|k| ((*k).to_owned(), ())).collect()
    }

    fn selected<'a>(
        routes: &'a BTreeMap<String, ()>,
        expression: &str,
        message: &str,
    ) -> Option<&'a str> {
        let expression = RouteSelectionExpression::parse(expression);
        select_route(routes, &expression, message.as_bytes()).map(|(key, ())| key)
    }

    #[test]
    fn the_body_field_selects_its_route_and_anything_else_goes_to_default() {
        let all = routes(&["$connect", "$disconnect", "$default", "subscribe", "7"]);
        let action = "$request.body.action";
        assert_eq!(
            selected(&all, action, r#"{"action":"subscribe","topic":"x"}"#),
            Some("subscribe")
        );
        assert_eq!(selected(&all, action, r#"{"action":7}"#), Some("7"));
        for other in [
            r#"{"action":"unknown"}"#,
            r#"{"topic":"x"}"#,
            r#"{"action":{"nested":1}}"#,
            r#"{"action":null}"#,
            r#"["subscribe"]"#,
            "subscribe",
            "",
            // The lifecycle routes are never selected by a message.
            r#"{"action":"$connect"}"#,
            r#"{"action":"$disconnect"}"#,
        ] {
            assert_eq!(selected(&all, action, other), Some("$default"), "{other}");
        }
    }

    #[test]
    fn without_default_an_unmatched_message_has_no_route() {
        let some = routes(&["$connect", "subscribe"]);
        let action = "$request.body.action";
        assert_eq!(
            selected(&some, action, r#"{"action":"subscribe"}"#),
            Some("subscribe")
        );
        assert_eq!(selected(&some, action, r#"{"action":"other"}"#), None);
        assert_eq!(selected(&some, action, "not json"), None);
    }

    #[test]
    fn dotted_paths_and_the_braced_form_are_understood() {
        let all = routes(&["$default", "orders.watch"]);
        let message = r#"{"meta":{"route":"orders.watch"},"action":"x"}"#;
        assert_eq!(
            selected(&all, "$request.body.meta.route", message),
            Some("orders.watch")
        );
        assert_eq!(
            selected(&all, "${request.body.meta.route}", message),
            Some("orders.watch")
        );
        assert_eq!(
            selected(&all, "$request.body.meta.missing", message),
            Some("$default")
        );
    }

    #[test]
    fn unsupported_expressions_select_default_only() {
        for expression in ["$request.header.x", "$request.body.", "action", ""] {
            let parsed = RouteSelectionExpression::parse(expression);
            assert!(!parsed.is_supported(), "{expression}");
            assert_eq!(parsed.evaluate(br#"{"action":"a"}"#), None);
        }
        assert!(RouteSelectionExpression::parse("$request.body.action").is_supported());
        assert_eq!(
            RouteSelectionExpression::parse(" $request.body.action ").as_str(),
            " $request.body.action "
        );
    }
}
