//! A throwaway PostgreSQL 15 cluster, the comparator of the ingest and delta benchmarks.
//!
//! `initdb` into a temporary directory (trust authentication, C collation), started
//! with `pg_ctl` on a free port and stopped (`-m immediate`) and removed on drop. As
//! root, the server runs as the `postgres` user, because `initdb` refuses root (the
//! same arrangement as `misc/pg-slt.sh`). The binaries come from `$PG_BIN` or
//! `/usr/lib/postgresql/15/bin`; `misc/bench/setup.sh` installs them.
//!
//! Settings other than the defaults are in [`SETTINGS`]; durability stays as shipped
//! (`fsync = on`, `synchronous_commit = on`), as Freshet's writes are durable too.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

/// Non-default server settings, given to `postgres` with `-c`.
pub const SETTINGS: &[(&str, &str)] = &[
    ("shared_buffers", "1GB"),
    ("max_wal_size", "8GB"),
    ("checkpoint_timeout", "30min"),
];

pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

fn pg_bin() -> PathBuf {
    PathBuf::from(std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a shell command line, as `postgres` when we are root.
fn as_pg(cmd: &str) -> Result<()> {
    let status = if is_root() {
        Command::new("su")
            .args(["postgres", "-s", "/bin/bash", "-c", cmd])
            .status()?
    } else {
        Command::new("bash").args(["-c", cmd]).status()?
    };
    if !status.success() {
        bail!("`{cmd}` failed with {status}");
    }
    Ok(())
}

impl PgCluster {
    pub fn start() -> Result<PgCluster> {
        let bin = pg_bin();
        if !bin.join("initdb").exists() {
            bail!(
                "PostgreSQL 15 not found in {} (run misc/bench/setup.sh or set PG_BIN)",
                bin.display()
            );
        }
        let port = crate::free_port()?;
        let dir =
            std::env::temp_dir().join(format!("freshet-bench-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            Command::new("chown")
                .args(["postgres", &dir.display().to_string()])
                .status()?;
        }
        let cluster = PgCluster { bin, dir, port };
        let (bin, dir) = (cluster.bin.display(), cluster.dir.display());
        as_pg(&format!(
            "'{bin}/initdb' -D '{dir}/data' -A trust -E UTF8 --locale=C.UTF-8 >'{dir}/initdb.log' 2>&1"
        ))
        .context("initdb")?;
        let settings: String = SETTINGS
            .iter()
            .map(|(k, v)| format!(" -c {k}={v}"))
            .collect();
        as_pg(&format!(
            "'{bin}/pg_ctl' -D '{dir}/data' -o '-p {port} -k {dir}{settings}' -l '{dir}/log' -w start >/dev/null"
        ))
        .with_context(|| format!("pg_ctl start (log in {dir}/log)"))?;
        Ok(cluster)
    }

    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        crate::freshet::connect(&format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        ))
        .await
    }

    /// `postgres --version`, e.g. `postgres (PostgreSQL) 15.14`.
    pub fn version(&self) -> Result<String> {
        let out = Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()?;
        String::from_utf8(out.stdout)
            .map(|s| s.trim().to_string())
            .map_err(|e| anyhow!("{e}"))
    }

    /// The settings as one line for table headers.
    pub fn describe(&self) -> String {
        let version = self.version().unwrap_or_else(|_| "PostgreSQL 15".into());
        let settings: Vec<String> = SETTINGS.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{version}, {}, fsync and synchronous_commit on, data in {}",
            settings.join(", "),
            std::env::temp_dir().display()
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_pg(&format!(
            "'{}/pg_ctl' -D '{}/data' -m immediate stop >/dev/null 2>&1",
            self.bin.display(),
            self.dir.display()
        ));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
