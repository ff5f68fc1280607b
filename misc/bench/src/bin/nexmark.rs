//! B1 — Nexmark throughput: how fast Freshet computes each Nexmark query as a
//! materialized view over `--events` pre-generated events, against the same plans
//! written by hand in differential dataflow (`freshet-bench-dd nexmark`).
//!
//! Events come from the `nexmark` crate with a fixed base time
//! (`freshet_bench::nexmark`). For each worker count, a fresh server loads the events
//! into `person`, `auction` and `bid` with COPY (not timed) and is restarted, so the
//! load's buffers are gone. Then, per query, each run times `CREATE MATERIALIZED VIEW`
//! until a `SELECT count(*)` of the view answers: the dataflow reads every event from
//! persist, computes, and writes the result to the view's shard. Throughput is events
//! divided by that time (and per worker). The differential dataflow program is handed
//! the same events as in-memory tuples and timed from the first input until its
//! output frontier passes them: the floor of what the library costs.
//!
//! This measures a batch of all events at once (hydration), not a sustained stream:
//! Freshet has no sources or load generators yet. Medians of `--runs` runs after one
//! warm-up; the row counts of each view and of the DD output are compared.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use freshet_bench::freshet::{copy_in, Server, ServerConfig};
use freshet_bench::nexmark::{self, QUERIES};
use freshet_bench::report::{fmt, median, spread, Report};
use serde_json::json;

struct QueryResult {
    seconds: Vec<f64>,
    rows: i64,
}

async fn freshet(
    config: &ServerConfig,
    tsv: &(bytes::Bytes, bytes::Bytes, bytes::Bytes),
    queries: &[&str],
    runs: usize,
    warmup: usize,
    report: &mut Report,
) -> Result<(BTreeMap<String, QueryResult>, u64)> {
    let mut server = Server::start(config).await?;
    {
        let client = server.connect().await?;
        for ddl in nexmark::DDL {
            client.batch_execute(ddl).await?;
        }
        copy_in(&client, "person", &tsv.0).await?;
        copy_in(&client, "auction", &tsv.1).await?;
        copy_in(&client, "bid", &tsv.2).await?;
    }
    server.restart().await?;
    let client = server.connect().await?;
    let mut out = BTreeMap::new();
    for (name, sql) in QUERIES.iter().filter(|(n, _)| queries.contains(n)) {
        let mut seconds = Vec::new();
        let mut rows = 0;
        for run in 0..warmup + runs {
            let view = format!("{name}_{run}");
            let start = Instant::now();
            client
                .batch_execute(&format!("CREATE MATERIALIZED VIEW {view} AS {sql}"))
                .await
                .with_context(|| format!("creating {name}"))?;
            rows = client
                .query_one(&format!("SELECT count(*)::bigint FROM {view}"), &[])
                .await?
                .get(0);
            let elapsed = start.elapsed().as_secs_f64();
            eprintln!("  {name} run {run}: {elapsed:.2} s, {rows} rows");
            if run >= warmup {
                seconds.push(elapsed);
            }
            client
                .batch_execute(&format!("DROP MATERIALIZED VIEW {view}"))
                .await?;
            report.sample_load();
        }
        out.insert(name.to_string(), QueryResult { seconds, rows });
    }
    let (_, peak) = server.memory();
    Ok((out, peak))
}

