//! The list-orders query: filters, page size and an opaque cursor.
//!
//! Orders are listed newest first. Because order ids are time-ordered, "the page after X"
//! is simply "ids below X" — so the cursor carries the last id shown, and any index sorted
//! by order id can serve it. The cursor is base64 so clients treat it as opaque and we stay
//! free to change what is inside (the `v1:` prefix).

use crate::error::FieldError;
use crate::ids::{CustomerId, OrderId, ProductId};
use crate::order::{Order, OrderStatus};
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Present when more orders may follow.
    pub next: Option<OrderId>,
}

pub fn encode_cursor(last: &OrderId) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{last}"))
}

pub fn decode_cursor(cursor: &str) -> Option<OrderId> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    OrderId::parse(text.strip_prefix("v1:")?).ok()
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
        };
        let mut errors = Vec::new();
        for (name, value) in params {
            match name {
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
                    Some(id) => query.before = Some(id),
                    None => errors.push(FieldError::new(
                        "cursor",
                        "is not a cursor this API returned; start again without it",
                    )),
                },
                other => errors.push(FieldError::new(
                    other,
                    "is not a known parameter (status, customerId, limit, cursor)",
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

#[cfg(test)]
mod tests {
    use super::*;
    use ulid::Ulid;

    #[test]
    fn defaults() {
        let q = ListOrders::parse([]).unwrap();
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert!(q.status.is_none() && q.customer_id.is_none() && q.before.is_none());
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let id = OrderId::new(Ulid::from_parts(5, 9));
        let cursor = encode_cursor(&id);
        assert_eq!(decode_cursor(&cursor), Some(id));
        assert!(!cursor.contains(&id.to_string()), "the cursor is opaque");
        assert_eq!(decode_cursor("nope"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("v2:x")), None);
    }

    #[test]
    fn parses_filters() {
        let id = OrderId::new(Ulid::from_parts(5, 9));
        let cursor = encode_cursor(&id);
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
