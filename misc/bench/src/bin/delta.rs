//! B2 — small-delta latency, and B3 — crossover: maintaining
//! `SELECT k, count(*) AS n, max(v) AS mx FROM t GROUP BY k` through rounds of changes,
//! Freshet against PostgreSQL `REFRESH MATERIALIZED VIEW`, DuckDB recomputing the
//! query, and the same plan written by hand in differential dataflow.
//!
//! Every system loads the same base (`--base` rows of `t`, see `freshet_bench::data`)
//! and applies the same rounds (`DeltaPlan`: for each size, `--warmup` unmeasured
//! rounds, then `--rounds` measured ones). A round is one transaction: `COPY t FROM
//! STDIN` of the inserted rows and the round's marker row, and one `DELETE ... WHERE id
//! >= a AND id < b` of a tenth of the changes. What is timed, from sending `BEGIN`:
//! - Freshet: until the marker's row of the view (`k = -1`, `mx` = the round) arrives
//!   on `COPY (SUBSCRIBE agg WITH (SNAPSHOT = false)) TO STDOUT`: the round's whole
//!   timestamp arrives together, so this is commit → SUBSCRIBE delivery;
//! - PostgreSQL: until `REFRESH MATERIALIZED VIEW agg` after the COMMIT returns;
//! - DuckDB: until `CREATE OR REPLACE TABLE agg AS <query>` after the COMMIT returns;
//! - differential dataflow: from handing the changes to the input until the output
//!   frontier passes them (no durability, no SQL: the engine floor).
//!
//! The data of each round is generated before its timer starts (for DuckDB, written
//! to a file it COPYs from). After the last round the views' checksums
//! (`count(*), sum(n), sum(mx)`) are compared across systems, so every system did the
//! same work. `--bench b2` prints p50/p99 per size; `--bench b3` prints the median per
//! size and where incremental maintenance stops beating DuckDB.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use freshet_bench::data::{self, Delta, DeltaPlan, AGG_QUERY, TABLE_DDL};
use freshet_bench::duck::Duck;
use freshet_bench::freshet::{copy_in, Server, ServerConfig};
use freshet_bench::pg::PgCluster;
use freshet_bench::report::{fmt, median, percentile, Report};
use futures::StreamExt;
use serde_json::json;

struct Config {
    bench: String,
    base: u64,
    keys: u64,
    sizes: Vec<u64>,
    rounds: usize,
    warmup: usize,
    systems: Vec<String>,
    server: ServerConfig,
    dd_bin: PathBuf,
    out: PathBuf,
}

/// The measured latencies of one system: per size, one entry per measured round.
#[derive(Default)]
struct Measured {
    /// Until the view is current (ms).
    total: BTreeMap<u64, Vec<f64>>,
    /// Until the COMMIT is acknowledged (ms); not for differential dataflow.
    commit: BTreeMap<u64, Vec<f64>>,
    checksum: Option<(i64, i64, i64)>,
}

/// The rounds every system runs, in order: `(size, measured, delta)`.
fn rounds(config: &Config) -> Vec<(u64, bool, Delta)> {
    let mut plan = DeltaPlan::new(config.base);
    let mut out = Vec::new();
    for &size in &config.sizes {
        for i in 0..config.warmup + config.rounds {
            out.push((size, i >= config.warmup, plan.next(size)));
        }
    }
    out
}

/// An integer with thousands separators.
fn count(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        fmt(n as f64)
    }
}

