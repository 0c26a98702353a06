//! Turning an untrusted JSON body into an [`OrderRequest`].
//!
//! Validation walks the `serde_json::Value` by hand rather than deriving `Deserialize`,
//! because serde stops at the first error while clients deserve every bad field at once,
//! each named by its path (`items[2].unitPrice`).

use crate::error::FieldError;
use crate::ids::{CustomerId, ProductId};
use crate::money::{Currency, MAX_QUANTITY, MAX_UNIT_PRICE, MIN_QUANTITY, Money, Quantity};
use crate::order::{OrderRequest, RequestedLine};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// At most 99 lines: processing reserves stock for every line and updates the order in one
/// DynamoDB transaction, which takes at most 100 actions.
pub const MAX_ITEMS: usize = 99;

const ORDER_FIELDS: [&str; 3] = ["customerId", "items", "currency"];
const ITEM_FIELDS: [&str; 3] = ["productId", "quantity", "unitPrice"];

/// Validates a place-order body. `accepted_currency` is the deployment's currency: it fills
/// in an omitted `currency`, and any other currency is rejected (prices are not converted).
pub fn parse_place_order(
    body: &Value,
    accepted_currency: &Currency,
) -> Result<OrderRequest, Vec<FieldError>> {
    parse_place_order_for(body, accepted_currency, None)
}

/// [`parse_place_order`], with `customerId` optional when the caller is a customer
/// (`caller`): it fills in an omitted one. Whether a given one may be used is the
/// caller's rule ([`crate::Caller::orderer`]), not validation's.
pub fn parse_place_order_for(
    body: &Value,
    accepted_currency: &Currency,
    caller: Option<&CustomerId>,
) -> Result<OrderRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError::new("$", "the body must be a JSON object")]);
    };
    reject_unknown(object, &ORDER_FIELDS, "", &mut errors);

    let customer_id = match (object.get("customerId"), caller) {
        (None | Some(Value::Null), Some(me)) => Some(me.clone()),
        _ => required_str(object, "customerId", "customerId", &mut errors).and_then(|s| {
            CustomerId::parse(s)
                .map_err(|e| errors.push(FieldError::new("customerId", e.0)))
                .ok()
        }),
    };

    let currency = match object.get("currency") {
        None | Some(Value::Null) => Some(accepted_currency.clone()),
        Some(Value::String(s)) => {
            match Currency::parse(s) {
                None => {
                    errors.push(FieldError::new(
                        "currency",
                        "must be a three-letter ISO 4217 code such as USD",
                    ));
                    None
                }
                Some(c) if &c != accepted_currency => {
                    errors.push(FieldError::new(
                    "currency",
                    format!("{c} is not accepted; this deployment takes orders in {accepted_currency}"),
                ));
                    None
                }
                Some(c) => Some(c),
            }
        }
        Some(_) => {
            errors.push(FieldError::new("currency", "must be a string"));
            None
        }
    };

    let items = match object.get("items") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("items", "is required"));
            None
        }
        Some(Value::Array(items)) if items.is_empty() || items.len() > MAX_ITEMS => {
            errors.push(FieldError::new(
                "items",
                format!(
                    "must contain 1 to {MAX_ITEMS} line items (got {})",
                    items.len()
                ),
            ));
            None
        }
        Some(Value::Array(items)) => parse_items(items, &mut errors),
        Some(_) => {
            errors.push(FieldError::new("items", "must be an array of line items"));
            None
        }
    };

    match (customer_id, currency, items) {
        (Some(customer_id), Some(currency), Some(items)) if errors.is_empty() => Ok(OrderRequest {
            customer_id,
            currency,
            items,
        }),
        _ => Err(errors),
    }
}

