//! Shared pieces of Freshet's benchmarks: the systems under test and how to measure them.
//!
//! Every benchmark binary in `src/bin/` runs Freshet and its comparators in the same
//! process run, on the same data, and prints one markdown table per benchmark (see
//! `misc/bench/run.sh` and `doc/performance.md`). The invariant the modules keep: data
//! is a pure function of a row id ([`data`]), so every system (and the hand-written
//! differential dataflow program in `misc/bench/dd`) sees byte-identical rows and
//! changes, and generating them is never inside a timed section.
//!
//! - [`data`]: deterministic rows, their text (COPY) encoding, and the change plan of
//!   the delta benchmarks.
//! - [`freshet`]: an `environmentd` process with its own data directory.
//! - [`nexmark`]: Nexmark events (the `nexmark` crate, fixed base time) and B1's queries.
//! - [`pg`]: a throwaway PostgreSQL 15 cluster.
//! - [`duck`]: DuckDB (the pinned Python module) in a child process.
//! - [`report`]: load checks, medians and percentiles, markdown tables, JSON output.

pub mod data;
pub mod duck;
pub mod freshet;
pub mod nexmark;
pub mod pg;
pub mod report;

use anyhow::Result;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Resident and peak resident memory of a process, in bytes (`VmRSS`, `VmHWM`).
pub fn process_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU time (user + system) a process has used so far, in seconds.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // USER_HZ is 100 on every Linux configuration this runs on.
    100.0
}

/// Parses `--flag value` pairs into a map; `known` lists the accepted flags.
pub fn parse_flags(known: &[&str]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| anyhow::anyhow!("unexpected argument {flag}"))?;
        if !known.contains(&name) {
            anyhow::bail!("unknown flag {flag} (known: --{})", known.join(", --"));
        }
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// A comma-separated list of numbers (`1,100,10000`).
pub fn parse_list(text: &str) -> Result<Vec<u64>> {
    text.split(',')
        .map(|v| Ok(v.trim().replace('_', "").parse()?))
        .collect()
}
