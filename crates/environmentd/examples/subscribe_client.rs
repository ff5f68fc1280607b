//! A client that keeps a local copy of a view up to date with SUBSCRIBE, and resumes
//! where it left off when its connection drops.
//!
//! ```text
//! cargo run -p environmentd --example subscribe_client -- 'host=127.0.0.1 port=6875 user=freshet' my_view
//! ```
//!
//! It declares a cursor for `SUBSCRIBE <view> WITH (PROGRESS)` and FETCHes with a
//! timeout. Changes (`mz_progressed` false) are applied to a local multiset; a progress
//! row at `t` means every change at or before `t` has arrived, so the local copy then
//! equals `SELECT * FROM <view> AS OF t` and is printed. After a disconnect it
//! reconnects and subscribes `AS OF t WITH (SNAPSHOT = false)`: exactly the changes
//! after `t`, no gap and no duplicate. That needs `t` to be within the retained history
//! of what the view reads: create it `WITH (RETAIN HISTORY FOR '1h')` (or `ALTER
//! MATERIALIZED VIEW my_view SET (RETAIN HISTORY FOR '1h')`) for clients that may be
//! away for up to an hour. If the client was away longer, the resume fails with
//! SQLSTATE 22023 and this client starts over from a fresh snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

type State = BTreeMap<Vec<String>, i64>;

async fn connect(config: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(config, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection ended: {e}");
        }
    });
    Ok(client)
}

/// Follows the view until the connection fails; returns the last progress timestamp.
async fn follow(
    config: &str,
    view: &str,
    state: &mut State,
    resume_from: Option<u64>,
) -> Result<u64, (Option<u64>, tokio_postgres::Error)> {
    let client = connect(config).await.map_err(|e| (resume_from, e))?;
    let subscribe = match resume_from {
        None => format!("SUBSCRIBE {view} WITH (PROGRESS)"),
        Some(t) => format!("SUBSCRIBE {view} WITH (PROGRESS, SNAPSHOT = false) AS OF {t}"),
    };
    client
        .batch_execute(&format!("BEGIN; DECLARE c CURSOR FOR {subscribe}"))
        .await
        .map_err(|e| (resume_from, e))?;
    let mut progress = resume_from;
    // Changes after the last progress row: applied when the next one arrives, so a
    // disconnect never leaves half a timestamp in the local copy.
    let mut pending: Vec<(Vec<String>, i64)> = Vec::new();
    loop {
        let messages = client
            .simple_query("FETCH ALL c WITH (timeout = '1s')")
            .await
            .map_err(|e| (progress, e))?;
        for message in messages {
            let SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            let text: Vec<String> = (0..row.len())
                .map(|i| row.get(i).unwrap_or("NULL").to_string())
                .collect();
            let ts: u64 = text[0].parse().unwrap_or_default();
            if text[1] == "t" {
                progress = Some(ts);
                if !pending.is_empty() {
                    for (row, diff) in pending.drain(..) {
                        let count = state.entry(row.clone()).or_default();
                        *count += diff;
                        if *count == 0 {
                            state.remove(&row);
                        }
                    }
                    println!("-- {view} as of {ts}:");
                    for (row, count) in state.iter() {
                        println!("{} (x{count})", row.join(" | "));
                    }
                }
                continue;
            }
            let diff: i64 = text[2].parse().unwrap_or_default();
            pending.push((text[3..].to_vec(), diff));
        }
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let config = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "host=127.0.0.1 port=6875 user=freshet".to_string());
    let view = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "my_view".to_string());
    let mut state = State::new();
    let mut resume_from = None;
    loop {
        match follow(&config, &view, &mut state, resume_from).await {
            Ok(_) => return,
            Err((progress, error)) => {
                let reason = error
                    .as_db_error()
                    .map(|d| format!("{} ({})", d.message(), d.code().code()))
                    .unwrap_or_else(|| error.to_string());
                let compacted = error
                    .as_db_error()
                    .is_some_and(|d| d.code().code() == "22023");
                if compacted || progress.is_none() {
                    // Nothing consistent was received yet, or the history to resume from
                    // is gone: start over from a snapshot.
                    eprintln!("subscription interrupted: {reason}; starting over");
                    state.clear();
                    resume_from = None;
                } else {
                    eprintln!("subscription interrupted: {reason}; resuming from {progress:?}");
                    resume_from = progress;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
