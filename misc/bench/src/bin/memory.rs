//! Memory — bytes per arranged row of an index, against the packed row size.
//!
//! Loads `--rows` rows of `t (id, k, v, s)` into Freshet with COPY, restarts the server
//! (so the process holds no buffers of the load), reads its resident memory, creates
//! an index on `k`, waits until a read through the index answers, lets it settle and
//! reads resident memory again. The growth divided by the row count is the cost of an
//! arranged row: an upper bound, as it includes allocator slack and whatever hydration
//! left behind. Lower bounds beside it: the packed `repr::Row` size of the same rows
//! (what an arrangement stores per row at least), a hand-written differential dataflow
//! program arranging the same rows by `k` (`freshet-bench-dd arrange`, measured the
//! same way), and PostgreSQL's on-disk heap and btree bytes per row.
//!
//! One measurement per system (memory does not jitter like time does; the settle
//! reads are medians of three samples a second apart).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use freshet_bench::data;
use freshet_bench::freshet::{copy_in, Server, ServerConfig};
use freshet_bench::pg::PgCluster;
use freshet_bench::report::{fmt, median, Report};
use serde_json::json;

fn keys(rows: u64) -> u64 {
    (rows / 100).max(1)
}

/// The median of three RSS samples a second apart.
async fn settled_rss(server: &Server) -> u64 {
    let mut samples = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(server.memory().0 as f64);
    }
    median(&samples) as u64
}

