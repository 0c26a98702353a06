//! The Terraform module as data: its locals and resources parsed with `hcl-rs`, and a small
//! evaluator for the subset of HCL the cross-checks read — object and list literals, `local.*`,
//! `each.key` / `each.value`, indexing, `concat`, `merge`, `jsonencode` and conditionals.
//!
//! Anything else (a resource attribute, a `var.*`, another function) evaluates to its own text,
//! e.g. `aws_dynamodb_table.orders.arn`: the checks compare *which* resource an environment
//! variable or a policy names, never values only AWS knows. A conditional evaluates to the
//! union of both branches when they are lists, so a policy is checked with every optional
//! statement present.

use anyhow::{Context as _, Result, bail};
use hcl::expr::{Expression, ObjectKey, TemplateExpr, TraversalOperator};
use hcl::template::{Element, Template};
use hcl::{Block, BlockLabel, Body};
use std::collections::BTreeMap;
use std::path::Path;

/// An evaluated expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Numbers, strings, and the text of anything not evaluated (see the module docs).
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// A string, or every string of a list (IAM allows both for Action and Resource).
    pub fn strings(&self) -> Vec<String> {
        match self {
            Value::Str(s) => vec![s.clone()],
            Value::List(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What `each.key` and `each.value` stand for while evaluating one instance of a `for_each`.
#[derive(Debug, Clone, Default)]
pub struct Each {
    pub key: Option<String>,
    pub value: Option<Value>,
}

impl Each {
    pub fn key(key: &str) -> Self {
        Self {
            key: Some(key.to_owned()),
            value: None,
        }
    }
}

/// Every `locals` entry and `resource` block of one module directory.
pub struct Module {
    locals: BTreeMap<String, Expression>,
    resources: BTreeMap<(String, String), Body>,
}

impl Module {
    /// Parses every `*.tf` file of `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tf") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                sources.push((path.display().to_string(), text));
            }
        }
        sources.sort();
        Self::from_sources(&sources)
    }

    /// Parses `(file name, text)` pairs: what [`Module::load`] reads, or edited copies in tests.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Self> {
        let mut module = Module {
            locals: BTreeMap::new(),
            resources: BTreeMap::new(),
        };
        for (name, text) in sources {
            let body = hcl::parse(text).with_context(|| format!("parsing {name}"))?;
            for block in body.blocks() {
                match block.identifier.as_str() {
                    "locals" => {
                        for attr in block.body.attributes() {
                            module
                                .locals
                                .insert(attr.key.to_string(), attr.expr.clone());
                        }
                    }
                    "resource" => {
                        let [ty, name] = labels(block)[..] else {
                            bail!("{name}: resource block without two labels");
                        };
                        module
                            .resources
                            .insert((ty.to_owned(), name.to_owned()), block.body.clone());
                    }
                    _ => {}
                }
            }
        }
        Ok(module)
    }

    /// The body of `resource "<ty>" "<name>"`.
    pub fn resource(&self, ty: &str, name: &str) -> Result<&Body> {
        self.resources
            .get(&(ty.to_owned(), name.to_owned()))
            .with_context(|| format!("no resource {ty}.{name} in the module"))
    }

    /// Every resource of type `ty`, by name.
    pub fn resources_of<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Body)> {
        self.resources
            .iter()
            .filter(move |((t, _), _)| t == ty)
            .map(|((_, n), body)| (n.as_str(), body))
    }

    /// `local.<name>`, evaluated.
    pub fn local(&self, name: &str) -> Result<Value> {
        let expr = self
            .locals
            .get(name)
            .with_context(|| format!("no local {name} in the module"))?;
        Ok(self.eval(expr, &Each::default()))
    }

    /// An attribute of `body`, evaluated; `None` when absent.
    pub fn attr(&self, body: &Body, name: &str, each: &Each) -> Option<Value> {
        body.attributes()
            .find(|a| a.key.as_str() == name)
            .map(|a| self.eval(&a.expr, each))
    }

    pub fn eval(&self, expr: &Expression, each: &Each) -> Value {
        match expr {
            Expression::Null => Value::Null,
            Expression::Bool(b) => Value::Bool(*b),
            Expression::Number(n) => Value::Str(n.to_string()),
            Expression::String(s) => Value::Str(s.clone()),
            Expression::Array(items) => {
                Value::List(items.iter().map(|e| self.eval(e, each)).collect())
            }
            Expression::Object(object) => Value::Map(
                object
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            ObjectKey::Identifier(id) => id.to_string(),
                            ObjectKey::Expression(e) => text_of(&self.eval(e, each)),
                            other => format!("{other:?}"),
                        };
                        (key, self.eval(v, each))
                    })
                    .collect(),
            ),
            Expression::TemplateExpr(template) => self.template(template, each),
            Expression::Variable(v) => Value::Str(v.to_string()),
            Expression::Traversal(traversal) => {
                let mut ops = traversal.operators.iter();
                let mut value = match &traversal.expr {
                    Expression::Variable(v) if v.as_str() == "local" => {
                        let Some(TraversalOperator::GetAttr(name)) = ops.next() else {
                            return Value::Str(render(expr));
                        };
                        match self.locals.get(name.as_str()) {
                            // A local that is a call the evaluator does not know (e.g.
                            // coalesce) is known by its name: that is how the policies and
                            // resources refer to it.
                            Some(Expression::FuncCall(f)) => match self.call(f, each) {
                                Some(v) => v,
                                None => Value::Str(format!("local.{name}")),
                            },
                            Some(e) => self.eval(e, each),
                            None => return Value::Str(render(expr)),
                        }
                    }
                    Expression::Variable(v) if v.as_str() == "each" => {
                        let part = match ops.next() {
                            Some(TraversalOperator::GetAttr(a)) if a.as_str() == "key" => {
                                each.key.clone().map(Value::Str)
                            }
                            Some(TraversalOperator::GetAttr(a)) if a.as_str() == "value" => {
                                each.value.clone()
                            }
                            _ => None,
                        };
                        match part {
                            Some(v) => v,
                            None => return Value::Str(render(expr)),
                        }
                    }
                    // A resource, data source or variable: keep its address as text, with
                    // indexes evaluated (aws_sqs_queue.dlq["aggregate"].arn).
                    Expression::Variable(v) => {
                        let mut text = v.to_string();
                        for op in ops {
                            match op {
                                TraversalOperator::GetAttr(a) => {
                                    text.push('.');
                                    text.push_str(a);
                                }
                                TraversalOperator::Index(i) => {
                                    text.push_str(&format!("[{:?}]", text_of(&self.eval(i, each))));
                                }
                                TraversalOperator::LegacyIndex(i) => {
                                    text.push_str(&format!("[{i}]"))
                                }
                                TraversalOperator::AttrSplat | TraversalOperator::FullSplat => {
                                    text.push_str("[*]")
                                }
                            }
                        }
                        return Value::Str(text);
                    }
                    other => self.eval(other, each),
                };
                for op in ops {
                    value = match (op, value) {
                        (TraversalOperator::GetAttr(a), Value::Map(mut m)) => {
                            m.remove(a.as_str()).unwrap_or(Value::Null)
                        }
                        (TraversalOperator::Index(i), Value::Map(mut m)) => m
                            .remove(&text_of(&self.eval(i, each)))
                            .unwrap_or(Value::Null),
                        (TraversalOperator::Index(i), Value::List(l)) => {
                            text_of(&self.eval(i, each))
                                .parse::<usize>()
                                .ok()
                                .and_then(|n| l.get(n).cloned())
                                .unwrap_or(Value::Null)
                        }
                        _ => return Value::Str(render(expr)),
                    };
                }
                value
            }
            Expression::FuncCall(call) => self
                .call(call, each)
                .unwrap_or_else(|| Value::Str(render(expr))),
            Expression::Parenthesis(inner) => self.eval(inner, each),
            Expression::Conditional(c) => {
                match (
                    self.eval(&c.true_expr, each),
                    self.eval(&c.false_expr, each),
                ) {
                    (Value::List(mut a), Value::List(b)) => {
                        a.extend(b);
                        Value::List(a)
                    }
                    _ => Value::Str(render(expr)),
                }
            }
            _ => Value::Str(render(expr)),
        }
    }

    /// The functions the evaluator knows; `None` for any other, or arguments it cannot use.
    /// `replace` of a resource reference's text is a no-op unless the reference contains the
    /// substring — which is what a `replace(aws_x.y.api_endpoint, "wss://", "")` should read as.
    fn call(&self, call: &hcl::expr::FuncCall, each: &Each) -> Option<Value> {
        let args: Vec<Value> = call.args.iter().map(|a| self.eval(a, each)).collect();
        match (call.name.name.as_str(), args.as_slice()) {
            ("concat", _) => Some(Value::List(
                args.into_iter()
                    .flat_map(|a| match a {
                        Value::List(items) => items,
                        other => vec![other],
                    })
                    .collect(),
            )),
            ("merge", _) => Some(Value::Map(
                args.into_iter()
                    .filter_map(|a| match a {
                        Value::Map(m) => Some(m),
                        _ => None,
                    })
                    .flatten()
                    .collect(),
            )),
            ("jsonencode", [value]) => Some(value.clone()),
            // A set is read as the list it is made of (for_each over route keys, say).
            ("toset", [Value::List(items)]) => Some(Value::List(items.clone())),
            // "/…/" patterns are regular expressions: not evaluated.
            ("replace", [Value::Str(s), Value::Str(from), Value::Str(to)])
                if !(from.len() > 1 && from.starts_with('/') && from.ends_with('/')) =>
            {
                Some(Value::Str(s.replace(from.as_str(), to)))
            }
            _ => None,
        }
    }

    fn template(&self, template: &TemplateExpr, each: &Each) -> Value {
        let Ok(parsed) = Template::from_expr(template) else {
            return Value::Str(template.to_string());
        };
        let mut text = String::new();
        for element in parsed.elements() {
            match element {
                Element::Literal(s) => text.push_str(s),
                Element::Interpolation(i) => text.push_str(&text_of(&self.eval(&i.expr, each))),
                Element::Directive(_) => return Value::Str(template.to_string()),
            }
        }
        Value::Str(text)
    }
}

