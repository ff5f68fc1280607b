//! Reading a sqllogictest file into what the incremental check needs: the statements
//! that build its database (replayed in file order) and the read-only queries to turn
//! into views, each with the reason it is left out if it cannot be checked.
//!
//! Records are parsed with the `sqllogictest` crate, after the same clean-up as the
//! runner's (a trailing `# comment` on `skipif`/`onlyif`/`halt` lines); records excluded
//! by `skipif`/`onlyif` for the run's labels are dropped, as is everything after an
//! unconditional `halt`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use slt::{Condition, DefaultColumnType, QueryExpect, Record};

/// One file's database and queries.
pub struct Corpus {
    pub path: PathBuf,
    /// Statements (and DML or other non-SELECT queries) in file order.
    pub setup: Vec<String>,
    /// Every query record that expects rows, in file order.
    pub queries: Vec<Query>,
}

/// One query record.
#[derive(Clone)]
pub struct Query {
    /// Line of the record in its file.
    pub line: u32,
    pub sql: String,
    /// How many statements of [`Corpus::setup`] precede the query.
    pub setup_len: usize,
    /// Why the query cannot be checked, if it cannot.
    pub excluded: Option<Exclusion>,
}

/// Why a query is not turned into views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exclusion {
    /// Reads the clock or a random generator (`now()`, `random()`, ...).
    Nondeterministic,
    /// `string_agg`/`array_agg` without ORDER BY inside the call: the order of the
    /// aggregated values is unspecified.
    UnorderedAgg,
    /// `WITH RECURSIVE ... UNION ALL`: once random writes make a cycle (a tree row
    /// whose parent is its own descendant), the recursion never ends, in PostgreSQL
    /// neither, so the views and the recomputation would only spin.
    UnboundedRecursion,
}

impl Exclusion {
    pub fn describe(self) -> &'static str {
        match self {
            Exclusion::Nondeterministic => "reads the clock or random()",
            Exclusion::UnorderedAgg => "string_agg/array_agg without ORDER BY",
            Exclusion::UnboundedRecursion => {
                "WITH RECURSIVE ... UNION ALL (endless once random writes make a cycle)"
            }
        }
    }
}

