//! Counter items that cannot outgrow a cap, whatever ids clients send.
//!
//! A counter item of a bucket (`totals`, `products#NN`) is stored as a chain of links:
//! `products#03`, then `products#03.1`, `products#03.2`, … Every write goes to the open
//! (last) link and adds an upper bound of what it grows the link by to the link's
//! `itemBytes`, on condition that the sum stays within [`ITEM_CAP`]: the bound holds by
//! construction, checked by DynamoDB, not by the emulator. A write that does not fit seals
//! the link (`sealed`, after which nothing changes it) and goes to the next one. Counters
//! add up, so a product's counters may be spread over links; readers sum the whole chain.
//!
//! Exactly once across links: a Kinesis shard's watermark is the highest one in the chain.
//! Sealed links never change, so a writer that walked past them knows their watermarks
//! for good and checks a batch against them itself; the open link checks the rest.
//!
//! Size accounting counts every attribute a write may create at its largest (names plus
//! 21 bytes per number) unless this instance wrote that attribute to that link before:
//! an instance restart or a second writer counts some attributes twice, so a link may be
//! sealed before it is full, never after.

use crate::errors::classify;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use orders_core::OrderError;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

type Item = HashMap<String, AttributeValue>;

/// The cap on a counter link's size by DynamoDB's rules (names plus values), under 64 KB.
pub const ITEM_CAP: usize = 64_000;
/// The link's own upper bound of its size.
const BYTES: &str = "itemBytes";
/// Present on a link that is closed for good.
const SEALED: &str = "sealed";
/// The largest a DynamoDB number is stored as (38 significant digits).
const NUMBER_BYTES: usize = 21;
/// A watermark: a sequence number padded to 64 digits.
const WATERMARK_BYTES: usize = 64;
/// Links of one chain a write walks before giving up (a chain of 64 KB links this long
/// would hold 64 MB of counters of one bucket).
const MAX_LINKS: u32 = 1_000;
/// Conditional failures a write retries on one link that neither sealed nor refused it
/// (only an emulator that returns no old item gets here).
const RACES: usize = 5;
/// Attribute names remembered per instance before forgetting all at once.
const REMEMBERED_NAMES: usize = 500_000;

/// The stored name of link `link` of item `name`: `products#03`, `products#03.1`, …
pub fn link_name(name: &str, link: u32) -> String {
    if link == 0 {
        name.to_owned()
    } else {
        format!("{name}.{link}")
    }
}

/// The `pk` of the link after `pk` (`d#2026-11-22/products#03.1` → `….2`).
pub fn next_link(pk: &str) -> String {
    let (name, link) = parse_link(pk);
    link_name(name, link + 1)
}

/// The item name and link number of a stored link's name (`products#03.2` → 2).
pub fn parse_link(name: &str) -> (&str, u32) {
    match name.rsplit_once('.') {
        Some((base, n)) => match n.parse::<u32>() {
            Ok(link) => (base, link),
            Err(_) => (name, 0),
        },
        None => (name, 0),
    }
}

/// Whether a stored link is sealed.
pub fn is_sealed(item: &Item) -> bool {
    item.contains_key(SEALED)
}

/// Whether an attribute of a link is bookkeeping, not a counter or a watermark.
pub fn is_bookkeeping(name: &str) -> bool {
    name == BYTES || name == SEALED || name == "pk"
}

/// The watermarks a link carries, by stream shard.
pub fn watermarks(item: &Item) -> BTreeMap<String, String> {
    item.iter()
        .filter_map(|(name, value)| {
            let shard = name.strip_prefix("wm#")?;
            Some((shard.to_owned(), value.as_s().ok()?.clone()))
        })
        .collect()
}

/// An item's size by DynamoDB's rules: attribute names plus values (numbers counted by
/// their text, at least what DynamoDB stores).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(set) | AttributeValue::Ns(set) => set.iter().map(String::len).sum(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + item_size(map) + map.len(),
        _ => 0,
    }
}

/// Reads the items of `keys` and, for every sealed link among them, the links after it,
/// until every chain's open link is read.
pub async fn read_chains(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    consistent: bool,
) -> Result<Vec<Item>, OrderError> {
    let mut out = Vec::new();
    let mut keys = keys;
    while !keys.is_empty() {
        let items = super::batch_get(client, table, keys, consistent).await?;
        keys = items
            .iter()
            .filter(|item| is_sealed(item))
            .filter_map(|item| item.get("pk")?.as_s().ok())
            .map(|pk| Item::from([("pk".to_owned(), AttributeValue::S(next_link(pk)))]))
            .collect();
        out.extend(items);
    }
    Ok(out)
}

