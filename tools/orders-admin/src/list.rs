//! Listing a dead-letter queue without consuming it: messages are received with a
//! visibility timeout, then made visible again at once.

use crate::dlq::{self, DlqMessage};
use crate::queue::Queue;
use std::io::Write;

/// How long listed messages are hidden if the run dies before making them visible again.
const VISIBILITY_SECS: i32 = 30;
/// Bytes of data shown per message.
const PREVIEW_BYTES: usize = 40;

#[derive(Debug, Clone)]
pub struct Listed {
    pub message_id: String,
    pub body: String,
    /// The parsed body, or why it could not be parsed.
    pub message: Result<DlqMessage, String>,
}

/// Up to `max` messages of `queue`; they stay in the queue.
pub async fn list(queue: &Queue, max: usize) -> anyhow::Result<Vec<Listed>> {
    let mut session = queue.session(VISIBILITY_SECS);
    let mut listed = Vec::new();
    let result = async {
        while listed.len() < max {
            let batch = session.next_batch(max - listed.len()).await?;
            if batch.is_empty() {
                break;
            }
            for message in batch {
                session.hold(&message);
                listed.push(Listed {
                    message: dlq::parse(&message.body).map_err(|e| e.to_string()),
                    message_id: message.message_id,
                    body: message.body,
                });
            }
        }
        anyhow::Ok(())
    }
    .await;
    let released = session.release().await;
    result?;
    released?;
    Ok(listed)
}

/// One JSON line per message: the body as is (re-encoded on one line; a body that is not
/// JSON becomes a JSON string).
pub fn write_json(out: &mut dyn Write, listed: &[Listed]) -> anyhow::Result<()> {
    for item in listed {
        let line = match serde_json::from_str::<serde_json::Value>(&item.body) {
            Ok(value) => serde_json::to_string(&value)?,
            Err(_) => serde_json::to_string(&item.body)?,
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

const HEADERS: [&str; 8] = [
    "MESSAGE ID",
    "KIND",
    "REASON/CONDITION",
    "FUNCTION",
    "SHARD",
    "SEQUENCE NUMBER(S)",
    "PARTITION KEY",
    "DATA",
];

/// The table's cells for one message.
pub fn row(item: &Listed) -> [String; 8] {
    match &item.message {
        Ok(m) => [
            item.message_id.clone(),
            m.kind().to_owned(),
            m.reason().to_owned(),
            m.function().to_owned(),
            m.shard().to_owned(),
            m.sequences(),
            m.partition_key().to_owned(),
            m.data_preview(PREVIEW_BYTES),
        ],
        Err(err) => [
            item.message_id.clone(),
            "unknown".to_owned(),
            err.chars().take(60).collect(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
            dlq::preview(item.body.as_bytes(), PREVIEW_BYTES),
        ],
    }
}

/// A table, or a clear message when there is nothing.
pub fn write_table(out: &mut dyn Write, queue: &str, listed: &[Listed]) -> std::io::Result<()> {
    if listed.is_empty() {
        return writeln!(out, "queue {queue} is empty");
    }
    let rows: Vec<[String; 8]> = listed.iter().map(row).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let pad = width - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &HEADERS)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    writeln!(
        out,
        "{} message(s) listed from {queue}; none consumed",
        listed.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_message_and_handles_unknown_bodies() {
        let listed = vec![Listed {
            message_id: "m-1".into(),
            body: "garbage".into(),
            message: dlq::parse("garbage").map_err(|e| e.to_string()),
        }];
        let mut out = Vec::new();
        write_table(&mut out, "q", &listed).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("MESSAGE ID"), "{text}");
        assert!(text.contains("m-1") && text.contains("unknown") && text.contains("garbage"));

        let mut out = Vec::new();
        write_table(&mut out, "q", &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "queue q is empty\n");

        let mut out = Vec::new();
        write_json(&mut out, &listed).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\"garbage\"\n");
    }
}
