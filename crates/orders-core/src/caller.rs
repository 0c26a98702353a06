//! Who is asking, and what each role may do.
//!
//! Authentication is API Gateway's (its JWT authorizer verifies the token before a function
//! runs); the functions decide authorization from the claims it passes on:
//! - **staff** (a token with the [`STAFF_SCOPE`] scope) manage the catalog, ship and deliver,
//!   and see every order and the analytics. Where the issuer puts the user's groups in the
//!   token (Cognito's `cognito:groups`), staff must also be in the [`STAFF_GROUP`] group: a
//!   Cognito app client grants any of its scopes to any user who asks, so the scope alone
//!   would make every user staff;
//! - a **customer** (any other token; its subject is the customer id) places orders for
//!   itself, sees, lists and cancels its own orders — another customer's order is "not
//!   found", never "forbidden", so ids cannot be probed;
//! - **anonymous**: a route without an authorizer (a deployment that runs without sign-in);
//!   nothing is restricted there, as before sign-in existed.

use crate::error::OrderError;
use crate::ids::CustomerId;
use crate::order::Order;

/// The scope that makes a token staff's.
pub const STAFF_SCOPE: &str = "orders/admin";
/// The group staff belong to, where the token lists groups.
pub const STAFF_GROUP: &str = "staff";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Customer(CustomerId),
    Staff,
}

impl Caller {
    /// The caller a token's subject, scopes and (where the issuer lists them) groups
    /// describe (`None` subject: no token, no authorizer).
    pub fn from_token(
        subject: Option<&str>,
        scopes: &[&str],
        groups: Option<&[&str]>,
    ) -> Result<Self, OrderError> {
        let Some(subject) = subject else {
            return Ok(Caller::Anonymous);
        };
        let in_staff_group = groups.is_none_or(|groups| groups.contains(&STAFF_GROUP));
        if scopes.contains(&STAFF_SCOPE) && in_staff_group {
            return Ok(Caller::Staff);
        }
        CustomerId::parse(subject)
            .map(Caller::Customer)
            .map_err(|_| {
                OrderError::Forbidden(
                    "the token's subject is not a valid customer id, and the token is not staff's"
                        .into(),
                )
            })
    }

    /// Staff's routes (catalog writes, shipping, analytics): a customer is refused.
    pub fn require_staff(&self, what: &str) -> Result<(), OrderError> {
        match self {
            Caller::Customer(_) => Err(OrderError::Forbidden(format!(
                "{what} is for staff (a token with the {STAFF_SCOPE} scope)"
            ))),
            Caller::Staff | Caller::Anonymous => Ok(()),
        }
    }

    /// Whether the caller may see `order` (else it is "not found" to them).
    pub fn may_see(&self, order: &Order) -> bool {
        match self {
            Caller::Customer(me) => &order.customer_id == me,
            Caller::Staff | Caller::Anonymous => true,
        }
    }

    /// The customer whose orders a listing may show: a customer's own, whatever it asked for
    /// (asking for another's is refused); staff and anonymous callers get what they asked.
    pub fn listing_scope(
        &self,
        asked: Option<CustomerId>,
    ) -> Result<Option<CustomerId>, OrderError> {
        match (self, asked) {
            (Caller::Customer(me), Some(other)) if &other != me => Err(OrderError::Forbidden(
                "a customer lists only its own orders: leave customerId out, or send its own"
                    .into(),
            )),
            (Caller::Customer(me), _) => Ok(Some(me.clone())),
            (_, asked) => Ok(asked),
        }
    }

    /// Reads about one customer (its summary): a customer reads only its own.
    pub fn require_self(&self, customer: &CustomerId) -> Result<(), OrderError> {
        match self {
            Caller::Customer(me) if me != customer => Err(OrderError::Forbidden(
                "a customer reads only its own summary".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The customer an order is placed for: a customer places only for itself (the body's
    /// `customerId` may be left out); staff and anonymous callers must name one.
    pub fn orderer(&self, named: Option<CustomerId>) -> Result<CustomerId, OrderError> {
        match (self, named) {
            (Caller::Customer(me), Some(other)) if &other != me => Err(OrderError::Forbidden(
                "a customer places orders only for itself: leave customerId out, or send its own"
                    .into(),
            )),
            (Caller::Customer(me), _) => Ok(me.clone()),
            (_, Some(named)) => Ok(named),
            (_, None) => Err(OrderError::validation("customerId", "is required")),
        }
    }

    /// The customer a storefront event is attributed to (`POST /events`): a customer's
    /// events are its own (`customerId` may be left out, and any other is refused); staff
    /// (a storefront backend relaying its shoppers' events) and anonymous callers name
    /// whom they like, or nobody (a shopper not signed in).
    pub fn event_customer(
        &self,
        named: Option<CustomerId>,
    ) -> Result<Option<CustomerId>, OrderError> {
        match (self, named) {
            (Caller::Customer(me), Some(other)) if &other != me => Err(OrderError::Forbidden(
                "a customer sends events only for itself: leave customerId out, or send its own"
                    .into(),
            )),
            (Caller::Customer(me), _) => Ok(Some(me.clone())),
            (_, named) => Ok(named),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> CustomerId {
        CustomerId::parse(s).unwrap()
    }

    #[test]
    fn roles_come_from_the_scopes_and_the_subject() {
        assert_eq!(
            Caller::from_token(None, &[], None).unwrap(),
            Caller::Anonymous
        );
        assert_eq!(
            Caller::from_token(Some("ops-1"), &["openid", STAFF_SCOPE], None).unwrap(),
            Caller::Staff
        );
        assert_eq!(
            Caller::from_token(Some("c-1"), &["openid"], None).unwrap(),
            Caller::Customer(id("c-1"))
        );
        assert!(matches!(
            Caller::from_token(Some("not a customer/id"), &[], None),
            Err(OrderError::Forbidden(_))
        ));
        // Where the token lists groups, the scope alone does not make staff.
        let admin = ["openid", STAFF_SCOPE];
        assert_eq!(
            Caller::from_token(Some("c-1"), &admin, Some(&["buyers"])).unwrap(),
            Caller::Customer(id("c-1"))
        );
        assert_eq!(
            Caller::from_token(Some("ops-1"), &admin, Some(&["staff"])).unwrap(),
            Caller::Staff
        );
    }

    #[test]
    fn a_customer_acts_only_for_itself() {
        let alice = Caller::Customer(id("alice"));
        assert_eq!(alice.orderer(None).unwrap(), id("alice"));
        assert_eq!(alice.orderer(Some(id("alice"))).unwrap(), id("alice"));
        assert!(matches!(
            alice.orderer(Some(id("bob"))),
            Err(OrderError::Forbidden(_))
        ));
        assert_eq!(alice.listing_scope(None).unwrap(), Some(id("alice")));
        assert!(alice.listing_scope(Some(id("bob"))).is_err());
        assert!(alice.require_staff("shipping").is_err());
        assert_eq!(Caller::Staff.listing_scope(None).unwrap(), None);
        assert!(Caller::Staff.orderer(None).is_err());
        assert!(Caller::Anonymous.require_staff("shipping").is_ok());
        assert_eq!(alice.event_customer(None).unwrap(), Some(id("alice")));
        assert!(matches!(
            alice.event_customer(Some(id("bob"))),
            Err(OrderError::Forbidden(_))
        ));
        assert_eq!(Caller::Staff.event_customer(None).unwrap(), None);
        assert_eq!(
            Caller::Anonymous.event_customer(Some(id("bob"))).unwrap(),
            Some(id("bob"))
        );
    }
}
