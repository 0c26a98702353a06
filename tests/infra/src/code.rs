//! The code as data, read with `syn`: what each adapter method of `orders-aws` sends to AWS and
//! on which of its fields (table, stream, queue), and what each function builds and calls.
//!
//! The reading follows the conventions the code keeps, and fails loudly where it cannot:
//! - an SDK call is a fluent chain on a `client` (`self.client.put_item().table_name(&self.table)
//!   …`), or a transaction item builder (`Update::builder().table_name(…)`); its resource is the
//!   argument of `table_name` / `request_items` / `stream_name` / `queue_url` — a field
//!   (`self.table`) or a parameter of the enclosing function, resolved at its call sites;
//! - an API Gateway management call (`post_to_connection`) names no resource: its client is
//!   built for one API stage's endpoint (`.endpoint_url(callback_url)` in `from_sdk`), so the
//!   resource is the `client` field, bound to that endpoint;
//! - a function's adapters are built in its `main.rs` with `Adapter::from_sdk(&sdk,
//!   &config.<field>, …)`, the arguments after `&sdk` in the order of `from_sdk`'s parameters,
//!   which are named after the adapter's fields (or set its client's endpoint);
//! - the adapter's role (`store`, `catalog`, …) is the struct field, `let` binding or `new`
//!   parameter that receives it, and the code calls it as `<…>.role.method(…)` or
//!   `role.method(…)` (also in the `orders_core` modules the function imports, such as `outbox`).

use anyhow::{Context as _, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::{self, Visit};
use syn::{Expr, ExprCall, ExprMethodCall, FnArg, ImplItem, Item, Lit, Pat};

/// IAM action of each SDK fluent operation the adapters may use. `None`: the operation has no
/// action of its own (a transaction is authorised item by item, see [`TRANSACTION_ITEMS`]).
pub const SDK_OPERATIONS: &[(&str, Option<&str>)] = &[
    ("get_item", Some("dynamodb:GetItem")),
    ("put_item", Some("dynamodb:PutItem")),
    ("update_item", Some("dynamodb:UpdateItem")),
    ("delete_item", Some("dynamodb:DeleteItem")),
    ("query", Some("dynamodb:Query")),
    ("scan", Some("dynamodb:Scan")),
    ("batch_get_item", Some("dynamodb:BatchGetItem")),
    ("batch_write_item", Some("dynamodb:BatchWriteItem")),
    ("describe_table", Some("dynamodb:DescribeTable")),
    ("transact_write_items", None),
    ("transact_get_items", None),
    ("put_record", Some("kinesis:PutRecord")),
    ("put_records", Some("kinesis:PutRecords")),
    ("send_message", Some("sqs:SendMessage")),
    // SendMessageBatch is authorised as SendMessage.
    ("send_message_batch", Some("sqs:SendMessage")),
    ("post_to_connection", Some("execute-api:ManageConnections")),
    ("get_connection", Some("execute-api:ManageConnections")),
    ("delete_connection", Some("execute-api:ManageConnections")),
];

/// API Gateway management operations and the HTTP method their IAM resource names:
/// `<api execution ARN>/<stage>/<METHOD>/@connections/<connection id>`.
pub const CONNECTION_OPERATIONS: &[(&str, &str)] = &[
    ("post_to_connection", "POST"),
    ("get_connection", "GET"),
    ("delete_connection", "DELETE"),
];

/// The field an adapter keeps its SDK client in; for a client built for one endpoint, the
/// resource its calls act on.
pub const CLIENT_FIELD: &str = "client";

/// DynamoDB transaction items and the action each is authorised as.
pub const TRANSACTION_ITEMS: &[(&str, &str)] = &[
    ("Update", "dynamodb:UpdateItem"),
    ("Put", "dynamodb:PutItem"),
    ("Delete", "dynamodb:DeleteItem"),
    ("ConditionCheck", "dynamodb:ConditionCheckItem"),
    ("Get", "dynamodb:GetItem"),
];

/// Builder methods whose argument names the resource an operation acts on.
const RESOURCE_SETTERS: &[&str] = &["table_name", "request_items", "stream_name", "queue_url"];

/// Where an operation's resource comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `self.<field>`.
    Field(String),
    /// The enclosing function's parameter number n (resolved at its call sites).
    Param(usize),
    /// Not readable from the chain (e.g. `u.table_name()`): any resource field the method uses.
    Unresolved,
}

/// One SDK call.
#[derive(Debug, Clone)]
pub struct Op {
    /// IAM action, or `unknown:<method>` for an SDK operation missing from [`SDK_OPERATIONS`].
    pub action: String,
    pub target: Target,
    /// A query on a secondary index (`.index_name(…)` in the chain).
    pub on_index: bool,
    /// `.index_name("…")` when a literal or a constant of the crate.
    pub index: Option<String>,
    /// `.index_name(NAME)`: the constant, resolved into `index` when the crate defines it.
    pub index_const: Option<String>,
    /// An API Gateway `@connections` call: the HTTP method its IAM resource names.
    pub connection_method: Option<String>,
    /// `.key_condition_expression("…")` when a literal.
    pub key_condition: Option<String>,
    /// Key attributes named in the chain: `.key("orderId", …)`.
    pub key_attributes: Vec<String>,
    /// `.set_key(Some(f(…)))`: the function building the key.
    pub key_function: Option<String>,
}

