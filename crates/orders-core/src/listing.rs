//! The list-orders query: filters, a creation-time window, page size and an opaque cursor.
//!
//! Orders are listed newest first. Because order ids are time-ordered, "the page after X"
//! is simply "ids below X" — so the cursor carries the last id shown, and any index sorted
//! by order id can serve it. The cursor is base64 so clients treat it as opaque and we stay
//! free to change what is inside (the `v1:`/`w1:` prefixes).
//!
//! # Searching by creation time
//! For the same reason a creation-time window `[from, to)` is an id range: from the smallest
//! id of `from`'s millisecond to the largest of the millisecond before `to`. Every listing
//! index is sorted by order id, so the window (and the cursor with it) becomes one key
//! condition, `orderId BETWEEN :lo AND :hi`, on whichever index serves the filters: a page
//! costs what it costs without a window, never a filter that reads and drops items.
//! An order's id is minted with its `createdAt`, so the window is a window on `createdAt` —
//! but for an order whose placement was resumed under its `Idempotency-Key` after a failed
//! attempt: it keeps the id of the first attempt, is created at the retry, and is found at
//! the first attempt's time (place-order could create it at its id's time instead).

use crate::error::FieldError;
use crate::ids::{CustomerId, OrderId, ProductId};
use crate::order::{Order, OrderStatus};
use crate::report::window_bound;
use crate::time::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOrders {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<CustomerId>,
    pub limit: usize,
    /// Only orders with ids strictly below this one (older).
    pub before: Option<OrderId>,
    /// Only orders created in this window (`from`/`to`); unbounded by default.
    pub window: CreatedWindow,
}

/// Orders created in `[from, to)`, to the millisecond; a missing side is unbounded.
///
/// Unlike the analytics windows there is no longest window (`report::MAX_WINDOW_DAYS`):
/// that limit bounds how many buckets one report reads, while a listing page reads at most
/// `limit + 1` orders per index partition whatever the window spans. The bounds' range is
/// the analytics' one ([`window_bound`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CreatedWindow {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

impl CreatedWindow {
    /// Every order.
    pub const ALL: CreatedWindow = CreatedWindow {
        from: None,
        to: None,
    };

    pub fn is_all(&self) -> bool {
        *self == Self::ALL
    }

    /// The smallest and largest ids an order created in the window can have (inclusive),
    /// or `None` when the window holds no millisecond. Bounds before 1970 count as 1970.
    pub fn id_bounds(&self) -> Option<(OrderId, OrderId)> {
        let millis = |t: Timestamp| u64::try_from(t.unix_millis()).unwrap_or(0);
        let low = OrderId::first_of_millisecond(self.from.map_or(0, millis));
        let high = match self.to {
            // `to` is exclusive: the last millisecond in is the one before it.
            Some(to) => OrderId::last_of_millisecond(millis(to).checked_sub(1)?),
            None => OrderId::last_of_millisecond(u64::MAX),
        };
        (low <= high).then_some((low, high))
    }

    /// Whether an order created at `at` is in the window.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from.is_none_or(|from| from <= at) && self.to.is_none_or(|to| at < to)
    }
}

/// The ids of an index partition a listing page reads (every listing index is sorted by
/// order id): what the adapters turn into a sort-key condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRange {
    /// Every id: no condition on the sort key.
    All,
    /// Ids strictly below this one: `orderId < :before`.
    Below(OrderId),
    /// Ids from the first to the second, both included: `orderId BETWEEN :lo AND :hi`.
    Between(OrderId, OrderId),
    /// No id can match (an empty window, or a cursor at its start): nothing to read.
    Empty,
}

impl IdRange {
    pub fn contains(&self, id: &OrderId) -> bool {
        match self {
            IdRange::All => true,
            IdRange::Below(before) => id < before,
            IdRange::Between(low, high) => low <= id && id <= high,
            IdRange::Empty => false,
        }
    }
}

