//! SUBSCRIBE and read consistency, end to end through tokio-postgres against the whole
//! system in one process:
//! - the output shapes (COPY streaming, cursors with FETCH timeouts, PROGRESS, UP TO,
//!   ENVELOPE UPSERT) and the ways a subscription ends (UP TO, a dropped input, a
//!   cancel, a client that falls behind);
//! - accumulation: a SUBSCRIBE WITH (PROGRESS) to a join+aggregate materialized view,
//!   accumulated by a client while random transactions run, equals `SELECT ... AS OF t`
//!   at every progress timestamp `t` where it changed;
//! - the bank invariant under concurrent transfer transactions, for SELECTs and
//!   SUBSCRIBE snapshots;
//! - resumption: a subscriber killed at random points resumes `AS OF` its last progress
//!   and its concatenated stream equals an uninterrupted one;
//! - read-your-writes across connections.
//!
//! `FRESHET_SUBSCRIBE_TXNS` sets the accumulation test's transaction count (default
//! 1,000; the issue's full run is 10,000).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;

use common::{connect, exec, rows, try_rows, WAIT};
use environmentd::testing::start_server;
use futures::StreamExt;
use tokio::time::timeout;
use tokio_postgres::NoTls;

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("not a server error: {e}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64
}

/// One row of a subscription WITH (PROGRESS): a change or a progress marker.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Change {
        ts: u64,
        diff: i64,
        row: Vec<String>,
    },
    Progress(u64),
}

fn event(row: &[String]) -> Event {
    let ts: u64 = row[0].parse().expect("mz_timestamp is an integer");
    if row[1] == "t" {
        return Event::Progress(ts);
    }
    Event::Change {
        ts,
        diff: row[2].parse().expect("mz_diff is an integer"),
        row: row[3..].to_vec(),
    }
}

/// A multiset of rows.
type State = BTreeMap<Vec<String>, i64>;

fn apply(state: &mut State, row: &[String], diff: i64) {
    let count = state.entry(row.to_vec()).or_default();
    *count += diff;
    if *count == 0 {
        state.remove(row);
    }
}

fn as_state(rows: Vec<Vec<String>>) -> State {
    let mut state = State::new();
    for row in rows {
        apply(&mut state, &row, 1);
    }
    state
}