/// An argument at a call site, as far as resources go.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Field(String),
    Param(usize),
    Other,
}

/// What one function or method body does.
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub params: Vec<String>,
    pub ops: Vec<Op>,
    /// `self.<field>` mentioned anywhere.
    pub fields: BTreeSet<String>,
    /// `self.m(…)` and `Self::m(…)`.
    pub self_calls: BTreeSet<String>,
    /// Calls of this crate's plain functions (`f(…)`, `super::f(…)`): name and arguments.
    pub calls: Vec<(String, Vec<Arg>)>,
    /// Every string literal.
    pub literals: BTreeSet<String>,
    /// First elements of `("attr".to_owned(), …)` tuples in array literals: item keys built
    /// by hand (`Item::from([("productId".to_owned(), …)])`).
    pub item_attributes: Vec<String>,
    /// `index: "…", key_attribute: "…"` in struct literals (index partitions chosen at run time).
    pub index_keys: Vec<(String, String)>,
    /// Parameters passed to `.endpoint_url(…)`: they choose the endpoint a client talks to.
    pub endpoint_params: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Adapter {
    pub name: String,
    pub file: PathBuf,
    pub fields: BTreeSet<String>,
    /// Parameters of `from_sdk` after the SDK configuration.
    pub from_sdk_params: Vec<String>,
    /// Parameters of `from_sdk` that set its client's endpoint (an API stage's URL) rather
    /// than a field: the resource of calls on [`CLIENT_FIELD`].
    pub endpoints: BTreeSet<String>,
    pub methods: BTreeMap<String, Body>,
}

/// An SDK call of an adapter method with its resource resolved to a field.
#[derive(Debug, Clone)]
pub struct FieldOp {
    pub op: Op,
    pub field: String,
}

/// The adapters crate: adapters by type name, and its plain functions by (file, name).
pub struct Adapters {
    pub adapters: BTreeMap<String, Adapter>,
    pub functions: Vec<(PathBuf, String, Body)>,
}

impl Adapters {
    pub fn load(src: &Path) -> Result<Self> {
        let mut structs: BTreeMap<String, (PathBuf, BTreeSet<String>)> = BTreeMap::new();
        let mut methods: BTreeMap<String, BTreeMap<String, Body>> = BTreeMap::new();
        let mut functions = Vec::new();
        let mut consts = BTreeMap::new();
        for file in rust_files(src)? {
            let ast = parse(&file)?;
            for item in &ast.items {
                match item {
                    Item::Const(c) => {
                        if let Some(value) = string_literal(&c.expr) {
                            consts.insert(c.ident.to_string(), value);
                        }
                    }
                    Item::Struct(s) => {
                        let fields = s
                            .fields
                            .iter()
                            .filter_map(|f| f.ident.as_ref().map(ToString::to_string))
                            .collect();
                        structs.insert(s.ident.to_string(), (file.clone(), fields));
                    }
                    Item::Impl(i) => {
                        let syn::Type::Path(ty) = &*i.self_ty else {
                            continue;
                        };
                        let Some(name) = ty.path.segments.last().map(|s| s.ident.to_string())
                        else {
                            continue;
                        };
                        for item in &i.items {
                            if let ImplItem::Fn(f) = item {
                                let body = Body::of(&f.sig, &f.block);
                                methods
                                    .entry(name.clone())
                                    .or_default()
                                    .insert(f.sig.ident.to_string(), body);
                            }
                        }
                    }
                    Item::Fn(f) => functions.push((
                        file.clone(),
                        f.sig.ident.to_string(),
                        Body::of(&f.sig, &f.block),
                    )),
                    _ => {}
                }
            }
        }
        // `.index_name(BY_AUDIENCE_INDEX)`: the constant's value.
        let bodies = methods
            .values_mut()
            .flat_map(|m| m.values_mut())
            .chain(functions.iter_mut().map(|(_, _, b)| b));
        for body in bodies {
            for op in &mut body.ops {
                if op.index.is_none() {
                    op.index = op.index_const.as_ref().and_then(|c| consts.get(c)).cloned();
                }
            }
        }
        // An adapter is a struct with a `from_sdk` constructor.
        let mut adapters = BTreeMap::new();
        for (name, methods) in methods {
            let Some(from_sdk) = methods.get("from_sdk") else {
                continue;
            };
            let Some((file, fields)) = structs.get(&name) else {
                continue;
            };
            let from_sdk_params = from_sdk.params.iter().skip(1).cloned().collect();
            let endpoints = from_sdk.endpoint_params.clone();
            adapters.insert(
                name.clone(),
                Adapter {
                    name,
                    file: file.clone(),
                    fields: fields.clone(),
                    from_sdk_params,
                    endpoints,
                    methods,
                },
            );
        }
        Ok(Self {
            adapters,
            functions,
        })
    }

