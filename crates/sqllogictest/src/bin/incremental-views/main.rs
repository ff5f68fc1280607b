//! `incremental-views`: checks that incrementally maintained views equal recomputation
//! (issue 4, "incremental views": incremental ≡ recompute).
//!
//! For every read-only query record of the given sqllogictest files, the check creates
//! a materialized view and an indexed view (`CREATE VIEW` + `CREATE DEFAULT INDEX`) over
//! the file's tables, then applies rounds of random INSERT/UPDATE/DELETE transactions
//! to those tables. Before the first round and after every round it takes a timestamp
//! `t` at which every write is visible (`EXPLAIN TIMESTAMP`) and checks, for every
//! query, that `SELECT * FROM <view> AS OF t` equals `<query> AS OF t` as a multiset,
//! for both views.
//!
//! What counts:
//! - a *mismatch*: a view's rows differ from the recomputation's, or a view read fails
//!   where the recomputation does not (or, for the indexed view, the other way round);
//! - a *failure*: an internal error (XX000, a caught panic), a statement that does not
//!   answer within `--timeout-secs` (a hang), the server going away (a crash) or
//!   growing past `--max-rss-mb`;
//! - neither: a query the view path rejects at CREATE (counted per SQLSTATE), a query
//!   that no longer plans against the file's final schema, a round in which the
//!   recomputation fails on the random data (division by zero, overflow; both views
//!   must then fail too, with any error), and queries left
//!   out by [`corpus::Exclusion`] (LIMIT/OFFSET/DISTINCT ON, clock or random reads,
//!   unordered string_agg).
//!
//! The queries of a file are checked in batches of `--batch`: each batch gets a fresh
//! server (`--server-bin`), the file's statements replayed, all views created, and
//! `--rounds` rounds of writes. A mismatch writes a replayable SQL script (setup, the
//! view, every write transaction of the batch, the reads) under `--repro-dir`.
//! The exit status is 0 only with zero mismatches and zero failures.

#[allow(dead_code)]
#[path = "../../server.rs"]
mod server;

mod corpus;
mod dml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::corpus::{Corpus, Exclusion, Query};
use crate::dml::{Rng, Row, Table};
use crate::server::{Server, ServerSpec};

/// Server settings for a throwaway server with hundreds of views: persist in memory,
/// and a one-second tick. With the default 10 ms tick every materialized view appends
/// to its shard a hundred times a second, and a few hundred of them keep the server
/// busy with that alone (the check's reads do not need the tick: every write advances
/// the tables' uppers itself).
const FAST_SERVER_ARGS: &[&str] = &[
    "--tick-interval-ms=1000",
    "--persist-blob-url=mem://incremental",
    "--persist-consensus-url=mem://incremental",
];

#[derive(Parser, Debug)]
#[command(
    name = "incremental-views",
    about = "Check that materialized and indexed views equal recomputation under random writes"
)]
struct Args {
    /// Test files, or directories searched recursively for *.slt and *.test.
    #[arg(required = true)]
    paths: Vec<PathBuf>,

    /// The environmentd binary; a fresh server is started for every batch.
    #[arg(long)]
    server_bin: PathBuf,

    /// Extra argument for the server (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,

    /// Start servers with their default settings instead of [`FAST_SERVER_ARGS`].
    #[arg(long)]
    default_server_config: bool,

    /// Rounds of random writes per batch (each followed by a check).
    #[arg(long, default_value_t = 20)]
    rounds: usize,

    /// Queries per server: each gets a materialized view and an indexed view.
    #[arg(long, default_value_t = 150)]
    batch: usize,

    /// Check only every N-th query of each file (a deterministic subset).
    #[arg(long, default_value_t = 1)]
    every: usize,

    /// Check at most this many queries per file.
    #[arg(long)]
    max_queries: Option<usize>,

    /// Seed of the random writes.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Label for skipif/onlyif (`postgresql` and `freshet` are always set; repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,

    /// Connections reading in parallel during a check.
    #[arg(long, default_value_t = 3)]
    connections: usize,

    /// A statement that takes longer than this is a hang.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,

    /// The server growing past this resident size is a failure (it is killed).
    #[arg(long, default_value_t = 8000)]
    max_rss_mb: u64,

    /// Where mismatch repro scripts go (default: <temp>/freshet-incremental).
    #[arg(long)]
    repro_dir: Option<PathBuf>,

    /// Also compare indexed views that `SELECT *` plans in place (reading the view's
    /// query rather than its index), which only compares a recomputation with itself.
    #[arg(long)]
    read_planned_views: bool,

    /// Print every rejected query and every mismatch in full.
    #[arg(short, long)]
    verbose: bool,
}

