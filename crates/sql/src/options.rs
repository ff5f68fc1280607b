//! `RETAIN HISTORY`: how long a table, materialized view or index keeps its past.
//!
//! Materialize's syntax, which sqlparser does not know, is taken out of the statement
//! text before sqlparser sees it:
//!
//! - `CREATE TABLE | MATERIALIZED VIEW | INDEX ... WITH (RETAIN HISTORY [=] FOR '1h')`
//! - `ALTER TABLE | MATERIALIZED VIEW | INDEX name SET (RETAIN HISTORY [=] FOR '1h')`
//! - `ALTER TABLE | MATERIALIZED VIEW | INDEX name RESET (RETAIN HISTORY)`
//!
//! The interval is PostgreSQL interval text (`'1h'`, `'30 minutes'`, `'2 days'`); a
//! month counts as 30 days.

use sqlparser::ast;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::catalog::ItemKind;
use crate::error::PlanError;

/// The `WITH (RETAIN HISTORY ...)` clause found in a CREATE statement.
#[derive(Debug, PartialEq)]
pub struct RetainHistoryClause {
    /// The interval's text.
    pub interval: String,
    /// The index range of the clause's tokens (`WITH` through `)`) in the token list.
    pub tokens: std::ops::Range<usize>,
}

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.value.to_lowercase()),
        _ => None,
    }
}

fn syntax(message: String) -> PlanError {
    PlanError::Parse {
        message,
        position: None,
    }
}

/// Parses `RETAIN HISTORY [=] FOR '<interval>'` at the start of `tokens`, returning the
/// interval text and the number of tokens used.
fn retain_history_option(tokens: &[&TokenWithSpan]) -> Result<(String, usize), PlanError> {
    let w = |i: usize| {
        tokens
            .get(i)
            .and_then(|t| word(&t.token))
            .unwrap_or_default()
    };
    if w(0) != "retain" || w(1) != "history" {
        return Err(syntax("expected RETAIN HISTORY".into()));
    }
    let mut i = 2;
    if tokens.get(i).map(|t| &t.token) == Some(&Token::Eq) {
        i += 1;
    }
    if w(i) != "for" {
        return Err(syntax(
            "syntax error: expected FOR '<interval>' after RETAIN HISTORY".into(),
        ));
    }
    match tokens.get(i + 1).map(|t| &t.token) {
        Some(Token::SingleQuotedString(s)) => Ok((s.clone(), i + 2)),
        other => Err(syntax(format!(
            "syntax error: RETAIN HISTORY FOR takes an interval string, not {}",
            other
                .map(|t| t.to_string())
                .unwrap_or_else(|| "nothing".into())
        ))),
    }
}

/// Finds `WITH (RETAIN HISTORY [=] FOR '...')` among the top-level tokens of a
/// `CREATE TABLE | MATERIALIZED VIEW | INDEX` statement. Other options in the same
/// list are refused: Freshet knows no other.
pub fn find_retain_history(
    tokens: &[&TokenWithSpan],
) -> Result<Option<RetainHistoryClause>, PlanError> {
    let w = |i: usize| {
        tokens
            .get(i)
            .and_then(|t| word(&t.token))
            .unwrap_or_default()
    };
    if w(0) != "create" {
        return Ok(None);
    }
    for i in 0..tokens.len() {
        if w(i) == "with"
            && tokens.get(i + 1).map(|t| &t.token) == Some(&Token::LParen)
            && w(i + 2) == "retain"
        {
            let (interval, used) = retain_history_option(&tokens[i + 2..])?;
            let close = i + 2 + used;
            return match tokens.get(close).map(|t| &t.token) {
                Some(Token::RParen) => Ok(Some(RetainHistoryClause {
                    interval,
                    tokens: i..close + 1,
                })),
                Some(Token::Comma) => Err(PlanError::unsupported(
                    "options other than RETAIN HISTORY in WITH (...)",
                )),
                _ => Err(syntax(
                    "syntax error: expected ) after the RETAIN HISTORY option".into(),
                )),
            };
        }
    }
    Ok(None)
}