impl Corpus {
    /// Parses `path`, keeping the records `labels` select.
    pub fn load(path: &Path, labels: &[String]) -> Result<Corpus> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let text = strip_directive_comments(&String::from_utf8_lossy(&bytes));
        let records: Vec<Record<DefaultColumnType>> =
            slt::parse_with_name(&text, path.display().to_string())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut corpus = Corpus {
            path: path.to_path_buf(),
            setup: Vec::new(),
            queries: Vec::new(),
        };
        // The parser attaches the conditions of a `halt` to the next record as well;
        // `pending` holds the conditions seen since the last test record.
        let mut pending: Vec<Condition> = Vec::new();
        let mut strip = 0;
        for record in records {
            match record {
                Record::Condition(condition) => pending.push(condition),
                Record::Halt { .. } => {
                    if !skipped(&pending, labels) {
                        break;
                    }
                    strip = pending.len();
                    pending.clear();
                }
                Record::Statement {
                    mut conditions,
                    sql,
                    ..
                } => {
                    conditions.drain(..strip.min(conditions.len()));
                    strip = 0;
                    pending.clear();
                    if !skipped(&conditions, labels) {
                        corpus.setup.push(sql);
                    }
                }
                Record::Query {
                    mut conditions,
                    sql,
                    expected,
                    loc,
                    ..
                } => {
                    conditions.drain(..strip.min(conditions.len()));
                    strip = 0;
                    pending.clear();
                    if skipped(&conditions, labels) {
                        continue;
                    }
                    if !is_read_only(&sql) {
                        corpus.setup.push(sql);
                    } else if matches!(expected, QueryExpect::Results { .. }) {
                        let sql = sql.trim().trim_end_matches(';').trim_end().to_string();
                        corpus.queries.push(Query {
                            line: loc.line(),
                            setup_len: corpus.setup.len(),
                            excluded: exclusion(&sql),
                            sql,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(corpus)
    }
}

/// Whether `statement` may make a query written before it stop planning (or change
/// what it means): a batch of queries never spans one.
pub fn breaks_queries(statement: &str) -> bool {
    let words = words(statement);
    let w = |i: usize| words.get(i).map_or("", String::as_str);
    matches!(
        w(0),
        "drop" | "alter" | "truncate" | "set" | "reset" | "discard" | "rollback" | "abort"
    ) || (w(0) == "create" && w(1) == "or" && w(2) == "replace")
}

/// Whether `conditions` exclude a record for an engine with `labels`.
fn skipped(conditions: &[Condition], labels: &[String]) -> bool {
    conditions.iter().any(|c| match c {
        Condition::OnlyIf { label } => !labels.contains(label),
        Condition::SkipIf { label } => labels.contains(label),
    })
}

/// Drops `# comments` after `skipif`/`onlyif`/`halt`/`hash-threshold` (the SQLite
/// corpus has them; the parser rejects them). Line numbers are kept.
fn strip_directive_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let first = line.split_whitespace().next();
        if matches!(first, Some("skipif" | "onlyif" | "halt" | "hash-threshold")) {
            let kept: Vec<&str> = line
                .split_whitespace()
                .take_while(|w| !w.starts_with('#'))
                .collect();
            out.push_str(&kept.join(" "));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Whether a query record only reads: a SELECT, WITH, VALUES or TABLE query (possibly
/// parenthesized). Anything else (`INSERT ... RETURNING`, `SHOW`, `EXPLAIN`) is part
/// of the setup, or not a relation a view can hold.
fn is_read_only(sql: &str) -> bool {
    let words = words(sql);
    let first = words.first().map(String::as_str);
    let read = matches!(first, Some("select" | "with" | "values" | "table"));
    // A WITH query may hold a data-modifying statement.
    read && !words
        .iter()
        .any(|w| matches!(w.as_str(), "insert" | "update" | "delete"))
}

/// Why `sql` cannot be compared between a view and a recomputation, if so.
fn exclusion(sql: &str) -> Option<Exclusion> {
    let words = words(sql);
    let has = |w: &str| words.iter().any(|x| x == w);
    let nondeterministic = [
        "now",
        "random",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtime",
        "localtimestamp",
        "clock_timestamp",
        "statement_timestamp",
        "transaction_timestamp",
        "timeofday",
        "mz_now",
        "gen_random_uuid",
    ];
    if nondeterministic.iter().any(|w| has(w)) {
        return Some(Exclusion::Nondeterministic);
    }
    // LIMIT, OFFSET and DISTINCT ON are checked: which rows tie for the last places
    // is decided by comparing whole rows, in a view's TopK and in a SELECT's
    // finishing alike.
    if (has("string_agg") || has("array_agg")) && !has("order") {
        return Some(Exclusion::UnorderedAgg);
    }
    let union_all = words.windows(2).any(|w| w[0] == "union" && w[1] == "all");
    if has("recursive") && union_all {
        return Some(Exclusion::UnboundedRecursion);
    }
    None
}

/// The lowercased words of `sql` outside string literals and quoted identifiers,
/// punctuation dropped.
pub fn words(sql: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            // Skip the literal ('' and "" are escaped quotes).
            while let Some(d) = chars.next() {
                if d == c {
                    if chars.peek() == Some(&c) {
                        chars.next();
                    } else {
                        break;
                    }
                }
            }
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        } else if c.is_alphanumeric() || c == '_' {
            current.extend(c.to_lowercase());
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_literals() {
        assert_eq!(
            words("SELECT 'limit it', \"Offset\" FROM t1 WHERE a>1"),
            ["select", "from", "t1", "where", "a", "1"]
        );
    }

    #[test]
    fn breaking_statements() {
        assert!(breaks_queries("DROP TABLE t"));
        assert!(breaks_queries("create or replace view v as select 1"));
        assert!(!breaks_queries("CREATE TABLE t (a int)"));
        assert!(!breaks_queries("INSERT INTO t VALUES (1)"));
    }

    #[test]
    fn exclusions() {
        assert_eq!(exclusion("SELECT a FROM t ORDER BY a"), None);
        assert_eq!(exclusion("SELECT a FROM t ORDER BY a LIMIT 3"), None);
        assert_eq!(exclusion("SELECT DISTINCT ON (a) a, b FROM t"), None);
        assert_eq!(
            exclusion("SELECT string_agg(x, ',') FROM t"),
            Some(Exclusion::UnorderedAgg)
        );
        assert_eq!(
            exclusion("SELECT string_agg(x, ',' ORDER BY x) FROM t"),
            None
        );
        assert_eq!(
            exclusion("SELECT now() > a FROM t"),
            Some(Exclusion::Nondeterministic)
        );
        assert_eq!(
            exclusion(
                "WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n FROM d) SELECT * FROM d"
            ),
            Some(Exclusion::UnboundedRecursion)
        );
        assert_eq!(
            exclusion("WITH RECURSIVE d(n) AS (SELECT 1 UNION SELECT n FROM d) SELECT * FROM d"),
            None
        );
        assert!(is_read_only("(SELECT 1) UNION (SELECT 2)"));
        assert!(is_read_only("with x as (select 1) select * from x"));
        assert!(!is_read_only("INSERT INTO t VALUES (1) RETURNING a"));
    }
}
