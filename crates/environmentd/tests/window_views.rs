//! End to end: views, materialized views and indexed views over TUMBLE and HOP keep
//! reading the relation their definition named when they were created, in a session
//! with another search path, and after a restart of a real environmentd process
//! re-plans their stored definitions (the materialized view and the index are
//! maintained from those).

use std::time::{Duration, Instant};

use common::spawn;
use environmentd::testing::free_port;
use tokio_postgres::Client;

mod common;

async fn connect(port: u16) -> Client {
    common::connect(([127, 0, 0, 1], port).into()).await
}

/// Every row, its columns as text joined by spaces (NULL as `NULL`), through the
/// simple protocol.
async fn rows(client: &Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        })
        .collect()
}

/// Waits until `sql` returns `expected` (a maintained view catching up).
async fn eventually(client: &Client, sql: &str, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = rows(client, sql).await;
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: expected {expected:?}, got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const TUMBLE_MV: &str = "SELECT * FROM public.per_minute ORDER BY 1";
const HOP_INDEXED: &str = "SELECT * FROM public.per_hop ORDER BY 1";
const LONG_VIEW: &str = "SELECT id, window_start, label FROM public.labelled ORDER BY 1";

/// What the three views hold over `s.ev`'s first rows (public.ev's rows, with
/// `v` in the thousands, must not show).
async fn check_first_rows(client: &Client) {
    eventually(
        client,
        TUMBLE_MV,
        &["2024-01-01 00:00:00+00 2 3", "2024-01-01 00:01:00+00 1 4"],
    )
    .await;
    eventually(
        client,
        HOP_INDEXED,
        &[
            "2023-12-31 23:59:30+00 1",
            "2024-01-01 00:00:00+00 2",
            "2024-01-01 00:00:30+00 2",
            "2024-01-01 00:01:00+00 1",
        ],
    )
    .await;
    assert_eq!(
        rows(client, LONG_VIEW).await,
        vec![
            "1 2024-01-01 00:00:00+00 one",
            "2 2024-01-01 00:00:00+00 two",
            "3 2024-01-01 00:01:00+00 three",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_views_read_the_relation_they_named_after_restart() {
    let data_dir = environmentd::testing::temp_data_dir();
    let port = free_port();
    let mut server = spawn(&data_dir, port);
    let client = connect(port).await;
    client
        .batch_execute(
            "CREATE SCHEMA s;
             CREATE TABLE s.ev (id int, ts timestamptz, v int);
             CREATE TABLE s.labels (id int, label text);
             CREATE TABLE public.ev (id int, ts timestamptz, v int);
             INSERT INTO s.ev VALUES
                 (1, '2024-01-01 00:00:10+00', 1),
                 (2, '2024-01-01 00:00:40+00', 2),
                 (3, '2024-01-01 00:01:20+00', 4),
                 (4, NULL, 8);
             INSERT INTO s.labels VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four');
             INSERT INTO public.ev VALUES (1, '2024-01-01 00:00:10+00', 1000);",
        )
        .await
        .unwrap();
    // Created with `s` first in the search path: `ev` is s.ev, `labels` s.labels.
    client
        .batch_execute(
            "SET search_path = s, public;
             CREATE MATERIALIZED VIEW public.per_minute AS
                 SELECT window_start, count(*) AS n, sum(v) AS total
                 FROM TUMBLE(ev, ts, INTERVAL '1 minute') GROUP BY 1;
             CREATE VIEW public.per_hop AS
                 SELECT window_start, count(*) AS n
                 FROM HOP(ev, ts, INTERVAL '30 seconds', INTERVAL '1 minute') GROUP BY 1;
             CREATE INDEX per_hop_idx ON public.per_hop (window_start);
             CREATE VIEW public.labelled AS
                 SELECT t.id, t.window_start, t.window_end, l.label, t.v AS value_of_the_event
                 FROM TUMBLE(ev, ts, INTERVAL '1 minute') AS t JOIN labels AS l ON l.id = t.id
                 WHERE l.label <> 'a rather long string literal that pushes the text along'
                   AND t.id IN (SELECT id FROM labels);
             RESET search_path;",
        )
        .await
        .unwrap();
    check_first_rows(&client).await;
    assert_eq!(
        rows(&client, "SHOW CREATE VIEW public.labelled").await,
        vec![
            "freshet.public.labelled CREATE VIEW labelled AS SELECT t.id, t.window_start, \
             t.window_end, l.label, t.v AS value_of_the_event \
             FROM TUMBLE(freshet.s.ev, ts, INTERVAL '1 minute') AS t \
             JOIN freshet.s.labels AS l ON l.id = t.id \
             WHERE l.label <> 'a rather long string literal that pushes the text along' \
             AND t.id IN (SELECT id FROM freshet.s.labels)"
        ]
    );

    server.kill();
    drop(client);

    let _server = spawn(&data_dir, port);
    let client = connect(port).await;
    check_first_rows(&client).await;
    // Maintained from the re-planned definitions: a new row, and the row without a
    // time getting one, enter their windows (in s.ev, not public.ev).
    client
        .batch_execute(
            "INSERT INTO s.ev VALUES (5, '2024-01-01 00:01:50+00', 16);
             UPDATE s.ev SET ts = '2024-01-01 00:00:20+00' WHERE id = 4;
             INSERT INTO public.ev VALUES (2, '2024-01-01 00:01:50+00', 2000);",
        )
        .await
        .unwrap();
    eventually(
        &client,
        TUMBLE_MV,
        &["2024-01-01 00:00:00+00 3 11", "2024-01-01 00:01:00+00 2 20"],
    )
    .await;
    eventually(
        &client,
        HOP_INDEXED,
        &[
            "2023-12-31 23:59:30+00 2",
            "2024-01-01 00:00:00+00 3",
            "2024-01-01 00:00:30+00 2",
            "2024-01-01 00:01:00+00 2",
            "2024-01-01 00:01:30+00 1",
        ],
    )
    .await;
    assert_eq!(
        rows(&client, LONG_VIEW).await,
        vec![
            "1 2024-01-01 00:00:00+00 one",
            "2 2024-01-01 00:00:00+00 two",
            "3 2024-01-01 00:01:00+00 three",
            "4 2024-01-01 00:00:00+00 four",
        ]
    );
    drop(_server);
    let _ = std::fs::remove_dir_all(&data_dir);
}
