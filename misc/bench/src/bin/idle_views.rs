//! B6 — many idle views: the cost of `--views` materialized views over 5 tables that
//! change one row per tick.
//!
//! Five tables `s0..s4 (id, k, v)` of `--table-rows` rows each; the views are spread
//! over them, alternating a filter (`SELECT id, k, v FROM si WHERE v % 40 = j`) and an
//! aggregate (`SELECT k, count(*), max(v) FROM si WHERE v % 40 = j GROUP BY k`). Every
//! configuration runs on a fresh server:
//! - *idle CPU*: with no writes, the CPU time environmentd uses (all its threads,
//!   the tick included), as a share of one core, median of three 5 s windows;
//! - *tick latency*: every `--tick-ms` one row is inserted into the next table (round
//!   robin); the time from sending the INSERT until the row arrives on a SUBSCRIBE to
//!   that table's first filter view, while every other view of the table processes
//!   the same change. `--ticks` measured writes after 5 unmeasured ones.
//!
//! The baseline configuration has only the 5 subscribed views, so the difference is
//! what the other views cost. There is no comparator: these are absolute numbers.
//!
//! The server runs with a 1 s tick (`--server-tick-ms`) and the benchmark writes once
//! a second (`--tick-ms`): every upper advance of a table makes every materialized
//! view over it append to its own shard, and at the default 10 ms tick 200 views fall
//! further and further behind (reads of them never finish), so the default tick
//! cannot be measured at 200 views.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use freshet_bench::freshet::{copy_in, Server, ServerConfig};
use freshet_bench::report::{fmt, median, percentile, Report};
use futures::StreamExt;
use serde_json::json;

const TABLES: usize = 5;
/// Unmeasured writes before the measured ticks.
const WARMUP: usize = 5;

struct Outcome {
    views: usize,
    idle_cpu: Vec<f64>,
    idle_write_mb_s: Vec<f64>,
    rss: u64,
    create_s: f64,
    delivery_ms: Vec<f64>,
    commit_ms: Vec<f64>,
}

fn view_sql(i: usize, j: usize) -> String {
    if j.is_multiple_of(2) {
        format!(
            "CREATE MATERIALIZED VIEW v{i}_{j} AS SELECT id, k, v FROM s{i} WHERE v % 40 = {}",
            j % 40
        )
    } else {
        format!(
            "CREATE MATERIALIZED VIEW v{i}_{j} AS SELECT k, count(*) AS n, max(v) AS mx FROM s{i} WHERE v % 40 = {} GROUP BY k",
            j % 40
        )
    }
}

