//! The engine-overhead floor: the benchmarks' plans written by hand in differential
//! dataflow, over exactly the rows and changes the SQL systems see
//! (`freshet_bench::data`). No SQL, no persistence, no network: what is left is the
//! cost of the library Freshet is built on.
//!
//! ```text
//! freshet-bench-dd arrange --rows N --keys K
//!     arranges N rows of t by k; prints {"rss_before", "rss_after"} (bytes)
//! freshet-bench-dd delta --base N --keys K --sizes 1,100,10000 --rounds R --warmup W [--workers P]
//!     maintains `SELECT k, count(*), max(v) FROM t GROUP BY k` over a base of N rows
//!     through the rounds of `DeltaPlan` (for each size: W warm-up rounds, then R
//!     measured); prints the latency of every measured round (from handing the
//!     round's changes to the input until the output's frontier passes them) and a
//!     checksum of the final view
//! freshet-bench-dd nexmark --events N --queries q0,q1,... --runs R --warmup W [--workers P]
//!     per query, R + W runs of a fresh dataflow over the first N Nexmark events
//!     (`freshet_bench::nexmark`); prints each measured run's seconds (from handing the
//!     events to the inputs until the output frontier passes them), the output's row
//!     count and the process's peak RSS
//! ```
//!
//! Each timely worker feeds the rows and changes whose id it owns (`id % peers`);
//! worker 0 measures. The reduce recomputes a key's count and max from the key's
//! whole input, as Freshet's `ReducePlan::Basic` does.

mod nexmark;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use differential_dataflow::input::Input;
use freshet_bench::data::{self, DeltaPlan};
use serde_json::json;
use timely::dataflow::operators::Probe;

/// A row of `t` as a tuple (timely can exchange tuples of primitives and strings).
type Tuple = (i64, i64, i64, String);

fn tuple(row: data::Row) -> Tuple {
    (row.id, row.k, row.v, row.s)
}

fn flag<T: std::str::FromStr>(flags: &[String], name: &str, default: Option<T>) -> Result<T> {
    match flags.iter().position(|f| f == name) {
        Some(i) => flags
            .get(i + 1)
            .and_then(|v| v.replace('_', "").parse().ok())
            .ok_or_else(|| anyhow!("{name} needs a valid value")),
        None => default.ok_or_else(|| anyhow!("{name} is required")),
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("arrange") => arrange(&args[1..]),
        Some("delta") => delta(&args[1..]),
        Some("nexmark") => nexmark::run(&args[1..]),
        _ => bail!("usage: freshet-bench-dd (arrange|delta|nexmark) --flag value ..."),
    }
}

fn rss() -> u64 {
    freshet_bench::process_memory(std::process::id()).map_or(0, |(rss, _)| rss)
}

/// Resident memory after a short settle, median of three samples.
fn settled_rss() -> u64 {
    let mut samples: Vec<u64> = (0..3)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(500));
            rss()
        })
        .collect();
    samples.sort();
    samples[1]
}

fn arrange(flags: &[String]) -> Result<()> {
    let rows: u64 = flag(flags, "--rows", None)?;
    let keys: u64 = flag(flags, "--keys", None)?;
    let before = settled_rss();
    let (tx, rx) = std::sync::mpsc::channel();
    let guards = timely::execute(timely::Config::thread(), move |worker| {
        let (mut input, probe, trace) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, rows) = scope.new_collection::<Tuple, isize>();
            let arranged = rows
                .map(|(id, k, v, s)| (k, (id, v, s)))
                .arrange_by_key_named("ArrangeByK");
            let trace = arranged.trace.clone();
            let (probe, _) = arranged.stream.probe();
            (input, probe, trace)
        });
        for id in 0..rows as i64 {
            input.insert(tuple(data::row(id, keys)));
        }
        input.advance_to(1);
        input.flush();
        worker.step_while(|| probe.less_than(input.time()));
        // Let merges finish before measuring.
        for _ in 0..1000 {
            worker.step();
        }
        let after = settled_rss();
        tx.send(after).expect("receiver alive");
        drop(trace);
    })
    .map_err(|e| anyhow!("{e}"))?;
    drop(guards);
    let after = rx.recv()?;
    println!(
        "{}",
        json!({"rss_before": before, "rss_after": after, "rows": rows})
    );
    Ok(())
}

/// The final view's checksum: groups, sum of counts, sum of maxima.
type Checksum = Arc<Mutex<(i64, i64, i64)>>;

fn delta(flags: &[String]) -> Result<()> {
    let base: u64 = flag(flags, "--base", None)?;
    let keys: u64 = flag(flags, "--keys", None)?;
    let sizes: Vec<u64> = freshet_bench::parse_list(&flag::<String>(flags, "--sizes", None)?)?;
    let rounds: usize = flag(flags, "--rounds", None)?;
    let warmup: usize = flag(flags, "--warmup", Some(0))?;
    let workers: usize = flag(flags, "--workers", Some(1))?;
    let checksum: Checksum = Arc::default();
    let sum = Arc::clone(&checksum);
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let (index, peers) = (worker.index() as i64, worker.peers() as i64);
        let sum = Arc::clone(&sum);
        let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, rows) = scope.new_collection::<Tuple, isize>();
            let view =
                rows.map(|(_id, k, v, _s)| (k, v))
                    .reduce_named("CountMax", |_k, input, output| {
                        let count: isize = input.iter().map(|(_, diff)| *diff).sum();
                        // Values arrive sorted: the last one is the maximum.
                        let max = *input.last().expect("a group has input").0;
                        output.push(((count as i64, max), 1));
                    });
            let (probe, _) = view
                .inspect(move |((_k, (n, mx)), _time, diff)| {
                    let diff = *diff as i64;
                    let mut sum = sum.lock().expect("not poisoned");
                    sum.0 += diff;
                    sum.1 += n * diff;
                    sum.2 += mx * diff;
                })
                .probe();
            (input, probe)
        });
        for id in (0..base as i64).filter(|id| id % peers == index) {
            input.insert(tuple(data::row(id, keys)));
        }
        input.advance_to(1);
        input.flush();
        worker.step_while(|| probe.less_than(input.time()));

        let mut plan = DeltaPlan::new(base);
        let mut out = Vec::new();
        for &size in &sizes {
            let mut latencies = Vec::new();
            for round in 0..warmup + rounds {
                let changes: Vec<(Tuple, isize)> = plan
                    .next(size)
                    .changes(keys)
                    .into_iter()
                    .filter(|(row, _)| row.id.rem_euclid(peers) == index)
                    .map(|(row, diff)| (tuple(row), diff as isize))
                    .collect();
                let start = Instant::now();
                for (row, diff) in changes {
                    input.update(row, diff);
                }
                let next = *input.time() + 1;
                input.advance_to(next);
                input.flush();
                worker.step_while(|| probe.less_than(input.time()));
                if round >= warmup {
                    latencies.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            out.push(json!({"size": size, "latencies_ms": latencies}));
        }
        out
    })
    .map_err(|e| anyhow!("{e}"))?;
    let mut results = guards.join();
    let first = results
        .remove(0)
        .map_err(|e| anyhow!("worker 0 failed: {e}"))?;
    let (groups, sum_n, sum_mx) = *checksum.lock().expect("not poisoned");
    println!(
        "{}",
        json!({"workers": workers, "sizes": first, "checksum": [groups, sum_n, sum_mx]})
    );
    Ok(())
}