/// A bulk load's links: `attrs` (counters and nothing else) packed in order into links
/// that respect the cap, every full one sealed, each with its `itemBytes`.
pub fn pack(pk_prefix: &str, name: &str, attrs: Vec<(String, AttributeValue)>) -> Vec<Item> {
    let overhead = |link: u32| base_bytes(&format!("{pk_prefix}{}", link_name(name, link)));
    let mut links = vec![Item::new()];
    let mut size = overhead(0);
    for (attr, value) in attrs {
        let grows = attr.len() + NUMBER_BYTES.max(value_size(&value));
        if size + grows > ITEM_CAP {
            let link = links.last_mut().expect("links start with one");
            link.insert(SEALED.to_owned(), AttributeValue::Bool(true));
            link.insert(BYTES.to_owned(), AttributeValue::N(size.to_string()));
            links.push(Item::new());
            size = overhead((links.len() - 1) as u32);
        }
        size += grows;
        links
            .last_mut()
            .expect("links start with one")
            .insert(attr, value);
    }
    if links.last().is_some_and(|l| !l.is_empty()) {
        links
            .last_mut()
            .expect("links start with one")
            .insert(BYTES.to_owned(), AttributeValue::N(size.to_string()));
    }
    links
}

/// What a link counts on creation: its key, its `itemBytes` and room for `sealed`.
fn base_bytes(pk: &str) -> usize {
    "pk".len() + pk.len() + BYTES.len() + NUMBER_BYTES + SEALED.len() + 1
}

/// What a write must find before it applies.
#[derive(Debug, Clone, Copy)]
pub enum Guard<'a> {
    /// A stream batch from `first` to `last` of `shard`: applies if the shard's watermark
    /// is below `first`, and moves it to `last`. Sequence numbers padded.
    After {
        shard: &'a str,
        first: &'a str,
        last: &'a str,
    },
    /// The rest of a batch: applies if the shard's watermark is exactly `expected`.
    At {
        shard: &'a str,
        expected: &'a str,
        last: &'a str,
    },
    /// A rebuild: applies if the open link still carries exactly `expected` for each of
    /// `shards` (and did not exist, if `fresh`), starting at link `open`.
    Unchanged {
        open: u32,
        expected: &'a BTreeMap<String, String>,
        shards: &'a [String],
        fresh: bool,
    },
}

impl Guard<'_> {
    fn stream(&self) -> Option<(&str, &str)> {
        match self {
            Guard::After { shard, last, .. } | Guard::At { shard, last, .. } => Some((shard, last)),
            Guard::Unchanged { .. } => None,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The guard did not hold. For a stream guard: the shard's watermark in the chain.
    Refused(Option<String>),
}

/// Where this instance last found an item's open link, and the highest watermark of each
/// stream shard in the sealed links before it.
#[derive(Debug, Clone, Default)]
struct ChainState {
    open: u32,
    sealed: BTreeMap<String, String>,
}

impl ChainState {
    fn absorb(&mut self, link: &Item) {
        for (shard, w) in watermarks(link) {
            let entry = self.sealed.entry(shard).or_default();
            if w > *entry {
                *entry = w;
            }
        }
        self.open += 1;
    }
}

/// What one instance knows of the chains it writes: their open links, and the attributes
/// it has written to each link (those do not grow the link again).
#[derive(Debug, Default)]
pub struct Chains {
    state: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    chains: HashMap<String, ChainState>,
    names: HashMap<String, HashSet<String>>,
    remembered: usize,
}

impl Chains {
    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn chain(&self, item: &str) -> ChainState {
        self.lock().chains.get(item).cloned().unwrap_or_default()
    }

    /// The link of `item` (`<bucket>/<name>`) this instance last wrote to.
    pub fn open_link(&self, item: &str) -> u32 {
        self.chain(item).open
    }

    /// What writing `names` to link `pk` may grow it by.
    fn growth<'a>(&self, pk: &str, names: impl Iterator<Item = (&'a str, usize)>) -> usize {
        let known = self.lock();
        let written = known.names.get(pk);
        let mut bytes = if written.is_some() { 0 } else { base_bytes(pk) };
        for (name, value) in names {
            if !written.is_some_and(|w| w.contains(name)) {
                bytes += name.len() + value;
            }
        }
        bytes
    }

    fn learn<'a>(
        &self,
        item: &str,
        chain: ChainState,
        pk: &str,
        names: impl Iterator<Item = &'a str>,
    ) {
        let mut known = self.lock();
        if known.remembered >= REMEMBERED_NAMES {
            known.names.clear();
            known.remembered = 0;
        }
        let set = known.names.entry(pk.to_owned()).or_default();
        let before = set.len();
        set.extend(names.map(str::to_owned));
        let added = set.len() - before;
        known.remembered += added;
        known.chains.insert(item.to_owned(), chain);
    }
}

