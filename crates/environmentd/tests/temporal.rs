//! Temporal filters: a 5-minute sliding window (`WHERE mz_now() >= ts AND mz_now() < ts
//! + INTERVAL '5 minutes'`) as a materialized view and as an indexed view, read `AS OF`
//! successive timestamps: every row enters at exactly the millisecond of its `ts` and
//! leaves exactly 5 minutes later, in both. One-shot SELECTs read `mz_now()` as their
//! timestamp, and `mz_now()` anywhere else in a maintained query is refused (0A000).
//!
//! Run: `cargo test -p environmentd --test temporal -- --nocapture`.

use std::collections::BTreeSet;
use std::time::Duration;

mod common;

use common::{connect, exec, rows, try_rows};
use environmentd::testing::start_server;
use tokio::time::sleep;
use tokio_postgres::Client;

const WINDOW_MS: i64 = 5 * 60 * 1000;

async fn now_ms(client: &Client) -> i64 {
    rows(
        client,
        "SELECT (extract(epoch FROM mz_now()) * 1000)::bigint",
    )
    .await[0][0]
        .parse()
        .unwrap()
}

fn timestamptz(ms: i64) -> String {
    format!("'epoch'::timestamptz + INTERVAL '{ms} milliseconds'")
}

async fn ids_as_of(client: &Client, relation: &str, t: i64) -> BTreeSet<i64> {
    rows(client, &format!("SELECT id FROM {relation} AS OF {t}"))
        .await
        .into_iter()
        .map(|r| r[0].parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliding_window_moves_at_the_exact_millisecond() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(
        &client,
        "CREATE TABLE events (id int, ts timestamptz) WITH (RETAIN HISTORY FOR '1h')",
    )
    .await;
    let filter = "WHERE mz_now() >= ts AND mz_now() < ts + INTERVAL '5 minutes'";
    exec(
        &client,
        &format!(
            "CREATE MATERIALIZED VIEW recent WITH (RETAIN HISTORY FOR '1h') AS \
             SELECT id, ts FROM events {filter}"
        ),
    )
    .await;
    exec(
        &client,
        &format!("CREATE VIEW recent_v AS SELECT id, ts FROM events {filter}"),
    )
    .await;
    exec(
        &client,
        "CREATE INDEX recent_idx ON recent_v (id) WITH (RETAIN HISTORY FOR '1h')",
    )
    .await;

    // Rows 0..40 entered 5 minutes ago and leave over the next seconds; rows 40..80
    // enter over the next seconds. Each at its own millisecond, some at the same one.
    let t0 = now_ms(&client).await;
    let mut events: Vec<(i64, i64)> = Vec::new();
    for i in 0..40 {
        events.push((i, t0 - WINDOW_MS + 1_500 + 7 * i));
    }
    for i in 40..80 {
        events.push((i, t0 + 1_500 + 11 * (i - 40) / 2));
    }
    let values: Vec<String> = events
        .iter()
        .map(|(id, ms)| format!("({id}, {})", timestamptz(*ms)))
        .collect();
    exec(
        &client,
        &format!("INSERT INTO events VALUES {}", values.join(", ")),
    )
    .await;
    // The last change is at t0 + 1,500 + 273 (leaving) or + 214 (entering).
    while now_ms(&client).await < t0 + 2_500 {
        sleep(Duration::from_millis(100)).await;
    }
    let expected = |t: i64| -> BTreeSet<i64> {
        events
            .iter()
            .filter(|(_, ts)| *ts <= t && t < ts + WINDOW_MS)
            .map(|(id, _)| *id)
            .collect()
    };
    let mut checked = 0;
    for relation in ["recent", "recent_v"] {
        // Each row's boundaries, to the millisecond.
        for (id, ts) in &events {
            let boundary = if *id < 40 { ts + WINDOW_MS } else { *ts };
            for t in [boundary - 1, boundary] {
                let actual = ids_as_of(&client, relation, t).await;
                assert_eq!(
                    actual.contains(id),
                    expected(t).contains(id),
                    "{relation}: row {id} (ts {ts}) AS OF {t}"
                );
                assert_eq!(actual, expected(t), "{relation} AS OF {t}");
                checked += 1;
            }
        }
        // And the whole window at successive timestamps.
        let mut t = t0 + 1_400;
        while t < t0 + 2_000 {
            assert_eq!(
                ids_as_of(&client, relation, t).await,
                expected(t),
                "{relation} AS OF {t}"
            );
            checked += 1;
            t += 13;
        }
    }
    // A one-shot SELECT reads mz_now() as its own timestamp.
    let now = now_ms(&client).await;
    let one_shot: BTreeSet<i64> = rows(&client, &format!("SELECT id FROM events {filter}"))
        .await
        .into_iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    // (Nothing changes between t0 + 1,774 and t0 + 5 minutes.)
    assert_eq!(one_shot, expected(now));
    println!("temporal: {checked} AS OF reads of the window matched, to the millisecond");

    // mz_now() other than compared with the row's values is refused where maintained.
    for bad in [
        "CREATE MATERIALIZED VIEW bad AS SELECT id, mz_now() FROM events",
        "CREATE MATERIALIZED VIEW bad AS SELECT id FROM events WHERE mz_now()::text > 'x'",
        "CREATE MATERIALIZED VIEW bad AS SELECT id FROM events WHERE mz_now() <> ts",
        "CREATE MATERIALIZED VIEW bad AS SELECT id FROM events WHERE mz_now() > ts OR id = 1",
    ] {
        let err = try_rows(&client, bad).await.unwrap_err();
        assert_eq!(
            err.as_db_error().map(|e| e.code().code()),
            Some("0A000"),
            "{bad}: {err:?}"
        );
    }
    // The server is still serving.
    assert_eq!(
        rows(&client, "SELECT count(*) FROM events").await[0][0],
        "80"
    );
}

/// The `records` of the only index in `mz_internal.mz_arrangement_sizes`, if any.
async fn arrangement_records(client: &Client) -> Option<i64> {
    let sizes = rows(
        client,
        "SELECT records FROM mz_internal.mz_arrangement_sizes",
    )
    .await;
    assert!(sizes.len() <= 1, "one index at most: {sizes:?}");
    sizes.first().map(|r| r[0].parse().unwrap())
}

/// Inserts rows `from..=to` into `stream`, each at the insert's own time.
async fn insert_now(client: &Client, from: i64, to: i64) {
    exec(
        client,
        &format!("INSERT INTO stream SELECT g, mz_now() FROM generate_series({from}, {to}) g"),
    )
    .await;
}

/// The only index's `records` once they are at most `limit`, or after a minute. The
/// updates cancel as the index's batches merge, which on a busy machine may take a
/// while after the window empties.
async fn records_once_merged(client: &Client, limit: i64) -> i64 {
    let mut records = arrangement_records(client).await.unwrap();
    for _ in 0..120 {
        if records <= limit {
            break;
        }
        sleep(Duration::from_millis(500)).await;
        records = arrangement_records(client).await.unwrap();
    }
    records
}

/// 1,000,000 timestamped rows flow through a 2-second window: the window's index
/// holds what the last seconds brought, not everything that flowed through, and
/// dropping the index takes its arrangement away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_arrangement_stays_bounded() {
    let total: i64 = std::env::var("FRESHET_TEMPORAL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let batch: i64 = 20_000;
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE stream (id int, ts timestamptz)").await;
    exec(
        &client,
        "CREATE VIEW last_2s AS SELECT id FROM stream WHERE mz_now() < ts + INTERVAL '2 seconds'",
    )
    .await;
    exec(&client, "CREATE INDEX last_2s_idx ON last_2s (id)").await;
    let started = std::time::Instant::now();
    let mut max_records = 0;
    let mut sent = 0;
    while sent < total {
        let n = batch.min(total - sent);
        insert_now(&client, sent + 1, sent + n).await;
        sent += n;
        if let Some(records) = arrangement_records(&client).await {
            max_records = max_records.max(records);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Let the window drain.
    sleep(Duration::from_secs(4)).await;
    let in_window = rows(&client, "SELECT count(*) FROM last_2s").await[0][0].clone();
    let after = records_once_merged(&client, 2 * batch).await;
    println!(
        "temporal: {total} rows in {elapsed:.1} s ({:.0} rows/s); window index held at most {max_records} updates, {after} after the window emptied",
        total as f64 / elapsed
    );
    assert_eq!(in_window, "0", "rows older than the window are gone");
    // Bounded by the window, not by what flowed through (each row is an insertion and a
    // retraction until they are merged away).
    assert!(
        max_records < total,
        "the window's arrangement grew with the stream: {max_records} updates for {total} rows"
    );
    assert!(
        after <= 2 * batch,
        "{after} updates left once the window is empty"
    );
    exec(&client, "DROP INDEX last_2s_idx").await;
    assert_eq!(arrangement_records(&client).await, None);
}

/// Tumbling windows over a stream, kept for a second after they close: the windowed
/// rows' index and the per-window counts hold the last few windows, not everything
/// that flowed through (the GreptimeDB "materialize window": data older than the
/// window is dropped and its memory released).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tumbling_windows_keep_only_recent_state() {
    let total: i64 = std::env::var("FRESHET_WINDOW_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let batch: i64 = 10_000;
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE stream (id int, ts timestamptz)").await;
    exec(
        &client,
        "CREATE VIEW recent AS SELECT id, window_start FROM TUMBLE(stream, ts, INTERVAL '1 second') \
         WHERE mz_now() < window_end + INTERVAL '1 second'",
    )
    .await;
    exec(&client, "CREATE INDEX recent_idx ON recent (id)").await;
    exec(
        &client,
        "CREATE MATERIALIZED VIEW per_second AS SELECT window_start, count(*) AS n \
         FROM TUMBLE(stream, ts, INTERVAL '1 second') \
         WHERE mz_now() < window_end + INTERVAL '1 second' GROUP BY window_start",
    )
    .await;
    let mut max_records = 0;
    let mut max_windows = 0;
    let mut sent = 0;
    while sent < total {
        // Paced so the stream spans several window lifetimes (a row is kept for at most
        // two seconds): unpaced, a fast machine sends everything within one lifetime and
        // the whole stream is rightly in the windows at once.
        let pace = tokio::time::Instant::now() + Duration::from_millis(400);
        let n = batch.min(total - sent);
        insert_now(&client, sent + 1, sent + n).await;
        sent += n;
        if let Some(records) = arrangement_records(&client).await {
            max_records = max_records.max(records);
        }
        let windows: i64 = rows(&client, "SELECT count(*) FROM per_second").await[0][0]
            .parse()
            .unwrap();
        max_windows = max_windows.max(windows);
        // The per-window counts add up to the rows of the windows still kept.
        let counted = rows(
            &client,
            "SELECT (SELECT coalesce(sum(n), 0) FROM per_second) = (SELECT count(*) FROM recent)",
        )
        .await;
        assert_eq!(counted[0][0], "t", "per-window counts match the kept rows");
        tokio::time::sleep_until(pace).await;
    }
    sleep(Duration::from_secs(3)).await;
    let left = rows(
        &client,
        "SELECT (SELECT count(*) FROM recent), (SELECT count(*) FROM per_second)",
    )
    .await;
    let after = records_once_merged(&client, 2 * batch).await;
    println!(
        "tumbling windows: {total} rows; the windowed rows' index held at most {max_records} \
         updates, {after} after the windows closed; at most {max_windows} windows kept"
    );
    assert_eq!(left[0], vec!["0", "0"], "closed windows are gone");
    assert!(
        max_records < total,
        "the windows' arrangement grew with the stream: {max_records} updates for {total} rows"
    );
    // A window lasts two seconds (one open, one kept): a handful at once.
    assert!(max_windows <= 5, "{max_windows} windows kept at once");
    assert!(
        after <= 2 * batch,
        "{after} updates left once the windows closed"
    );
}