fn parse_items(items: &[Value], errors: &mut Vec<FieldError>) -> Option<Vec<RequestedLine>> {
    let mut parsed = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    let before = errors.len();
    for (index, item) in items.iter().enumerate() {
        let path = format!("items[{index}]");
        let Some(object) = item.as_object() else {
            errors.push(FieldError::new(path, "must be an object"));
            continue;
        };
        reject_unknown(object, &ITEM_FIELDS, &path, errors);
        let product_field = format!("{path}.productId");
        let product_id = required_str(object, "productId", &product_field, errors).and_then(|s| {
            match ProductId::parse(s) {
                Ok(id) if !seen.insert(id.clone()) => {
                    errors.push(FieldError::new(
                        &product_field,
                        "appears in more than one line; put the whole quantity in one line",
                    ));
                    None
                }
                Ok(id) => Some(id),
                Err(e) => {
                    errors.push(FieldError::new(&product_field, e.0));
                    None
                }
            }
        });
        let quantity = required_integer(object, "quantity", &format!("{path}.quantity"), errors)
            .and_then(|n| {
                let q = u32::try_from(n).ok().and_then(Quantity::new);
                if q.is_none() {
                    errors.push(FieldError::new(
                        format!("{path}.quantity"),
                        format!("must be between {MIN_QUANTITY} and {MAX_QUANTITY}"),
                    ));
                }
                q
            });
        // Optional: the price the client saw. Lines are priced from the catalog; a different
        // price here refuses the order rather than selling at either.
        let field = format!("{path}.unitPrice");
        let unit_price = match object.get("unitPrice") {
            None | Some(Value::Null) => Some(None),
            Some(_) => required_integer(object, "unitPrice", &field, errors).and_then(|n| {
                let price = (n <= MAX_UNIT_PRICE)
                    .then(|| Money::from_minor(n))
                    .flatten();
                if price.is_none() {
                    errors.push(FieldError::new(
                        &field,
                        format!("must be between 0 and {MAX_UNIT_PRICE} minor units"),
                    ));
                }
                price.map(Some)
            }),
        };
        if let (Some(product_id), Some(quantity), Some(unit_price)) =
            (product_id, quantity, unit_price)
        {
            parsed.push(RequestedLine {
                product_id,
                quantity,
                unit_price,
            });
        }
    }
    (errors.len() == before).then_some(parsed)
}

pub(crate) fn reject_unknown(
    object: &Map<String, Value>,
    known: &[&str],
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        let field = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        errors.push(FieldError::new(field, "is not a known field"));
    }
}

pub(crate) fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match object.get(key) {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(FieldError::new(field, "must be a string"));
            None
        }
    }
}