/// One write of counters to a chain.
pub struct Write<'a> {
    pub client: &'a Client,
    pub table: &'a str,
    pub chains: &'a Chains,
    /// `<bucket>/` — the items' `pk` prefix.
    pub prefix: &'a str,
    /// The item's name (`totals`, `products#03`).
    pub name: &'a str,
    /// Counter deltas, zeros left out; at most what one update expression may carry.
    pub counters: &'a [(String, i64)],
    pub guard: Guard<'a>,
}

impl Write<'_> {
    /// Applies the counters to the chain's open link under the guard, sealing full links
    /// on the way.
    pub async fn send(self) -> Result<Outcome, OrderError> {
        let item = format!("{}{}", self.prefix, self.name);
        let mut chain = match self.guard {
            Guard::Unchanged { open, .. } => ChainState {
                open,
                ..ChainState::default()
            },
            _ => self.chains.chain(&item),
        };
        // A rebuild past a link it read open: the next one must hold no watermark yet.
        let none = BTreeMap::new();
        let mut expected = match self.guard {
            Guard::Unchanged { expected, .. } => expected,
            _ => &none,
        };
        let mut races = 0;
        while chain.open < MAX_LINKS {
            let pk = format!("{}{}", self.prefix, link_name(self.name, chain.open));
            if let Guard::After { shard, first, .. } = self.guard
                && chain.sealed.get(shard).is_some_and(|w| w.as_str() >= first)
            {
                // A sealed link has these records: report the chain's watermark.
                let open = self.watermark(&pk, shard).await?;
                return Ok(Outcome::Refused(
                    open.into_iter()
                        .chain(chain.sealed.get(shard).cloned())
                        .max(),
                ));
            }
            let request = self.request(&pk, &chain, expected)?;
            match request.send().await {
                Ok(_) => {
                    let watermark = self.guard.stream().map(|(shard, _)| format!("wm#{shard}"));
                    let names = self.counters.iter().map(|(n, _)| n.as_str());
                    self.chains
                        .learn(&item, chain, &pk, names.chain(watermark.as_deref()));
                    return Ok(Outcome::Applied);
                }
                Err(err) if super::condition_failed(&err) => {
                    let old = match err.into_service_error() {
                        UpdateItemError::ConditionalCheckFailedException(e) => e.item,
                        _ => None,
                    };
                    let old = match old {
                        Some(old) => old,
                        None => self.get(&pk).await?,
                    };
                    if is_sealed(&old) {
                        if !self.passes_unchanged(&old, expected) {
                            return Ok(Outcome::Refused(None));
                        }
                        expected = &none;
                        chain.absorb(&old);
                        continue;
                    }
                    if !self.guard_holds(&old, &chain, expected) {
                        return Ok(Outcome::Refused(self.chain_watermark(&old, &chain)));
                    }
                    let stored: usize = old
                        .get(BYTES)
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    let growth = self.growth(&pk);
                    if !old.is_empty() && stored + growth > ITEM_CAP {
                        let sealed = self.seal(&pk).await?;
                        if !self.passes_unchanged(&sealed, expected) {
                            return Ok(Outcome::Refused(None));
                        }
                        expected = &none;
                        chain.absorb(&sealed);
                        continue;
                    }
                    races += 1;
                    if races > RACES {
                        return Err(OrderError::Unavailable(
                            format!("counter link {pk} kept refusing a write that fits").into(),
                        ));
                    }
                }
                Err(err) => return Err(classify(err)),
            }
        }
        Err(OrderError::Unexpected(
            format!("counter item {item} has more than {MAX_LINKS} links").into(),
        ))
    }

    fn growth(&self, pk: &str) -> usize {
        let watermark = self
            .guard
            .stream()
            .map(|(shard, _)| (format!("wm#{shard}"), WATERMARK_BYTES));
        let names: Vec<(&str, usize)> = self
            .counters
            .iter()
            .map(|(n, _)| (n.as_str(), NUMBER_BYTES))
            .chain(watermark.as_ref().map(|(n, b)| (n.as_str(), *b)))
            .collect();
        self.chains.growth(pk, names.into_iter())
    }

    fn request(
        &self,
        pk: &str,
        chain: &ChainState,
        expected: &BTreeMap<String, String>,
    ) -> Result<
        aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        OrderError,
    > {
        let growth = self.growth(pk);
        let room = ITEM_CAP.checked_sub(growth).ok_or_else(|| {
            OrderError::Unexpected(format!("one write of {growth} bytes to {pk}").into())
        })?;
        let mut names = HashMap::from([
            ("#b".to_owned(), BYTES.to_owned()),
            ("#s".to_owned(), SEALED.to_owned()),
        ]);
        let mut values = HashMap::from([
            (":b".to_owned(), AttributeValue::N(growth.to_string())),
            (":room".to_owned(), AttributeValue::N(room.to_string())),
        ]);
        let mut adds = vec!["#b :b".to_owned()];
        for (i, (name, n)) in self.counters.iter().enumerate() {
            adds.push(format!("#a{i} :v{i}"));
            names.insert(format!("#a{i}"), name.clone());
            values.insert(format!(":v{i}"), AttributeValue::N(n.to_string()));
        }
        let mut expression = String::new();
        let mut conditions = vec![
            "attribute_not_exists(#s)".to_owned(),
            "(attribute_not_exists(#b) OR #b <= :room)".to_owned(),
        ];
        match self.guard {
            Guard::After { shard, first, last } => {
                expression.push_str("SET #wm = :last ");
                names.insert("#wm".into(), format!("wm#{shard}"));
                values.insert(":last".into(), AttributeValue::S(last.to_owned()));
                values.insert(":first".into(), AttributeValue::S(first.to_owned()));
                conditions.push("(attribute_not_exists(#wm) OR #wm < :first)".into());
            }
            Guard::At {
                shard,
                expected: w,
                last,
            } => {
                expression.push_str("SET #wm = :last ");
                names.insert("#wm".into(), format!("wm#{shard}"));
                values.insert(":last".into(), AttributeValue::S(last.to_owned()));
                values.insert(":expected".into(), AttributeValue::S(w.to_owned()));
                // The sealed links may hold the watermark; then the open one has none yet.
                conditions.push(if chain.sealed.get(shard).map(String::as_str) == Some(w) {
                    "(attribute_not_exists(#wm) OR #wm = :expected)".into()
                } else {
                    "#wm = :expected".into()
                });
            }
            Guard::Unchanged { shards, fresh, .. } => {
                if fresh && expected.is_empty() && chain.open == 0 {
                    conditions.push("attribute_not_exists(pk)".into());
                }
                for (k, shard) in shards.iter().enumerate() {
                    names.insert(format!("#w{k}"), format!("wm#{shard}"));
                    match expected.get(shard) {
                        Some(w) => {
                            conditions.push(format!("#w{k} = :w{k}"));
                            values.insert(format!(":w{k}"), AttributeValue::S(w.clone()));
                        }
                        None => conditions.push(format!("attribute_not_exists(#w{k})")),
                    }
                }
            }
        }
        expression.push_str(&format!("ADD {}", adds.join(", ")));
        let condition = conditions.join(" AND ");
        if expression.len() > MAX_EXPRESSION_BYTES || condition.len() > MAX_EXPRESSION_BYTES {
            return Err(OrderError::Unexpected(
                format!(
                    "expressions of {} and {} bytes for {pk}",
                    expression.len(),
                    condition.len()
                )
                .into(),
            ));
        }
        Ok(self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld))
    }

    /// Whether the guard holds on `old` (the open link as it was when refused).
    fn guard_holds(
        &self,
        old: &Item,
        chain: &ChainState,
        expected: &BTreeMap<String, String>,
    ) -> bool {
        let mark = |shard: &str| {
            old.get(&format!("wm#{shard}"))
                .and_then(|v| v.as_s().ok())
                .cloned()
        };
        match self.guard {
            Guard::After { shard, first, .. } => mark(shard).is_none_or(|w| w.as_str() < first),
            Guard::At {
                shard, expected: w, ..
            } => match mark(shard) {
                Some(m) => m == w,
                None => chain.sealed.get(shard).map(String::as_str) == Some(w),
            },
            Guard::Unchanged { fresh, .. } => {
                !(fresh && chain.open == 0 && expected.is_empty() && !old.is_empty())
                    && self.passes_unchanged(old, expected)
            }
        }
    }

    /// For a rebuild: whether `link` carries exactly the watermarks the rebuild read.
    fn passes_unchanged(&self, link: &Item, expected: &BTreeMap<String, String>) -> bool {
        match self.guard {
            Guard::Unchanged { shards, .. } => shards.iter().all(|shard| {
                link.get(&format!("wm#{shard}")).and_then(|v| v.as_s().ok()) == expected.get(shard)
            }),
            _ => true,
        }
    }

    fn chain_watermark(&self, open: &Item, chain: &ChainState) -> Option<String> {
        let (shard, _) = self.guard.stream()?;
        let here = open
            .get(&format!("wm#{shard}"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        here.into_iter()
            .chain(chain.sealed.get(shard).cloned())
            .max()
    }

    /// Closes `pk` for good; returns it as sealed (by this call or an earlier one).
    async fn seal(&self, pk: &str) -> Result<Item, OrderError> {
        let result = self
            .client
            .update_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .update_expression("SET #s = :t")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#s)")
            .expression_attribute_names("#s", SEALED)
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.unwrap_or_default()),
            Err(err) if super::condition_failed(&err) => match err.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(e) if e.item.is_some() => {
                    Ok(e.item.unwrap_or_default())
                }
                _ => self.get(pk).await,
            },
            Err(err) => Err(classify(err)),
        }
    }

    async fn get(&self, pk: &str) -> Result<Item, OrderError> {
        let output = self
            .client
            .get_item()
            .table_name(self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(output.item.unwrap_or_default())
    }

    async fn watermark(&self, pk: &str, shard: &str) -> Result<Option<String>, OrderError> {
        let link = self.get(pk).await?;
        Ok(link
            .get(&format!("wm#{shard}"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }
}

/// DynamoDB's limit on one expression string.
pub const MAX_EXPRESSION_BYTES: usize = 4_096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_named_after_their_item() {
        assert_eq!(link_name("products#03", 0), "products#03");
        assert_eq!(link_name("products#03", 2), "products#03.2");
        assert_eq!(parse_link("products#03.2"), ("products#03", 2));
        assert_eq!(parse_link("products#03"), ("products#03", 0));
        assert_eq!(
            next_link("d#2026-11-22/products#03"),
            "d#2026-11-22/products#03.1"
        );
        assert_eq!(
            next_link("d#2026-11-22/products#03.9"),
            "d#2026-11-22/products#03.10"
        );
    }

    #[test]
    fn a_bulk_load_packs_counters_into_links_under_the_cap() {
        let attrs: Vec<(String, AttributeValue)> = (0..5_000)
            .map(|i| {
                (
                    format!("u#{}-{i}", "x".repeat(60)),
                    AttributeValue::N("123456789".into()),
                )
            })
            .collect();
        let links = pack("d#2026-11-22/", "products#03", attrs);
        assert!(links.len() > 5, "{} links", links.len());
        for (i, link) in links.iter().enumerate() {
            let mut sized = link.clone();
            sized.insert(
                "pk".into(),
                AttributeValue::S(format!(
                    "d#2026-11-22/{}",
                    link_name("products#03", i as u32)
                )),
            );
            assert!(
                item_size(&sized) <= ITEM_CAP,
                "link {i}: {}",
                item_size(&sized)
            );
            assert_eq!(is_sealed(link), i + 1 < links.len());
        }
        let counters: usize = links
            .iter()
            .map(|l| l.keys().filter(|k| !is_bookkeeping(k)).count())
            .sum();
        assert_eq!(counters, 5_000);
    }
}