/// Applies one round's change to table `t` in one transaction: its inserts with COPY,
/// then its deletes. Freshet and PostgreSQL get exactly the same statements.
async fn apply_delta(
    client: &tokio_postgres::Client,
    delta: &Delta,
    keys: u64,
) -> anyhow::Result<()> {
    let inserts = bytes::Bytes::from(delta.insert_tsv(keys));
    client.batch_execute("BEGIN").await?;
    copy_in(client, "t", &inserts).await?;
    if let Some(delete) = delta.delete_sql() {
        client.batch_execute(&delete).await?;
    }
    client.batch_execute("COMMIT").await?;
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn checksum_of(row: &tokio_postgres::Row) -> (i64, i64, i64) {
    (row.get(0), row.get(1), row.get(2))
}

const CHECKSUM_SQL: &str = "SELECT count(*)::bigint, sum(n)::bigint, sum(mx)::bigint FROM agg";

async fn freshet(config: &Config, base: &bytes::Bytes, report: &mut Report) -> Result<Measured> {
    let server = Server::start(&config.server).await?;
    let client = server.connect().await?;
    client.batch_execute(TABLE_DDL).await?;
    copy_in(&client, "t", base).await?;
    client
        .batch_execute(&format!("CREATE MATERIALIZED VIEW agg AS {AGG_QUERY}"))
        .await?;
    client.query(CHECKSUM_SQL, &[]).await?;
    let subscriber = server.connect().await?;
    let stream = subscriber
        .copy_out("COPY (SUBSCRIBE agg WITH (SNAPSHOT = false)) TO STDOUT")
        .await
        .context("COPY (SUBSCRIBE agg ...)")?;
    let (tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<(i64, Instant)>();
    let task = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while let Some(Ok(chunk)) = stream.next().await {
            let now = Instant::now();
            for line in String::from_utf8_lossy(&chunk).lines() {
                // mz_timestamp, mz_diff, k, n, mx
                let fields: Vec<&str> = line.split('\t').collect();
                if fields.len() == 5 && fields[1] == "1" && fields[2] == "-1" {
                    if let Ok(round) = fields[4].parse() {
                        let _ = tx.send((round, now));
                    }
                }
            }
        }
    });
    let mut out = Measured::default();
    for (size, measured, delta) in rounds(config) {
        let start = Instant::now();
        apply_delta(&client, &delta, config.keys).await?;
        let commit = ms(start);
        let deadline = start + Duration::from_secs(120);
        let arrived = loop {
            let (round, at) = tokio::time::timeout_at(deadline.into(), arrivals.recv())
                .await
                .map_err(|_| anyhow!("round {} was not delivered in 120 s", delta.round))?
                .ok_or_else(|| anyhow!("the subscription ended"))?;
            if round == delta.round as i64 {
                break at;
            }
        };
        if measured {
            out.total
                .entry(size)
                .or_default()
                .push(arrived.duration_since(start).as_secs_f64() * 1e3);
            out.commit.entry(size).or_default().push(commit);
        }
        report.sample_load();
    }
    out.checksum = Some(checksum_of(&client.query_one(CHECKSUM_SQL, &[]).await?));
    task.abort();
    Ok(out)
}

async fn postgres(config: &Config, base: &bytes::Bytes, report: &mut Report) -> Result<Measured> {
    let pg = PgCluster::start()?;
    report.note(format!(
        "PostgreSQL: {}; btree index on `t (id)` for the DELETEs",
        pg.describe()
    ));
    let client = pg.connect().await?;
    client.batch_execute(TABLE_DDL).await?;
    copy_in(&client, "t", base).await?;
    client.batch_execute("CREATE INDEX t_id ON t (id)").await?;
    client.batch_execute("VACUUM ANALYZE t").await?;
    client
        .batch_execute(&format!("CREATE MATERIALIZED VIEW agg AS {AGG_QUERY}"))
        .await?;
    let mut out = Measured::default();
    for (size, measured, delta) in rounds(config) {
        let start = Instant::now();
        apply_delta(&client, &delta, config.keys).await?;
        let commit = ms(start);
        client
            .batch_execute("REFRESH MATERIALIZED VIEW agg")
            .await?;
        if measured {
            out.total.entry(size).or_default().push(ms(start));
            out.commit.entry(size).or_default().push(commit);
        }
        report.sample_load();
    }
    out.checksum = Some(checksum_of(&client.query_one(CHECKSUM_SQL, &[]).await?));
    Ok(out)
}