fn dd(
    bin: &PathBuf,
    events: u64,
    workers: usize,
    queries: &[&str],
    runs: usize,
    warmup: usize,
) -> Result<(BTreeMap<String, QueryResult>, u64)> {
    let output = Command::new(bin)
        .args(["nexmark", "--events", &events.to_string()])
        .args(["--workers", &workers.to_string()])
        .args(["--queries", &queries.join(",")])
        .args(["--runs", &runs.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut out = BTreeMap::new();
    for (name, q) in result["queries"].as_object().into_iter().flatten() {
        out.insert(
            name.clone(),
            QueryResult {
                seconds: serde_json::from_value(q["seconds"].clone())?,
                rows: q["rows"].as_i64().unwrap_or(-1),
            },
        );
    }
    Ok((out, result["peak_rss"].as_u64().unwrap_or(0)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = freshet_bench::parse_flags(&[
        "events",
        "workers",
        "queries",
        "runs",
        "warmup",
        "out",
        "server-bin",
        "dd-bin",
    ])?;
    let events: u64 = flags.get("events").map_or(Ok(300_000), |v| v.parse())?;
    let workers: Vec<u64> = freshet_bench::parse_list(flags.get("workers").map_or("1,2", |v| v))?;
    let runs: usize = flags.get("runs").map_or(Ok(3), |v| v.parse())?;
    let warmup: usize = flags.get("warmup").map_or(Ok(1), |v| v.parse())?;
    let all: Vec<&str> = QUERIES.iter().map(|(n, _)| *n).collect();
    let queries: Vec<&str> = match flags.get("queries") {
        Some(list) => list.split(',').map(str::trim).collect(),
        None => all.clone(),
    };
    if let Some(q) = queries.iter().find(|q| !all.contains(q)) {
        bail!("unknown query {q} (known: {})", all.join(", "));
    }
    let out = PathBuf::from(flags.get("out").map_or("misc/bench/results", |v| v));
    let mut config = ServerConfig::from_env();
    if let Some(bin) = flags.get("server-bin") {
        config.bin = bin.into();
    }
    let dd_bin = flags
        .get("dd-bin")
        .map(PathBuf::from)
        .unwrap_or_else(|| config.bin.with_file_name("freshet-bench-dd"));

    let mut report = Report::begin(
        "nexmark",
        "B1 — Nexmark throughput (queries as materialized views)",
    );
    eprintln!("generating {events} events");
    let generated = nexmark::generate(events);
    let (p, a, b) = nexmark::tsv(&generated);
    report.note(format!(
        "{events} events from the `nexmark` crate 0.2 (base time {}, default rates: {} persons, {} auctions, {} bids; {:.0} MB of COPY text), \
         loaded before timing; per query: CREATE MATERIALIZED VIEW until `SELECT count(*)` of it answers (Freshet), \
         first input until the output frontier passes it (hand-written DD); medians of {runs} runs after {warmup} warm-up, min–max in brackets",
        nexmark::BASE_TIME,
        generated.person.len(),
        generated.auction.len(),
        generated.bid.len(),
        (p.len() + a.len() + b.len()) as f64 / 1e6
    ));
    report.note(
        "windows are 10 s tumbling windows written `date_time / 10000` in both (the events carry integer milliseconds; TUMBLE takes timestamps); \
         q1's currency conversion is integer arithmetic (`price * 908 / 1000`) in both",
    );
    drop(generated);
    let tsv = (
        bytes::Bytes::from(p),
        bytes::Bytes::from(a),
        bytes::Bytes::from(b),
    );

    let mut rows = Vec::new();
    for &w in &workers {
        let mut server = config.clone();
        server.workers = w as usize;
        eprintln!("Freshet, {w} worker(s)");
        let (freshet, freshet_peak) =
            freshet(&server, &tsv, &queries, runs, warmup, &mut report).await?;
        eprintln!("hand-written DD, {w} worker(s)");
        let (dd, dd_peak) = dd(&dd_bin, events, w as usize, &queries, runs, warmup)?;
        report.sample_load();
        for name in &queries {
            let (f, d) = (&freshet[*name], &dd[*name]);
            let f_rate = events as f64 / median(&f.seconds);
            let d_rate = events as f64 / median(&d.seconds);
            let (fmin, fmax) = spread(&f.seconds);
            rows.push(vec![
                name.to_string(),
                w.to_string(),
                fmt(f_rate),
                fmt(f_rate / w as f64),
                format!("{} [{}–{}]", fmt(median(&f.seconds)), fmt(fmin), fmt(fmax)),
                fmt(d_rate),
                format!("{:.1}", d_rate / f_rate),
                if f.rows == d.rows {
                    f.rows.to_string()
                } else {
                    format!("{} ≠ DD {}", f.rows, d.rows)
                },
            ]);
            report.result(json!({
                "query": name,
                "workers": w,
                "events": events,
                "freshet_seconds": f.seconds,
                "freshet_rows": f.rows,
                "dd_seconds": d.seconds,
                "dd_rows": d.rows,
            }));
        }
        report.note(format!(
            "peak RSS with {w} worker(s): Freshet {:.0} MB (after the restart that follows the load), hand-written DD {:.0} MB",
            freshet_peak as f64 / 1e6,
            dd_peak as f64 / 1e6
        ));
    }
    report.table(
        "",
        &[
            "query",
            "workers",
            "Freshet events/s",
            "per worker",
            "Freshet s",
            "DD events/s",
            "DD ÷ Freshet",
            "rows",
        ],
        rows,
    );
    report.finish(&out)
}