impl ListOrders {
    /// The window and the cursor as one range of ids. Without a window, the shapes listings
    /// have always used (none, or `< before`); with one, a single `BETWEEN`, because a key
    /// condition allows one condition on the sort key — the cursor lowers its upper end.
    pub fn id_range(&self) -> IdRange {
        if self.window.is_all() {
            return self.before.map_or(IdRange::All, IdRange::Below);
        }
        let Some((low, mut high)) = self.window.id_bounds() else {
            return IdRange::Empty;
        };
        if let Some(before) = self.before {
            match before.previous() {
                Some(below) => high = high.min(below),
                None => return IdRange::Empty,
            }
        }
        if low <= high {
            IdRange::Between(low, high)
        } else {
            IdRange::Empty
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Present when more orders may follow.
    pub next: Option<OrderId>,
}

/// What an order listing's cursor holds: where the next page starts, and the window of the
/// listing it belongs to, so that it cannot continue a listing of another window (it would
/// silently skip that window's orders newer than the cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last order shown: the next page is older.
    pub before: OrderId,
    pub window: CreatedWindow,
}

/// `v1:<id>` without a window — the form cursors had before windows existed, so those
/// handed out earlier still work — and `w1:<from ms>:<to ms>:<id>` with one (a side left
/// empty when open).
pub fn encode_cursor(last: &OrderId, window: &CreatedWindow) -> String {
    if window.is_all() {
        return URL_SAFE_NO_PAD.encode(format!("v1:{last}"));
    }
    let millis = |t: Option<Timestamp>| t.map(|t| t.unix_millis().to_string());
    URL_SAFE_NO_PAD.encode(format!(
        "w1:{}:{}:{last}",
        millis(window.from).unwrap_or_default(),
        millis(window.to).unwrap_or_default()
    ))
}

pub fn decode_cursor(cursor: &str) -> Option<Cursor> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    if let Some(id) = text.strip_prefix("v1:") {
        return Some(Cursor {
            before: OrderId::parse(id).ok()?,
            window: CreatedWindow::ALL,
        });
    }
    let mut parts = text.strip_prefix("w1:")?.splitn(3, ':');
    let mut bound = || -> Option<Option<Timestamp>> {
        match parts.next()? {
            "" => Some(None),
            ms => Timestamp::from_unix_millis(ms.parse().ok()?).map(Some),
        }
    };
    let (from, to) = (bound()?, bound()?);
    let before = OrderId::parse(parts.next()?).ok()?;
    let window = CreatedWindow { from, to };
    // A window cursor always has a side: anything else was not made here.
    (!window.is_all()).then_some(Cursor { before, window })
}

/// The catalog's cursor: the last product id shown.
pub fn encode_product_cursor(last: &ProductId) -> String {
    URL_SAFE_NO_PAD.encode(format!("p1:{last}"))
}

pub fn decode_product_cursor(cursor: &str) -> Option<ProductId> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    ProductId::parse(text.strip_prefix("p1:")?).ok()
}

/// `GET /products?limit=&cursor=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListProducts {
    pub limit: usize,
    pub after: Option<ProductId>,
}

impl ListProducts {
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = ListProducts {
            limit: DEFAULT_LIMIT,
            after: None,
        };
        let mut errors = Vec::new();
        for (name, value) in params {
            match name {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => query.limit = n,
                    _ => errors.push(FieldError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    )),
                },
                "cursor" => match decode_product_cursor(value) {
                    Some(id) => query.after = Some(id),
                    None => errors.push(FieldError::new(
                        "cursor",
                        "is not a cursor this API returned; start again without it",
                    )),
                },
                other => errors.push(FieldError::new(
                    other,
                    "is not a known parameter (limit, cursor)",
                )),
            }
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }
}