/// Integers only: `19.99` or `2.0` is refused rather than rounded, because a client sending
/// a decimal price has misunderstood minor units and rounding would hide it.
pub(crate) fn required_integer(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<i64> {
    match object.get(key) {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
        Some(Value::Number(n)) if n.is_u64() => {
            // Larger than i64::MAX: out of every range we accept.
            errors.push(FieldError::new(field, "is too large"));
            None
        }
        Some(Value::Number(_)) if key == "quantity" => {
            errors.push(FieldError::new(field, "must be a whole number of units"));
            None
        }
        Some(Value::Number(_)) => {
            errors.push(FieldError::new(
                field,
                "must be a whole number (amounts are integers in the currency's minor unit, e.g. 1999 for 19.99)",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(field, "must be an integer"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    fn fields(body: Value) -> Vec<String> {
        parse_place_order(&body, &usd())
            .expect_err("should be rejected")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn accepts_the_documented_example() {
        let body = json!({"customerId":"c-1","items":[{"productId":"sku-1","quantity":2,"unitPrice":1999}],"currency":"USD"});
        let command = parse_place_order(&body, &usd()).unwrap();
        assert_eq!(command.customer_id.as_str(), "c-1");
        assert_eq!(command.items[0].quantity.get(), 2);
        assert_eq!(command.items[0].unit_price.map(|p| p.minor()), Some(1999));
    }

    #[test]
    fn currency_defaults_to_the_deployment_currency() {
        let body =
            json!({"customerId":"c-1","items":[{"productId":"sku-1","quantity":1,"unitPrice":0}]});
        let command = parse_place_order(&body, &usd()).unwrap();
        assert_eq!(command.currency, usd());
        let explicit = json!({"customerId":"c-1","currency":"USD","items":[{"productId":"sku-1","quantity":1,"unitPrice":0}]});
        assert_eq!(
            parse_place_order(&explicit, &usd()).unwrap().fingerprint(),
            command.fingerprint()
        );
    }

    #[test]
    fn names_every_bad_field_at_once() {
        let body = json!({
            "customerId": "",
            "currency": "EUR",
            "colour": "red",
            "items": [
                {"productId":"sku-1","quantity":0,"unitPrice":1999},
                {"productId":"sku 2","quantity":2,"unitPrice":19.99},
                {"productId":"sku-1","quantity":1,"unitPrice":-1, "note": "x"},
                "not an object"
            ]
        });
        let mut got = fields(body);
        got.sort();
        let mut want = vec![
            "customerId",
            "currency",
            "colour",
            "items[0].quantity",
            "items[1].productId",
            "items[1].unitPrice",
            "items[2].productId",
            "items[2].unitPrice",
            "items[2].note",
            "items[3]",
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn a_decimal_is_refused_with_what_the_field_counts() {
        let body = json!({"customerId": "c", "items": [
            {"productId": "p", "quantity": 2.0, "unitPrice": 19.99}
        ]});
        let Err(errors) = parse_place_order(&body, &usd()) else {
            panic!("decimals are refused");
        };
        let message = |field: &str| {
            errors
                .iter()
                .find(|e| e.field == field)
                .map(|e| e.message.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            message("items[0].quantity"),
            "must be a whole number of units"
        );
        assert!(message("items[0].unitPrice").contains("minor unit"));
    }

    #[test]
    fn bounds() {
        let item = json!({"productId":"p","quantity":1,"unitPrice":1});
        assert_eq!(fields(json!({"customerId":"c","items":[]})), ["items"]);
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"productId":format!("p{i}"),"quantity":1,"unitPrice":1}))
            .collect();
        assert_eq!(fields(json!({"customerId":"c","items":many})), ["items"]);
        let hundred: Vec<Value> = (0..MAX_ITEMS).map(|i| json!({"productId":format!("p{i}"),"quantity":10000,"unitPrice":MAX_UNIT_PRICE})).collect();
        assert!(parse_place_order(&json!({"customerId":"c","items":hundred}), &usd()).is_ok());
        assert_eq!(
            fields(
                json!({"customerId":"c","items":[{"productId":"p","quantity":10001,"unitPrice":1}]})
            ),
            ["items[0].quantity"]
        );
        assert_eq!(
            fields(
                json!({"customerId":"c","items":[{"productId":"p","quantity":1,"unitPrice":MAX_UNIT_PRICE + 1}]})
            ),
            ["items[0].unitPrice"]
        );
        assert_eq!(
            fields(
                json!({"customerId":"c","items":[{"productId":"p","quantity":1,"unitPrice":u64::MAX}]})
            ),
            ["items[0].unitPrice"]
        );
        assert_eq!(
            fields(json!({"customerId":"c".repeat(65),"items":[item]})),
            ["customerId"]
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(fields(json!([1, 2])), ["$"]);
        assert_eq!(
            fields(json!({"customerId":7,"items":{}})),
            ["customerId", "items"]
        );
        assert_eq!(
            fields(
                json!({"customerId":"c","items":[{"productId":"p","quantity":"2","unitPrice":1}]})
            ),
            ["items[0].quantity"]
        );
        assert_eq!(
            fields(
                json!({"customerId":"c","currency":5,"items":[{"productId":"p","quantity":1,"unitPrice":1}]})
            ),
            ["currency"]
        );
        assert_eq!(
            fields(json!({"items":[{"productId":"p","quantity":1,"unitPrice":1}]})),
            ["customerId"]
        );
    }
}