    /// A plain function called from `file`: the one in the same file, else the only one so named.
    fn function(&self, file: &Path, name: &str) -> Option<&Body> {
        self.functions
            .iter()
            .find(|(f, n, _)| f == file && n == name)
            .or_else(|| {
                let mut named = self.functions.iter().filter(|(_, n, _)| n == name);
                match (named.next(), named.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            })
            .map(|(_, _, body)| body)
    }

    /// Every SDK call `method` of `adapter` makes, directly or through the adapter's other
    /// methods and the crate's plain functions, with its resource field. Calls whose resource
    /// the chain does not name count once per resource field the method touches.
    pub fn ops(
        &self,
        adapter: &Adapter,
        method: &str,
        resource_fields: &BTreeSet<String>,
    ) -> Result<Vec<FieldOp>> {
        let body = adapter
            .methods
            .get(method)
            .with_context(|| format!("{} has no method {method}", adapter.name))?;
        let mut found = Vec::new();
        let mut touched = BTreeSet::new();
        let mut seen = BTreeSet::new();
        self.collect(adapter, body, &[], &mut found, &mut touched, &mut seen, 0)?;
        let touched: Vec<&String> = touched
            .iter()
            .filter(|f| resource_fields.contains(*f))
            .collect();
        let mut ops = Vec::new();
        for (op, field) in found {
            match field {
                Some(field) => ops.push(FieldOp { op, field }),
                None => ops.extend(touched.iter().map(|f| FieldOp {
                    op: op.clone(),
                    field: (*f).clone(),
                })),
            }
        }
        Ok(ops)
    }

    #[allow(clippy::too_many_arguments)]
    fn collect(
        &self,
        adapter: &Adapter,
        body: &Body,
        args: &[Option<String>],
        found: &mut Vec<(Op, Option<String>)>,
        touched: &mut BTreeSet<String>,
        seen: &mut BTreeSet<String>,
        depth: usize,
    ) -> Result<()> {
        if depth > 16 {
            bail!("{}: calls nested too deeply to follow", adapter.name);
        }
        touched.extend(body.fields.iter().cloned());
        touched.extend(args.iter().flatten().cloned());
        for op in &body.ops {
            let field = match &op.target {
                Target::Field(f) => Some(f.clone()),
                Target::Param(n) => args.get(*n).cloned().flatten(),
                Target::Unresolved => None,
            };
            found.push((op.clone(), field));
        }
        for name in &body.self_calls {
            if seen.insert(name.clone()) {
                if let Some(helper) = adapter.methods.get(name) {
                    self.collect(adapter, helper, &[], found, touched, seen, depth + 1)?;
                }
            }
        }
        for (name, call_args) in &body.calls {
            let Some(callee) = self.function(&adapter.file, name) else {
                continue;
            };
            let resolved: Vec<Option<String>> = call_args
                .iter()
                .map(|a| match a {
                    Arg::Field(f) => Some(f.clone()),
                    Arg::Param(n) => args.get(*n).cloned().flatten(),
                    Arg::Other => None,
                })
                .collect();
            self.collect(adapter, callee, &resolved, found, touched, seen, depth + 1)?;
        }
        Ok(())
    }

    /// The indexes an op on an index may query: the one it names, else the partitions
    /// chosen at run time (`index: "…"` struct literals in the adapter's file). Empty when
    /// neither tells.
    pub fn indexes(&self, adapter: &Adapter, op: &Op) -> Vec<String> {
        if let Some(index) = &op.index {
            return vec![index.clone()];
        }
        self.index_keys(adapter)
            .into_iter()
            .map(|(index, _)| index)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// `index: "…", key_attribute: "…"` pairs anywhere in the adapter's file.
    pub fn index_keys(&self, adapter: &Adapter) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = adapter
            .methods
            .values()
            .flat_map(|b| b.index_keys.clone())
            .collect();
        pairs.extend(
            self.functions
                .iter()
                .filter(|(file, _, _)| *file == adapter.file)
                .flat_map(|(_, _, b)| b.index_keys.clone()),
        );
        pairs.sort();
        pairs.dedup();
        pairs
    }

    /// Every string literal of `method` and of what it calls in the crate.
    pub fn literals(&self, adapter: &Adapter, method: &str) -> BTreeSet<String> {
        let mut literals = BTreeSet::new();
        let mut pending: Vec<&Body> = adapter.methods.get(method).into_iter().collect();
        let mut seen = BTreeSet::new();
        while let Some(body) = pending.pop() {
            literals.extend(body.literals.iter().cloned());
            for name in body
                .self_calls
                .iter()
                .chain(body.calls.iter().map(|(n, _)| n))
            {
                if seen.insert(name.clone()) {
                    let callee = adapter
                        .methods
                        .get(name)
                        .or_else(|| self.function(&adapter.file, name));
                    pending.extend(callee);
                }
            }
        }
        literals
    }

    /// The key attributes an op names, following `.set_key(Some(f(…)))` into `f`.
    pub fn key_attributes(&self, adapter: &Adapter, op: &Op) -> Vec<String> {
        if !op.key_attributes.is_empty() {
            return op.key_attributes.clone();
        }
        let Some(name) = &op.key_function else {
            return Vec::new();
        };
        let mut pending = vec![name.clone()];
        let mut seen = BTreeSet::new();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let body = adapter
                .methods
                .get(&name)
                .or_else(|| self.function(&adapter.file, &name));
            let Some(body) = body else { continue };
            if !body.item_attributes.is_empty() {
                return body.item_attributes.clone();
            }
            pending.extend(body.self_calls.iter().cloned());
            pending.extend(body.calls.iter().map(|(n, _)| n.clone()));
        }
        Vec::new()
    }
}

