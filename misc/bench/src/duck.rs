//! DuckDB, the recompute comparator, in a child Python process.
//!
//! DuckDB is the pinned PyPI module in the project's venv (`misc/bench/setup.sh`
//! installs it; `$FRESHET_VENV` or `$HOME/.cache/freshet-venv`), driven by
//! `misc/bench/duckdb_runner.py` over a JSON-lines pipe: no C++ build in the workspace.
//! The database is in memory with DuckDB's default thread count (one per core).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

const RUNNER: &str = include_str!("../duckdb_runner.py");

pub struct Duck {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub version: String,
}

fn python() -> String {
    let venv = std::env::var("FRESHET_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/freshet-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    format!("{venv}/bin/python")
}

impl Duck {
    pub fn start() -> Result<Duck> {
        let python = python();
        let mut child = Command::new(&python)
            .args(["-u", "-c", RUNNER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {python} (run misc/bench/setup.sh)"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut duck = Duck {
            child,
            stdin,
            stdout,
            version: String::new(),
        };
        let hello = duck.read_reply().context("DuckDB runner did not start")?;
        duck.version = hello["version"].as_str().unwrap_or("?").to_string();
        Ok(duck)
    }

    fn read_reply(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the DuckDB runner exited");
        }
        let reply: serde_json::Value = serde_json::from_str(&line)?;
        if reply["ok"] != serde_json::Value::Bool(true) {
            return Err(anyhow!("DuckDB: {}", reply["error"]));
        }
        Ok(reply)
    }

    /// Runs the statements in order; returns the last one's rows as strings.
    pub fn run(&mut self, sql: &[&str]) -> Result<Vec<Vec<String>>> {
        let request = serde_json::json!({ "sql": sql });
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let reply = self.read_reply()?;
        Ok(serde_json::from_value(reply["rows"].clone())?)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Duck {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
