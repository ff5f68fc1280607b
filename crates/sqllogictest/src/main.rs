//! `sqllogictest`: runs sqllogictest files (`*.slt`, `*.test`) against Freshet
//! or any server speaking the PostgreSQL wire protocol.
//!
//! Results follow the SQLite corpus conventions (see [`format`]), records
//! guarded by `skipif postgresql` or `onlyif <other engine>` are skipped, and
//! every record is counted: one failure does not stop a file.
//!
//! Either connect to a running server with `--url` (its state then persists
//! from file to file), or let the runner start a fresh server per file with
//! `--server-bin`. `--complete` rewrites the files with the actual results,
//! to generate expected outputs from a reference server such as PostgreSQL.

/// Prints a line on stdout, ignoring errors such as a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod db;
mod format;
mod runner;
mod server;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Parser};
use tokio_postgres::Config;

use crate::runner::{Outcome, RunOptions, Script};
use crate::server::{Server, ServerSpec};

/// Default user and database when the URL (or a started server) names none.
const DEFAULT_USER: &str = "freshet";
const DEFAULT_DATABASE: &str = "freshet";

#[derive(Parser, Debug)]
#[command(
    name = "sqllogictest",
    about = "Run sqllogictest files against a PostgreSQL-protocol server",
    group(ArgGroup::new("target").required(true).args(["url", "server_bin"]))
)]
struct Args {
    /// Test files, or directories searched recursively for *.slt and *.test.
    #[arg(required = true)]
    paths: Vec<PathBuf>,

    /// Connect to a running server, e.g. postgres://freshet@127.0.0.1:6875/freshet.
    /// Server state persists across files.
    #[arg(long)]
    url: Option<String>,

    /// Start this server binary with `--listen-addr 127.0.0.1:<port> --data-dir <dir>`,
    /// a fresh one for every file.
    #[arg(long)]
    server_bin: Option<PathBuf>,

    /// Extra argument for the started server (repeatable).
    #[arg(
        long = "server-arg",
        allow_hyphen_values = true,
        requires = "server_bin"
    )]
    server_args: Vec<String>,

    /// Seconds to wait for a started server to accept connections.
    #[arg(long, default_value_t = 60)]
    server_startup_secs: u64,

    /// Keep the started servers' data directories.
    #[arg(long, requires = "server_bin")]
    keep_data: bool,

    /// Per-record timeout in seconds; a record that times out fails and the
    /// connection is re-established.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,

    /// Hash threshold in effect until a file sets one with `hash-threshold`.
    #[arg(long, default_value_t = 0)]
    hash_threshold: usize,

    /// Additional label for skipif/onlyif (`postgresql` is always set; repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,

    /// Print every failure with its SQL, expected and actual output.
    #[arg(short, long)]
    verbose: bool,

    /// Exit with status 0 even if some records failed.
    #[arg(long)]
    allow_failures: bool,

    /// Stop at the first failing record.
    #[arg(long)]
    fail_fast: bool,

    /// Rewrite the files with the server's actual results (and errors).
    #[arg(long)]
    complete: bool,

    /// With --complete: write new query results one value per line (SQLite
    /// layout) instead of one row per line.
    #[arg(long, requires = "complete")]
    complete_valuewise: bool,
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

/// Runs everything; returns whether the run counts as a success.
async fn run(args: Args) -> Result<bool> {
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!("no *.slt or *.test files found");
    }
    let base_config = match &args.url {
        Some(url) => Some(parse_url(url)?),
        None => None,
    };
    let spec = args.server_bin.as_ref().map(|bin| ServerSpec {
        bin: bin.clone(),
        extra_args: args.server_args.clone(),
        startup_timeout: Duration::from_secs(args.server_startup_secs),
        keep_data: args.keep_data,
        user: DEFAULT_USER.to_string(),
        dbname: DEFAULT_DATABASE.to_string(),
    });
    let mut labels = vec!["postgresql".to_string()];
    labels.extend(args.labels.iter().cloned());
    let options = RunOptions {
        labels,
        hash_threshold: args.hash_threshold,
        timeout: Duration::from_secs(args.timeout_secs.max(1)),
        verbose: args.verbose,
        fail_fast: args.fail_fast,
        complete_valuewise: args.complete_valuewise,
    };

    let mut total = Outcome::default();
    for file in &files {
        let name = file.display();
        let script = match Script::load(file) {
            Ok(script) => script,
            Err(e) => {
                out!("{name}: cannot parse: {e:#}");
                out!("{name}: 0 passed, 1 failed, 0 skipped");
                total.failed += 1;
                if args.fail_fast {
                    break;
                }
                continue;
            }
        };

        let mut server = match &spec {
            Some(spec) => match Server::start(spec).await {
                Ok(server) => Some(server),
                Err(e) => {
                    out!("{name}: cannot start server: {e:#}");
                    out!("{name}: 0 passed, 1 failed, 0 skipped");
                    total.failed += 1;
                    if args.fail_fast {
                        break;
                    }
                    continue;
                }
            },
            None => None,
        };
        let config = match (&base_config, &server) {
            (Some(config), _) => config.clone(),
            (None, Some(server)) => server.config(DEFAULT_USER, DEFAULT_DATABASE),
            (None, None) => bail!("either --url or --server-bin is required"),
        };

        if args.complete {
            let result = runner::complete_script(file, script, &config, &options).await;
            if let Some(server) = server.take() {
                server.stop().await;
            }
            match result {
                Ok(changed) => {
                    out!("{name}: completed, {changed} records updated");
                    total.passed += 1;
                }
                Err(e) => {
                    out!("{name}: cannot complete: {e:#}");
                    total.failed += 1;
                }
            }
            continue;
        }

        let outcome = runner::run_script(script, &config, &options, server.as_mut()).await;
        if let Some(server) = server.take() {
            server.stop().await;
        }
        out!(
            "{name}: {} passed, {} failed, {} skipped",
            outcome.passed,
            outcome.failed,
            outcome.skipped
        );
        total.passed += outcome.passed;
        total.failed += outcome.failed;
        total.skipped += outcome.skipped;
        if outcome.stopped {
            break;
        }
    }

    if args.complete {
        out!("{} files completed, {} failed", total.passed, total.failed);
        return Ok(total.failed == 0);
    }
    out!(
        "{} passed, {} failed, {} skipped",
        total.passed,
        total.failed,
        total.skipped
    );
    Ok(total.failed == 0 || args.allow_failures)
}

/// Parses a `postgres://` URL, defaulting user and database to `freshet`.
fn parse_url(url: &str) -> Result<Config> {
    let mut config = Config::from_str(url).with_context(|| format!("invalid --url {url:?}"))?;
    if config.get_user().is_none() {
        config.user(DEFAULT_USER);
    }
    if config.get_dbname().is_none() {
        config.dbname(DEFAULT_DATABASE);
    }
    config.application_name("sqllogictest");
    Ok(config)
}

/// Expands directories (recursively, sorted) into their test files.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot access {}", path.display()))?;
        if metadata.is_dir() {
            collect_dir(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn collect_dir(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
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
