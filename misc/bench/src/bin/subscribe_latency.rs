//! Commit → SUBSCRIBE delivery latency.
//!
//! Starts `environmentd` (a fresh data directory per tick setting), subscribes to a
//! table with `COPY (SUBSCRIBE t WITH (SNAPSHOT = false)) TO STDOUT` on one connection
//! and writes on another: `rounds` single-row INSERTs and `batch_rounds` INSERTs of
//! 10,000 rows each. For every write it records the time from sending the INSERT (the
//! commit request) until its last row arrives at the subscriber, and the INSERT's own
//! round trip (until the commit is acknowledged). Prints a markdown table per tick
//! interval and writes the numbers as JSON.
//!
//! ```text
//! cargo build --release --bin environmentd
//! cargo run --release -p freshet-bench --bin subscribe_latency -- \
//!     --server-bin target/release/environmentd --ticks 1,10 --out misc/bench/results/subscribe_latency.json
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use tokio_postgres::NoTls;

struct Args {
    server_bin: PathBuf,
    ticks: Vec<u64>,
    rounds: usize,
    batch_rounds: usize,
    batch_rows: usize,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let mut args = Args {
        server_bin: PathBuf::from(format!("{target}/release/environmentd")),
        ticks: vec![1, 10],
        rounds: 200,
        batch_rounds: 20,
        batch_rows: 10_000,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--server-bin" => args.server_bin = PathBuf::from(value()?),
            "--ticks" => {
                args.ticks = value()?
                    .split(',')
                    .map(|t| t.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--rounds" => args.rounds = value()?.parse()?,
            "--batch-rounds" => args.batch_rounds = value()?.parse()?,
            "--batch-rows" => args.batch_rows = value()?.parse()?,
            "--out" => args.out = Some(PathBuf::from(value()?)),
            other => return Err(anyhow!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// A running environmentd, killed (and its data removed) on drop.
struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_server(bin: &PathBuf, tick_ms: u64) -> Result<Server> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("freshet-bench-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let child = Command::new(bin)
        .arg("--listen-addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--tick-interval-ms")
        .arg(tick_ms.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("server.log"))?))
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let server = Server { child, dir, port };
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("environmentd did not start listening"))
}

async fn connect(port: u16) -> Result<tokio_postgres::Client> {
    let config = format!("host=127.0.0.1 port={port} user=freshet");
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

struct Measurement {
    tick_ms: u64,
    workload: String,
    delivery_ms: Vec<f64>,
    commit_ms: Vec<f64>,
}

/// Last-row arrival times by write id, filled by the subscriber task.
type Arrivals = Arc<Mutex<HashMap<i64, (usize, Instant)>>>;

async fn measure(args: &Args, tick_ms: u64) -> Result<Vec<Measurement>> {
    let server = start_server(&args.server_bin, tick_ms).await?;
    let writer = connect(server.port).await.context("connecting")?;
    writer
        .batch_execute("CREATE TABLE t (write_id bigint, n int)")
        .await
        .context("CREATE TABLE")?;
    let subscriber = connect(server.port).await?;
    let stream = subscriber
        .copy_out("COPY (SUBSCRIBE t WITH (SNAPSHOT = false)) TO STDOUT")
        .await
        .context("COPY (SUBSCRIBE ...)")?;
    let arrivals: Arrivals = Arc::default();
    let task = tokio::spawn({
        let arrivals = Arc::clone(&arrivals);
        async move {
            let mut stream = Box::pin(stream);
            while let Some(Ok(chunk)) = stream.next().await {
                let now = Instant::now();
                let text = String::from_utf8_lossy(&chunk);
                let mut map = arrivals.lock().expect("not poisoned");
                for line in text.lines() {
                    // mz_timestamp, mz_diff, write_id, n
                    if let Some(id) = line.split('\t').nth(2).and_then(|v| v.parse().ok()) {
                        let entry = map.entry(id).or_insert((0, now));
                        entry.0 += 1;
                        entry.1 = now;
                    }
                }
            }
        }
    });
    // Warm-up writes, not measured.
    for i in 0..10 {
        writer
            .batch_execute(&format!("INSERT INTO t VALUES ({}, 0)", -1 - i))
            .await
            .context("warm-up INSERT")?;
    }
    let mut out = Vec::new();
    let mut next_id = 0i64;
    for (workload, rounds, rows) in [
        ("1-row INSERT".to_string(), args.rounds, 1usize),
        (
            format!("{}-row INSERT", args.batch_rows),
            args.batch_rounds,
            args.batch_rows,
        ),
    ] {
        let mut delivery = Vec::new();
        let mut commit = Vec::new();
        for _ in 0..rounds {
            let id = next_id;
            next_id += 1;
            let values: Vec<String> = (0..rows).map(|n| format!("({id}, {n})")).collect();
            let sql = format!("INSERT INTO t VALUES {}", values.join(","));
            let sent = Instant::now();
            writer
                .batch_execute(&sql)
                .await
                .with_context(|| format!("INSERT of {rows} rows"))?;
            commit.push(sent.elapsed().as_secs_f64() * 1e3);
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let done = arrivals
                    .lock()
                    .expect("not poisoned")
                    .get(&id)
                    .filter(|(count, _)| *count >= rows)
                    .map(|(_, at)| *at);
                if let Some(at) = done {
                    delivery.push(at.duration_since(sent).as_secs_f64() * 1e3);
                    break;
                }
                if Instant::now() > deadline {
                    return Err(anyhow!("write {id} was not delivered within 60 s"));
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        out.push(Measurement {
            tick_ms,
            workload,
            delivery_ms: delivery,
            commit_ms: commit,
        });
    }
    task.abort();
    drop(server);
    Ok(out)
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load_before = load_average();
    let mut results = Vec::new();
    for &tick in &args.ticks {
        results.extend(measure(&args, tick).await?);
    }
    let load_after = load_average();
    let noisy = load_before.max(load_after) > cores as f64;
    println!("### Commit → SUBSCRIBE delivery latency (ms)\n");
    println!(
        "machine: {cores} cores, load average {load_before:.2} before / {load_after:.2} after{}\n",
        if noisy {
            " — NOISY RUN (load above the core count)"
        } else {
            ""
        }
    );
    println!("| tick | workload | writes | delivery p50 | delivery p99 | delivery max | commit ack p50 | commit ack p99 |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut json = Vec::new();
    for m in &mut results {
        m.delivery_ms.sort_by(f64::total_cmp);
        m.commit_ms.sort_by(f64::total_cmp);
        let (d50, d99) = (
            percentile(&m.delivery_ms, 50.0),
            percentile(&m.delivery_ms, 99.0),
        );
        let dmax = m.delivery_ms.last().copied().unwrap_or(f64::NAN);
        let (c50, c99) = (
            percentile(&m.commit_ms, 50.0),
            percentile(&m.commit_ms, 99.0),
        );
        println!(
            "| {} ms | {} | {} | {d50:.2} | {d99:.2} | {dmax:.2} | {c50:.2} | {c99:.2} |",
            m.tick_ms,
            m.workload,
            m.delivery_ms.len()
        );
        json.push(format!(
            "{{\"tick_ms\":{},\"workload\":\"{}\",\"writes\":{},\"delivery_p50_ms\":{d50:.3},\"delivery_p99_ms\":{d99:.3},\"delivery_max_ms\":{dmax:.3},\"commit_p50_ms\":{c50:.3},\"commit_p99_ms\":{c99:.3}}}",
            m.tick_ms,
            m.workload,
            m.delivery_ms.len()
        ));
    }
    if let Some(path) = &args.out {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = format!(
            "{{\"benchmark\":\"subscribe_latency\",\"cores\":{cores},\"load_before\":{load_before},\"load_after\":{load_after},\"noisy\":{noisy},\"results\":[{}]}}\n",
            json.join(",")
        );
        std::fs::write(path, text)?;
    }
    Ok(())
}
