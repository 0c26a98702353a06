//! API Gateway HTTP API route selection.
//!
//! Why: the functions are deployed behind an HTTP API whose route keys (`GET /orders/{id}`,
//! `ANY /{proxy+}`, `$default`, ...) live in the emulator; the local front door must pick the
//! same route API Gateway would so that `routeKey` and `pathParameters` match production.
//!
//! Selection follows API Gateway's rules: a full match of the path wins over a greedy
//! (`{proxy+}`) match, which wins over `$default`. Among full matches, literal segments beat
//! `{param}` segments, compared left to right; among greedy matches the longer, more literal
//! prefix wins. At equal path specificity a specific method beats `ANY`.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use http::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RouteKind {
    Default,
    Path {
        /// `None` = `ANY`.
        method: Option<Method>,
        segments: Vec<Segment>,
    },
}

/// A parsed route key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    raw: String,
    kind: RouteKind,
}

impl RouteKey {
    /// Parses `$default` or `METHOD /path` (`METHOD` may be `ANY`).
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let raw = raw.trim();
        if raw == "$default" {
            return Ok(Self {
                raw: raw.to_owned(),
                kind: RouteKind::Default,
            });
        }
        let (method, path) = raw
            .split_once(' ')
            .with_context(|| format!("route key `{raw}` is not `METHOD /path` or `$default`"))?;
        let method = match method {
            "ANY" => None,
            other => Some(
                Method::from_bytes(other.as_bytes())
                    .with_context(|| format!("invalid method in route key `{raw}`"))?,
            ),
        };
        let path = path.trim();
        if !path.starts_with('/') {
            bail!("route key `{raw}`: path must start with `/`");
        }
        let parts: Vec<&str> = split_path(path).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(name) if index + 1 == parts.len() => Segment::Greedy(name.to_owned()),
                    Some(_) => bail!("route key `{raw}`: a greedy variable must be last"),
                    None => Segment::Param(name.to_owned()),
                },
                None => Segment::Literal((*part).to_owned()),
            };
            segments.push(segment);
        }
        Ok(Self {
            raw: raw.to_owned(),
            kind: RouteKind::Path { method, segments },
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Specificity if this route matches, plus its path parameters.
    fn matches(
        &self,
        method: &Method,
        path: &str,
    ) -> Option<(Specificity, HashMap<String, String>)> {
        let (route_method, segments) = match &self.kind {
            RouteKind::Default => return Some((Specificity::default(), HashMap::new())),
            RouteKind::Path { method, segments } => (method, segments),
        };
        if route_method.as_ref().is_some_and(|m| m != method) {
            return None;
        }
        let parts: Vec<&str> = split_path(path).collect();
        let mut params = HashMap::new();
        let mut ranks = Vec::with_capacity(segments.len());
        let mut greedy = false;
        for (index, segment) in segments.iter().enumerate() {
            match segment {
                Segment::Literal(literal) => {
                    if parts.get(index) != Some(&literal.as_str()) {
                        return None;
                    }
                    ranks.push(2);
                }
                Segment::Param(name) => {
                    let part = parts.get(index)?;
                    params.insert(name.clone(), percent_decode(part, false));
                    ranks.push(1);
                }
                Segment::Greedy(name) => {
                    // Greedy variables capture one or more segments, never zero.
                    if parts.len() <= index {
                        return None;
                    }
                    let rest = parts[index..].join("/");
                    params.insert(name.clone(), percent_decode(&rest, false));
                    greedy = true;
                }
            }
        }
        if !greedy && parts.len() != segments.len() {
            return None;
        }
        let specificity = Specificity {
            class: if greedy { 1 } else { 2 },
            ranks,
            method_specific: route_method.is_some(),
        };
        Some((specificity, params))
    }
}

/// Ordered so that `max` is the most specific route.
#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    /// 0 = `$default`, 1 = greedy, 2 = full match.
    class: u8,
    /// Per segment: 2 literal, 1 param (lexicographic, so leftmost literals win).
    ranks: Vec<u8>,
    method_specific: bool,
}

/// The route selected for a request.
#[derive(Debug)]
pub struct RouteMatch<'a, T> {
    pub route_key: &'a str,
    pub target: &'a T,
    pub path_parameters: HashMap<String, String>,
}

/// The routes of one HTTP API, each pointing at a `T` (e.g. a function name).
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<(RouteKey, T)>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<T> RouteTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, route_key: &str, target: T) -> anyhow::Result<()> {
        let key = RouteKey::parse(route_key)?;
        if self.routes.iter().any(|(existing, _)| existing == &key) {
            bail!("duplicate route key `{route_key}`");
        }
        self.routes.push((key, target));
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.routes
            .iter()
            .map(|(key, target)| (key.as_str(), target))
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The most specific route for `method` and the raw (percent-encoded) `path`.
    pub fn find(&self, method: &Method, path: &str) -> Option<RouteMatch<'_, T>> {
        self.routes
            .iter()
            .filter_map(|(key, target)| {
                key.matches(method, path)
                    .map(|(specificity, params)| (specificity, key, target, params))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, key, target, path_parameters)| RouteMatch {
                route_key: key.as_str(),
                target,
                path_parameters,
            })
    }
}

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