/// `ALTER TABLE | MATERIALIZED VIEW | INDEX name SET (RETAIN HISTORY [=] FOR '...')` or
/// `... RESET (RETAIN HISTORY)`: the kind, the name and the interval (`None` to reset).
/// `Ok(None)` when the statement is some other ALTER.
#[allow(clippy::type_complexity)]
pub fn parse_alter_retain_history(
    tokens: &[&TokenWithSpan],
) -> Result<Option<(ItemKind, ast::ObjectName, Option<String>)>, PlanError> {
    let w = |i: usize| {
        tokens
            .get(i)
            .and_then(|t| word(&t.token))
            .unwrap_or_default()
    };
    if w(0) != "alter" {
        return Ok(None);
    }
    let (kind, mut i) = match (w(1).as_str(), w(2).as_str()) {
        ("table", _) => (ItemKind::Table, 2),
        ("index", _) => (ItemKind::Index, 2),
        ("materialized", "view") => (ItemKind::MaterializedView, 3),
        _ => return Ok(None),
    };
    let mut parts = Vec::new();
    loop {
        match tokens.get(i).map(|t| &t.token) {
            Some(Token::Word(word)) => parts.push(match word.quote_style {
                Some(q) => ast::Ident::with_quote(q, word.value.clone()),
                None => ast::Ident::new(word.value.clone()),
            }),
            _ => return Ok(None),
        }
        i += 1;
        if tokens.get(i).map(|t| &t.token) == Some(&Token::Period) {
            i += 1;
        } else {
            break;
        }
    }
    let set = match w(i).as_str() {
        "set" => true,
        "reset" => false,
        _ => return Ok(None),
    };
    if tokens.get(i + 1).map(|t| &t.token) != Some(&Token::LParen) || w(i + 2) != "retain" {
        return Ok(None);
    }
    let rest = &tokens[i + 2..];
    let (interval, used) = if set {
        let (interval, used) = retain_history_option(rest)?;
        (Some(interval), used)
    } else {
        if w(i + 3) != "history" {
            return Err(syntax(
                "syntax error: expected RESET (RETAIN HISTORY)".into(),
            ));
        }
        (None, 2)
    };
    if rest.get(used).map(|t| &t.token) != Some(&Token::RParen) || rest.len() != used + 1 {
        return Err(syntax(
            "syntax error: expected ) after the RETAIN HISTORY option".into(),
        ));
    }
    let name = ast::ObjectName(
        parts
            .into_iter()
            .map(ast::ObjectNamePart::Identifier)
            .collect(),
    );
    Ok(Some((kind, name, interval)))
}

/// The length in milliseconds of a `RETAIN HISTORY` interval, which must be positive.
pub fn retain_history_ms(interval: &str) -> Result<u64, PlanError> {
    let parsed = repr::strconv::parse_interval(interval).map_err(|_| {
        PlanError::InvalidParameterValue(format!("invalid RETAIN HISTORY interval \"{interval}\""))
    })?;
    let micros = i128::from(parsed.months) * 30 * 86_400_000_000
        + i128::from(parsed.days) * 86_400_000_000
        + i128::from(parsed.micros);
    if micros <= 0 {
        return Err(PlanError::InvalidParameterValue(format!(
            "RETAIN HISTORY must be a positive interval, not \"{interval}\""
        )));
    }
    u64::try_from((micros + 999) / 1000)
        .map_err(|_| PlanError::InvalidParameterValue("RETAIN HISTORY is too long".into()))
}

/// The one compute cluster Freshet has (Materialize's default cluster's name).
pub const DEFAULT_CLUSTER: &str = "quickstart";

