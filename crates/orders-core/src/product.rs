//! The catalog: products with a price and the stock that order processing reserves.

use crate::error::FieldError;
use crate::ids::ProductId;
use crate::money::{MAX_UNIT_PRICE, Money};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MAX_NAME_LEN: usize = 200;
/// A ceiling that keeps stock arithmetic far from overflow and catches typos (an extra 0s).
pub const MAX_STOCK: u64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub product_id: ProductId,
    pub name: String,
    /// List price in minor units. Orders carry their own `unitPrice` (what the customer was
    /// quoted); processing checks existence and stock, not price.
    pub price: Money,
    /// Units available to reserve. Never negative: every reservation is a conditional
    /// decrement.
    pub stock: u64,
    /// Bumped by every change — catalog edits, stock adjustments, reservations and releases —
    /// so `If-Match` on a version read before a sale is stale (`ETag: "<version>"`). Items
    /// written before versions existed read as 0.
    #[serde(default)]
    pub version: u64,
    pub updated_at: Timestamp,
}

/// A validated `PUT /products/{productId}` body. `stock` is optional: it is the initial
/// stock of a new product; on an existing one it replaces the stock only together with
/// `If-Match` (a stock read before a sale must not overwrite the sale's reservation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutProduct {
    pub name: String,
    pub price: Money,
    pub stock: Option<u64>,
}

/// A validated `POST /products/{productId}/stock` body: `{"add": n}`, n ≠ 0 (negative takes
/// units out, never below zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockAdjustment {
    pub add: i64,
}

impl StockAdjustment {
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(object) = body.as_object() else {
            return Err(vec![FieldError::new("$", "the body must be a JSON object")]);
        };
        let mut errors: Vec<FieldError> = object
            .keys()
            .filter(|k| k.as_str() != "add")
            .map(|k| FieldError::new(k.clone(), "is not a known field"))
            .collect();
        let limit = MAX_STOCK as i64;
        let add = match object.get("add").map(Value::as_i64) {
            Some(Some(n)) if n != 0 && (-limit..=limit).contains(&n) => Some(n),
            None => {
                errors.push(FieldError::new("add", "is required"));
                None
            }
            _ => {
                errors.push(FieldError::new(
                    "add",
                    format!("must be a non-zero integer from -{MAX_STOCK} to {MAX_STOCK}"),
                ));
                None
            }
        };
        match add {
            Some(add) if errors.is_empty() => Ok(Self { add }),
            _ => Err(errors),
        }
    }
}

impl PutProduct {
    /// Validates `{"name":"…","price":1999,"stock":100}`, naming every bad field.
    pub fn parse(body: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(object) = body.as_object() else {
            return Err(vec![FieldError::new("$", "the body must be a JSON object")]);
        };
        let mut errors: Vec<FieldError> = object
            .keys()
            .filter(|k| !["name", "price", "stock"].contains(&k.as_str()))
            .map(|k| FieldError::new(k.clone(), "is not a known field"))
            .collect();
        let name = match object.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_LEN => {
                Some(s.trim().to_owned())
            }
            Some(Value::String(_)) => {
                errors.push(FieldError::new(
                    "name",
                    format!("must be 1 to {MAX_NAME_LEN} characters"),
                ));
                None
            }
            None | Some(Value::Null) => {
                errors.push(FieldError::new("name", "is required"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new("name", "must be a string"));
                None
            }
        };
        let price = match object.get("price").map(Value::as_i64) {
            Some(Some(n)) if (0..=MAX_UNIT_PRICE).contains(&n) => Money::from_minor(n),
            None => {
                errors.push(FieldError::new("price", "is required"));
                None
            }
            _ => {
                errors.push(FieldError::new(
                    "price",
                    format!("must be an integer from 0 to {MAX_UNIT_PRICE} minor units"),
                ));
                None
            }
        };
        let stock = match object.get("stock").map(Value::as_u64) {
            Some(Some(n)) if n <= MAX_STOCK => Ok(Some(n)),
            None => Ok(None),
            _ => {
                errors.push(FieldError::new(
                    "stock",
                    format!("must be an integer from 0 to {MAX_STOCK}"),
                ));
                Err(())
            }
        };
        match (name, price, stock) {
            (Some(name), Some(price), Ok(stock)) if errors.is_empty() => {
                Ok(Self { name, price, stock })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_product() {
        let p = PutProduct::parse(&json!({"name":" Blue mug ","price":1299,"stock":40})).unwrap();
        assert_eq!(
            (p.name.as_str(), p.price.minor(), p.stock),
            ("Blue mug", 1299, Some(40))
        );
        let rename = PutProduct::parse(&json!({"name":"Mug","price":1299})).unwrap();
        assert_eq!(rename.stock, None);
    }

    #[test]
    fn stock_adjustments_are_non_zero_bounded_integers() {
        assert_eq!(
            StockAdjustment::parse(&json!({"add": -3})).unwrap(),
            StockAdjustment { add: -3 }
        );
        for bad in [
            json!({"add": 0}),
            json!({"add": 1.5}),
            json!({"add": "2"}),
            json!({"add": MAX_STOCK + 1}),
            json!({}),
            json!({"add": 1, "set": 2}),
            json!([1]),
        ] {
            assert!(StockAdjustment::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_every_bad_field() {
        let errors = PutProduct::parse(&json!({"name":"","price":12.5,"stock":-1,"colour":"red"}))
            .unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["colour", "name", "price", "stock"]);
        assert_eq!(PutProduct::parse(&json!({})).unwrap_err().len(), 2);
        assert!(PutProduct::parse(&json!("x")).is_err());
        assert!(PutProduct::parse(&json!({"name":"a","price":1,"stock":MAX_STOCK + 1})).is_err());
    }
}