/// Decodes `%XX` escapes (and `+` as space when `plus_as_space`); invalid escapes are kept.
pub fn percent_decode(input: &str, plus_as_space: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_as_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[&str]) -> RouteTable<String> {
        let mut table = RouteTable::new();
        for key in keys {
            table
                .insert(key, (*key).to_owned())
                .unwrap_or_else(|e| panic!("{e:#}"));
        }
        table
    }

    fn pick<'a>(table: &'a RouteTable<String>, method: &str, path: &str) -> Option<&'a str> {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        table.find(&method, path).map(|m| m.route_key)
    }

    #[test]
    fn literal_beats_param_beats_greedy_beats_default() {
        let t = table(&[
            "$default",
            "ANY /{proxy+}",
            "GET /pets/{proxy+}",
            "GET /pets/{id}/toys",
            "GET /pets/{id}",
            "GET /pets/dog",
        ]);
        assert_eq!(pick(&t, "GET", "/pets/dog"), Some("GET /pets/dog"));
        assert_eq!(pick(&t, "GET", "/pets/cat"), Some("GET /pets/{id}"));
        assert_eq!(
            pick(&t, "GET", "/pets/cat/toys"),
            Some("GET /pets/{id}/toys")
        );
        assert_eq!(
            pick(&t, "GET", "/pets/cat/food"),
            Some("GET /pets/{proxy+}")
        );
        assert_eq!(pick(&t, "POST", "/pets/cat"), Some("ANY /{proxy+}"));
        assert_eq!(pick(&t, "GET", "/"), Some("$default"));
    }

    #[test]
    fn leftmost_literal_wins_between_param_routes() {
        let t = table(&["GET /{a}/b", "GET /a/{b}"]);
        assert_eq!(pick(&t, "GET", "/a/b"), Some("GET /a/{b}"));
        assert_eq!(pick(&t, "GET", "/x/b"), Some("GET /{a}/b"));
    }

    #[test]
    fn specific_method_beats_any_for_the_same_path() {
        let t = table(&["ANY /orders", "POST /orders"]);
        assert_eq!(pick(&t, "POST", "/orders"), Some("POST /orders"));
        assert_eq!(pick(&t, "GET", "/orders"), Some("ANY /orders"));
        assert_eq!(pick(&t, "DELETE", "/orders"), Some("ANY /orders"));
    }

    #[test]
    fn no_match_without_default_is_none() {
        let t = table(&["GET /orders", "GET /orders/{id}"]);
        assert_eq!(pick(&t, "GET", "/customers"), None);
        assert_eq!(pick(&t, "POST", "/orders"), None);
        assert_eq!(pick(&t, "GET", "/orders/1/extra"), None);
    }

    #[test]
    fn greedy_needs_at_least_one_segment_and_captures_the_rest() {
        let t = table(&["GET /files/{path+}"]);
        assert_eq!(pick(&t, "GET", "/files"), None);
        let m = t
            .find(&Method::GET, "/files/a/b%20c/d.txt")
            .unwrap_or_else(|| panic!("no match"));
        assert_eq!(
            m.path_parameters.get("path").map(String::as_str),
            Some("a/b c/d.txt")
        );
    }

    #[test]
    fn path_parameters_are_extracted_and_decoded() {
        let t = table(&["GET /customers/{customer}/orders/{id}"]);
        let m = t
            .find(&Method::GET, "/customers/c%2F1/orders/42")
            .unwrap_or_else(|| panic!("no match"));
        assert_eq!(m.route_key, "GET /customers/{customer}/orders/{id}");
        assert_eq!(
            m.path_parameters.get("customer").map(String::as_str),
            Some("c/1")
        );
        assert_eq!(m.path_parameters.get("id").map(String::as_str), Some("42"));
        assert_eq!(m.path_parameters.len(), 2);
    }

    #[test]
    fn trailing_slash_and_root() {
        let t = table(&["GET /", "GET /orders"]);
        assert_eq!(pick(&t, "GET", "/orders/"), Some("GET /orders"));
        assert_eq!(pick(&t, "GET", "/"), Some("GET /"));
    }

    #[test]
    fn invalid_route_keys_are_rejected() {
        assert!(RouteKey::parse("GET orders").is_err());
        assert!(RouteKey::parse("/orders").is_err());
        assert!(RouteKey::parse("GET /{proxy+}/x").is_err());
        let mut t = table(&["GET /a"]);
        assert!(t.insert("GET /a", String::new()).is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%41", false), "%zzA");
    }
}
