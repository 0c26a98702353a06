//! Live updates through the local stack: a ticket from `POST /live/tickets`, a socket on
//! the WebSocket API the runner serves from Terraform's definition, pushes from the notify
//! function — each caller sees exactly what the HTTP API would show it.

use crate::pipeline::put_product_at;
use crate::{api, client, client_as, unique};
use futures::{SinkExt, StreamExt};
use orders_tests::Holder;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ticket(http: &reqwest::Client) -> Value {
    let response = http
        .post(format!("{}/live/tickets", api()))
        .send()
        .await
        .expect("the local stack answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

/// A socket opened with a fresh ticket and subscribed to `topics`.
pub async fn subscribed(http: &reqwest::Client, topics: &[&str]) -> Socket {
    let url = ticket(http).await["url"].as_str().unwrap().to_owned();
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    let reply = request(
        &mut socket,
        json!({"action": "subscribe", "topics": topics}),
    )
    .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    socket
}

/// Sends `message` and returns the reply (pushes that come first are skipped).
async fn request(socket: &mut Socket, message: Value) -> Value {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
    loop {
        let frame = next(socket, Duration::from_secs(10))
            .await
            .expect("a reply");
        if !matches!(
            frame["type"].as_str(),
            Some("order" | "analytics" | "batch")
        ) {
            return frame;
        }
    }
}

/// The next JSON message within `wait`, if any.
async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return serde_json::from_str(&text).ok(),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Messages until `done` says so (or 30 s pass).
async fn until(socket: &mut Socket, done: impl FnMut(&Value) -> bool) -> Vec<Value> {
    within(socket, Duration::from_secs(30), done).await
}

async fn within(
    socket: &mut Socket,
    wait: Duration,
    mut done: impl FnMut(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(frame) = next(socket, left).await else {
            break;
        };
        // Several messages of one batch come in one frame.
        let messages = match frame["type"].as_str() {
            Some("batch") => frame["messages"].as_array().cloned().unwrap_or_default(),
            _ => vec![frame],
        };
        let mut stop = false;
        for message in messages {
            stop |= done(&message);
            seen.push(message);
        }
        if stop {
            break;
        }
    }
    seen
}

#[tokio::test]
async fn each_socket_gets_what_its_caller_may_see_pushed() {
    let run = unique("live");
    let (alice_id, bob_id) = (format!("{run}-alice"), format!("{run}-bob"));
    let alice = client_as(Holder::Customer(&alice_id));
    let bob = client_as(Holder::Customer(&bob_id));
    let product = format!("{run}-lamp");
    put_product_at(&product, 2500, 10).await;

    let mut staff_socket = subscribed(&client(), &["orders", "analytics"]).await;
    let mut alice_socket = subscribed(&alice, &["orders"]).await;
    let mut bob_socket = subscribed(&bob, &["orders"]).await;

    let placed = Instant::now();
    let response = alice
        .post(format!("{}/orders", api()))
        .json(&json!({"items": [{"productId": product, "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    let id = order["orderId"].as_str().unwrap().to_owned();
    let mine = |m: &Value| m["type"] == "order" && m["order"]["orderId"] == id.as_str();

    // Alice sees her order placed, then processed.
    let seen = until(&mut alice_socket, |m| {
        mine(m) && m["order"]["status"] == "PROCESSED"
    })
    .await;
    let first = seen.iter().find(|m| mine(m)).expect("alice's order pushed");
    println!(
        "place -> pushed to its customer: {} ms (first message {})",
        placed.elapsed().as_millis(),
        first["eventType"]
    );
    assert!(
        seen.iter()
            .any(|m| mine(m) && m["order"]["status"] == "PROCESSED"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|m| m["type"] == "order" && m["order"]["customerId"] == alice_id.as_str()),
        "a customer gets its own orders only: {seen:?}"
    );

    // Staff see it too, with what it adds to the analytics.
    let seen = until(&mut staff_socket, |m| {
        m["type"] == "analytics" && m["orderId"] == id.as_str() && m["processed"] == 1
    })
    .await;
    assert!(seen.iter().any(mine), "{seen:?}");
    let delta = seen
        .iter()
        .find(|m| m["type"] == "analytics" && m["orderId"] == id.as_str() && m["processed"] == 1)
        .expect("the processed delta");
    assert_eq!(delta["revenue"], 5000);
    assert_eq!(delta["units"], 2);

    // Bob's socket never hears of Alice's order (pushed to the others by now).
    let leaked = within(&mut bob_socket, Duration::from_secs(2), |_| false).await;
    assert!(
        !leaked.iter().any(mine),
        "another customer's order was pushed: {leaked:?}"
    );
}

#[tokio::test]
async fn a_socket_needs_a_fresh_ticket_and_customers_get_no_analytics() {
    let live_url = ticket(&client()).await["url"]
        .as_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    // No ticket, a made-up one: refused before the socket opens.
    for url in [live_url.clone(), format!("{live_url}?ticket=made-up")] {
        match tokio_tungstenite::connect_async(&url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{url}")
            }
            other => panic!("{url} should be refused with 401, got {other:?}"),
        }
    }
    // A ticket opens one socket only.
    let url = ticket(&client()).await["url"].as_str().unwrap().to_owned();
    let (_first, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
    // Without a token there is no ticket.
    let anonymous = reqwest::Client::new()
        .post(format!("{}/live/tickets", api()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let customer = client_as(Holder::Customer("live-carol"));
    let url = ticket(&customer).await["url"].as_str().unwrap().to_owned();
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let reply = request(
        &mut socket,
        json!({"action": "subscribe", "topics": ["orders", "analytics"]}),
    )
    .await;
    assert_eq!(reply["error"]["code"], "forbidden", "{reply}");
    let reply = request(&mut socket, json!({"action": "shout"})).await;
    assert_eq!(reply["error"]["code"], "unknown_action", "{reply}");
}

/// Every message `socket` receives from now on (batches unpacked), collected in the
/// background until the returned task is aborted.
pub fn collect(
    mut socket: Socket,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&seen);
    let task = tokio::spawn(async move {
        loop {
            let messages = within(&mut socket, Duration::from_secs(3600), |_| true).await;
            if messages.is_empty() {
                return;
            }
            sink.lock().unwrap().extend(messages);
        }
    });
    (seen, task)
}
