//! The traffic: a catalog (drawn from its prefix), a customer population and a stream of
//! requests (drawn from one seed), so two runs with the same seed send the same bodies in the
//! same order, and runs that share a catalog send its prices.
//!
//! The shape follows what a shop sees: a few products sell most (Zipf-like popularity, rank
//! `r` drawn with weight `1 / r^s`), most customers come back (a returning customer is drawn
//! from those who ordered before), most baskets hold one or two lines. Pure: no I/O, no clock.
//!
//! Storefront sessions (what shoppers do before they order) are drawn in [`sessions`], and
//! grouped into `POST /events` batches, redelivered copies included, in [`batches`].

pub mod batches;
pub mod sessions;

use orders_core::shard::stable_hash;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use sessions::SessionSettings;

/// Relative weights of basket sizes 1..=10 lines.
const BASKET_WEIGHTS: [f64; 10] = [45.0, 25.0, 14.0, 7.0, 4.0, 2.0, 1.2, 0.8, 0.6, 0.4];

/// What the generator draws from. Ratios are probabilities per request (see [`Settings::check`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub seed: u64,
    /// Prefix of this run's customer ids and idempotency keys: it tells this run's orders
    /// apart from anyone else's on a shared deployment.
    pub run_id: String,
    /// Prefix of the product ids. Stable across runs by default, so repeated runs reuse (and
    /// re-stock) one catalog instead of growing it.
    pub catalog_prefix: String,
    pub products: usize,
    pub customers: usize,
    /// Stock each product is loaded with.
    pub stock: u64,
    /// Zipf exponent of product popularity.
    pub zipf_exponent: f64,
    /// Probability that an order comes from a customer who already ordered in this run.
    pub repeat_ratio: f64,
    /// Requests that break a rule of the API (answered 4xx, never an order).
    pub invalid_ratio: f64,
    /// Valid orders naming a product that is not in the catalog (processed into `FAILED`).
    pub unknown_product_ratio: f64,
    /// Of the orders expected to be processed: cancelled afterwards.
    pub cancel_ratio: f64,
    /// Of the orders expected to be processed: shipped afterwards (half of them delivered too).
    pub ship_ratio: f64,
    /// The storefront sessions sent besides the orders (none when `sessions.sessions` is 0).
    pub sessions: SessionSettings,
}

impl Settings {
    pub fn check(&self) -> Result<(), String> {
        for (name, value) in [
            ("--repeat-ratio", self.repeat_ratio),
            ("--invalid-ratio", self.invalid_ratio),
            ("--unknown-product-ratio", self.unknown_product_ratio),
            ("--cancel-ratio", self.cancel_ratio),
            ("--ship-ratio", self.ship_ratio),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{name} must be between 0 and 1 (got {value})"));
            }
        }
        if self.cancel_ratio + self.ship_ratio > 1.0 {
            return Err("--cancel-ratio + --ship-ratio must not exceed 1".into());
        }
        if self.products == 0 || self.customers == 0 {
            return Err("--products and --customers must be at least 1".into());
        }
        if !(self.zipf_exponent >= 0.0 && self.zipf_exponent.is_finite()) {
            return Err("the Zipf exponent must be a finite number >= 0".into());
        }
        self.sessions.check(&self.run_id)
    }
}

/// One catalog entry, as loaded with `PUT /products/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    /// Minor units.
    pub price: i64,
}

/// One line of an order the generator placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub product_id: String,
    pub quantity: u32,
    pub unit_price: i64,
}

impl Line {
    pub fn total(&self) -> i64 {
        self.unit_price * i64::from(self.quantity)
    }
}

/// What the sim does with an order once it has been processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUp {
    None,
    Cancel,
    Ship,
    /// Shipped, then delivered.
    Deliver,
}

/// A valid order request and what should become of it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderPlan {
    pub seq: u64,
    pub idempotency_key: String,
    pub customer_id: String,
    pub lines: Vec<Line>,
    /// A line names a product missing from the catalog: processing fails it.
    pub expect_failure: bool,
    pub follow_up: FollowUp,
}