/// A small deterministic generator (xorshift), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribe_shapes_and_endings() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE t (a int, b text)").await;
    exec(&client, "INSERT INTO t VALUES (1, 'x'), (2, 'y')").await;

    // A cursor: the snapshot, then a FETCH that waits for the next change.
    let reader = connect(addr).await;
    exec(&reader, "BEGIN").await;
    exec(&reader, "DECLARE c CURSOR FOR SUBSCRIBE t").await;
    let snapshot = rows(&reader, "FETCH ALL c").await;
    assert_eq!(snapshot.len(), 2, "{snapshot:?}");
    let as_of = snapshot[0][0].clone();
    assert!(snapshot.iter().all(|r| r[0] == as_of && r[1] == "1"));
    let empty = rows(&reader, "FETCH ALL c WITH (timeout = '100ms')").await;
    assert!(empty.is_empty(), "{empty:?}");
    let waiting = tokio::spawn({
        let reader_addr = addr;
        async move {
            let writer = connect(reader_addr).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            exec(&writer, "UPDATE t SET b = 'z' WHERE a = 2").await;
        }
    });
    let change = rows(&reader, "FETCH ALL c WITH (timeout = '10s')").await;
    waiting.await.expect("writer ran");
    let mut change: Vec<(String, String, String)> = change
        .into_iter()
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone()))
        .collect();
    change.sort();
    assert_eq!(
        change,
        vec![
            ("-1".to_string(), "2".to_string(), "y".to_string()),
            ("1".to_string(), "2".to_string(), "z".to_string())
        ]
    );
    let negative = try_rows(&reader, "FETCH c WITH (timeout = '-1s')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&negative), "22023");
    exec(&reader, "ROLLBACK").await;
    // Cursors end with their transaction.
    let gone = try_rows(&reader, "FETCH c").await.unwrap_err();
    assert_eq!(sqlstate(&gone), "34000");
    let outside = reader
        .batch_execute("DECLARE d CURSOR FOR SUBSCRIBE t")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&outside), "25P01");

    // ENVELOPE UPSERT: one row per changed key.
    exec(&reader, "BEGIN").await;
    exec(
        &reader,
        "DECLARE u CURSOR FOR SUBSCRIBE (SELECT a, b FROM t) ENVELOPE UPSERT (KEY (a)) WITH (SNAPSHOT = false)",
    )
    .await;
    exec(&client, "UPDATE t SET b = 'w' WHERE a = 1").await;
    exec(&client, "DELETE FROM t WHERE a = 2").await;
    let mut upserts = Vec::new();
    while upserts.len() < 2 {
        let more = rows(&reader, "FETCH ALL u WITH (timeout = '10s')").await;
        assert!(!more.is_empty(), "no upsert rows arrived: {upserts:?}");
        upserts.extend(more);
    }
    let states: Vec<(String, String, String)> = upserts
        .iter()
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("upsert".to_string(), "1".to_string(), "w".to_string()),
            ("delete".to_string(), "2".to_string(), "NULL".to_string())
        ]
    );
    exec(&reader, "COMMIT").await;

    // COPY (SUBSCRIBE ...) TO STDOUT streams until UP TO.
    let up_to = now_ms() + 1_500;
    let stream = client
        .copy_out(&format!(
            "COPY (SUBSCRIBE t WITH (PROGRESS) UP TO {up_to}) TO STDOUT"
        ))
        .await
        .expect("copy starts");
    let lines: Vec<String> = timeout(WAIT, stream.collect::<Vec<_>>())
        .await
        .expect("the stream ends at UP TO")
        .into_iter()
        .map(|chunk| String::from_utf8(chunk.expect("copy data").to_vec()).expect("utf-8"))
        .collect();
    let text = lines.concat();
    assert!(text.contains("\tf\t1\t1\tw\n"), "{text}");
    let last_progress = text
        .lines()
        .filter(|l| l.split('\t').nth(1) == Some("t"))
        .map(|l| l.split('\t').next().unwrap().parse::<u64>().unwrap())
        .max()
        .expect("progress rows");
    assert!(last_progress < up_to, "{last_progress} {up_to}");
    let wrong = try_rows(&client, "SUBSCRIBE t AS OF 5 UP TO 3")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&wrong), "22023");

    // A dropped input ends the subscription with an error, not a hang.
    exec(&reader, "BEGIN").await;
    exec(&reader, "DECLARE d CURSOR FOR SUBSCRIBE t").await;
    rows(&reader, "FETCH ALL d").await;
    exec(&client, "DROP TABLE t").await;
    let dropped = try_rows(&reader, "FETCH ALL d WITH (timeout = '10s')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&dropped), "42P01", "{dropped:?}");
    exec(&reader, "ROLLBACK").await;

    // A client that falls behind its buffer limit gets a clear error.
    exec(&client, "CREATE TABLE big (a int)").await;
    exec(&client, "INSERT INTO big SELECT * FROM (VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10),(11),(12)) v").await;
    exec(&reader, "SET max_subscribe_buffer_rows = 10").await;
    exec(&reader, "BEGIN").await;
    exec(&reader, "DECLARE b CURSOR FOR SUBSCRIBE big").await;
    let behind = try_rows(&reader, "FETCH ALL b WITH (timeout = '10s')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&behind), "53400", "{behind:?}");
    exec(&reader, "ROLLBACK").await;

    // A cancel ends a streaming subscription cleanly; the connection goes on.
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(NoTls).await.expect("cancel sent");
    });
    let stream = client
        .copy_out("COPY (SUBSCRIBE big) TO STDOUT")
        .await
        .expect("copy starts");
    let mut stream = Box::pin(stream);
    let error = timeout(WAIT, async {
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                return Some(e);
            }
        }
        None
    })
    .await
    .expect("the cancel ends the stream")
    .expect("the stream ends with an error");
    canceller.await.expect("cancelled");
    assert_eq!(sqlstate(&error), "57014");
    assert_eq!(
        rows(&client, "SELECT count(*) FROM big").await,
        vec![vec!["12"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accumulated_subscription_equals_select_as_of() {
    let txns: usize = std::env::var("FRESHET_SUBSCRIBE_TXNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE l (k int, v int)").await;
    exec(&client, "CREATE TABLE r (k int, w int)").await;
    exec(
        &client,
        "CREATE MATERIALIZED VIEW j WITH (RETAIN HISTORY FOR '1h') AS SELECT l.k, count(*) AS n, sum(l.v * r.w) AS s FROM l JOIN r ON l.k = r.k GROUP BY l.k",
    )
    .await;
    exec(
        &client,
        "CREATE DEFAULT INDEX ON j WITH (RETAIN HISTORY FOR '1h')",
    )
    .await;

    let reader = connect(addr).await;
    let started = std::time::Instant::now();
    exec(&reader, "BEGIN").await;
    exec(&reader, "DECLARE c CURSOR FOR SUBSCRIBE j WITH (PROGRESS)").await;

    let mut writer = Some(tokio::spawn(async move {
        let client = connect(addr).await;
        let mut rng = Rng(0x5eed_1234_abcd);
        let started = std::time::Instant::now();
        for i in 0..txns {
            if i > 0 && i.is_multiple_of(1_000) {
                println!("writer: {i} transactions in {:?}", started.elapsed());
            }
            let table = if rng.below(2) == 0 { "l" } else { "r" };
            let col = if table == "l" { "v" } else { "w" };
            let k = rng.below(8);
            let x = rng.below(10);
            let sql = match rng.below(4) {
                0 | 1 => format!("INSERT INTO {table} VALUES ({k}, {x})"),
                2 => format!("UPDATE {table} SET {col} = {col} + 1 WHERE k = {k}"),
                _ => format!("DELETE FROM {table} WHERE k = {k} AND {col} = {x}"),
            };
            let second = format!(
                "INSERT INTO {table} VALUES ({}, {})",
                rng.below(8),
                rng.below(10)
            );
            exec(&client, &format!("BEGIN; {sql}; {second}; COMMIT")).await;
        }
    }));

    let mut state = State::new();
    let mut checked = 0usize;
    let mut changed = false;
    let mut done_writing = false;
    let mut last_progress = 0;
    loop {
        let fetched = rows(&reader, "FETCH ALL c WITH (timeout = '1s')").await;
        for row in fetched {
            match event(&row) {
                Event::Change { ts, diff, row } => {
                    assert!(
                        ts > last_progress || last_progress == 0,
                        "a change at {ts} after progress {last_progress}"
                    );
                    apply(&mut state, &row, diff);
                    changed = true;
                }
                Event::Progress(ts) => {
                    assert!(
                        ts >= last_progress,
                        "progress went back: {ts} < {last_progress}"
                    );
                    last_progress = ts;
                    if changed {
                        let expected =
                            as_state(rows(&client, &format!("SELECT * FROM j AS OF {ts}")).await);
                        assert_eq!(
                            state, expected,
                            "accumulated state differs from SELECT AS OF {ts}"
                        );
                        checked += 1;
                        changed = false;
                        if checked.is_multiple_of(1_000) {
                            println!(
                                "reader: {checked} checks in {:?}, {} ms behind",
                                started.elapsed(),
                                now_ms().saturating_sub(ts)
                            );
                        }
                    }
                }
            }
        }
        if done_writing {
            break;
        }
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer
                .take()
                .expect("checked")
                .await
                .expect("the writer ran");
            // One more round: everything written is now below a progress row to come.
            done_writing = true;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let expected = as_state(rows(&client, &format!("SELECT * FROM j AS OF {last_progress}")).await);
    assert_eq!(state, expected);
    assert!(checked > 0);
    println!(
        "accumulation: {txns} transactions, {checked} progress timestamps checked, 0 mismatches"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_total_is_constant_for_every_reader() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE accounts (id int, balance int)").await;
    let values: Vec<String> = (0..10).map(|i| format!("({i}, 100)")).collect();
    exec(
        &client,
        &format!("INSERT INTO accounts VALUES {}", values.join(", ")),
    )
    .await;
    let total = "1000".to_string();

    // A subscription to the total sees it constant at every timestamp.
    let watcher = connect(addr).await;
    exec(&watcher, "BEGIN").await;
    exec(
        &watcher,
        "DECLARE s CURSOR FOR SUBSCRIBE (SELECT sum(balance) AS total FROM accounts)",
    )
    .await;

    let mut writers = Vec::new();
    for w in 0..4u64 {
        writers.push(tokio::spawn(async move {
            let client = connect(addr).await;
            let mut rng = Rng(0xbad_cafe + w);
            for _ in 0..60 {
                let from = rng.below(10);
                let to = (from + 1 + rng.below(9)) % 10;
                let amount = 1 + rng.below(20);
                exec(
                    &client,
                    &format!(
                        "BEGIN; UPDATE accounts SET balance = balance - {amount} WHERE id = {from}; \
                         UPDATE accounts SET balance = balance + {amount} WHERE id = {to}; COMMIT"
                    ),
                )
                .await;
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..4 {
        let total = total.clone();
        readers.push(tokio::spawn(async move {
            let client = connect(addr).await;
            for i in 0..250 {
                let sum = rows(&client, "SELECT sum(balance), count(*) FROM accounts").await;
                assert_eq!(sum, vec![vec![total.clone(), "10".to_string()]], "read {i}");
                if i % 50 == 0 {
                    // A SUBSCRIBE snapshot is a consistent state too.
                    let up_to = now_ms() + 50;
                    let stream = client
                        .copy_out(&format!(
                            "COPY (SUBSCRIBE (SELECT sum(balance) FROM accounts) UP TO {up_to}) TO STDOUT"
                        ))
                        .await
                        .expect("copy starts");
                    let chunks: Vec<_> = stream.collect().await;
                    let text: String = chunks
                        .into_iter()
                        .map(|c| String::from_utf8(c.expect("copy data").to_vec()).unwrap())
                        .collect();
                    let first = text.lines().next().expect("a snapshot row");
                    assert!(first.ends_with(&format!("\t1\t{total}")), "{text}");
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    for r in readers {
        r.await.expect("reader");
    }
    // Every change to the total nets to zero at each timestamp: after the snapshot the
    // subscription is empty.
    let seen = rows(&watcher, "FETCH ALL s WITH (timeout = '500ms')").await;
    assert_eq!(seen.len(), 1, "the total changed: {seen:?}");
    assert_eq!(seen[0][2], total);
    assert_eq!(
        rows(&client, "SELECT sum(balance) FROM accounts").await,
        vec![vec![total]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resumed_subscription_equals_uninterrupted() {
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    exec(&client, "CREATE TABLE e (k int, v int)").await;
    exec(
        &client,
        "CREATE MATERIALIZED VIEW m WITH (RETAIN HISTORY FOR '1h') AS SELECT k, sum(v) AS s FROM e GROUP BY k",
    )
    .await;
    exec(&client, "INSERT INTO e VALUES (1, 1)").await;

    // The uninterrupted subscriber and the start point both resume from.
    let steady = connect(addr).await;
    exec(&steady, "BEGIN").await;
    exec(&steady, "DECLARE c CURSOR FOR SUBSCRIBE m WITH (PROGRESS)").await;
    let first = rows(&steady, "FETCH ALL c WITH (timeout = '10s')").await;
    let start = first
        .iter()
        .filter_map(|r| match event(r) {
            Event::Progress(ts) => Some(ts),
            _ => None,
        })
        .max()
        .expect("a progress row after the snapshot");

    let writer = tokio::spawn(async move {
        let client = connect(addr).await;
        for i in 0..200 {
            exec(&client, &format!("INSERT INTO e VALUES ({}, {i})", i % 5)).await;
        }
    });

    // The interrupted subscriber: a new connection each time, AS OF its last progress.
    let mut rng = Rng(0x7e57);
    let mut resumed: Vec<Event> = Vec::new();
    let mut progress = start;
    let mut kills = 0;
    while kills < 50 || !writer.is_finished() {
        let conn = connect(addr).await;
        exec(&conn, "BEGIN").await;
        exec(
            &conn,
            &format!("DECLARE c CURSOR FOR SUBSCRIBE m WITH (PROGRESS, SNAPSHOT = false) AS OF {progress}"),
        )
        .await;
        for _ in 0..1 + rng.below(3) {
            for row in rows(
                &conn,
                &format!("FETCH {} c WITH (timeout = '50ms')", 1 + rng.below(20)),
            )
            .await
            {
                match event(&row) {
                    Event::Progress(ts) => progress = ts,
                    change => resumed.push(change),
                }
            }
        }
        // Killed: the connection goes away mid-stream; changes after the last progress
        // row it saw are fetched again by the next one, so drop them.
        resumed.retain(|e| matches!(e, Event::Change { ts, .. } if *ts <= progress));
        drop(conn);
        kills += 1;
    }
    writer.await.expect("writer");
    let end = progress.max(start);
    // Catch the resumed one up to a common end point.
    let end = {
        let conn = connect(addr).await;
        exec(&conn, "BEGIN").await;
        exec(
            &conn,
            &format!(
                "DECLARE c CURSOR FOR SUBSCRIBE m WITH (PROGRESS, SNAPSHOT = false) AS OF {end}"
            ),
        )
        .await;
        let target = now_ms() + 500;
        let mut last = end;
        while last < target {
            for row in rows(&conn, "FETCH ALL c WITH (timeout = '1s')").await {
                match event(&row) {
                    Event::Progress(ts) => last = ts,
                    change => resumed.push(change),
                }
            }
        }
        resumed.retain(|e| matches!(e, Event::Change { ts, .. } if *ts <= last));
        last
    };
    let mut steady_events: Vec<Event> = Vec::new();
    let mut last = start;
    while last < end {
        for row in rows(&steady, "FETCH ALL c WITH (timeout = '1s')").await {
            match event(&row) {
                Event::Progress(ts) => last = ts,
                change => steady_events.push(change),
            }
        }
    }
    steady_events.retain(|e| matches!(e, Event::Change { ts, .. } if *ts > start && *ts <= end));
    resumed.retain(|e| matches!(e, Event::Change { ts, .. } if *ts > start && *ts <= end));
    steady_events.sort();
    resumed.sort();
    assert!(!steady_events.is_empty());
    assert_eq!(resumed, steady_events, "the resumed stream differs");
    println!(
        "resume: {kills} kills, {} changes, identical streams",
        resumed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_see_writes_from_other_connections() {
    let (addr, _server) = start_server().await;
    let writer = connect(addr).await;
    exec(&writer, "CREATE TABLE ryw (i int)").await;
    for i in 0..1_000 {
        exec(&writer, &format!("INSERT INTO ryw VALUES ({i})")).await;
        let reader = connect(addr).await;
        let seen = rows(&reader, &format!("SELECT count(*) FROM ryw WHERE i = {i}")).await;
        assert_eq!(seen, vec![vec!["1".to_string()]], "insert {i} not visible");
    }
}