impl Body {
    fn of(sig: &syn::Signature, block: &syn::Block) -> Body {
        let params = sig
            .inputs
            .iter()
            .filter_map(|a| match a {
                FnArg::Typed(t) => match &*t.pat {
                    Pat::Ident(i) => Some(i.ident.to_string()),
                    _ => Some(String::new()),
                },
                FnArg::Receiver(_) => None,
            })
            .collect();
        let mut body = Body {
            params,
            ..Body::default()
        };
        body.visit_block(block);
        body
    }

    fn arg(&self, expr: &Expr) -> Arg {
        match strip(expr) {
            Expr::Field(f) if is_self(&f.base) => Arg::Field(member(&f.member)),
            Expr::Path(p) if p.path.segments.len() == 1 => {
                let name = p.path.segments[0].ident.to_string();
                self.params
                    .iter()
                    .position(|p| *p == name)
                    .map_or(Arg::Other, Arg::Param)
            }
            _ => Arg::Other,
        }
    }

    /// A fluent chain, outermost call first; `base` is what the innermost call is made on.
    fn chain(&mut self, call: &ExprMethodCall) {
        let mut links: Vec<&ExprMethodCall> = vec![call];
        let mut base = &*call.receiver;
        while let Expr::MethodCall(inner) = base {
            links.push(inner);
            base = &inner.receiver;
        }
        links.reverse(); // innermost first
        let names: Vec<String> = links.iter().map(|l| l.method.to_string()).collect();

        let first = names[0].as_str();
        let action = if is_client(base) {
            match SDK_OPERATIONS.iter().find(|(m, _)| *m == first) {
                Some((_, Some(action))) => Some((*action).to_owned()),
                Some((_, None)) => None,
                // A client method we do not know: make the cross-check name it.
                None if !["clone", "config"].contains(&first) => Some(format!("unknown:{first}")),
                None => None,
            }
        } else if let Some(item) = transaction_item(base) {
            TRANSACTION_ITEMS
                .iter()
                .find(|(t, _)| *t == item)
                .map(|(_, a)| (*a).to_owned())
        } else {
            None
        };

        if let Some(action) = action {
            let connection_method = CONNECTION_OPERATIONS
                .iter()
                .find(|(m, _)| *m == first)
                .map(|(_, method)| (*method).to_owned());
            // A management call acts on the stage its client was built for.
            let target = match (&connection_method, strip(base)) {
                (Some(_), Expr::Field(f)) if is_self(&f.base) => Target::Field(member(&f.member)),
                _ => Target::Unresolved,
            };
            let mut op = Op {
                action,
                target,
                on_index: false,
                index: None,
                index_const: None,
                connection_method,
                key_condition: None,
                key_attributes: Vec::new(),
                key_function: None,
            };
            for link in &links {
                let name = link.method.to_string();
                let first = link.args.first();
                match name.as_str() {
                    n if RESOURCE_SETTERS.contains(&n) => {
                        if let Some(arg) = first {
                            op.target = match self.arg(arg) {
                                Arg::Field(f) => Target::Field(f),
                                Arg::Param(n) => Target::Param(n),
                                Arg::Other => Target::Unresolved,
                            };
                        }
                    }
                    "index_name" => {
                        op.on_index = true;
                        op.index = first.and_then(string_literal);
                        op.index_const = first.and_then(|a| match strip(a) {
                            Expr::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
                            _ => None,
                        });
                    }
                    "key_condition_expression" => op.key_condition = first.and_then(string_literal),
                    "key" => op.key_attributes.extend(first.and_then(string_literal)),
                    "set_key" => op.key_function = first.and_then(called_function),
                    _ => {}
                }
            }
            self.ops.push(op);
        }

        // Visit what the chain holds (arguments, base) without re-reading its inner links.
        self.visit_expr(base);
        for link in links {
            for arg in &link.args {
                self.visit_expr(arg);
            }
            if is_self(&link.receiver) {
                self.self_calls.insert(link.method.to_string());
            }
            if link.method == "endpoint_url" {
                if let Some(Arg::Param(n)) = link.args.first().map(|a| self.arg(a)) {
                    self.endpoint_params.insert(self.params[n].clone());
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Body {
    fn visit_expr_method_call(&mut self, call: &'ast ExprMethodCall) {
        self.chain(call);
    }

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        if let Expr::Path(p) = &*call.func {
            let segments: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            if let Some(last) = segments.last() {
                if segments.len() == 2 && segments[0] == "Self" {
                    self.self_calls.insert(last.clone());
                } else if segments.len() == 1
                    || ["super", "crate", "self"].contains(&segments[0].as_str())
                {
                    // Functions of this crate; `serde_dynamo::to_item` and the like are not.
                    let args = call.args.iter().map(|a| self.arg(a)).collect();
                    self.calls.push((last.clone(), args));
                }
            }
        }
        visit::visit_expr_call(self, call);
    }

    fn visit_expr_field(&mut self, field: &'ast syn::ExprField) {
        if is_self(&field.base) {
            self.fields.insert(member(&field.member));
        }
        visit::visit_expr_field(self, field);
    }

    fn visit_expr_array(&mut self, array: &'ast syn::ExprArray) {
        for element in &array.elems {
            if let Expr::Tuple(t) = element {
                if let Some(name) = t.elems.first().and_then(string_literal) {
                    self.item_attributes.push(name);
                }
            }
        }
        visit::visit_expr_array(self, array);
    }

    fn visit_expr_struct(&mut self, s: &'ast syn::ExprStruct) {
        let field = |name: &str| {
            s.fields
                .iter()
                .find(|f| member(&f.member) == name)
                .and_then(|f| string_literal(&f.expr))
        };
        if let (Some(index), Some(key)) = (field("index"), field("key_attribute")) {
            self.index_keys.push((index, key));
        }
        visit::visit_expr_struct(self, s);
    }

    fn visit_lit_str(&mut self, lit: &'ast syn::LitStr) {
        self.literals.insert(lit.value());
    }

    /// `vec![…]` holds expressions (struct literals naming index partitions, say); other
    /// macros (`format!`, `tracing`) are not read.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if mac.path.is_ident("vec") {
            let items = mac.parse_body_with(
                syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated,
            );
            for item in items.iter().flatten() {
                <Self as Visit<'_>>::visit_expr(self, item);
            }
        }
    }
}

/// `&x`, `x.as_str()`, `x.clone()`, `(x)`, `*x` → `x`.
fn strip(expr: &Expr) -> &Expr {
    match expr {
        Expr::Reference(r) => strip(&r.expr),
        Expr::Paren(p) => strip(&p.expr),
        Expr::Unary(u) => strip(&u.expr),
        Expr::MethodCall(m)
            if ["as_str", "clone", "as_ref", "to_owned", "to_string"]
                .contains(&m.method.to_string().as_str()) =>
        {
            strip(&m.receiver)
        }
        other => other,
    }
}

fn is_self(expr: &Expr) -> bool {
    matches!(strip(expr), Expr::Path(p) if p.path.is_ident("self"))
}

fn is_client(expr: &Expr) -> bool {
    match strip(expr) {
        Expr::Field(f) => member(&f.member) == "client",
        Expr::Path(p) => p.path.is_ident("client"),
        _ => false,
    }
}

/// `Update::builder()` → `Update`.
fn transaction_item(expr: &Expr) -> Option<String> {
    let Expr::Call(call) = expr else { return None };
    let Expr::Path(p) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    match segments.as_slice() {
        [.., ty, builder] if builder == "builder" => Some(ty.clone()),
        _ => None,
    }
}

/// `Some(f(…))` / `Some(Self::f(…))` / `f(…)` → `f`.
fn called_function(expr: &Expr) -> Option<String> {
    let Expr::Call(call) = strip(expr) else {
        return None;
    };
    let Expr::Path(p) = &*call.func else {
        return None;
    };
    let name = p.path.segments.last()?.ident.to_string();
    if name == "Some" {
        return call.args.first().and_then(called_function);
    }
    Some(name)
}

fn string_literal(expr: &Expr) -> Option<String> {
    match strip(expr) {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

fn member(m: &syn::Member) -> String {
    match m {
        syn::Member::Named(i) => i.to_string(),
        syn::Member::Unnamed(i) => i.index.to_string(),
    }
}

/// `file` without its `#[cfg(test)]` items: tests call ports the deployed code never does.
fn without_tests(mut file: syn::File) -> syn::File {
    let is_test = |attrs: &[syn::Attribute]| {
        attrs.iter().any(|a| {
            a.path().is_ident("cfg") && a.parse_args::<syn::Ident>().is_ok_and(|i| i == "test")
        })
    };
    file.items.retain(|item| match item {
        Item::Mod(m) => !is_test(&m.attrs),
        Item::Fn(f) => !is_test(&f.attrs),
        Item::Impl(i) => !is_test(&i.attrs),
        _ => true,
    });
    file
}

fn parse(path: &Path) -> Result<syn::File> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    syn::parse_file(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Every `.rs` file under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

// ------------------------------------------------------------------ functions

/// An adapter a function builds, under the role its code calls it by.
#[derive(Debug, Clone)]
pub struct Instance {
    pub role: String,
    pub adapter: String,
    /// Adapter field → `Config` field it is built from.
    pub bindings: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Function {
    /// The binary name (the directory under `functions/`).
    pub name: String,
    /// `Config` field → environment variable, for every `required("…")` / `optional("…", …)`.
    pub config: BTreeMap<String, String>,
    /// Every environment variable `Config::from_env` reads.
    pub env_vars: BTreeSet<String>,
    pub instances: Vec<Instance>,
    /// (role, method) pairs the code calls.
    pub calls: BTreeSet<(String, String)>,
    /// Route keys the handlers match (`Some("GET /orders")`).
    pub routes: BTreeSet<String>,
    /// WebSocket route keys the handlers match: in a `match` on a `route_key`, the arms
    /// `Some("…")` that are not HTTP routes (`$connect`, `subscribe`); such a match's
    /// catch-all arm (`_`, or a binding) serves `$default`, API Gateway's route for messages
    /// no other route selects.
    pub socket_routes: BTreeSet<String>,
    /// Mentions of types by name (to tell stream consumers: `KinesisEvent`, `KinesisEventResponse`).
    pub type_names: BTreeSet<String>,
}

impl Function {
    pub fn load(dir: &Path, adapters: &Adapters, orders_core_src: &Path) -> Result<Self> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("function directory name")?
            .to_owned();
        let src = dir.join("src");
        let files = rust_files(&src)?;
        let asts: Vec<(PathBuf, syn::File)> = files
            .iter()
            .map(|f| parse(f).map(|a| (f.clone(), a)))
            .collect::<Result<_>>()?;

        let mut config = ConfigReader::default();
        if let Some((_, ast)) = asts.iter().find(|(f, _)| f.ends_with("config.rs")) {
            config.visit_file(ast);
        }

        // `fn new(a, b, c)` parameters of the function's own types, for positional construction.
        let mut constructors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, ast) in &asts {
            for item in &ast.items {
                let Item::Impl(i) = item else { continue };
                let syn::Type::Path(ty) = &*i.self_ty else {
                    continue;
                };
                let Some(ty) = ty.path.segments.last().map(|s| s.ident.to_string()) else {
                    continue;
                };
                for item in &i.items {
                    if let ImplItem::Fn(f) = item {
                        if f.sig.ident == "new" {
                            constructors.insert(ty.clone(), Body::of(&f.sig, &f.block).params);
                        }
                    }
                }
            }
        }

        let main = asts
            .iter()
            .find(|(f, _)| f.ends_with("main.rs"))
            .with_context(|| format!("{name} has no src/main.rs"))?;
        let mut builder = InstanceReader {
            adapters,
            constructors: &constructors,
            roles: Vec::new(),
            instances: Vec::new(),
            errors: Vec::new(),
        };
        builder.visit_file(&main.1);
        if !builder.errors.is_empty() {
            bail!("{name}/src/main.rs: {}", builder.errors.join("; "));
        }
        let instances = builder.instances;
        let roles: BTreeSet<String> = instances.iter().map(|i| i.role.clone()).collect();

        // The function's code, plus the orders_core modules it imports (shared helpers such as
        // outbox::publish_current call the ports too).
        let mut sources: Vec<syn::File> = asts.iter().map(|(_, a)| a.clone()).collect();
        let mut modules = BTreeSet::new();
        for (_, ast) in &asts {
            for item in &ast.items {
                if let Item::Use(u) = item {
                    collect_core_modules(&u.tree, false, &mut modules);
                }
            }
        }
        for module in modules {
            let path = orders_core_src.join(format!("{module}.rs"));
            if path.is_file() {
                sources.push(without_tests(parse(&path)?));
            }
        }
        let mut calls = CallReader {
            roles: &roles,
            calls: BTreeSet::new(),
            routes: BTreeSet::new(),
            socket_routes: BTreeSet::new(),
            type_names: BTreeSet::new(),
        };
        for ast in &sources[..asts.len()] {
            calls.visit_file(ast);
        }
        let routes = std::mem::take(&mut calls.routes);
        let socket_routes = std::mem::take(&mut calls.socket_routes);
        let type_names = std::mem::take(&mut calls.type_names);
        for ast in &sources[asts.len()..] {
            calls.visit_file(ast);
        }
        Ok(Function {
            name,
            env_vars: config
                .fields
                .values()
                .cloned()
                .chain(config.loose)
                .collect(),
            config: config.fields,
            instances,
            calls: calls.calls,
            routes,
            socket_routes,
            type_names,
        })
    }
}

/// `use orders_core::outbox::{…}` → `outbox`.
fn collect_core_modules(tree: &syn::UseTree, under_core: bool, out: &mut BTreeSet<String>) {
    match tree {
        syn::UseTree::Path(p) if !under_core => {
            collect_core_modules(&p.tree, p.ident == "orders_core", out)
        }
        syn::UseTree::Path(p) => {
            out.insert(p.ident.to_string());
        }
        syn::UseTree::Group(g) if under_core => {
            for t in &g.items {
                if let syn::UseTree::Path(p) = t {
                    out.insert(p.ident.to_string());
                }
            }
        }
        _ => {}
    }
}

#[derive(Default)]
struct ConfigReader {
    fields: BTreeMap<String, String>,
    /// Variables read outside a field initialiser.
    loose: BTreeSet<String>,
    current: Option<String>,
}

impl<'ast> Visit<'ast> for ConfigReader {
    fn visit_field_value(&mut self, f: &'ast syn::FieldValue) {
        let previous = self.current.replace(member(&f.member));
        visit::visit_field_value(self, f);
        self.current = previous;
    }

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        if let Expr::Path(p) = &*call.func {
            let last = p.path.segments.last().map(|s| s.ident.to_string());
            if matches!(last.as_deref(), Some("required" | "optional")) {
                if let Some(var) = call.args.first().and_then(string_literal) {
                    match &self.current {
                        Some(field) => {
                            self.fields.insert(field.clone(), var);
                        }
                        None => {
                            self.loose.insert(var);
                        }
                    }
                }
            }
        }
        visit::visit_expr_call(self, call);
    }
}

struct InstanceReader<'a> {
    adapters: &'a Adapters,
    constructors: &'a BTreeMap<String, Vec<String>>,
    /// Innermost name the value being built is given.
    roles: Vec<String>,
    instances: Vec<Instance>,
    errors: Vec<String>,
}

impl<'ast> Visit<'ast> for InstanceReader<'_> {
    fn visit_field_value(&mut self, f: &'ast syn::FieldValue) {
        self.roles.push(member(&f.member));
        visit::visit_field_value(self, f);
        self.roles.pop();
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        let name = match &local.pat {
            Pat::Ident(i) => i.ident.to_string(),
            _ => String::new(),
        };
        self.roles.push(name);
        visit::visit_local(self, local);
        self.roles.pop();
    }

    fn visit_expr_call(&mut self, call: &'ast ExprCall) {
        let Expr::Path(p) = &*call.func else {
            return visit::visit_expr_call(self, call);
        };
        let segments: Vec<String> = p
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        match segments.as_slice() {
            [.., ty, f] if f == "from_sdk" && self.adapters.adapters.contains_key(ty) => {
                let adapter = &self.adapters.adapters[ty];
                let Some(role) = self.roles.last().filter(|r| !r.is_empty()).cloned() else {
                    self.errors.push(format!(
                        "{ty}::from_sdk is not assigned to a named field, binding or parameter"
                    ));
                    return;
                };
                let mut bindings = BTreeMap::new();
                for (param, arg) in adapter.from_sdk_params.iter().zip(call.args.iter().skip(1)) {
                    if let Expr::Field(f) = strip(arg) {
                        if matches!(strip(&f.base), Expr::Path(p) if p.path.is_ident("config")) {
                            let field = if adapter.fields.contains(param) {
                                param.as_str()
                            } else if adapter.endpoints.contains(param)
                                && adapter.fields.contains(CLIENT_FIELD)
                            {
                                CLIENT_FIELD
                            } else {
                                self.errors.push(format!(
                                    "{ty}::from_sdk parameter {param} is neither a field of {ty} \
                                     nor the endpoint of its {CLIENT_FIELD}"
                                ));
                                param.as_str()
                            };
                            bindings.insert(field.to_owned(), member(&f.member));
                        }
                    }
                }
                self.instances.push(Instance {
                    role,
                    adapter: ty.clone(),
                    bindings,
                });
            }
            [.., ty, f] if f == "new" && self.constructors.contains_key(ty) => {
                let params = &self.constructors[ty];
                for (i, arg) in call.args.iter().enumerate() {
                    self.roles.push(params.get(i).cloned().unwrap_or_default());
                    self.visit_expr(arg);
                    self.roles.pop();
                }
            }
            _ => visit::visit_expr_call(self, call),
        }
    }
}

struct CallReader<'a> {
    roles: &'a BTreeSet<String>,
    calls: BTreeSet<(String, String)>,
    routes: BTreeSet<String>,
    socket_routes: BTreeSet<String>,
    type_names: BTreeSet<String>,
}