impl OrderPlan {
    pub fn body(&self) -> Value {
        json!({
            "customerId": self.customer_id,
            "items": self.lines.iter().map(|l| json!({
                "productId": l.product_id,
                "quantity": l.quantity,
                "unitPrice": l.unit_price,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn total(&self) -> i64 {
        self.lines.iter().map(Line::total).sum()
    }
}

/// The rule an invalid request breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidKind {
    ZeroQuantity,
    FractionalPrice,
    UnknownField,
    NoItems,
    BadCustomerId,
    BadCurrency,
    DuplicateProduct,
    TooManyLines,
    MalformedJson,
    WrongContentType,
}

impl InvalidKind {
    pub const ALL: [InvalidKind; 10] = [
        InvalidKind::ZeroQuantity,
        InvalidKind::FractionalPrice,
        InvalidKind::UnknownField,
        InvalidKind::NoItems,
        InvalidKind::BadCustomerId,
        InvalidKind::BadCurrency,
        InvalidKind::DuplicateProduct,
        InvalidKind::TooManyLines,
        InvalidKind::MalformedJson,
        InvalidKind::WrongContentType,
    ];
}

/// A request the API must refuse with a 4xx.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidRequest {
    pub seq: u64,
    pub kind: InvalidKind,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Order(OrderPlan),
    Invalid(InvalidRequest),
}

/// The catalog of a run: product `i` is the `i`-th most popular.
pub fn catalog(settings: &Settings) -> Vec<Product> {
    // Drawn from the prefix, not the run's seed: runs that share a catalog (`--no-catalog`)
    // must send its prices, which the API checks against what the first run loaded. Its own
    // stream, so the catalog does not depend on how many requests are drawn either.
    let mut rng = ChaCha8Rng::seed_from_u64(stable_hash(&settings.catalog_prefix) ^ 0xC47A_1061);
    (0..settings.products)
        .map(|i| Product {
            id: product_id(&settings.catalog_prefix, i),
            name: format!("Product {i}"),
            // Log-uniform from 0.99 to 250.00: many cheap items, a few expensive ones.
            price: (99.0 * (25_000.0_f64 / 99.0).powf(rng.random::<f64>())).round() as i64,
        })
        .collect()
}

pub fn product_id(prefix: &str, i: usize) -> String {
    format!("{prefix}-p{i:05}")
}

/// Customer `c` of the run: orders and signed-in sessions draw from the same population.
pub fn customer_id(run_id: &str, c: usize) -> String {
    format!("{run_id}-c{c:05}")
}

/// Units of an order line or of a cart addition: mostly one, sometimes two, rarely 3 to 5.
pub(crate) fn quantity(rng: &mut impl Rng) -> u32 {
    match rng.random_range(0..100) {
        0..70 => 1,
        70..90 => 2,
        _ => rng.random_range(3..=5),
    }
}

/// What becomes of an order expected to be processed, drawn with the settings' ratios.
pub(crate) fn follow_up(rng: &mut impl Rng, settings: &Settings) -> FollowUp {
    let u = rng.random::<f64>();
    if u < settings.cancel_ratio {
        FollowUp::Cancel
    } else if u < settings.cancel_ratio + settings.ship_ratio {
        if rng.random_bool(0.5) {
            FollowUp::Deliver
        } else {
            FollowUp::Ship
        }
    } else {
        FollowUp::None
    }
}

/// Draws ranks 0..n with probability proportional to `1 / (rank + 1)^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut sum = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                sum += (rank as f64).powf(-s);
                sum
            })
            .collect();
        Self { cumulative }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let total = *self.cumulative.last().expect("at least one rank");
        let u = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

/// The seeded request stream.
pub struct Generator {
    settings: Settings,
    catalog: Vec<Product>,
    popularity: Zipf,
    rng: ChaCha8Rng,
    /// Customers who have ordered so far, in first-order order, and a membership flag.
    returning: Vec<usize>,
    ordered: Vec<bool>,
    seq: u64,
}

impl Generator {
    pub fn new(settings: Settings) -> Self {
        let catalog = catalog(&settings);
        let popularity = Zipf::new(settings.products, settings.zipf_exponent);
        Self {
            rng: ChaCha8Rng::seed_from_u64(settings.seed),
            ordered: vec![false; settings.customers],
            returning: Vec::new(),
            catalog,
            popularity,
            seq: 0,
            settings,
        }
    }

    pub fn catalog(&self) -> &[Product] {
        &self.catalog
    }

    fn basket_size(&mut self) -> usize {
        let total: f64 = BASKET_WEIGHTS.iter().sum();
        let mut u = self.rng.random::<f64>() * total;
        let mut size = BASKET_WEIGHTS.len();
        for (i, w) in BASKET_WEIGHTS.iter().enumerate() {
            if u < *w {
                size = i + 1;
                break;
            }
            u -= w;
        }
        size.min(self.catalog.len())
    }

    fn quantity(&mut self) -> u32 {
        quantity(&mut self.rng)
    }

    fn customer(&mut self) -> usize {
        if !self.returning.is_empty() && self.rng.random_bool(self.settings.repeat_ratio) {
            return self.returning[self.rng.random_range(0..self.returning.len())];
        }
        let c = self.rng.random_range(0..self.settings.customers);
        if !self.ordered[c] {
            self.ordered[c] = true;
            self.returning.push(c);
        }
        c
    }

    fn customer_id(&self, c: usize) -> String {
        customer_id(&self.settings.run_id, c)
    }

    fn order(&mut self, seq: u64) -> OrderPlan {
        let size = self.basket_size();
        let mut chosen: Vec<usize> = Vec::with_capacity(size);
        while chosen.len() < size {
            let p = self.popularity.sample(&mut self.rng);
            if !chosen.contains(&p) {
                chosen.push(p);
            }
        }
        let mut lines: Vec<Line> = chosen
            .iter()
            .map(|&p| {
                let quantity = self.quantity();
                let product = &self.catalog[p];
                Line {
                    product_id: product.id.clone(),
                    quantity,
                    unit_price: product.price,
                }
            })
            .collect();
        let expect_failure = self.rng.random_bool(self.settings.unknown_product_ratio);
        if expect_failure {
            lines.push(Line {
                product_id: format!("{}-missing-{seq}", self.settings.catalog_prefix),
                quantity: 1,
                unit_price: 500,
            });
        }
        let customer = self.customer();
        let follow_up = if expect_failure {
            FollowUp::None
        } else {
            follow_up(&mut self.rng, &self.settings)
        };
        OrderPlan {
            seq,
            idempotency_key: format!("{}-{seq}", self.settings.run_id),
            customer_id: self.customer_id(customer),
            lines,
            expect_failure,
            follow_up,
        }
    }

    fn invalid(&mut self, seq: u64) -> InvalidRequest {
        let kind = InvalidKind::ALL[self.rng.random_range(0..InvalidKind::ALL.len())];
        let c = self.rng.random_range(0..self.settings.customers);
        let customer = self.customer_id(c);
        let product = &self.catalog[self.popularity.sample(&mut self.rng)];
        let item = json!({"productId": product.id, "quantity": 1, "unitPrice": product.price});
        let body = |v: Value| v.to_string().into_bytes();
        let (content_type, bytes) = match kind {
            InvalidKind::ZeroQuantity => (
                "application/json",
                body(
                    json!({"customerId": customer, "items": [{"productId": product.id, "quantity": 0, "unitPrice": product.price}]}),
                ),
            ),
            InvalidKind::FractionalPrice => (
                "application/json",
                body(
                    json!({"customerId": customer, "items": [{"productId": product.id, "quantity": 1, "unitPrice": product.price as f64 / 100.0 + 0.001}]}),
                ),
            ),
            InvalidKind::UnknownField => (
                "application/json",
                body(json!({"customerId": customer, "items": [item], "coupon": "FREE"})),
            ),
            InvalidKind::NoItems => (
                "application/json",
                body(json!({"customerId": customer, "items": []})),
            ),
            InvalidKind::BadCustomerId => (
                "application/json",
                body(json!({"customerId": "not a valid id!", "items": [item]})),
            ),
            InvalidKind::BadCurrency => (
                "application/json",
                body(json!({"customerId": customer, "items": [item], "currency": "dollars"})),
            ),
            InvalidKind::DuplicateProduct => (
                "application/json",
                body(json!({"customerId": customer, "items": [item, item]})),
            ),
            InvalidKind::TooManyLines => {
                let items: Vec<Value> = (0..100)
                    .map(|i| {
                        json!({"productId": product_id(&self.settings.catalog_prefix, i), "quantity": 1, "unitPrice": 100})
                    })
                    .collect();
                (
                    "application/json",
                    body(json!({"customerId": customer, "items": items})),
                )
            }
            InvalidKind::MalformedJson => (
                "application/json",
                format!(r#"{{"customerId": "{customer}", "items": [{{"productId": "#).into_bytes(),
            ),
            InvalidKind::WrongContentType => (
                "text/plain",
                body(json!({"customerId": customer, "items": [item]})),
            ),
        };
        InvalidRequest {
            seq,
            kind,
            content_type,
            body: bytes,
        }
    }
}

impl Iterator for Generator {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        let seq = self.seq;
        self.seq += 1;
        Some(if self.rng.random_bool(self.settings.invalid_ratio) {
            Request::Invalid(self.invalid(seq))
        } else {
            Request::Order(self.order(seq))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn settings(seed: u64) -> Settings {
        Settings {
            seed,
            run_id: "sim-test".into(),
            catalog_prefix: "sim".into(),
            products: 200,
            customers: 500,
            stock: 1_000_000,
            zipf_exponent: 1.0,
            repeat_ratio: 0.7,
            invalid_ratio: 0.05,
            unknown_product_ratio: 0.02,
            cancel_ratio: 0.1,
            ship_ratio: 0.2,
            sessions: SessionSettings::default(),
        }
    }

    fn orders(requests: &[Request]) -> impl Iterator<Item = &OrderPlan> {
        requests.iter().filter_map(|r| match r {
            Request::Order(o) => Some(o),
            Request::Invalid(_) => None,
        })
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic_and_another_seed_other_traffic() {
        let a: Vec<Request> = Generator::new(settings(7)).take(500).collect();
        let b: Vec<Request> = Generator::new(settings(7)).take(500).collect();
        let c: Vec<Request> = Generator::new(settings(8)).take(500).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Runs that share a catalog prefix share its prices, whatever their seeds.
        assert_eq!(catalog(&settings(7)), catalog(&settings(8)));
        let other = Settings {
            catalog_prefix: "other".into(),
            ..settings(7)
        };
        assert_ne!(
            catalog(&settings(7))
                .iter()
                .map(|p| p.price)
                .collect::<Vec<_>>(),
            catalog(&other).iter().map(|p| p.price).collect::<Vec<_>>()
        );
        // The catalog does not depend on how much traffic is drawn.
        let mut g = Generator::new(settings(7));
        g.nth(100);
        assert_eq!(g.catalog(), catalog(&settings(7)).as_slice());
    }

    #[test]
    fn orders_are_valid_and_name_catalog_products_once_each() {
        let s = settings(1);
        let prices: BTreeMap<String, i64> =
            catalog(&s).into_iter().map(|p| (p.id, p.price)).collect();
        assert!(prices.values().all(|p| (99..=25_000).contains(p)));
        let requests: Vec<Request> = Generator::new(s).take(5_000).collect();
        for order in orders(&requests) {
            assert!(order.customer_id.starts_with("sim-test-c"));
            let ids: HashSet<&str> = order.lines.iter().map(|l| l.product_id.as_str()).collect();
            assert_eq!(ids.len(), order.lines.len(), "one line per product");
            let unknown = order
                .lines
                .iter()
                .filter(|l| !prices.contains_key(&l.product_id))
                .count();
            assert_eq!(unknown, usize::from(order.expect_failure));
            assert!(order.lines.iter().all(|l| (1..=5).contains(&l.quantity)
                && prices.get(&l.product_id).is_none_or(|p| *p == l.unit_price)));
            assert!((1..=11).contains(&order.lines.len()));
            if order.expect_failure {
                assert_eq!(order.follow_up, FollowUp::None);
            }
        }
    }

    #[test]
    fn popularity_is_zipf_like_and_baskets_are_mostly_small() {
        let requests: Vec<Request> = Generator::new(settings(3)).take(20_000).collect();
        let mut by_rank = vec![0u32; 200];
        let mut sizes = BTreeMap::<usize, u32>::new();
        for order in orders(&requests) {
            let catalog_lines = order.lines.len() - usize::from(order.expect_failure);
            *sizes.entry(catalog_lines).or_default() += 1;
            for line in &order.lines {
                if let Some(rank) = line
                    .product_id
                    .strip_prefix("sim-p")
                    .and_then(|r| r.parse::<usize>().ok())
                {
                    by_rank[rank] += 1;
                }
            }
        }
        let lines: u32 = by_rank.iter().sum();
        // s = 1: the top product sells about twice the second and ten times the tenth.
        let ratio = |a: usize, b: usize| f64::from(by_rank[a]) / f64::from(by_rank[b]);
        assert!((1.6..2.4).contains(&ratio(0, 1)), "{by_rank:?}");
        assert!((7.0..13.0).contains(&ratio(0, 9)), "{by_rank:?}");
        // The top 10% of products take most of the lines; every product sells something.
        let top: u32 = by_rank[..20].iter().sum();
        assert!(f64::from(top) / f64::from(lines) > 0.5);
        assert!(by_rank.iter().all(|&n| n > 0));
        // Basket sizes fall off: one line most often, ten lines rarely but sometimes.
        let count = |n| sizes.get(&n).copied().unwrap_or(0);
        assert!(count(1) > count(2) && count(2) > count(3) && count(3) > count(5));
        assert!(count(10) > 0 && count(10) < count(5));
    }

    #[test]
    fn customers_come_back() {
        let requests: Vec<Request> = Generator::new(settings(5)).take(2_000).collect();
        let mut per_customer = BTreeMap::<&str, u32>::new();
        for order in orders(&requests) {
            *per_customer.entry(order.customer_id.as_str()).or_default() += 1;
        }
        let n = orders(&requests).count() as u32;
        assert!(
            per_customer.len() < 500,
            "not every order is a new customer"
        );
        assert!(per_customer.values().filter(|&&c| c >= 3).count() > 50);
        assert!(
            *per_customer.values().max().unwrap() < n / 10,
            "no single hot customer"
        );
    }

    #[test]
    fn ratios_hold_within_sampling_error() {
        let mut s = settings(11);
        s.invalid_ratio = 0.2;
        let n = 10_000;
        let requests: Vec<Request> = Generator::new(s).take(n).collect();
        let invalid: Vec<InvalidKind> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Invalid(i) => Some(i.kind),
                Request::Order(_) => None,
            })
            .collect();
        // Binomial(10,000, 0.2): sd = 40; allow 4 sd.
        assert!(
            (2_000 - 160..=2_000 + 160).contains(&invalid.len()),
            "{}",
            invalid.len()
        );
        let kinds: HashSet<InvalidKind> = invalid.iter().copied().collect();
        assert_eq!(kinds.len(), InvalidKind::ALL.len(), "every kind is drawn");

        let follow = |f: FollowUp| orders(&requests).filter(|o| o.follow_up == f).count();
        let processed = orders(&requests).filter(|o| !o.expect_failure).count() as f64;
        let cancel = follow(FollowUp::Cancel) as f64 / processed;
        let ship = (follow(FollowUp::Ship) + follow(FollowUp::Deliver)) as f64 / processed;
        assert!((0.08..0.12).contains(&cancel), "{cancel}");
        assert!((0.17..0.23).contains(&ship), "{ship}");

        let mut none = settings(11);
        none.invalid_ratio = 0.0;
        assert!(
            Generator::new(none)
                .take(2_000)
                .all(|r| matches!(r, Request::Order(_)))
        );
    }

    #[test]
    fn invalid_bodies_break_their_rule() {
        let mut s = settings(13);
        s.invalid_ratio = 1.0;
        for request in Generator::new(s).take(300) {
            let Request::Invalid(invalid) = request else {
                panic!("only invalid requests at ratio 1");
            };
            let parsed = serde_json::from_slice::<Value>(&invalid.body);
            match invalid.kind {
                InvalidKind::MalformedJson => assert!(parsed.is_err()),
                InvalidKind::WrongContentType => assert_eq!(invalid.content_type, "text/plain"),
                InvalidKind::TooManyLines => {
                    assert_eq!(parsed.unwrap()["items"].as_array().unwrap().len(), 100)
                }
                InvalidKind::FractionalPrice => {
                    assert!(parsed.unwrap()["items"][0]["unitPrice"].is_f64())
                }
                _ => assert!(parsed.is_ok()),
            }
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(settings(1).check().is_ok());
        let mut s = settings(1);
        s.invalid_ratio = 1.5;
        assert!(s.check().is_err());
        let mut s = settings(1);
        s.cancel_ratio = 0.6;
        s.ship_ratio = 0.6;
        assert!(s.check().is_err());
        let mut s = settings(1);
        s.products = 0;
        assert!(s.check().is_err());
    }
}
