//! Loading test files and running them record by record.
//!
//! Files are parsed with the `sqllogictest` crate after a small textual
//! clean-up for the SQLite corpus (comments after `skipif`/`onlyif` labels),
//! and conditional `halt` records (`onlyif mssql` + `halt`) are resolved here
//! because the crate would otherwise attach their condition to the next
//! record. Every statement/query record is run and counted on its own, so a
//! failure never stops the file (unless `--fail-fast`).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use slt::{
    default_normalizer, default_validator, strict_column_validator, update_record_with_output,
    AsyncDB, Condition, ExpectedError, Injected, Normalizer, QueryExpect, Record, RecordOutput,
    Runner, StatementExpect,
};
use tokio_postgres::Config;

use crate::db::{DbError, PgDb, RecordContext, SharedContext};
use crate::format::SltColumnType;
use crate::server::Server;

type SltRecord = Record<SltColumnType>;

/// Settings shared by all files of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Labels for `skipif`/`onlyif` (always includes `postgresql`).
    pub labels: Vec<String>,
    /// Initial hash threshold (files usually set their own).
    pub hash_threshold: usize,
    /// Per-record timeout.
    pub timeout: Duration,
    /// Print every failure in full.
    pub verbose: bool,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// With `--complete`: write results one value per line.
    pub complete_valuewise: bool,
}

/// Counts for one file.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// `--fail-fast` stopped the run.
    pub stopped: bool,
}

/// A parsed test file.
pub struct Script {
    records: Vec<SltRecord>,
    /// For each record: the conditions of a `halt` record (empty otherwise).
    halt_conditions: Vec<Vec<Condition>>,
    /// The `skipif`/`onlyif`/`halt`/`hash-threshold` lines of the top-level
    /// file in order, as (cleaned line, original line if a trailing comment
    /// was removed): `--complete` puts the comments back.
    directives: VecDeque<(String, Option<String>)>,
    /// The top-level file uses CRLF line endings.
    crlf: bool,
}

impl Script {
    /// Parses `path`, expanding `include` records (plain relative paths).
    pub fn load(path: &Path) -> Result<Script> {
        let mut script = Script {
            records: Vec::new(),
            halt_conditions: Vec::new(),
            directives: VecDeque::new(),
            crlf: false,
        };
        script.load_into(path, 0)?;
        Ok(script)
    }