/// The blocks called `ident` directly inside `body` (e.g. `global_secondary_index`).
pub fn blocks<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> {
    body.blocks()
        .filter(move |b| b.identifier.as_str() == ident)
}

fn labels(block: &Block) -> Vec<&str> {
    block
        .labels
        .iter()
        .map(|l| match l {
            BlockLabel::String(s) => s.as_str(),
            BlockLabel::Identifier(i) => i.as_str(),
        })
        .collect()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

fn render(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_else(|_| format!("{expr:?}"))
}

/// The resource a reference names: `aws_dynamodb_table.orders.arn` → `aws_dynamodb_table.orders`,
/// `aws_sqs_queue.dlq["aggregate"].url` → `aws_sqs_queue.dlq["aggregate"]`, keeping what follows
/// the attribute (`aws_dynamodb_table.orders/index/*`). Other text is returned unchanged.
pub fn resource_ref(text: &str) -> String {
    if !text.starts_with("aws_") {
        return text.to_owned();
    }
    // type.name, then an optional ["key"], then .attribute, then the rest.
    let Some((ty, rest)) = text.split_once('.') else {
        return text.to_owned();
    };
    let name_end = rest.find(['.', '[', '/', ':']).unwrap_or(rest.len());
    let (name, mut rest) = rest.split_at(name_end);
    let mut address = format!("{ty}.{name}");
    if rest.starts_with('[') {
        if let Some(close) = rest.find(']') {
            address.push_str(&rest[..=close]);
            rest = &rest[close + 1..];
        }
    }
    if let Some(after_dot) = rest.strip_prefix('.') {
        let attr_end = after_dot.find(['/', ':']).unwrap_or(after_dot.len());
        rest = &after_dot[attr_end..];
    }
    format!("{address}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(text: &str) -> Module {
        Module::from_sources(&[("test.tf".to_owned(), text.to_owned())]).unwrap()
    }

    #[test]
    fn locals_concat_conditionals_and_each_evaluate() {
        let m = module(
            r#"
            locals {
              shared = [{ Action = ["a:One"], Resource = [aws_thing.x.arn] }]
              per_fn = {
                "f" = concat([{ Action = ["a:Two"], Resource = ["${aws_thing.x.arn}/index/*"] }], local.shared)
              }
              key = coalesce(var.k, "x")
            }
            resource "aws_policy" "p" {
              for_each = local.per_fn
              policy = jsonencode({
                Statement = concat(var.on ? [{ Action = "a:Three" }] : [], local.per_fn[each.key])
              })
              key = local.key
              queue = aws_sqs_queue.dlq[each.key].url
            }
            "#,
        );
        let body = m.resource("aws_policy", "p").unwrap();
        let each = Each::key("f");
        let policy = m.attr(body, "policy", &each).unwrap();
        let statements = policy.as_map().unwrap()["Statement"]
            .as_list()
            .unwrap()
            .to_vec();
        let actions: Vec<Vec<String>> = statements
            .iter()
            .map(|s| s.as_map().unwrap()["Action"].strings())
            .collect();
        assert_eq!(actions, [vec!["a:Three"], vec!["a:Two"], vec!["a:One"]]);
        let resource = statements[1].as_map().unwrap()["Resource"].strings();
        assert_eq!(resource, ["aws_thing.x.arn/index/*"]);
        assert_eq!(
            m.attr(body, "key", &each).unwrap(),
            Value::Str("local.key".into())
        );
        assert_eq!(
            m.attr(body, "queue", &each).unwrap(),
            Value::Str(r#"aws_sqs_queue.dlq["f"].url"#.into())
        );
    }

    #[test]
    fn sets_and_replacements_of_references_evaluate() {
        let m = module(
            r#"
            locals {
              host     = replace(replace(aws_api.live.api_endpoint, "wss://", ""), "https://", "")
              url      = "https://${local.host}/live"
              routes   = toset(["$connect", "subscribe"])
              key      = coalesce(var.k, "x")
              regex    = replace(var.v, "/[a-z]+/", "")
            }
            "#,
        );
        assert_eq!(
            m.local("url").unwrap(),
            Value::Str("https://aws_api.live.api_endpoint/live".into())
        );
        assert_eq!(
            m.local("routes").unwrap().strings(),
            ["$connect", "subscribe"]
        );
        assert_eq!(
            m.local("regex").unwrap(),
            Value::Str(r#"replace(var.v, "/[a-z]+/", "")"#.into())
        );
    }

    #[test]
    fn references_name_their_resource() {
        assert_eq!(
            resource_ref("aws_dynamodb_table.orders.arn"),
            "aws_dynamodb_table.orders"
        );
        assert_eq!(
            resource_ref("aws_dynamodb_table.orders.name"),
            "aws_dynamodb_table.orders"
        );
        assert_eq!(
            resource_ref("aws_dynamodb_table.orders.arn/index/*"),
            "aws_dynamodb_table.orders/index/*"
        );
        assert_eq!(
            resource_ref(r#"aws_sqs_queue.dlq["aggregate"].url"#),
            r#"aws_sqs_queue.dlq["aggregate"]"#
        );
        assert_eq!(
            resource_ref(r#"aws_cloudwatch_log_group.fn["query"].arn:*"#),
            r#"aws_cloudwatch_log_group.fn["query"]:*"#
        );
        assert_eq!(resource_ref("local.kms_key_arn"), "local.kms_key_arn");
        assert_eq!(resource_ref("*"), "*");
    }
}