/// Finds `IN CLUSTER name` in `CREATE MATERIALIZED VIEW ... [IN CLUSTER c] AS` and
/// `CREATE [DEFAULT] INDEX ... [IN CLUSTER c] ON` (before the `AS` or `ON`),
/// returning the cluster's name (lowercased unless quoted) and the clause's tokens.
/// A name other than [`DEFAULT_CLUSTER`] is an unknown cluster (42704).
pub fn find_in_cluster(
    tokens: &[&TokenWithSpan],
) -> Result<Option<std::ops::Range<usize>>, PlanError> {
    let w = |i: usize| {
        tokens
            .get(i)
            .and_then(|t| word(&t.token))
            .unwrap_or_default()
    };
    if w(0) != "create" {
        return Ok(None);
    }
    let end_word = if (1..4).any(|i| w(i) == "materialized" && w(i + 1) == "view") {
        "as"
    } else if (1..4).any(|i| w(i) == "index") {
        "on"
    } else {
        return Ok(None);
    };
    for i in 1..tokens.len() {
        if w(i) == end_word {
            return Ok(None);
        }
        if w(i) == "in" && w(i + 1) == "cluster" {
            let name = match tokens.get(i + 2).map(|t| &t.token) {
                Some(Token::Word(word)) if word.quote_style.is_some() => word.value.clone(),
                Some(Token::Word(word)) if word.value.to_lowercase() != end_word => {
                    word.value.to_lowercase()
                }
                _ => {
                    return Err(syntax(
                        "syntax error: expected a cluster name after IN CLUSTER".into(),
                    ))
                }
            };
            if name != DEFAULT_CLUSTER {
                return Err(PlanError::DoesNotExist {
                    kind: "cluster",
                    name,
                });
            }
            return Ok(Some(i..i + 3));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::{Tokenizer, Whitespace};

    fn tokens(sql: &str) -> Vec<TokenWithSpan> {
        Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap()
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(Whitespace::Space)))
            .collect()
    }

    #[test]
    fn finds_the_clause_in_create_statements() {
        let t = tokens("CREATE TABLE t (a int) WITH (RETAIN HISTORY FOR '1h')");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        let clause = find_retain_history(&refs).unwrap().unwrap();
        assert_eq!(clause.interval, "1h");
        assert_eq!(clause.tokens, 7..14);
        let t = tokens("CREATE MATERIALIZED VIEW v WITH (RETAIN HISTORY = FOR '5m') AS SELECT 1");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        assert_eq!(find_retain_history(&refs).unwrap().unwrap().interval, "5m");
        // A CTE is not an option list.
        let t = tokens("CREATE VIEW v AS WITH x AS (SELECT 1) SELECT * FROM x");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        assert_eq!(find_retain_history(&refs).unwrap(), None);
        let t = tokens("CREATE TABLE t (a int) WITH (RETAIN HISTORY FOR '1h', x = 1)");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        assert!(matches!(
            find_retain_history(&refs),
            Err(PlanError::Unsupported(_))
        ));
        let t = tokens("CREATE TABLE t (a int) WITH (RETAIN HISTORY FOR 10)");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        assert!(find_retain_history(&refs).is_err());
    }

    #[test]
    fn parses_alter_set_and_reset() {
        let t = tokens("ALTER MATERIALIZED VIEW s.v SET (RETAIN HISTORY FOR '2 hours')");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        let (kind, name, interval) = parse_alter_retain_history(&refs).unwrap().unwrap();
        assert_eq!(kind, ItemKind::MaterializedView);
        assert_eq!(name.to_string(), "s.v");
        assert_eq!(interval.as_deref(), Some("2 hours"));
        let t = tokens("ALTER TABLE t RESET (RETAIN HISTORY)");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        let (kind, _, interval) = parse_alter_retain_history(&refs).unwrap().unwrap();
        assert_eq!((kind, interval), (ItemKind::Table, None));
        let t = tokens("ALTER TABLE t ADD COLUMN b int");
        let refs: Vec<&TokenWithSpan> = t.iter().collect();
        assert_eq!(parse_alter_retain_history(&refs).unwrap(), None);
    }

    #[test]
    fn intervals_are_positive_milliseconds() {
        assert_eq!(retain_history_ms("1h").unwrap(), 3_600_000);
        assert_eq!(retain_history_ms("30 seconds").unwrap(), 30_000);
        assert_eq!(retain_history_ms("1 day").unwrap(), 86_400_000);
        assert!(retain_history_ms("0s").is_err());
        assert!(retain_history_ms("-1h").is_err());
        assert!(retain_history_ms("soon").is_err());
    }
}