/// Counts over the whole run.
#[derive(Default)]
struct Totals {
    files: usize,
    servers: usize,
    /// Read-only query records seen.
    queries: usize,
    /// Left out by `--every`/`--max-queries`.
    sampled_out: usize,
    excluded: BTreeMap<Exclusion, usize>,
    /// Queries that do not plan after the file's statements before them were replayed
    /// (SQLSTATE → count).
    invalid: BTreeMap<String, usize>,
    /// CREATE MATERIALIZED VIEW refused (SQLSTATE: message → count).
    mv_rejected: BTreeMap<String, usize>,
    /// CREATE VIEW / CREATE DEFAULT INDEX refused.
    index_rejected: BTreeMap<String, usize>,
    /// Materialized views and indexed views created.
    mvs: usize,
    indexed_views: usize,
    /// Indexed views whose `SELECT *` EXPLAINs as a read of the view (its index)
    /// rather than the view's query planned in place.
    index_reads: usize,
    /// Distinct queries checked (with at least one view).
    checked_queries: usize,
    /// Rounds of writes applied (over all batches).
    rounds: usize,
    /// View reads compared with a recomputation.
    mv_comparisons: usize,
    index_comparisons: usize,
    /// Checks where the recomputation failed on the data (SQLSTATE → count).
    recompute_errors: BTreeMap<String, usize>,
    write_statements: usize,
    /// Write transactions that failed (NOT NULL, overflow...) and were rolled back.
    write_errors: BTreeMap<String, usize>,
    mismatched_queries: usize,
    mismatches: usize,
    failures: Vec<String>,
}

/// A statement's failure.
#[derive(Debug, Clone)]
enum SqlError {
    /// The server answered with an error.
    Db { code: String, message: String },
    /// No answer in time.
    Timeout,
    /// The connection failed.
    Connection(String),
}

impl SqlError {
    fn is_internal(&self) -> bool {
        match self {
            SqlError::Db { code, message } => {
                code == "XX000" || message.contains("panic") || message.contains("internal error")
            }
            _ => false,
        }
    }

    /// SQLSTATE, or what went wrong.
    fn code(&self) -> String {
        match self {
            SqlError::Db { code, .. } => code.clone(),
            SqlError::Timeout => "timeout".into(),
            SqlError::Connection(_) => "connection".into(),
        }
    }

    /// SQLSTATE and the message, shortened, to group rejections.
    fn key(&self) -> String {
        match self {
            SqlError::Db { code, message } => {
                let short: String = message.chars().take(70).collect();
                format!("{code}: {short}")
            }
            other => other.to_string(),
        }
    }