    fn load_into(&mut self, path: &Path, depth: usize) -> Result<()> {
        if depth > 16 {
            bail!("{}: includes nested too deeply", path.display());
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (text, directives) = clean_script(&String::from_utf8_lossy(&bytes));
        if depth == 0 {
            self.directives = directives.into();
            self.crlf = bytes.windows(2).any(|w| w == b"\r\n");
        }
        let mut records: Vec<SltRecord> = slt::parse_with_name(&text, path.display().to_string())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let halt_conditions = resolve_conditional_halts(&mut records);
        for (record, conditions) in records.into_iter().zip(halt_conditions) {
            let include = match &record {
                Record::Include { filename, .. } => Some(filename.clone()),
                _ => None,
            };
            self.records.push(record);
            self.halt_conditions.push(conditions);
            if let Some(filename) = include {
                if filename.contains(['*', '?', '[']) {
                    bail!(
                        "{}: glob patterns in include are not supported",
                        path.display()
                    );
                }
                let included = path.parent().unwrap_or(Path::new(".")).join(&filename);
                let name = included.display().to_string();
                self.push_injected(Injected::BeginInclude(name.clone()));
                self.load_into(&included, depth + 1)?;
                self.push_injected(Injected::EndInclude(name));
            }
        }
        Ok(())
    }

    fn push_injected(&mut self, injected: Injected) {
        self.records.push(Record::Injected(injected));
        self.halt_conditions.push(Vec::new());
    }
}

/// Removes trailing `# comments` from `skipif`/`onlyif`/`halt`/`hash-threshold`
/// lines, which the SQLite corpus uses but the parser rejects. Line numbers
/// are preserved. Also returns those directive lines, as (cleaned line,
/// original line if it changed).
fn clean_script(text: &str) -> (String, Vec<(String, Option<String>)>) {
    let mut out = String::with_capacity(text.len());
    let mut directives = Vec::new();
    for line in text.lines() {
        let first = line.split_whitespace().next();
        if matches!(first, Some("skipif" | "onlyif" | "halt" | "hash-threshold")) {
            let kept: Vec<&str> = line
                .split_whitespace()
                .take_while(|t| !t.starts_with('#'))
                .collect();
            let cleaned = kept.join(" ");
            let original = (cleaned != line).then(|| line.trim_end().to_string());
            out.push_str(&cleaned);
            directives.push((cleaned, original));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    (out, directives)
}

/// Detaches the conditions preceding each `halt` from the next record (the
/// parser attaches them there) and returns them per record index.
fn resolve_conditional_halts(records: &mut [SltRecord]) -> Vec<Vec<Condition>> {
    let mut halt_conditions = vec![Vec::new(); records.len()];
    let mut pending: Vec<Condition> = Vec::new();
    let mut to_strip = 0;
    for (i, record) in records.iter_mut().enumerate() {
        match record {
            Record::Condition(condition) => pending.push(condition.clone()),
            Record::Halt { .. } => {
                to_strip += pending.len();
                halt_conditions[i] = std::mem::take(&mut pending);
            }
            Record::Statement { conditions, .. }
            | Record::Query { conditions, .. }
            | Record::System { conditions, .. }
            | Record::Let { conditions, .. } => {
                let n = to_strip.min(conditions.len());
                conditions.drain(..n);
                to_strip = 0;
                pending.clear();
            }
            _ => {}
        }
    }
    halt_conditions
}

/// Whether `conditions` exclude a record for an engine with `labels`.
fn should_skip(conditions: &[Condition], labels: &[String]) -> bool {
    conditions.iter().any(|condition| match condition {
        Condition::OnlyIf { label } => !labels.contains(label),
        Condition::SkipIf { label } => labels.contains(label),
    })
}

/// The conditions of a record that is run and counted, or `None` for
/// records that are not tests (comments, control records...).
fn test_conditions(record: &SltRecord) -> Option<&[Condition]> {
    match record {
        Record::Statement { conditions, .. }
        | Record::Query { conditions, .. }
        | Record::System { conditions, .. }
        | Record::Let { conditions, .. } => Some(conditions),
        _ => None,
    }
}

/// The type letters to announce to the database before running `record`.
fn record_context(record: &SltRecord) -> RecordContext {
    let query_types = match record {
        Record::Query {
            expected: QueryExpect::Results { types, .. },
            ..
        } => Some(types.clone()),
        Record::Query { .. } => Some(Vec::new()),
        _ => None,
    };
    RecordContext { query_types }
}

/// Compares results laid out either one value per line (SQLite corpus) or
/// one row per line with values separated by spaces.
///
/// An expected `N values hashing to <md5>` is compared against the hash of
/// the actual values even when the result is below the hash threshold: the
/// SQLite corpus was generated with a threshold given on the command line,
/// which the files do not record.
pub fn layout_agnostic_validator(
    normalizer: Normalizer,
    actual: &[Vec<String>],
    expected: &[String],
) -> bool {
    if let [line] = expected {
        if is_hash_line(line) && !actual.iter().flatten().any(|v| is_hash_line(v)) {
            return hash_values(actual) == line.trim();
        }
    }
    let expected_lines: Vec<String> = expected.iter().map(normalizer).collect();
    let values: Vec<String> = actual.iter().flatten().map(normalizer).collect();
    if values == expected_lines {
        return true;
    }
    default_validator(normalizer, actual, expected)
}

/// Whether `line` is `N values hashing to <32 hex digits>`.
fn is_hash_line(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let count = words.next().is_some_and(|n| n.parse::<u64>().is_ok());
    let middle = words.by_ref().take(3).eq(["values", "hashing", "to"]);
    let hash = words
        .next()
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    count && middle && hash && words.next().is_none()
}

/// The SQLite corpus hash of (already sorted) values: md5 over each value
/// followed by a newline.
pub fn hash_values(rows: &[Vec<String>]) -> String {
    let mut context = md5::Context::new();
    let mut count = 0;
    for value in rows.iter().flatten() {
        context.consume(value.as_bytes());
        context.consume(b"\n");
        count += 1;
    }
    format!("{count} values hashing to {:x}", context.compute())
}

/// Fails when the number of columns differs from the type string's.
#[allow(clippy::ptr_arg)] // the signature is imposed by the crate
fn column_count_validator(actual: &Vec<SltColumnType>, expected: &Vec<SltColumnType>) -> bool {
    expected.is_empty() || actual.len() == expected.len()
}

/// Builds a runner whose connections go to `config`.
fn make_runner(
    config: &Config,
    options: &RunOptions,
    context: &SharedContext,
) -> Runner<PgDb, impl slt::MakeConnection<Conn = PgDb>> {
    let config = config.clone();
    let context = Arc::clone(context);
    let timeout = options.timeout;
    let mut runner = Runner::new(move || {
        let db = PgDb::new(config.clone(), Arc::clone(&context), timeout);
        async move { Ok(db) }
    });
    runner.with_validator(layout_agnostic_validator);
    runner.with_column_validator(column_count_validator);
    runner.with_hash_threshold(options.hash_threshold);
    for label in &options.labels {
        runner.add_label(label);
    }
    runner
}

fn set_context(context: &SharedContext, record: &SltRecord) {
    if let Ok(mut ctx) = context.lock() {
        *ctx = record_context(record);
    }
}

/// Runs every record of `script`, counting passes, failures and skips.
pub async fn run_script(
    script: Script,
    config: &Config,
    options: &RunOptions,
    mut server: Option<&mut Server>,
) -> Outcome {
    let context: SharedContext = Arc::new(Mutex::new(RecordContext::default()));
    let mut runner = make_runner(config, options, &context);
    let mut outcome = Outcome::default();
    let mut halted = false;

    for (record, halt_conditions) in script.records.into_iter().zip(script.halt_conditions) {
        if let Record::Halt { .. } = record {
            halted |= !should_skip(&halt_conditions, &options.labels);
            continue;
        }
        if matches!(record, Record::Injected(_) | Record::Include { .. }) {
            continue;
        }
        let Some(conditions) = test_conditions(&record) else {
            if !halted {
                // Control records: sort mode, hash threshold, sleep...
                let _ = runner.run_async(record).await;
            }
            continue;
        };
        if halted || should_skip(conditions, &options.labels) {
            outcome.skipped += 1;
            continue;
        }
        set_context(&context, &record);
        match runner.run_async(record).await {
            Ok(_) => outcome.passed += 1,
            Err(e) => {
                outcome.failed += 1;
                if options.verbose {
                    out!("{}", e.display(false));
                }
                if let Some(server) = server.as_deref_mut() {
                    restart_if_crashed(server).await;
                }
                if options.fail_fast {
                    outcome.stopped = true;
                    break;
                }
            }
        }
    }
    runner.shutdown_async().await;
    outcome
}

/// Restarts the server if it died, so the rest of the file can run.
async fn restart_if_crashed(server: &mut Server) {
    if let Some(status) = server
        .wait_exit_if_unreachable(Duration::from_secs(5))
        .await
    {
        eprintln!(
            "server exited ({status}), restarting; log: {}",
            server.log_path().display()
        );
        if let Err(e) = server.restart().await {
            eprintln!("server restart failed: {e:#}");
        }
    }
}

/// Re-runs `script` and rewrites `path` with the actual results (`--complete`).
///
/// Records of included files are run but not rewritten. Returns how many
/// records changed.
pub async fn complete_script(
    path: &Path,
    script: Script,
    config: &Config,
    options: &RunOptions,
) -> Result<usize> {
    let context: SharedContext = Arc::new(Mutex::new(RecordContext::default()));
    let mut runner = make_runner(config, options, &context);
    let mut out = String::new();
    let mut include_depth = 0usize;
    let mut halted = false;
    let mut changed = 0;
    let mut directives = script.directives;

    for (record, halt_conditions) in script.records.into_iter().zip(script.halt_conditions) {
        match &record {
            Record::Injected(Injected::BeginInclude(_)) => {
                include_depth += 1;
                continue;
            }
            Record::Injected(Injected::EndInclude(_)) => {
                include_depth = include_depth.saturating_sub(1);
                continue;
            }
            _ => {}
        }
        let write = include_depth == 0;
        let mut new_record = None;
        if let Record::Halt { .. } = record {
            halted |= !should_skip(&halt_conditions, &options.labels);
        } else if !halted {
            let run = test_conditions(&record)
                .is_none_or(|conditions| !should_skip(conditions, &options.labels));
            if run {
                set_context(&context, &record);
                let output = runner.apply_record(record.clone()).await;
                new_record = if sqlstate_matches(&record, &output) {
                    None
                } else {
                    update_record_with_output(
                        &record,
                        &output,
                        " ",
                        layout_agnostic_validator,
                        default_normalizer,
                        strict_column_validator,
                    )
                    .map(|updated| {
                        if options.complete_valuewise {
                            one_value_per_line(&record, updated, &output)
                        } else {
                            updated
                        }
                    })
                };
            }
        }
        if write {
            let record = match new_record {
                Some(updated) if updated != record => {
                    changed += 1;
                    updated
                }
                _ => record,
            };
            let mut text = record.to_string();
            let is_directive = matches!(
                record,
                Record::Condition(_) | Record::Halt { .. } | Record::HashThreshold { .. }
            );
            if is_directive {
                if let Some((cleaned, Some(original))) = directives.pop_front() {
                    if cleaned == text {
                        text = original;
                    }
                }
            }
            out.push_str(&text);
            out.push('\n');
        }
    }
    runner.shutdown_async().await;

    let mut out = format!("{}\n", out.trim_end_matches('\n'));
    if script.crlf {
        out = out.replace('\n', "\r\n");
    }
    write_atomically(path, &out)?;
    Ok(changed)
}

/// Whether `record` expects an error by SQLSTATE (`statement error (42P01)`)
/// and got it; the crate's updater does not look at SQLSTATEs.
fn sqlstate_matches(record: &SltRecord, output: &RecordOutput<SltColumnType>) -> bool {
    let expected = match record {
        Record::Statement {
            expected: StatementExpect::Error(ExpectedError::SqlState(state)),
            ..
        }
        | Record::Query {
            expected: QueryExpect::Error(ExpectedError::SqlState(state)),
            ..
        } => state,
        _ => return false,
    };
    let error = match output {
        RecordOutput::Statement {
            error: Some(error), ..
        }
        | RecordOutput::Query {
            error: Some(error), ..
        } => error,
        _ => return false,
    };
    error
        .downcast_ref::<DbError>()
        .and_then(PgDb::error_sql_state)
        .is_some_and(|actual| actual == *expected)
}

/// Re-lays out freshly generated query results one value per line.
fn one_value_per_line(
    original: &SltRecord,
    mut updated: SltRecord,
    output: &RecordOutput<SltColumnType>,
) -> SltRecord {
    let RecordOutput::Query {
        rows, error: None, ..
    } = output
    else {
        return updated;
    };
    let original_results = match original {
        Record::Query {
            expected: QueryExpect::Results { results, .. },
            ..
        } => Some(results),
        _ => None,
    };
    if let Record::Query {
        expected: QueryExpect::Results { results, .. },
        ..
    } = &mut updated
    {
        // Results that validated are kept as written in the file.
        if Some(&*results) != original_results {
            *results = rows.iter().flatten().cloned().collect();
        }
    }
    updated
}

/// Replaces `path` with `contents` through a temporary file.
fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let mut temp = PathBuf::from(path);
    temp.set_extension(format!("complete-{}.tmp", std::process::id()));
    std::fs::write(&temp, contents).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["postgresql".to_string()]
    }

    #[test]
    fn cleans_comments_after_conditions() {
        let text = "onlyif mssql  # this is allowed\nstatement ok\nSELECT 1 # not touched\n";
        let (cleaned, stripped) = clean_script(text);
        assert_eq!(
            cleaned,
            "onlyif mssql\nstatement ok\nSELECT 1 # not touched\n"
        );
        assert_eq!(
            stripped,
            vec![(
                "onlyif mssql".to_string(),
                Some("onlyif mssql  # this is allowed".to_string())
            )]
        );
    }

    #[test]
    fn conditional_halt_does_not_leak_conditions() {
        let text = "onlyif mssql\nhalt\n\nstatement ok\nSELECT 1\n\nskipif sqlite\nhalt\n";
        let mut records: Vec<SltRecord> = slt::parse(&clean_script(text).0).unwrap();
        let halts = resolve_conditional_halts(&mut records);
        let mut saw_statement = false;
        for (record, conditions) in records.iter().zip(&halts) {
            match record {
                Record::Halt { .. } => assert_eq!(conditions.len(), 1),
                Record::Statement { conditions, .. } => {
                    saw_statement = true;
                    assert!(conditions.is_empty());
                }
                _ => assert!(conditions.is_empty()),
            }
        }
        assert!(saw_statement);
        let halt_applies: Vec<bool> = records
            .iter()
            .zip(&halts)
            .filter(|(r, _)| matches!(r, Record::Halt { .. }))
            .map(|(_, c)| !should_skip(c, &labels()))
            .collect();
        assert_eq!(halt_applies, vec![false, true]);
    }

    #[test]
    fn validator_accepts_both_layouts() {
        let actual = vec![
            vec!["1".to_string(), "a b".to_string()],
            vec!["NULL".to_string(), "(empty)".to_string()],
        ];
        let valuewise: Vec<String> = ["1", "a b", "NULL", "(empty)"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rowwise: Vec<String> = ["1 a b", "NULL (empty)"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(layout_agnostic_validator(
            default_normalizer,
            &actual,
            &valuewise
        ));
        assert!(layout_agnostic_validator(
            default_normalizer,
            &actual,
            &rowwise
        ));
        assert!(!layout_agnostic_validator(
            default_normalizer,
            &actual,
            &valuewise[..3]
        ));
    }

    #[test]
    fn validator_compares_hashes() {
        let actual = vec![vec!["1".to_string(), "2".to_string()]];
        // md5("1\n2\n")
        let expected = vec!["2 values hashing to 6ddb4095eb719e2a9f0a3f95677d24e0".to_string()];
        assert_eq!(hash_values(&actual), expected[0]);
        assert!(layout_agnostic_validator(
            default_normalizer,
            &actual,
            &expected
        ));
        let wrong = vec!["2 values hashing to 00000000000000000000000000000000".to_string()];
        assert!(!layout_agnostic_validator(
            default_normalizer,
            &actual,
            &wrong
        ));
        assert!(!is_hash_line("2 values hashing to xyz"));
    }
}