/// Bytes the process has caused to be written to storage (`write_bytes` of
/// /proc/<pid>/io): the persist blob files and the SQLite consensus database.
fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("write_bytes:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Arrival times of rows by id, filled by the subscriber tasks.
type Arrivals = Arc<Mutex<HashMap<i64, Instant>>>;

async fn run(
    config: &ServerConfig,
    views: usize,
    table_rows: u64,
    ticks: usize,
    tick: Duration,
    report: &mut Report,
) -> Result<Outcome> {
    let server = Server::start(config).await?;
    let client = server.connect().await?;
    for i in 0..TABLES {
        client
            .batch_execute(&format!(
                "CREATE TABLE s{i} (id bigint, k bigint, v bigint)"
            ))
            .await?;
        let mut rows = Vec::new();
        for id in 0..table_rows {
            let h = freshet_bench::data::mix(id ^ ((i as u64) << 40));
            rows.extend(format!("{id}\t{}\t{}\n", h % 100, (h >> 20) % 10_000).bytes());
        }
        copy_in(&client, &format!("s{i}"), &bytes::Bytes::from(rows)).await?;
    }
    // Views are spread over the tables: view n is on table n % 5.
    let created = Instant::now();
    for n in 0..views {
        let (i, j) = (n % TABLES, n / TABLES);
        client
            .batch_execute(&view_sql(i, j))
            .await
            .with_context(|| format!("creating view {n}"))?;
        if n % 50 == 49 {
            eprintln!("  {} views", n + 1);
        }
    }
    // Reading every view waits until each has caught up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    for n in 0..views {
        let (i, j) = (n % TABLES, n / TABLES);
        tokio::time::timeout_at(
            deadline,
            client.query(&format!("SELECT count(*) FROM v{i}_{j}"), &[]),
        )
        .await
        .map_err(|_| anyhow!("{views} views were not all readable within 180 s (view {n})"))??;
    }
    let create_s = created.elapsed().as_secs_f64();
    report.sample_load();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut idle_cpu = Vec::new();
    let mut idle_write_mb_s = Vec::new();
    for _ in 0..3 {
        let before = freshet_bench::process_cpu_seconds(server.pid()).unwrap_or(0.0);
        let written = write_bytes(server.pid());
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = freshet_bench::process_cpu_seconds(server.pid()).unwrap_or(0.0);
        let seconds = start.elapsed().as_secs_f64();
        idle_cpu.push((after - before) / seconds * 100.0);
        idle_write_mb_s.push((write_bytes(server.pid()) - written) as f64 / seconds / 1e6);
    }
    let rss = server.memory().0;
    report.sample_load();

    let arrivals: Arrivals = Arc::default();
    let mut tasks = Vec::new();
    let mut subscribers = Vec::new();
    for i in 0..TABLES {
        let subscriber = server.connect().await?;
        let stream = subscriber
            .copy_out(&format!(
                "COPY (SUBSCRIBE v{i}_0 WITH (SNAPSHOT = false)) TO STDOUT"
            ))
            .await?;
        subscribers.push(subscriber);
        let arrivals = Arc::clone(&arrivals);
        tasks.push(tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            while let Some(Ok(chunk)) = stream.next().await {
                let now = Instant::now();
                let mut map = arrivals.lock().expect("not poisoned");
                for line in String::from_utf8_lossy(&chunk).lines() {
                    // mz_timestamp, mz_diff, id, k, v
                    if let Some(id) = line.split('\t').nth(2).and_then(|v| v.parse().ok()) {
                        map.insert(id, now);
                    }
                }
            }
        }));
    }
    let mut delivery_ms = Vec::new();
    let mut commit_ms = Vec::new();
    let mut next = tokio::time::interval(tick);
    next.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for w in 0..WARMUP + ticks {
        next.tick().await;
        let id = 1_000_000_000 + w as i64;
        let table = w % TABLES;
        let start = Instant::now();
        client
            .batch_execute(&format!("INSERT INTO s{table} VALUES ({id}, 7, 40)"))
            .await?;
        let commit = start.elapsed().as_secs_f64() * 1e3;
        let deadline = Instant::now() + Duration::from_secs(30);
        let arrived = loop {
            if let Some(at) = arrivals.lock().expect("not poisoned").get(&id) {
                break *at;
            }
            if Instant::now() > deadline {
                return Err(anyhow!("row {id} was not delivered in 30 s"));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        if w >= WARMUP {
            delivery_ms.push(arrived.duration_since(start).as_secs_f64() * 1e3);
            commit_ms.push(commit);
        }
    }
    for task in tasks {
        task.abort();
    }
    report.sample_load();
    Ok(Outcome {
        views,
        idle_cpu,
        idle_write_mb_s,
        rss,
        create_s,
        delivery_ms,
        commit_ms,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = freshet_bench::parse_flags(&[
        "views",
        "table-rows",
        "ticks",
        "tick-ms",
        "server-tick-ms",
        "out",
        "server-bin",
    ])?;
    let views: usize = flags.get("views").map_or(Ok(200), |v| v.parse())?;
    let table_rows: u64 = flags.get("table-rows").map_or(Ok(10_000), |v| v.parse())?;
    let ticks: usize = flags.get("ticks").map_or(Ok(30), |v| v.parse())?;
    let tick_ms: u64 = flags.get("tick-ms").map_or(Ok(1000), |v| v.parse())?;
    let out = PathBuf::from(flags.get("out").map_or("misc/bench/results", |v| v));
    let mut config = ServerConfig::from_env();
    if let Some(bin) = flags.get("server-bin") {
        config.bin = bin.into();
    }
    config.tick_ms = flags
        .get("server-tick-ms")
        .map_or(Ok(1000), |v| v.parse())?;

    let mut report = Report::begin(
        "idle_views",
        "B6 — many idle views: idle CPU and tick latency",
    );
    report.note(format!(
        "5 tables of {table_rows} rows; materialized views alternate a filter and a count/max GROUP BY over one table; \
         Freshet 1 worker, server tick {} ms; one single-row INSERT every {tick_ms} ms, round robin over the tables, \
         {ticks} measured after {WARMUP} warm-up; delivery = INSERT sent → row on a SUBSCRIBE to one filter view of that table; \
         idle CPU and disk writes = medians of three 5 s windows without writes (CPU in % of one core, \
         writes as the process's write_bytes)",
        config.tick_ms
    ));
    let mut outcomes = Vec::new();
    for n in [TABLES, views] {
        eprintln!("{n} views");
        outcomes.push(
            run(
                &config,
                n,
                table_rows,
                ticks,
                Duration::from_millis(tick_ms),
                &mut report,
            )
            .await?,
        );
    }
    let mut rows = Vec::new();
    for o in &outcomes {
        rows.push(vec![
            o.views.to_string(),
            format!("{:.1}", o.create_s),
            format!("{:.1}", median(&o.idle_cpu)),
            format!("{:.1}", median(&o.idle_write_mb_s)),
            format!("{:.0} MB", o.rss as f64 / 1e6),
            fmt(percentile(&o.delivery_ms, 50.0)),
            fmt(percentile(&o.delivery_ms, 99.0)),
            fmt(percentile(&o.commit_ms, 50.0)),
        ]);
        report.result(json!({
            "views": o.views,
            "create_and_hydrate_s": o.create_s,
            "idle_cpu_percent": o.idle_cpu,
            "idle_write_mb_per_s": o.idle_write_mb_s,
            "rss_bytes": o.rss,
            "delivery_ms": o.delivery_ms,
            "commit_ms": o.commit_ms,
        }));
    }
    report.table(
        "",
        &[
            "views",
            "create + hydrate (s)",
            "idle CPU (% of a core)",
            "idle disk writes (MB/s)",
            "RSS",
            "tick delivery p50 (ms)",
            "tick delivery p99 (ms)",
            "INSERT ack p50 (ms)",
        ],
        rows,
    );
    report.finish(&out)
}