fn duckdb(config: &Config, base: &bytes::Bytes, report: &mut Report) -> Result<Measured> {
    let mut duck = Duck::start()?;
    report.note(format!(
        "DuckDB {} (Python module, in memory, default threads), changes COPYed from a file written before the timer starts",
        duck.version
    ));
    let dir = std::env::temp_dir().join(format!("freshet-bench-duck-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("rows.tsv");
    let copy = format!(
        "COPY t FROM '{}' (FORMAT csv, DELIMITER '\t', HEADER false, QUOTE '')",
        file.display()
    );
    std::fs::write(&file, base)?;
    duck.run(&[TABLE_DDL, &copy])?;
    let recompute = format!("CREATE OR REPLACE TABLE agg AS {AGG_QUERY}");
    duck.run(&[&recompute])?;
    let mut out = Measured::default();
    for (size, measured, delta) in rounds(config) {
        std::fs::write(&file, delta.insert_tsv(config.keys))?;
        let delete = delta.delete_sql();
        let mut txn = vec!["BEGIN", copy.as_str()];
        if let Some(delete) = &delete {
            txn.push(delete);
        }
        txn.push("COMMIT");
        let start = Instant::now();
        duck.run(&txn)?;
        let commit = ms(start);
        duck.run(&[&recompute])?;
        if measured {
            out.total.entry(size).or_default().push(ms(start));
            out.commit.entry(size).or_default().push(commit);
        }
        report.sample_load();
    }
    let sums = duck.run(&[CHECKSUM_SQL])?;
    let field = |i: usize| -> Result<i64> {
        Ok(sums
            .first()
            .and_then(|r| r.get(i))
            .ok_or_else(|| anyhow!("no checksum row"))?
            .parse()?)
    };
    out.checksum = Some((field(0)?, field(1)?, field(2)?));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn dd(config: &Config) -> Result<Measured> {
    let sizes: Vec<String> = config.sizes.iter().map(|s| s.to_string()).collect();
    let output = Command::new(&config.dd_bin)
        .args(["delta", "--base", &config.base.to_string()])
        .args(["--keys", &config.keys.to_string()])
        .args(["--sizes", &sizes.join(",")])
        .args(["--rounds", &config.rounds.to_string()])
        .args(["--warmup", &config.warmup.to_string()])
        .args(["--workers", &config.server.workers.to_string()])
        .output()
        .with_context(|| format!("running {}", config.dd_bin.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            config.dd_bin.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut out = Measured::default();
    for entry in result["sizes"].as_array().into_iter().flatten() {
        let size = entry["size"].as_u64().unwrap_or(0);
        let latencies: Vec<f64> = serde_json::from_value(entry["latencies_ms"].clone())?;
        out.total.insert(size, latencies);
    }
    let sum: Vec<i64> = serde_json::from_value(result["checksum"].clone())?;
    out.checksum = Some((sum[0], sum[1], sum[2]));
    Ok(out)
}

fn system_name(system: &str, workers: usize) -> String {
    match system {
        "freshet" => format!("Freshet ({workers} worker), SUBSCRIBE delivery"),
        "pg" => "PostgreSQL, REFRESH MATERIALIZED VIEW".into(),
        "duckdb" => "DuckDB, full recompute".into(),
        "dd" => format!("hand-written DD ({workers} worker)"),
        other => other.into(),
    }
}

fn parse_config() -> Result<Config> {
    let flags = freshet_bench::parse_flags(&[
        "bench",
        "base",
        "sizes",
        "rounds",
        "warmup",
        "systems",
        "workers",
        "out",
        "server-bin",
        "dd-bin",
    ])?;
    let bench = flags.get("bench").cloned().unwrap_or_else(|| "b2".into());
    let crossover = match bench.as_str() {
        "b2" => false,
        "b3" => true,
        other => bail!("--bench is b2 or b3, not {other}"),
    };
    let base: u64 = flags.get("base").map_or(Ok(100_000), |v| v.parse())?;
    let default_sizes = if crossover {
        let mut sizes = vec![1, 100, 1_000, 10_000, 100_000, 1_000_000, 5_000_000];
        sizes.retain(|s| *s < base / 2);
        sizes.push(base / 2);
        sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",")
    } else {
        "1,100,10000".into()
    };
    let mut server = ServerConfig::from_env();
    if let Some(bin) = flags.get("server-bin") {
        server.bin = bin.into();
    }
    server.workers = flags.get("workers").map_or(Ok(1), |v| v.parse())?;
    let dd_bin = flags
        .get("dd-bin")
        .map(PathBuf::from)
        .unwrap_or_else(|| server.bin.with_file_name("freshet-bench-dd"));
    Ok(Config {
        bench,
        base,
        keys: (base / 100).max(1),
        sizes: freshet_bench::parse_list(flags.get("sizes").unwrap_or(&default_sizes))?,
        rounds: flags
            .get("rounds")
            .map_or(Ok(if crossover { 3 } else { 200 }), |v| v.parse())?,
        warmup: flags
            .get("warmup")
            .map_or(Ok(if crossover { 1 } else { 5 }), |v| v.parse())?,
        systems: flags
            .get("systems")
            .map_or("freshet,pg,duckdb,dd", |v| v)
            .split(',')
            .map(String::from)
            .collect(),
        server,
        dd_bin,
        out: PathBuf::from(flags.get("out").map_or("misc/bench/results", |v| v)),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let config = parse_config()?;
    let crossover = config.bench == "b3";
    let (name, title) = if crossover {
        (
            "crossover",
            "B3 — crossover: incremental maintenance against recomputation, by delta size",
        )
    } else {
        (
            "small_delta",
            "B2 — small-delta latency: commit → current view",
        )
    };
    let mut report = Report::begin(name, title);
    report.note(format!(
        "view `{AGG_QUERY}` over a base of {} rows ({} keys); rounds of Δ changes in one transaction each \
         (COPY of the inserted rows plus one marker row, DELETE of Δ/10 base rows by id range; Δ = 1 deletes in every tenth round); \
         per Δ: {} warm-up rounds excluded, then {} measured rounds; times in ms from BEGIN until the view is current",
        config.base, config.keys, config.warmup, config.rounds
    ));
    eprintln!("generating {} base rows", config.base);
    let base = bytes::Bytes::from(data::tsv(0..config.base as i64, config.keys));

    let mut results: Vec<(String, Measured)> = Vec::new();
    for system in &config.systems {
        eprintln!("{}", system_name(system, config.server.workers));
        let measured = match system.as_str() {
            "freshet" => freshet(&config, &base, &mut report).await?,
            "pg" => postgres(&config, &base, &mut report).await?,
            "duckdb" => duckdb(&config, &base, &mut report)?,
            "dd" => dd(&config)?,
            other => bail!("unknown system {other} (freshet, pg, duckdb, dd)"),
        };
        report.sample_load();
        results.push((system.clone(), measured));
    }

    // Every system must end with the same view.
    let checksums: Vec<_> = results.iter().map(|(s, m)| (s, m.checksum)).collect();
    if checksums.windows(2).any(|w| w[0].1 != w[1].1) {
        bail!("the systems' final views differ (count, sum(n), sum(mx)): {checksums:?}");
    }
    report.note(format!(
        "final views agree across systems (count, sum(n), sum(mx)) = {:?}",
        checksums.first().and_then(|c| c.1)
    ));

    if crossover {
        let mut header = vec!["Δ rows".to_string()];
        header.extend(
            results
                .iter()
                .map(|(s, _)| system_name(s, config.server.workers)),
        );
        header.push("Freshet COMMIT ack".into());
        header.push("Freshet ÷ DuckDB".into());
        header.push("DD ÷ DuckDB".into());
        let mut rows = Vec::new();
        // Per incremental system: the first Δ at which it is no faster than DuckDB.
        let mut crossed: BTreeMap<&str, u64> = BTreeMap::new();
        for &size in &config.sizes {
            let mut row = vec![count(size)];
            let medians: BTreeMap<&str, f64> = results
                .iter()
                .map(|(s, m)| {
                    (
                        s.as_str(),
                        median(m.total.get(&size).map_or(&[][..], |v| v)),
                    )
                })
                .collect();
            row.extend(results.iter().map(|(s, _)| fmt(medians[s.as_str()])));
            let freshet_commit = results
                .iter()
                .find(|(s, _)| s == "freshet")
                .and_then(|(_, m)| m.commit.get(&size))
                .map_or(f64::NAN, |v| median(v));
            row.push(fmt(freshet_commit));
            let duck = medians.get("duckdb").copied().unwrap_or(f64::NAN);
            for system in ["freshet", "dd"] {
                let ratio = medians.get(system).copied().unwrap_or(f64::NAN) / duck;
                if ratio >= 1.0 {
                    crossed.entry(system).or_insert(size);
                }
                row.push(format!("{ratio:.2}"));
            }
            rows.push(row);
        }
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        report.table("median ms over the measured rounds", &header, rows);
        for system in ["freshet", "dd"] {
            if !results.iter().any(|(s, _)| s == system) {
                continue;
            }
            let name = system_name(system, config.server.workers);
            report.note(match crossed.get(system) {
                Some(size) => format!(
                    "{name}: no faster than DuckDB's recompute from Δ = {} rows on",
                    count(*size)
                ),
                None => format!("{name}: faster than DuckDB's recompute at every measured Δ"),
            });
        }
    } else {
        let mut rows = Vec::new();
        for &size in &config.sizes {
            for (system, m) in &results {
                let total = m.total.get(&size).map_or(&[][..], |v| v);
                let commit = m.commit.get(&size).map_or(&[][..], |v| v);
                rows.push(vec![
                    count(size),
                    system_name(system, config.server.workers),
                    total.len().to_string(),
                    fmt(percentile(total, 50.0)),
                    fmt(percentile(total, 99.0)),
                    fmt(percentile(commit, 50.0)),
                    fmt(percentile(commit, 99.0)),
                ]);
            }
        }
        report.table(
            "",
            &[
                "Δ",
                "system",
                "rounds",
                "current p50",
                "current p99",
                "COMMIT ack p50",
                "COMMIT ack p99",
            ],
            rows,
        );
    }
    for (system, m) in &results {
        report.result(json!({
            "system": system,
            "base": config.base,
            "total_ms": m.total.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
            "commit_ms": m.commit.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<BTreeMap<_, _>>(),
        }));
    }
    report.finish(&config.out)
}