/// `"GET /orders"`: an HTTP API route key.
fn is_http_route(key: &str) -> bool {
    let method = key.split(' ').next().unwrap_or("");
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].contains(&method)
        && key.contains(" /")
}

/// `Some("…")` patterns of an arm (through `|`), and whether it matches anything
/// (`_`, a binding).
fn arm_keys(pat: &Pat, keys: &mut Vec<String>) -> bool {
    match pat {
        Pat::Or(or) => {
            let mut catch_all = false;
            for case in &or.cases {
                catch_all |= arm_keys(case, keys);
            }
            catch_all
        }
        Pat::TupleStruct(t) if t.path.is_ident("Some") => {
            if let [Pat::Lit(l)] = t.elems.iter().collect::<Vec<_>>().as_slice() {
                if let Lit::Str(s) = &l.lit {
                    keys.push(s.value());
                }
            }
            false
        }
        Pat::Wild(_) => true,
        Pat::Ident(i) => i.subpat.is_none(),
        _ => false,
    }
}

/// Whether `expr` reads a `route_key` (`event.request_context.route_key.as_deref()`).
fn reads_route_key(expr: &Expr) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_ident(&mut self, i: &'ast syn::Ident) {
            self.0 |= i == "route_key";
        }
    }
    let mut finder = Finder(false);
    finder.visit_expr(expr);
    finder.0
}