/// Average packed sizes over the rows: (full row, key row).
fn packed_sizes(rows: u64) -> (f64, f64) {
    use repr::{Datum, Row};
    let (mut full, mut key) = (0usize, 0usize);
    for id in 0..rows as i64 {
        let r = data::row(id, keys(rows));
        full += Row::pack([
            Datum::Int64(r.id),
            Datum::Int64(r.k),
            Datum::Int64(r.v),
            Datum::String(&r.s),
        ])
        .byte_len();
        key += Row::pack([Datum::Int64(r.k)]).byte_len();
    }
    (full as f64 / rows as f64, key as f64 / rows as f64)
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = freshet_bench::parse_flags(&["rows", "out", "server-bin", "dd-bin"])?;
    let rows: u64 = flags.get("rows").map_or(Ok(2_000_000), |v| v.parse())?;
    let out = PathBuf::from(flags.get("out").map_or("misc/bench/results", |v| v));
    let mut config = ServerConfig::from_env();
    if let Some(bin) = flags.get("server-bin") {
        config.bin = bin.into();
    }
    let dd_bin = flags
        .get("dd-bin")
        .map(PathBuf::from)
        .unwrap_or_else(|| config.bin.with_file_name("freshet-bench-dd"));

    let mut report = Report::begin("memory", "Memory — bytes per arranged row of an index");
    eprintln!("generating {rows} rows");
    let payload = bytes::Bytes::from(data::tsv(0..rows as i64, keys(rows)));
    let (packed, packed_key) = packed_sizes(rows);
    report.note(format!(
        "{rows} rows of `t (id bigint, k bigint, v bigint, s text)` ({} distinct k; `s` is 16 characters), \
         index on `k`; resident memory growth of the process from before `CREATE INDEX` until the index answers, \
         divided by the row count (an upper bound: it includes allocator slack); one measurement",
        keys(rows)
    ));

    let mut table = Vec::new();

    eprintln!("Freshet: loading");
    let mut server = Server::start(&config).await?;
    {
        let client = server.connect().await?;
        client.batch_execute(data::TABLE_DDL).await?;
        let copied = copy_in(&client, "t", &payload).await?;
        if copied != rows {
            bail!("COPY wrote {copied} rows, expected {rows}");
        }
    }
    drop(payload);
    server.restart().await?;
    let client = server.connect().await?;
    // The table's shard is open and its upper known once a write succeeds.
    client.batch_execute("CREATE TABLE warm (a int)").await?;
    client.batch_execute("INSERT INTO warm VALUES (1)").await?;
    let before = settled_rss(&server).await;
    eprintln!("Freshet: creating the index");
    client.batch_execute("CREATE INDEX t_k ON t (k)").await?;
    let found = client
        .query("SELECT id FROM t WHERE k = 0", &[])
        .await?
        .len();
    let expected = (0..rows as i64)
        .filter(|id| data::row(*id, keys(rows)).k == 0)
        .count();
    if found != expected {
        bail!("the index read found {found} rows with k = 0, expected {expected}");
    }
    let after = settled_rss(&server).await;
    report.sample_load();
    let freshet_per_row = after.saturating_sub(before) as f64 / rows as f64;
    table.push(vec![
        format!("Freshet index ({} worker), RSS growth", config.workers),
        fmt(freshet_per_row),
        format!(
            "{:.0} MB → {:.0} MB",
            before as f64 / 1e6,
            after as f64 / 1e6
        ),
    ]);
    report.result(json!({
        "system": "freshet",
        "rows": rows,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_row": freshet_per_row,
    }));
    drop(client);
    drop(server);

    if dd_bin.exists() {
        eprintln!("differential dataflow: arranging");
        let output = Command::new(&dd_bin)
            .args([
                "arrange",
                "--rows",
                &rows.to_string(),
                "--keys",
                &keys(rows).to_string(),
            ])
            .output()
            .with_context(|| format!("running {}", dd_bin.display()))?;
        if !output.status.success() {
            bail!(
                "{} failed: {}",
                dd_bin.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let result: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let (b, a) = (
            result["rss_before"].as_f64().unwrap_or(0.0),
            result["rss_after"].as_f64().unwrap_or(0.0),
        );
        table.push(vec![
            "hand-written DD, `arrange_by_key` of (k, (id, v, s: String)), RSS growth".into(),
            fmt((a - b) / rows as f64),
            format!("{:.0} MB → {:.0} MB", b / 1e6, a / 1e6),
        ]);
        report.result(json!({"system": "differential-dataflow", "rows": rows, "rss_before": b, "rss_after": a, "bytes_per_row": (a - b) / rows as f64}));
    } else {
        report.note(format!(
            "{} not built: no differential dataflow row",
            dd_bin.display()
        ));
    }

    eprintln!("PostgreSQL: loading");
    let pg = PgCluster::start()?;
    let client = pg.connect().await?;
    client.batch_execute(data::TABLE_DDL).await?;
    client.batch_execute("CREATE INDEX t_k ON t (k)").await?;
    let payload = bytes::Bytes::from(data::tsv(0..rows as i64, keys(rows)));
    copy_in(&client, "t", &payload).await?;
    client.batch_execute("VACUUM ANALYZE t").await?;
    let sizes = client
        .query_one(
            "SELECT pg_relation_size('t')::float8, pg_relation_size('t_k')::float8",
            &[],
        )
        .await?;
    let (heap, index): (f64, f64) = (sizes.get(0), sizes.get(1));
    table.push(vec![
        "PostgreSQL heap (on disk)".into(),
        fmt(heap / rows as f64),
        format!("{:.0} MB", heap / 1e6),
    ]);
    table.push(vec![
        "PostgreSQL btree index on k (on disk)".into(),
        fmt(index / rows as f64),
        format!("{:.0} MB", index / 1e6),
    ]);
    report.result(
        json!({"system": "postgresql", "rows": rows, "heap_bytes": heap, "index_bytes": index}),
    );
    drop(client);
    drop(pg);

    table.push(vec![
        "packed `repr::Row` (id, k, v, s)".into(),
        fmt(packed),
        format!("{:.0} MB", packed * rows as f64 / 1e6),
    ]);
    table.push(vec![
        "packed key row (k) + packed row".into(),
        fmt(packed + packed_key),
        format!("{:.0} MB", (packed + packed_key) * rows as f64 / 1e6),
    ]);
    report.result(
        json!({"system": "packed_row", "bytes_per_row": packed, "key_bytes_per_row": packed_key}),
    );
    report.table("", &["what", "bytes per row", "total"], table);
    report.finish(&out)
}