impl ListOrders {
    /// Parses query-string parameters, naming each bad one. Unknown parameters are refused
    /// so a typo (`?staus=FAILED`) is not silently ignored and mistaken for "no filter".
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut query = ListOrders {
            status: None,
            customer_id: None,
            limit: DEFAULT_LIMIT,
            before: None,
            window: CreatedWindow::ALL,
        };
        let mut errors = Vec::new();
        let mut cursor_window = None;
        let mut window_ok = true;
        for (name, value) in params {
            match name {
                "from" | "to" => match window_bound(name, Timestamp::parse_rounding_up(value)) {
                    Ok(at) if name == "from" => query.window.from = Some(at),
                    Ok(at) => query.window.to = Some(at),
                    Err(e) => {
                        window_ok = false;
                        errors.push(e);
                    }
                },
                "status" => match value.parse::<OrderStatus>() {
                    Ok(status) => query.status = Some(status),
                    Err(()) => errors.push(FieldError::new(
                        "status",
                        "must be one of PENDING, PROCESSED, FAILED, SHIPPED, DELIVERED, CANCELLED",
                    )),
                },
                "customerId" => match CustomerId::parse(value) {
                    Ok(id) => query.customer_id = Some(id),
                    Err(e) => errors.push(FieldError::new("customerId", e.0)),
                },
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => query.limit = n,
                    _ => errors.push(FieldError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}"),
                    )),
                },
                "cursor" => match decode_cursor(value) {
                    Some(cursor) => {
                        query.before = Some(cursor.before);
                        cursor_window = Some(cursor.window);
                    }
                    None => errors.push(FieldError::new(
                        "cursor",
                        "is not a cursor this API returned; start again without it",
                    )),
                },
                other => errors.push(FieldError::new(
                    other,
                    "is not a known parameter (status, customerId, from, to, limit, cursor)",
                )),
            }
        }
        if matches!(query.window, CreatedWindow { from: Some(from), to: Some(to) } if from >= to) {
            window_ok = false;
            errors.push(FieldError::new("from", "must be before to"));
        }
        // Judged only against a window that parsed: a bad `from` is reported as such, not
        // also as a cursor of another window.
        if window_ok && cursor_window.is_some_and(|w| w != query.window) {
            errors.push(FieldError::new(
                "cursor",
                "belongs to a listing with another from/to: send it with the from and to it \
                 was returned for, or start again without it",
            ));
        }
        if errors.is_empty() {
            Ok(query)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn defaults() {
        let q = ListOrders::parse([]).unwrap();
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert!(q.status.is_none() && q.customer_id.is_none() && q.before.is_none());
        assert!(q.window.is_all());
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn window(from: Option<&str>, to: Option<&str>) -> CreatedWindow {
        CreatedWindow {
            from: from.map(at),
            to: to.map(at),
        }
    }

    /// An order id minted at `at` (as place-order mints them), with the given random bits.
    fn id_at(at: Timestamp, random: u128) -> OrderId {
        OrderId::new(Ulid::from_parts(at.unix_millis() as u64, random))
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let id = OrderId::new(Ulid::from_parts(5, 9));
        let cursor = encode_cursor(&id, &CreatedWindow::ALL);
        assert_eq!(
            decode_cursor(&cursor),
            Some(Cursor {
                before: id,
                window: CreatedWindow::ALL
            })
        );
        assert_eq!(
            cursor,
            URL_SAFE_NO_PAD.encode(format!("v1:{id}")),
            "as before"
        );
        assert!(!cursor.contains(&id.to_string()), "the cursor is opaque");
        assert_eq!(decode_cursor("nope"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2:x")), None);
        for windowed in [
            window(
                Some("2026-11-22T10:00:00.001Z"),
                Some("2026-11-22T11:00:00Z"),
            ),
            window(Some("1970-01-01T00:00:00Z"), None),
            window(None, Some("9998-12-31T23:59:59.999Z")),
        ] {
            let cursor = encode_cursor(&id, &windowed);
            assert_eq!(
                decode_cursor(&cursor),
                Some(Cursor {
                    before: id,
                    window: windowed
                }),
                "{windowed:?}"
            );
        }
        for forged in [
            format!("w1:::{id}"),
            format!("w1:x::{id}"),
            format!("w1:1:2:{id}:3"),
            format!("w1:1:{id}"),
            "w1:1:2:".to_owned(),
        ] {
            assert_eq!(
                decode_cursor(&URL_SAFE_NO_PAD.encode(&forged)),
                None,
                "{forged}"
            );
        }
    }

    #[test]
    fn a_window_is_the_ids_of_its_milliseconds_from_inclusive_to_exclusive() {
        let (from, to) = (at("2026-11-22T10:00:00Z"), at("2026-11-22T10:00:00.003Z"));
        let w = CreatedWindow {
            from: Some(from),
            to: Some(to),
        };
        let (low, high) = w.id_bounds().unwrap();
        let last_in = Timestamp::from_unix_millis(to.unix_millis() - 1).unwrap();
        let first_out_before = Timestamp::from_unix_millis(from.unix_millis() - 1).unwrap();
        let in_range = |id: OrderId| low <= id && id <= high;
        for random in [0, 1, u128::MAX >> 48] {
            // An order at exactly `from` is in; one at `to` is out; the edges inside are in.
            assert!(in_range(id_at(from, random)), "at from");
            assert!(
                in_range(id_at(last_in, random)),
                "the last millisecond before to"
            );
            assert!(!in_range(id_at(to, random)), "at to");
            assert!(!in_range(id_at(first_out_before, random)), "before from");
        }
        assert_eq!(
            low,
            OrderId::first_of_millisecond(from.unix_millis() as u64)
        );
        assert_eq!(
            high,
            OrderId::last_of_millisecond(last_in.unix_millis() as u64)
        );
        // The same answer as comparing creation times.
        for ms in from.unix_millis() - 2..to.unix_millis() + 2 {
            let t = Timestamp::from_unix_millis(ms).unwrap();
            assert_eq!(in_range(id_at(t, 7)), w.contains(t), "{t}");
        }

        // Open sides.
        let (low, high) = window(None, None).id_bounds().unwrap();
        assert_eq!(low, OrderId::first_of_millisecond(0));
        assert!(
            high >= OrderId::last_of_millisecond(
                at("9998-12-31T23:59:59.999Z").unix_millis() as u64
            )
        );
        let (low, _) = window(None, Some("1970-01-01T00:00:00.001Z"))
            .id_bounds()
            .unwrap();
        assert_eq!(low, OrderId::first_of_millisecond(0));
        // A window that holds no millisecond holds no id.
        assert_eq!(window(None, Some("1970-01-01T00:00:00Z")).id_bounds(), None);
        assert_eq!(
            window(Some("2026-11-22T10:00:01Z"), Some("2026-11-22T10:00:00Z")).id_bounds(),
            None
        );
    }

    #[test]
    fn the_cursor_narrows_the_window_to_one_range() {
        let from = at("2026-11-22T10:00:00Z");
        let to = at("2026-11-22T11:00:00Z");
        let mut query = ListOrders::parse([]).unwrap();
        assert_eq!(query.id_range(), IdRange::All);
        let last_shown = id_at(at("2026-11-22T10:30:00Z"), 5);
        query.before = Some(last_shown);
        assert_eq!(
            query.id_range(),
            IdRange::Below(last_shown),
            "no window: as ever"
        );

        query.window = CreatedWindow {
            from: Some(from),
            to: Some(to),
        };
        let IdRange::Between(low, high) = query.id_range() else {
            panic!("{:?}", query.id_range())
        };
        assert_eq!(low, id_at(from, 0));
        assert_eq!(Some(high), last_shown.previous());
        let range = query.id_range();
        assert!(range.contains(&id_at(from, 0)));
        assert!(range.contains(&id_at(at("2026-11-22T10:30:00Z"), 4)));
        assert!(
            !range.contains(&last_shown),
            "the last order shown is not repeated"
        );

        // A cursor past the window's end leaves the window's end in force.
        query.before = Some(id_at(at("2026-11-22T12:00:00Z"), 0));
        assert!(!query.id_range().contains(&id_at(to, 0)));
        // A cursor at the window's first id: nothing older is left in it.
        query.before = Some(id_at(from, 0));
        assert_eq!(query.id_range(), IdRange::Empty);
        query.before = Some(OrderId::first_of_millisecond(0));
        assert_eq!(query.id_range(), IdRange::Empty);
    }

    #[test]
    fn parses_a_window() {
        let q = ListOrders::parse([
            ("from", "2026-11-22T10:00:00+01:00"),
            ("to", "2026-11-22T10:00:00.0001Z"),
        ])
        .unwrap();
        assert_eq!(
            q.window,
            window(
                Some("2026-11-22T09:00:00Z"),
                Some("2026-11-22T10:00:00.001Z")
            )
        );
        let q = ListOrders::parse([("to", "2026-11-22T10:00:00Z")]).unwrap();
        assert_eq!(q.window, window(None, Some("2026-11-22T10:00:00Z")));

        // A cursor goes with the window it was returned for, and only with it.
        let w = window(Some("2026-11-22T09:00:00Z"), Some("2026-11-22T10:00:00Z"));
        let id = id_at(at("2026-11-22T09:30:00Z"), 1);
        let cursor = encode_cursor(&id, &w);
        let same = [
            ("from", "2026-11-22T09:00:00Z"),
            ("to", "2026-11-22T10:00:00Z"),
            ("cursor", cursor.as_str()),
        ];
        let q = ListOrders::parse(same).unwrap();
        assert_eq!((q.window, q.before), (w, Some(id)));
        // The same instants spelt otherwise are the same window.
        let q = ListOrders::parse([
            ("cursor", cursor.as_str()),
            ("to", "2026-11-22T11:00:00+01:00"),
            ("from", "2026-11-22T09:00:00.000Z"),
        ]);
        assert!(q.is_ok(), "{q:?}");
        let unwindowed = encode_cursor(&id, &CreatedWindow::ALL);
        for params in [
            vec![("cursor", cursor.as_str())],
            vec![
                ("from", "2026-11-22T09:00:00Z"),
                ("cursor", cursor.as_str()),
            ],
            vec![
                ("from", "2026-11-22T09:00:00Z"),
                ("to", "2026-11-22T10:00:00.001Z"),
                ("cursor", cursor.as_str()),
            ],
            vec![
                ("to", "2026-11-22T10:00:00Z"),
                ("cursor", unwindowed.as_str()),
            ],
        ] {
            let errors = ListOrders::parse(params.clone()).unwrap_err();
            let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, ["cursor"], "{params:?}");
            assert!(errors[0].message.contains("from/to"), "{params:?}");
        }
    }

    #[test]
    fn names_every_bad_window_parameter() {
        let fields = |params: &[(&str, &str)]| -> Vec<String> {
            ListOrders::parse(params.iter().copied())
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(
            fields(&[("from", "yesterday"), ("to", "2026-13-01T00:00:00Z")]),
            ["from", "to"]
        );
        for bad in [
            "2026-11-22",
            "2026-11-22T10:00:00",
            "1969-12-31T23:59:59Z",
            "9999-01-01T00:00:00Z",
            "9999-12-31T23:00:00-01:00",
            "",
        ] {
            assert_eq!(fields(&[("from", bad)]), ["from"], "{bad}");
            assert_eq!(fields(&[("to", bad)]), ["to"], "{bad}");
        }
        for (from, to) in [
            ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"),
            ("2026-11-22T10:00:00Z", "2026-11-22T09:59:59.999Z"),
            // The same millisecond once rounded: an empty window, refused as such.
            ("2026-11-22T10:00:00.0001Z", "2026-11-22T10:00:00.0009Z"),
        ] {
            assert_eq!(
                fields(&[("from", from), ("to", to)]),
                ["from"],
                "{from} {to}"
            );
        }
        // A bad bound and a cursor: the bound is named, the cursor is not blamed for it.
        let cursor = encode_cursor(
            &id_at(at("2026-11-22T09:30:00Z"), 1),
            &window(Some("2026-11-22T09:00:00Z"), None),
        );
        assert_eq!(fields(&[("from", "x"), ("cursor", &cursor)]), ["from"]);
        // Far apart is fine: a page's cost does not grow with the window.
        assert!(
            ListOrders::parse([
                ("from", "1970-01-01T00:00:00Z"),
                ("to", "9998-12-31T23:59:59Z")
            ])
            .is_ok()
        );
    }

    #[test]
    fn parses_filters() {
        let id = OrderId::new(Ulid::from_parts(5, 9));
        let cursor = encode_cursor(&id, &CreatedWindow::ALL);
        let q = ListOrders::parse([
            ("status", "FAILED"),
            ("customerId", "c-9"),
            ("limit", "100"),
            ("cursor", cursor.as_str()),
        ])
        .unwrap();
        assert_eq!(q.status, Some(OrderStatus::Failed));
        assert_eq!(q.customer_id.unwrap().as_str(), "c-9");
        assert_eq!(q.limit, 100);
        assert_eq!(q.before, Some(id));
    }

    #[test]
    fn product_listing_parameters() {
        let id = ProductId::parse("sku-7").unwrap();
        let cursor = encode_product_cursor(&id);
        let q = ListProducts::parse([("limit", "5"), ("cursor", cursor.as_str())]).unwrap();
        assert_eq!((q.limit, q.after), (5, Some(id)));
        assert!(
            decode_cursor(&cursor).is_none(),
            "order and product cursors are distinct"
        );
        let errors =
            ListProducts::parse([("limit", "500"), ("cursor", "zz"), ("status", "x")]).unwrap_err();
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn names_bad_parameters() {
        let errors = ListOrders::parse([
            ("status", "failed"),
            ("limit", "0"),
            ("cursor", "x"),
            ("staus", "FAILED"),
            ("customerId", "a b"),
        ])
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["status", "limit", "cursor", "staus", "customerId"]);
        for limit in ["101", "-1", "ten", ""] {
            assert!(ListOrders::parse([("limit", limit)]).is_err(), "{limit}");
        }
    }
}