impl<'ast> Visit<'ast> for CallReader<'_> {
    fn visit_expr_match(&mut self, m: &'ast syn::ExprMatch) {
        if reads_route_key(&m.expr) {
            let mut keys = Vec::new();
            let mut catch_all = false;
            for arm in &m.arms {
                catch_all |= arm_keys(&arm.pat, &mut keys);
            }
            if keys.iter().any(|k| !is_http_route(k)) {
                self.socket_routes.extend(keys);
                if catch_all {
                    self.socket_routes.insert("$default".to_owned());
                }
            }
        }
        visit::visit_expr_match(self, m);
    }

    fn visit_expr_method_call(&mut self, call: &'ast ExprMethodCall) {
        let role = match strip(&call.receiver) {
            Expr::Field(f) => Some(member(&f.member)),
            Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
            _ => None,
        };
        if let Some(role) = role.filter(|r| self.roles.contains(r)) {
            self.calls.insert((role, call.method.to_string()));
        }
        visit::visit_expr_method_call(self, call);
    }

    fn visit_pat_tuple_struct(&mut self, pat: &'ast syn::PatTupleStruct) {
        if pat.path.is_ident("Some") {
            if let [Pat::Lit(l)] = pat.elems.iter().collect::<Vec<_>>().as_slice() {
                if let Lit::Str(s) = &l.lit {
                    let value = s.value();
                    if is_http_route(&value) {
                        self.routes.insert(value);
                    }
                }
            }
        }
        visit::visit_pat_tuple_struct(self, pat);
    }

    fn visit_path_segment(&mut self, segment: &'ast syn::PathSegment) {
        self.type_names.insert(segment.ident.to_string());
        visit::visit_path_segment(self, segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str) -> Body {
        let f: syn::ItemFn = syn::parse_str(code).unwrap();
        Body::of(&f.sig, &f.block)
    }

    #[test]
    fn fluent_chains_name_their_operation_and_resource() {
        let b = body(
            r#"async fn list(&self, table: &str) {
                let mut request = self.client.query().table_name(&self.table).index_name("byCustomer")
                    .key_condition_expression("customerId = :c AND orderId < :b");
                request = request.limit(3);
                client.batch_get_item().request_items(table, x).send().await;
                let u = Update::builder().table_name(&self.products_table).key("productId", v).build();
                self.client.transact_write_items().send().await;
                self.client.describe_stream().send().await;
            }"#,
        );
        let summary: Vec<(String, Target, bool)> = b
            .ops
            .iter()
            .map(|o| (o.action.clone(), o.target.clone(), o.on_index))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "dynamodb:Query".to_owned(),
                    Target::Field("table".into()),
                    true
                ),
                ("dynamodb:BatchGetItem".to_owned(), Target::Param(0), false),
                (
                    "dynamodb:UpdateItem".to_owned(),
                    Target::Field("products_table".into()),
                    false
                ),
                (
                    "unknown:describe_stream".to_owned(),
                    Target::Unresolved,
                    false
                ),
            ]
        );
        assert_eq!(b.ops[0].index.as_deref(), Some("byCustomer"));
        assert_eq!(b.ops[2].key_attributes, ["productId"]);
    }

    #[test]
    fn management_calls_act_on_the_endpoint_their_client_is_built_for() {
        let from_sdk = body(
            r#"fn from_sdk(sdk: &SdkConfig, callback_url: &str) -> Self {
                let config = Builder::from(sdk).endpoint_url(callback_url).build();
                Self { client: Client::from_conf(config) }
            }"#,
        );
        assert_eq!(
            from_sdk.endpoint_params,
            BTreeSet::from(["callback_url".to_owned()])
        );
        let push = body(
            r#"async fn push(&self, id: &str) {
                self.client.post_to_connection().connection_id(id).send().await;
                self.client.query().table_name(&self.table).index_name(BY_AUDIENCE).send().await;
            }"#,
        );
        assert_eq!(push.ops[0].action, "execute-api:ManageConnections");
        assert_eq!(push.ops[0].target, Target::Field(CLIENT_FIELD.into()));
        assert_eq!(push.ops[0].connection_method.as_deref(), Some("POST"));
        assert_eq!(push.ops[1].index_const.as_deref(), Some("BY_AUDIENCE"));
    }

    #[test]
    fn websocket_route_keys_are_the_non_http_arms_of_a_route_key_match() {
        let file: syn::File = syn::parse_str(
            r#"
            fn http(event: E) { match event.route_key.as_deref() {
                Some("POST /live/tickets") => 1,
                other => 2,
            } }
            fn socket(event: E) { match event.request_context.route_key.as_deref() {
                Some("$connect") | Some("$disconnect") => 1,
                Some("subscribe") => 2,
                _ => 3,
            } }
            fn elsewhere(x: Option<&str>) { match x { Some("ping") => 1, _ => 2 } }
            "#,
        )
        .unwrap();
        let roles = BTreeSet::new();
        let mut reader = CallReader {
            roles: &roles,
            calls: BTreeSet::new(),
            routes: BTreeSet::new(),
            socket_routes: BTreeSet::new(),
            type_names: BTreeSet::new(),
        };
        reader.visit_file(&file);
        assert_eq!(
            reader.routes,
            BTreeSet::from(["POST /live/tickets".to_owned()])
        );
        assert_eq!(
            reader.socket_routes,
            ["$connect", "$default", "$disconnect", "subscribe"]
                .map(str::to_owned)
                .into()
        );
    }
}
