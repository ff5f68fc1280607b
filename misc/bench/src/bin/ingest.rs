//! B7 — ingest: `COPY t FROM STDIN` (text) into a table with one index, Freshet against
//! PostgreSQL COPY.
//!
//! The rows (`t (id, k, v, s)`, see `freshet_bench::data`) are generated once, before
//! any timing, into one buffer that both systems receive byte for byte. Each run
//! creates a fresh table with an index on `k`, then times:
//! - *COPY ack*: from the COPY statement until its `COPY n` tag (the rows are durable);
//! - *index readable*: until a query answered from the index (`SELECT ... WHERE k = 0`,
//!   Freshet's fast path) returns the new rows. PostgreSQL maintains its index inside
//!   the COPY, so there the two are the same statement plus one query.
//!
//! One warm-up run per system is discarded; the table reports medians of `--runs`
//! runs with their min–max, and the peak RSS of the environmentd process.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use freshet_bench::data;
use freshet_bench::freshet::{copy_in, Server, ServerConfig};
use freshet_bench::pg::PgCluster;
use freshet_bench::report::{fmt, median, spread, Report};
use serde_json::json;

struct Run {
    copy_s: f64,
    index_s: f64,
}

/// Times one COPY into a fresh table `table` and the first index read after it.
async fn one_run(
    client: &tokio_postgres::Client,
    table: &str,
    rows: u64,
    payload: &bytes::Bytes,
) -> Result<Run> {
    client
        .batch_execute(&data::TABLE_DDL.replace("TABLE t ", &format!("TABLE {table} ")))
        .await?;
    client
        .batch_execute(&format!("CREATE INDEX {table}_k ON {table} (k)"))
        .await?;
    let key0 = (0..rows as i64)
        .filter(|id| data::row(*id, keys(rows)).k == 0)
        .count();
    let start = Instant::now();
    let copied = copy_in(client, table, payload).await?;
    let copy_s = start.elapsed().as_secs_f64();
    if copied != rows {
        bail!("COPY {table} wrote {copied} rows, expected {rows}");
    }
    let found = client
        .query(&format!("SELECT id FROM {table} WHERE k = 0"), &[])
        .await?
        .len();
    let index_s = start.elapsed().as_secs_f64();
    if found != key0 {
        bail!("{table}: the index read found {found} rows with k = 0, expected {key0}");
    }
    client.batch_execute(&format!("DROP TABLE {table}")).await?;
    Ok(Run { copy_s, index_s })
}

fn keys(rows: u64) -> u64 {
    (rows / 100).max(1)
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = freshet_bench::parse_flags(&["rows", "runs", "warmup", "out", "server-bin"])?;
    let rows: u64 = flags.get("rows").map_or(Ok(2_000_000), |v| v.parse())?;
    let runs: usize = flags.get("runs").map_or(Ok(3), |v| v.parse())?;
    let warmup: usize = flags.get("warmup").map_or(Ok(1), |v| v.parse())?;
    let out = PathBuf::from(flags.get("out").map_or("misc/bench/results", |v| v));
    let mut config = ServerConfig::from_env();
    if let Some(bin) = flags.get("server-bin") {
        config.bin = bin.into();
    }

    let mut report = Report::begin(
        "ingest",
        "B7 — ingest: COPY FROM STDIN (text) into a table with one index",
    );
    eprintln!("generating {rows} rows");
    let payload = bytes::Bytes::from(data::tsv(0..rows as i64, keys(rows)));
    report.note(format!(
        "{} rows of `t (id bigint, k bigint, v bigint, s text)` ({:.0} MB of COPY text, {} distinct k), index on `k`; \
         medians of {runs} runs after {warmup} warm-up run(s), min–max in brackets; generation excluded",
        rows,
        payload.len() as f64 / 1e6,
        keys(rows)
    ));

    let mut systems: Vec<(String, Vec<Run>, Option<u64>)> = Vec::new();

    eprintln!("Freshet: {runs} runs");
    let server = Server::start(&config).await?;
    let client = server.connect().await?;
    let mut measured = Vec::new();
    for i in 0..warmup + runs {
        let run = one_run(&client, &format!("t{i}"), rows, &payload).await?;
        eprintln!(
            "  run {i}: COPY {:.2} s, index {:.2} s",
            run.copy_s, run.index_s
        );
        report.sample_load();
        if i >= warmup {
            measured.push(run);
        }
    }
    let (_, peak) = server.memory();
    systems.push((
        format!("Freshet ({} worker)", config.workers),
        measured,
        Some(peak),
    ));
    drop(client);
    drop(server);

    eprintln!("PostgreSQL: {runs} runs");
    let pg = PgCluster::start()?;
    report.note(format!("PostgreSQL: {}", pg.describe()));
    let client = pg.connect().await?;
    let mut measured = Vec::new();
    for i in 0..warmup + runs {
        let run = one_run(&client, &format!("t{i}"), rows, &payload).await?;
        eprintln!(
            "  run {i}: COPY {:.2} s, index {:.2} s",
            run.copy_s, run.index_s
        );
        report.sample_load();
        if i >= warmup {
            measured.push(run);
        }
    }
    systems.push(("PostgreSQL COPY".into(), measured, None));
    drop(client);
    drop(pg);

    let mut table = Vec::new();
    for (system, runs, peak) in &systems {
        let copy: Vec<f64> = runs.iter().map(|r| r.copy_s).collect();
        let index: Vec<f64> = runs.iter().map(|r| r.index_s).collect();
        let rate: Vec<f64> = copy.iter().map(|s| rows as f64 / s).collect();
        let (cmin, cmax) = spread(&copy);
        let (imin, imax) = spread(&index);
        table.push(vec![
            system.clone(),
            fmt(median(&rate)),
            format!("{} [{}–{}]", fmt(median(&copy)), fmt(cmin), fmt(cmax)),
            format!("{} [{}–{}]", fmt(median(&index)), fmt(imin), fmt(imax)),
            fmt(rows as f64 / median(&index)),
            peak.map_or("–".into(), |p| format!("{:.0} MB", p as f64 / 1e6)),
        ]);
        report.result(json!({
            "system": system,
            "rows": rows,
            "copy_s": copy,
            "index_readable_s": index,
            "rows_per_s_median": median(&rate),
            "peak_rss_bytes": peak,
        }));
    }
    report.table(
        "",
        &[
            "system",
            "COPY rows/s",
            "COPY ack (s)",
            "index readable (s)",
            "rows/s to readable index",
            "peak RSS",
        ],
        table,
    );
    report.finish(&out)
}
