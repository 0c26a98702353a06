//! Storefront activity as the sim sees the API (`docs/activity.md`): `POST /events`, and the
//! activity and funnel reports.

use super::{Api, Timed, transient};
use crate::window::Window;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

/// `GET /analytics/activity` (only the fields the sim reads).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityView {
    pub from: String,
    pub to: String,
    pub active_sessions: i64,
    pub active_customers: i64,
    /// Some distinct count is an estimate.
    pub approximate: bool,
    pub views: i64,
    pub cart_adds: i64,
    pub cart_removes: i64,
    pub checkouts: i64,
    pub cart_sessions: i64,
    pub checkout_sessions: i64,
    pub abandoned_sessions: i64,
    pub abandonment_rate: f64,
}

/// `GET /analytics/funnel?productId=`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunnelView {
    pub from: String,
    pub to: String,
    pub product_id: String,
    pub views: i64,
    pub cart_adds: i64,
    pub cart_removes: i64,
    pub checkouts: i64,
    pub orders: i64,
    pub view_to_cart_rate: f64,
    pub cart_to_order_rate: f64,
    pub view_to_order_rate: f64,
}

#[derive(Debug, Deserialize)]
struct AcceptedBody {
    accepted: u64,
}

/// How one `POST /events` ended after its retries.
#[derive(Debug)]
pub enum Posted {
    /// `202`, with the events the API counted in the batch (copies inside it once).
    Accepted(u64),
    /// A final answer other than 202 (4xx, or 5xx once retries ran out), or a 202 whose
    /// body is not `{"accepted": n}`.
    Refused { status: u16, body: String },
    /// No HTTP answer at all once retries ran out.
    Unreachable(String),
}

impl Api {
    /// `POST /events`, sent again unchanged on transient failures (a 503 says: resend the
    /// batch), which is safe because the server counts each event once by its session and
    /// `eventId`.
    pub async fn post_events(&self, body: &Value) -> Timed<Posted> {
        let url = format!("{}/events", self.base);
        let bytes = body.to_string();
        let sent = self
            .send(
                || {
                    self.client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(bytes.clone())
                },
                transient,
            )
            .await;
        let value = match sent.value {
            Ok((StatusCode::ACCEPTED, _, body)) => {
                match serde_json::from_slice::<AcceptedBody>(&body) {
                    Ok(a) => Posted::Accepted(a.accepted),
                    Err(err) => Posted::Refused {
                        status: 202,
                        body: format!(
                            "unreadable answer ({err}): {}",
                            String::from_utf8_lossy(&body)
                        ),
                    },
                }
            }
            Ok((status, _, body)) => Posted::Refused {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            },
            Err(err) => Posted::Unreachable(err),
        };
        Timed {
            value,
            latency: sent.latency,
            retries: sent.retries,
        }
    }

    pub async fn activity(&self, window: &Window) -> anyhow::Result<ActivityView> {
        self.get_json(&format!("/analytics/activity?{}", window.query()))
            .await
    }

    pub async fn funnel(&self, window: &Window, product_id: &str) -> anyhow::Result<FunnelView> {
        self.get_json(&format!(
            "/analytics/funnel?productId={product_id}&{}",
            window.query()
        ))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_and_funnel_parse_as_documented() {
        let activity: ActivityView = serde_json::from_str(
            r#"{"from":"2026-11-22T10:00:00.000Z","to":"2026-11-22T11:00:00.000Z",
                "activeSessions":5,"activeCustomers":2,"approximate":false,"views":40,
                "cartAdds":6,"cartRemoves":1,"checkouts":2,"cartSessions":4,
                "checkoutSessions":2,"abandonedSessions":3,"abandonmentRate":0.75}"#,
        )
        .unwrap();
        assert_eq!(
            (activity.cart_sessions, activity.abandonment_rate),
            (4, 0.75)
        );
        let funnel: FunnelView = serde_json::from_str(
            r#"{"from":"a","to":"b","productId":"sku-1","views":200,"cartAdds":30,
                "cartRemoves":5,"checkouts":12,"orders":9,"viewToCartRate":0.15,
                "cartToOrderRate":0.3,"viewToOrderRate":0.045}"#,
        )
        .unwrap();
        assert_eq!((funnel.product_id.as_str(), funnel.orders), ("sku-1", 9));
        let accepted: AcceptedBody = serde_json::from_str(r#"{"accepted":3}"#).unwrap();
        assert_eq!(accepted.accepted, 3);
    }

    /// The domain's own reports (what the routes will serialise) read as these views.
    #[test]
    fn the_domain_reports_read_as_these_views() {
        use orders_core::activity::{self, ActivityReport, Counts, FunnelReport};
        use orders_core::{ProductId, Timestamp};
        let window = orders_core::report::Window::parse(
            Some("2026-11-22T10:00:00Z"),
            Some("2026-11-22T11:00:00Z"),
            Timestamp::parse("2026-11-22T12:00:00Z").unwrap(),
        )
        .unwrap();
        let report = ActivityReport::for_window(&window, &activity::ActivityView::default());
        let view: ActivityView =
            serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
        assert_eq!((view.active_sessions, view.abandonment_rate), (0, 0.0));
        let counts = Counts {
            views: 10,
            cart_adds: 4,
            cart_removes: 1,
            checkouts: 2,
        };
        let orders = orders_core::analytics::ProductTotals {
            units: 3,
            revenue: 300,
            orders: 2,
        };
        let funnel = FunnelReport::new(
            &window,
            ProductId::parse("sku-1").unwrap(),
            &counts,
            &orders,
        );
        let view: FunnelView =
            serde_json::from_value(serde_json::to_value(&funnel).unwrap()).unwrap();
        assert_eq!(
            (view.cart_adds, view.orders, view.cart_to_order_rate),
            (4, 2, 0.5)
        );
    }
}
