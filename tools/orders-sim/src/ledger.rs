//! What the sim placed and what it expects of each order: the reconcile's source of truth.
//! Saved with `--ledger FILE` so a later `--reconcile-ledger FILE` can check a run after
//! operators have replayed dead letters.
//!
//! Orders of storefront sessions are entries like the traffic's (their `seq` from
//! `traffic::sessions::SESSION_ORDER_SEQ`); the sessions' events are kept as sent.

use crate::expect::Facts;
use crate::traffic::sessions::Event;
use crate::traffic::{FollowUp, Line, Product};
use crate::window::{minute_of, parse_time};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub seq: u64,
    pub order_id: String,
    pub customer_id: String,
    pub created_at: String,
    pub lines: Vec<Line>,
    /// A line names a product missing from the catalog: processing must fail it.
    pub expect_failure: bool,
    pub follow_up: FollowUp,
    /// Set when the follow-up was applied (the API answered with the target status).
    #[serde(default)]
    pub follow_up_done: bool,
    /// Processing failed it for lack of stock: only possible with a limited `--stock`.
    #[serde(default)]
    pub out_of_stock: bool,
}

impl Entry {
    pub fn total(&self) -> i64 {
        self.lines.iter().map(Line::total).sum()
    }

    /// The status the order must end in, and whether it must have been processed.
    pub fn expected_status(&self) -> (&'static str, bool) {
        if self.expect_failure || self.out_of_stock {
            return ("FAILED", false);
        }
        match self.follow_up {
            FollowUp::None => ("PROCESSED", true),
            FollowUp::Cancel => ("CANCELLED", true),
            FollowUp::Ship => ("SHIPPED", true),
            FollowUp::Deliver => ("DELIVERED", true),
        }
    }

    pub fn facts(&self) -> anyhow::Result<Facts> {
        let (status, processed) = self.expected_status();
        Ok(Facts {
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            minute: minute_of(parse_time(&self.created_at)?),
            status: status.to_owned(),
            processed,
            lines: self
                .lines
                .iter()
                .map(|l| (l.product_id.clone(), i64::from(l.quantity), l.total()))
                .collect(),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    pub run_id: String,
    pub base_url: String,
    pub seed: u64,
    /// Customer ids of this run start with this: how its orders are told apart in listings.
    pub customer_prefix: String,
    pub catalog: Vec<Product>,
    /// Stock each product was loaded with.
    pub stock: u64,
    pub orders: Vec<Entry>,
    /// Storefront events the API acknowledged (`202`), each once, as sent: the activity
    /// analytics must count exactly these. Absent from ledgers of runs without sessions.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Requests whose outcome contradicts the plan (an invalid request accepted, a valid one
    /// refused): each is a difference in the reconcile.
    pub unexpected: Vec<String>,
}

impl Ledger {
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let text = serde_json::to_string(self)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(follow_up: FollowUp, expect_failure: bool) -> Entry {
        Entry {
            seq: 1,
            order_id: "o".into(),
            customer_id: "run-c00001".into(),
            created_at: "2026-11-22T10:00:30.000Z".into(),
            lines: vec![Line {
                product_id: "p".into(),
                quantity: 3,
                unit_price: 250,
            }],
            expect_failure,
            follow_up,
            follow_up_done: false,
            out_of_stock: false,
        }
    }

    #[test]
    fn expected_status_follows_the_plan() {
        assert_eq!(
            entry(FollowUp::None, false).expected_status(),
            ("PROCESSED", true)
        );
        assert_eq!(
            entry(FollowUp::Cancel, false).expected_status(),
            ("CANCELLED", true)
        );
        assert_eq!(
            entry(FollowUp::Deliver, false).expected_status(),
            ("DELIVERED", true)
        );
        assert_eq!(
            entry(FollowUp::None, true).expected_status(),
            ("FAILED", false)
        );
        let mut sold_out = entry(FollowUp::Ship, false);
        sold_out.out_of_stock = true;
        assert_eq!(sold_out.expected_status(), ("FAILED", false));
        let facts = entry(FollowUp::Ship, false).facts().unwrap();
        assert_eq!(facts.minute, 1_795_341_600 / 60); // 2026-11-22T10:00Z
        assert_eq!(facts.lines, vec![("p".to_string(), 3, 750)]);
        assert_eq!(entry(FollowUp::None, false).total(), 750);
    }
}