    /// Whether the server is no longer usable (the batch ends).
    fn is_fatal(&self) -> bool {
        matches!(self, SqlError::Timeout | SqlError::Connection(_))
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SqlError::Db { code, message } => write!(f, "{code}: {message}"),
            SqlError::Timeout => write!(f, "no answer in time (hang)"),
            SqlError::Connection(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for SqlError {}

/// Runs `sql` (simple protocol) and returns its rows.
async fn query(client: &Client, sql: &str, wait: Duration) -> Result<Vec<Row>, SqlError> {
    let messages = match tokio::time::timeout(wait, client.simple_query(sql)).await {
        Err(_) => return Err(SqlError::Timeout),
        Ok(Err(e)) => {
            return Err(match e.as_db_error() {
                Some(db) => SqlError::Db {
                    code: db.code().code().to_string(),
                    message: db.message().to_string(),
                },
                None => SqlError::Connection(e.to_string()),
            })
        }
        Ok(Ok(messages)) => messages,
    };
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// Multiset of rows.
fn multiset(rows: Vec<Row>) -> BTreeMap<Row, i64> {
    let mut set = BTreeMap::new();
    for row in rows {
        *set.entry(row).or_insert(0) += 1;
    }
    set
}

/// Rows of `a` not in `b` (with multiplicity), at most `limit`, as text.
fn missing(a: &BTreeMap<Row, i64>, b: &BTreeMap<Row, i64>, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (row, n) in a {
        let extra = n - b.get(row).copied().unwrap_or(0);
        if extra > 0 && out.len() < limit {
            let values: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
            out.push(format!("({}) x{extra}", values.join(", ")));
        }
    }
    out
}

/// `sql` read at `as_of`: `AS OF` goes at the very end of a SELECT or WITH query;
/// other queries (VALUES, parenthesized set operations) are wrapped.
fn at(sql: &str, as_of: u64) -> String {
    let start: String = sql
        .trim_start()
        .chars()
        .take(6)
        .collect::<String>()
        .to_lowercase();
    if start.starts_with("select") || start.starts_with("with") {
        format!("{sql} AS OF {as_of}")
    } else {
        format!("SELECT * FROM ({sql}) AS inc_query AS OF {as_of}")
    }
}

/// One query with its views in a batch.
struct Live {
    query: Query,
    mv: Option<String>,
    /// The indexed view, if it is compared.
    view: Option<String>,
    /// The CREATE statements, for repro scripts.
    creates: Vec<String>,
    mismatched: AtomicBool,
}

/// What a check of one query found.
enum Finding {
    Mismatch(String),
    Failure(String),
    RecomputeError(String),
}

/// Settings of a run.
struct Run {
    args: Args,
    spec: ServerSpec,
    labels: Vec<String>,
    wait: Duration,
    repro_dir: PathBuf,
    totals: Totals,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> Result<bool> {
    let started = Instant::now();
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no *.slt or *.test files found");
    }
    let mut labels = vec!["postgresql".to_string(), "freshet".to_string()];
    labels.extend(args.labels.iter().cloned());
    let mut extra_args: Vec<String> = Vec::new();
    if !args.default_server_config {
        extra_args.extend(FAST_SERVER_ARGS.iter().map(|a| a.to_string()));
    }
    extra_args.extend(args.server_args.iter().cloned());
    let spec = ServerSpec {
        bin: args.server_bin.clone(),
        extra_args,
        startup_timeout: Duration::from_secs(60),
        user: "freshet".into(),
        dbname: "freshet".into(),
        keep_data: false,
    };
    let repro_dir = args
        .repro_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("freshet-incremental"));
    let mut run = Run {
        wait: Duration::from_secs(args.timeout_secs.max(1)),
        args,
        spec,
        labels,
        repro_dir,
        totals: Totals::default(),
    };
    for (n, file) in files.iter().enumerate() {
        let corpus = Corpus::load(file, &run.labels)?;
        run.totals.files += 1;
        let mut chosen = Vec::new();
        for (i, q) in corpus.queries.iter().enumerate() {
            run.totals.queries += 1;
            let sampled = i % run.args.every.max(1) == 0
                && run.args.max_queries.is_none_or(|m| chosen.len() < m);
            if !sampled {
                run.totals.sampled_out += 1;
            } else if let Some(why) = q.excluded {
                *run.totals.excluded.entry(why).or_default() += 1;
            } else {
                chosen.push(q.clone());
            }
        }
        // Batches of consecutive queries, never across a statement that could make an
        // earlier query stop planning (our own suites drop and replace objects).
        let mut batches: Vec<Vec<Query>> = Vec::new();
        for q in chosen {
            let split = match batches.last().and_then(|b| b.last()) {
                None => true,
                Some(prev) => {
                    batches.last().map_or(0, Vec::len) >= run.args.batch.max(1)
                        || corpus.setup[prev.setup_len..q.setup_len]
                            .iter()
                            .any(|s| corpus::breaks_queries(s))
                }
            };
            if split {
                batches.push(Vec::new());
            }
            batches.last_mut().expect("a batch").push(q);
        }
        for (b, batch) in batches.iter().enumerate() {
            let seed = run.args.seed ^ ((n as u64) << 32) ^ b as u64;
            run_batch(&mut run, &corpus, batch, seed).await?;
        }
    }
    let ok = report(&run.totals, started.elapsed());
    Ok(ok)
}

/// Prints the summary; returns whether the run passed.
fn report(t: &Totals, elapsed: Duration) -> bool {
    let sum = |m: &BTreeMap<String, usize>| m.values().sum::<usize>();
    println!("== incremental ≡ recompute: summary");
    println!(
        "files: {}, servers: {}, query records: {} ({} left out by --every/--max-queries)",
        t.files, t.servers, t.queries, t.sampled_out
    );
    for (why, n) in &t.excluded {
        println!("  excluded: {n} ({})", why.describe());
    }
    println!(
        "  do not plan after the file's statements before them: {}",
        sum(&t.invalid)
    );
    for (k, n) in &t.invalid {
        println!("    {n:5}  {k}");
    }
    println!(
        "  rejected by CREATE MATERIALIZED VIEW: {}",
        sum(&t.mv_rejected)
    );
    for (k, n) in &t.mv_rejected {
        println!("    {n:5}  {k}");
    }
    println!(
        "  rejected by CREATE VIEW + CREATE DEFAULT INDEX: {}",
        sum(&t.index_rejected)
    );
    for (k, n) in &t.index_rejected {
        println!("    {n:5}  {k}");
    }
    println!(
        "checked queries: {} ({} materialized views, {} indexed views; {} indexed views read through their index)",
        t.checked_queries, t.mvs, t.indexed_views, t.index_reads
    );
    if t.index_reads < t.indexed_views {
        println!(
            "  {} indexed views are maintained through every round but SELECT plans them in place, \
             so they are compared only with --read-planned-views",
            t.indexed_views - t.index_reads
        );
    }
    println!(
        "rounds of writes: {} ({} write statements; {} transactions rolled back on errors)",
        t.rounds,
        t.write_statements,
        sum(&t.write_errors)
    );
    for (k, n) in &t.write_errors {
        println!("    {n:5}  {k}");
    }
    println!(
        "comparisons: {} materialized view, {} indexed view; recomputation failed on the data: {}",
        t.mv_comparisons,
        t.index_comparisons,
        sum(&t.recompute_errors)
    );
    for (k, n) in &t.recompute_errors {
        println!("    {n:5}  {k}");
    }
    println!(
        "mismatches: {} in {} queries; failures: {}",
        t.mismatches,
        t.mismatched_queries,
        t.failures.len()
    );
    for f in &t.failures {
        println!("  FAILURE {f}");
    }
    println!("time: {:.1} s", elapsed.as_secs_f64());
    t.mismatches == 0 && t.failures.is_empty()
}

/// Connects a session to `server`.
async fn connect(server: &Server, wait: Duration) -> Result<Client> {
    let (client, connection) =
        tokio::time::timeout(wait, server.config("freshet", "freshet").connect(NoTls))
            .await
            .context("connecting: no answer in time")?
            .context("connecting")?;
    tokio::spawn(connection);
    Ok(client)
}

/// Kills the server (by its pid) if its resident size passes `max_mb`; returns the
/// peak seen so far.
fn watch_memory(pid: u32, max_mb: u64, stop: Arc<AtomicBool>) -> Arc<AtomicU64> {
    let peak = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&peak);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let kb: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            seen.fetch_max(kb / 1024, Ordering::Relaxed);
            if kb / 1024 > max_mb {
                let _ = std::process::Command::new("kill")
                    .arg("-9")
                    .arg(pid.to_string())
                    .status();
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    peak
}

/// Checks one batch of queries of `corpus` on a fresh server.
async fn run_batch(run: &mut Run, corpus: &Corpus, batch: &[Query], seed: u64) -> Result<()> {
    let started = Instant::now();
    let name = corpus
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label = format!(
        "{name}:{}-{}",
        batch.first().map_or(0, |q| q.line),
        batch.last().map_or(0, |q| q.line)
    );
    let server = Server::start(&run.spec).await?;
    run.totals.servers += 1;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_memory(
        server.pid().context("server has a pid")?,
        run.args.max_rss_mb,
        Arc::clone(&stop),
    );
    let result = check_batch(run, &server, corpus, batch, seed, &label).await;
    stop.store(true, Ordering::Relaxed);
    let peak_mb = peak.load(Ordering::Relaxed);
    let log = server.log_path();
    let log_tail = std::fs::read_to_string(&log)
        .map(|s| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        })
        .unwrap_or_default();
    server.stop().await;
    match result {
        Ok(summary) => println!(
            "{label}: {summary}, peak RSS {peak_mb} MB, {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            let oom = peak_mb > run.args.max_rss_mb;
            let what = if oom {
                format!(
                    "{label}: server passed {} MB and was killed: {e:#}",
                    run.args.max_rss_mb
                )
            } else {
                format!("{label}: {e:#}")
            };
            println!("FAILURE {what}\nserver log (tail):\n{log_tail}");
            run.totals.failures.push(what);
        }
    }
    Ok(())
}

/// Replays the setup, creates the views, runs the rounds; returns a one-line summary.
/// An `Err` is a failure that ended the batch (crash, hang, broken connection).
async fn check_batch(
    run: &mut Run,
    server: &Server,
    corpus: &Corpus,
    batch: &[Query],
    seed: u64,
    label: &str,
) -> Result<String> {
    let wait = run.wait;
    let mut history: Vec<String> = Vec::new();
    let mut phase = Instant::now();
    let mut phases = Vec::new();
    let mut lap = |name: &str| {
        phases.push(format!("{name} {:.1} s", phase.elapsed().as_secs_f64()));
        phase = Instant::now();
    };

    // 1. The file's statements, on a connection of their own (they may SET or BEGIN).
    {
        let client = connect(server, wait).await?;
        let setup = &corpus.setup[..batch.last().map_or(0, |q| q.setup_len)];
        replay(&client, setup, wait, &mut history, &mut run.totals, label).await?;
    }
    let client = connect(server, wait).await?;
    lap("setup");

    // 2. The base tables (those this session can name; a table in another schema gets
    // no writes).
    let mut tables = Vec::new();
    for row in query(&client, "SHOW TABLES", wait).await? {
        let name = row[0].clone().unwrap_or_default();
        let columns = query(
            &client,
            &format!("SHOW COLUMNS FROM {}", dml::ident(&name)),
            wait,
        )
        .await;
        let rows = query(
            &client,
            &format!("SELECT * FROM {}", dml::ident(&name)),
            wait,
        )
        .await;
        let (columns, rows) = match (columns, rows) {
            (Ok(columns), Ok(rows)) => (columns, rows),
            (Err(e), _) | (_, Err(e)) if e.is_fatal() => bail!("reading table {name}: {e}"),
            _ => continue,
        };
        let columns = columns
            .into_iter()
            .map(|c| dml::Column {
                name: c[0].clone().unwrap_or_default(),
                nullable: c[1].as_deref() == Some("t"),
                ty: c[2].clone().unwrap_or_default(),
            })
            .collect();
        tables.push(Table {
            name,
            columns,
            initial_rows: rows.len(),
        });
    }

    // 3. A materialized view and an indexed view per query.
    let mut live = Vec::new();
    for (k, q) in batch.iter().enumerate() {
        if let Some(l) = create_views(run, &client, k, q, label).await? {
            live.push(l);
        }
    }
    for l in &live {
        history.extend(l.creates.iter().cloned());
    }
    let created = live.len();
    run.totals.checked_queries += created;
    lap("create");
    // Tables that get writes: all of them, unless there are many (select5.test has
    // 64), then those the queries name.
    let read: Vec<usize> = (0..tables.len())
        .filter(|&i| {
            let name = tables[i].name.to_lowercase();
            tables.len() <= 10
                || live
                    .iter()
                    .any(|l| corpus::words(&l.query.sql).contains(&name))
        })
        .collect();

    // 4. Rounds: check, then write and check again.
    let live = Arc::new(live);
    let mut readers = Vec::new();
    for _ in 0..run.args.connections.max(1) {
        readers.push(Arc::new(connect(server, wait).await?));
    }
    let mut rng = Rng::new(seed);
    let mut mismatches = 0;
    let (mut writing, mut checking) = (Duration::ZERO, Duration::ZERO);
    for round in 0..=run.args.rounds {
        let start = Instant::now();
        if round > 0 {
            write_round(run, &client, &tables, &read, &mut rng, &mut history).await?;
            run.totals.rounds += 1;
        }
        let as_of = read_timestamp(&client, &tables, wait).await?;
        writing += start.elapsed();
        let start = Instant::now();
        history.push(format!("-- round {round}: checked AS OF {as_of}"));
        mismatches += check_round(run, &readers, &live, as_of, round, &history, corpus).await?;
        checking += start.elapsed();
    }
    Ok(format!(
        "{created}/{} queries with views, {} rounds, {mismatches} mismatches ({}, writes {:.1} s, checks {:.1} s)",
        batch.len(),
        run.args.rounds,
        phases.join(", "),
        writing.as_secs_f64(),
        checking.as_secs_f64()
    ))
}

/// Runs the setup statements; consecutive INSERTs go in one string (one implicit
/// transaction, one write), falling back to one by one if that fails.
async fn replay(
    client: &Client,
    setup: &[String],
    wait: Duration,
    history: &mut Vec<String>,
    totals: &mut Totals,
    label: &str,
) -> Result<()> {
    let is_insert = |s: &str| s.trim_start().to_lowercase().starts_with("insert into");
    let mut i = 0;
    while i < setup.len() {
        let mut j = i + 1;
        if is_insert(&setup[i]) {
            while j < setup.len() && j - i < 200 && is_insert(&setup[j]) {
                j += 1;
            }
        }
        let group = &setup[i..j];
        let joined = group.join(";\n");
        let mut result = query(client, &joined, wait).await.map(|_| ());
        if result.is_err() && group.len() > 1 {
            result = Ok(());
            for s in group {
                if let Err(e) = query(client, s, wait).await {
                    result = Err(e);
                    if result.as_ref().is_err_and(SqlError::is_fatal) {
                        break;
                    }
                }
            }
        }
        match result {
            Err(e) if e.is_fatal() => bail!("setup: {joined}: {e}"),
            Err(e) if e.is_internal() => {
                totals
                    .failures
                    .push(format!("{label}: setup statement: {joined}: {e}"));
            }
            // Files test errors on purpose; a failing statement is part of the setup.
            _ => {}
        }
        history.extend(group.iter().cloned());
        i = j;
    }
    Ok(())
}

/// Creates the views of query number `k`; `None` if neither could be created.
async fn create_views(
    run: &mut Run,
    client: &Client,
    k: usize,
    q: &Query,
    label: &str,
) -> Result<Option<Live>> {
    let wait = run.wait;
    let totals = &mut run.totals;
    // The column count, so that the views can name their columns (queries often
    // repeat a name or leave columns unnamed).
    let arity = match tokio::time::timeout(wait, client.prepare(&q.sql)).await {
        Err(_) => bail!("PREPARE {}: no answer in time", q.sql),
        Ok(Ok(statement)) => statement.columns().len(),
        Ok(Err(e)) => match e.as_db_error() {
            Some(db) => {
                let err = SqlError::Db {
                    code: db.code().code().into(),
                    message: db.message().into(),
                };
                if err.is_internal() {
                    totals.failures.push(format!(
                        "{label}: line {}: PREPARE {}: {err}",
                        q.line, q.sql
                    ));
                }
                *totals.invalid.entry(err.code()).or_default() += 1;
                return Ok(None);
            }
            None => bail!("PREPARE {}: {e}", q.sql),
        },
    };
    let columns: Vec<String> = (1..=arity).map(|i| format!("c{i}")).collect();
    let columns = columns.join(", ");
    let mut creates = Vec::new();
    let context = |what: &str| format!("{label}: line {}: {what}", q.line);

    let mv_name = format!("inc_m{k}");
    // The views keep an hour of history, so a round's reads `AS OF` its timestamp
    // stay valid however long the round's checks take on a loaded machine.
    let create_mv = format!(
        "CREATE MATERIALIZED VIEW {mv_name} ({columns}) WITH (RETAIN HISTORY FOR '1h') AS {}",
        q.sql
    );
    let mut mv = None;
    match query(client, &create_mv, wait).await {
        Ok(_) => {
            totals.mvs += 1;
            mv = Some(mv_name);
            creates.push(create_mv);
        }
        Err(e) if e.is_fatal() => bail!("{create_mv}: {e}"),
        Err(e) => {
            if run.args.verbose {
                println!(
                    "{label}: line {}: materialized view rejected: {e}\n  {}",
                    q.line, q.sql
                );
            }
            let at = context("CREATE MATERIALIZED VIEW");
            reject(&mut totals.failures, &mut totals.mv_rejected, &e, at);
        }
    }

    let view_name = format!("inc_v{k}");
    let create_view = format!("CREATE VIEW {view_name} ({columns}) AS {}", q.sql);
    let create_index = format!("CREATE DEFAULT INDEX ON {view_name}");
    let retain = format!("ALTER INDEX {view_name}_primary_idx SET (RETAIN HISTORY FOR '1h')");
    let mut view = None;
    let created = match query(client, &create_view, wait).await {
        Ok(_) => match query(client, &create_index, wait).await {
            Ok(_) => query(client, &retain, wait).await.map(|_| ()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match created {
        Ok(()) => {
            totals.indexed_views += 1;
            let plan = query(client, &format!("EXPLAIN SELECT * FROM {view_name}"), wait).await;
            let via_index = plan.is_ok_and(|rows| {
                rows.iter()
                    .flatten()
                    .flatten()
                    .any(|text| text.contains(&view_name))
            });
            if via_index {
                totals.index_reads += 1;
            }
            if via_index || run.args.read_planned_views {
                view = Some(view_name);
            }
            creates.push(create_view);
            creates.push(create_index);
            creates.push(retain);
        }
        Err(e) if e.is_fatal() => bail!("{create_view}: {e}"),
        Err(e) => {
            if run.args.verbose {
                println!(
                    "{label}: line {}: indexed view rejected: {e}\n  {}",
                    q.line, q.sql
                );
            }
            let at = context("CREATE VIEW/INDEX");
            reject(&mut totals.failures, &mut totals.index_rejected, &e, at);
            let _ = query(client, &format!("DROP VIEW IF EXISTS {view_name}"), wait).await;
        }
    }
    if creates.is_empty() {
        return Ok(None);
    }
    Ok(Some(Live {
        query: q.clone(),
        mv,
        view,
        creates,
        mismatched: AtomicBool::new(false),
    }))
}

/// Counts a rejected CREATE; an internal error is a failure as well.
fn reject(
    failures: &mut Vec<String>,
    rejected: &mut BTreeMap<String, usize>,
    err: &SqlError,
    context: String,
) {
    if err.is_internal() {
        failures.push(format!("{context}: {err}"));
    }
    *rejected.entry(err.key()).or_default() += 1;
}

/// One round of writes: one or two statements for every table the queries read, in
/// one to three transactions. A transaction that fails (a NOT NULL column, an
/// overflow) is rolled back and counted.
async fn write_round(
    run: &mut Run,
    client: &Client,
    tables: &[Table],
    read: &[usize],
    rng: &mut Rng,
    history: &mut Vec<String>,
) -> Result<()> {
    let wait = run.wait;
    let mut statements = Vec::new();
    for &i in read {
        let table = &tables[i];
        let rows = query(
            client,
            &format!("SELECT * FROM {}", dml::ident(&table.name)),
            wait,
        )
        .await
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", table.name))?;
        statements.extend(dml::writes(rng, table, &rows));
    }
    // Shuffle, so that transactions mix tables.
    for i in (1..statements.len()).rev() {
        let j = rng.below(i + 1);
        statements.swap(i, j);
    }
    let transactions = 1 + rng.below(3);
    let per = statements.len().div_ceil(transactions).max(1);
    for chunk in statements.chunks(per) {
        let mut failed = None;
        query(client, "BEGIN", wait)
            .await
            .map_err(|e| anyhow::anyhow!("BEGIN: {e}"))?;
        for s in chunk {
            run.totals.write_statements += 1;
            if let Err(e) = query(client, s, wait).await {
                if e.is_fatal() {
                    bail!("{s}: {e}");
                }
                if e.is_internal() {
                    run.totals.failures.push(format!("write {s}: {e}"));
                }
                failed = Some(e);
                break;
            }
        }
        let end = if failed.is_some() {
            "ROLLBACK"
        } else {
            "COMMIT"
        };
        match query(client, end, wait).await {
            Err(e) if e.is_fatal() => bail!("{end}: {e}"),
            Err(e) => {
                if e.is_internal() {
                    run.totals.failures.push(format!("{end}: {e}"));
                }
                failed = Some(e);
            }
            Ok(_) => {}
        }
        match failed {
            Some(e) => {
                *run.totals.write_errors.entry(e.key()).or_default() += 1;
                history.push(format!("-- rolled back ({e}):"));
                for s in chunk {
                    history.push(format!("-- {s}"));
                }
            }
            None => {
                history.push("BEGIN".into());
                history.extend(chunk.iter().cloned());
                history.push("COMMIT".into());
            }
        }
    }
    Ok(())
}

/// A timestamp every acknowledged write is visible at: a strict serializable read's.
async fn read_timestamp(client: &Client, tables: &[Table], wait: Duration) -> Result<u64> {
    let target = tables
        .first()
        .map(|t| format!("SELECT * FROM {}", dml::ident(&t.name)))
        .unwrap_or_else(|| "SELECT 1".into());
    let rows = query(client, &format!("EXPLAIN TIMESTAMP FOR {target}"), wait)
        .await
        .map_err(|e| anyhow::anyhow!("EXPLAIN TIMESTAMP: {e}"))?;
    rows.iter()
        .flatten()
        .flatten()
        .flat_map(|text| text.lines())
        .find_map(|line| line.trim().strip_prefix("query timestamp:"))
        .and_then(|ts| ts.trim().parse().ok())
        .context("EXPLAIN TIMESTAMP shows a query timestamp")
}

/// Compares every query's views with a recomputation at `as_of`, reading on all
/// `readers` in parallel; returns the number of mismatches.
async fn check_round(
    run: &mut Run,
    readers: &[Arc<Client>],
    live: &Arc<Vec<Live>>,
    as_of: u64,
    round: usize,
    history: &[String],
    corpus: &Corpus,
) -> Result<usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for reader in readers {
        let (reader, live, next) = (Arc::clone(reader), Arc::clone(live), Arc::clone(&next));
        let wait = run.wait;
        tasks.push(tokio::spawn(async move {
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(l) = live.get(i) else { break };
                let (comparisons, findings) = check_query(&reader, l, as_of, wait).await;
                let fatal = findings
                    .iter()
                    .any(|f| matches!(f, Finding::Failure(m) if m.contains("hang") || m.contains("connection")));
                found.push((i, comparisons, findings));
                if fatal {
                    break;
                }
            }
            found
        }));
    }
    let mut mismatches = 0;
    let mut fatal = None;
    for task in tasks {
        for (i, (mv, idx), findings) in task.await.context("reader task")? {
            run.totals.mv_comparisons += mv;
            run.totals.index_comparisons += idx;
            let l = &live[i];
            for finding in findings {
                match finding {
                    Finding::RecomputeError(code) => {
                        *run.totals.recompute_errors.entry(code).or_default() += 1;
                    }
                    Finding::Failure(m) => {
                        let what = format!(
                            "{}:{} round {round} AS OF {as_of}: {m}\n  query: {}",
                            corpus.path.display(),
                            l.query.line,
                            l.query.sql
                        );
                        if m.contains("hang") || m.contains("connection") {
                            // The statements that led here, to replay by hand.
                            let repro = write_repro(run, corpus, l, history, as_of);
                            fatal = Some(format!("{what}\n  repro: {repro}"));
                        } else {
                            run.totals.failures.push(what);
                        }
                    }
                    Finding::Mismatch(m) => {
                        mismatches += 1;
                        run.totals.mismatches += 1;
                        if !l.mismatched.swap(true, Ordering::Relaxed) {
                            run.totals.mismatched_queries += 1;
                            let repro = write_repro(run, corpus, l, history, as_of);
                            println!(
                                "MISMATCH {}:{} round {round} AS OF {as_of}: {m}\n  query: {}\n  repro: {repro}",
                                corpus.path.display(),
                                l.query.line,
                                l.query.sql
                            );
                        } else if run.args.verbose {
                            println!(
                                "MISMATCH {}:{} round {round}: {m}",
                                corpus.path.display(),
                                l.query.line
                            );
                        }
                    }
                }
            }
        }
    }
    if let Some(what) = fatal {
        bail!("{what}");
    }
    Ok(mismatches)
}

/// Checks one query at `as_of`: (materialized view comparisons, indexed view
/// comparisons) made, and what was found.
async fn check_query(
    client: &Client,
    l: &Live,
    as_of: u64,
    wait: Duration,
) -> ((usize, usize), Vec<Finding>) {
    let mut findings = Vec::new();
    let mut counts = (0, 0);
    let expected = query(client, &at(&l.query.sql, as_of), wait).await;
    if let Err(e) = &expected {
        if e.is_internal() || e.is_fatal() {
            findings.push(Finding::Failure(format!("recomputation: {e}")));
            return (counts, findings);
        }
        findings.push(Finding::RecomputeError(e.code()));
        // The tables' history at `as_of` is gone (they keep a second of it, and a
        // loaded machine took longer to get here): nothing to compare with.
        if e.code() == "22023" {
            return (counts, findings);
        }
    }
    let expected = expected.map(multiset);
    for (which, name) in [("materialized view", &l.mv), ("indexed view", &l.view)] {
        let Some(name) = name else { continue };
        let actual = query(client, &format!("SELECT * FROM {name} AS OF {as_of}"), wait).await;
        let is_mv = which == "materialized view";
        match (&expected, actual) {
            (_, Err(e)) if e.is_internal() || e.is_fatal() => {
                findings.push(Finding::Failure(format!("{which} {name}: {e}")));
            }
            (Err(e), Ok(rows)) => findings.push(Finding::Mismatch(format!(
                "{which} {name} returned {} rows where the recomputation fails with {e}",
                rows.len()
            ))),
            (Err(_), Err(_)) => {
                if is_mv {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
            (Ok(_), Err(e)) => findings.push(Finding::Mismatch(format!(
                "{which} {name} fails with {e} where the recomputation returns rows"
            ))),
            (Ok(want), Ok(rows)) => {
                if is_mv {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
                let got = multiset(rows);
                if &got != want {
                    findings.push(Finding::Mismatch(format!(
                        "{which} {name} differs from the recomputation; missing: {:?}; extra: {:?}",
                        missing(want, &got, 5),
                        missing(&got, want, 5)
                    )));
                }
            }
        }
    }
    (counts, findings)
}

/// Writes a SQL script (for psql) that replays the batch up to `as_of` for one query
/// and ends with the reads that disagreed; returns its path.
fn write_repro(run: &Run, corpus: &Corpus, l: &Live, history: &[String], as_of: u64) -> String {
    let stem = corpus
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = run
        .repro_dir
        .join(format!("{stem}-line{}.sql", l.query.line));
    let mut text = format!(
        "-- incremental ≡ recompute mismatch: {}:{}\n-- query: {}\n",
        corpus.path.display(),
        l.query.line,
        l.query.sql
    );
    for h in history {
        // Other queries' views are left out.
        let other_view = (h.starts_with("CREATE MATERIALIZED VIEW inc_m")
            || h.starts_with("CREATE VIEW inc_v")
            || h.starts_with("CREATE DEFAULT INDEX ON inc_v"))
            && !l.creates.contains(h);
        if !other_view {
            text.push_str(h);
            text.push_str(if h.starts_with("--") && !h.contains('\n') {
                "\n"
            } else {
                ";\n"
            });
        }
    }
    // Replayed on a new server, the last round's state is the latest.
    text.push_str(&format!(
        "-- the check that failed (AS OF {as_of} in the run):\n{};\n",
        l.query.sql
    ));
    for name in [&l.mv, &l.view].into_iter().flatten() {
        text.push_str(&format!("SELECT * FROM {name};\n"));
    }
    let written = std::fs::create_dir_all(&run.repro_dir).and_then(|_| std::fs::write(&path, text));
    match written {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("(not written: {e})"),
    }
}

/// Expands directories (recursively, sorted) into their test files.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_dir(path, &mut files)?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            bail!("cannot access {}", path.display());
        }
    }
    Ok(files)
}

fn collect_dir(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_dir(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "slt" || ext == "test")
        {
            files.push(path);
        }
    }
    Ok(())
}
