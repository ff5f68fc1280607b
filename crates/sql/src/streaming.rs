//! The streaming statements: `SUBSCRIBE`, `COPY (...) TO STDOUT`, `DECLARE` / `FETCH`
//! / `CLOSE` cursors, `SELECT ... AS OF`, and `EXPLAIN TIMESTAMP FOR`.
//!
//! sqlparser knows none of these in Materialize's forms, so they are recognised here
//! from their words, with the queries inside them handed back to sqlparser. The syntax
//! follows Materialize's:
//!
//! ```text
//! SUBSCRIBE [TO] <object | (SELECT ...)>
//!     [ENVELOPE UPSERT (KEY (col, ...))]
//!     [WITH (SNAPSHOT [= bool], PROGRESS [= bool])]
//!     [AS OF <ts>] [UP TO <ts>]
//! COPY (SUBSCRIBE ... | SELECT ...) TO STDOUT [WITH (FORMAT TEXT)]
//! DECLARE c CURSOR [WITHOUT HOLD] FOR (SUBSCRIBE ... | SELECT ...)
//! FETCH [FORWARD] [n | ALL] [FROM | IN] c [WITH (TIMEOUT = '1s')]
//! CLOSE c
//! SELECT ... AS OF <ts>
//! EXPLAIN TIMESTAMP FOR SELECT ...
//! ```

use std::time::Duration;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use expr::{MirRelationExpr, RowSetFinishing};
use repr::{ColumnType, RelationDesc, ScalarType};

use crate::error::PlanError;
use crate::parse::Statement;
use crate::query::{self, QueryContext};

/// `SUBSCRIBE`, as parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscribeStatement {
    pub from: SubscribeFrom,
    /// `ENVELOPE UPSERT (KEY (...))`: the key columns.
    pub upsert_key: Option<Vec<String>>,
    pub snapshot: bool,
    pub progress: bool,
    pub as_of: Option<u64>,
    pub up_to: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SubscribeFrom {
    Name(ast::ObjectName),
    Query(Box<ast::Query>),
}

/// A token with its byte range in the statement text.
struct Tok {
    token: Token,
    start: usize,
    end: usize,
}

fn syntax(message: impl std::fmt::Display) -> PlanError {
    PlanError::Parse {
        message: format!("syntax error: {message}"),
        position: None,
    }
}

fn tokens(text: &str) -> Result<Vec<Tok>, PlanError> {
    let dialect = PostgreSqlDialect {};
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts
            .get((line as usize).saturating_sub(1))
            .copied()
            .unwrap_or(text.len());
        // Columns count characters from 1.
        text[start..]
            .char_indices()
            .nth((column as usize).saturating_sub(1))
            .map(|(i, _)| start + i)
            .unwrap_or(text.len())
    };
    let raw = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| syntax(e.message))?;
    Ok(raw
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .map(|t| Tok {
            start: offset(t.span.start.line, t.span.start.column),
            end: offset(t.span.end.line, t.span.end.column),
            token: t.token,
        })
        .collect())
}

fn word(t: Option<&Tok>) -> String {
    match t.map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_lowercase(),
        _ => String::new(),
    }
}

/// The index of the parenthesis closing the one at `open`.
fn closing_paren(toks: &[Tok], open: usize) -> Result<usize, PlanError> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
    }
    Err(syntax("unbalanced parentheses"))
}

/// Recognises the streaming statements; `None` for everything else.
pub fn parse(text: &str) -> Result<Option<Statement>, PlanError> {
    let first = text
        .trim_start()
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("")
        .to_lowercase();
    match first.as_str() {
        "subscribe" | "copy" | "declare" | "fetch" | "close" | "select" | "with" | "explain" => {}
        _ => return Ok(None),
    }
    if matches!(first.as_str(), "select" | "with") && !text.to_lowercase().contains("of") {
        return Ok(None);
    }
    let toks = tokens(text)?;
    let w = |i: usize| word(toks.get(i));
    match first.as_str() {
        "subscribe" => Ok(Some(Statement::Subscribe(Box::new(parse_subscribe(
            text, &toks,
        )?)))),
        // `COPY t FROM STDIN`: sqlparser expects the data inline, ended by `\.`; the
        // data comes in CopyData messages instead, so an empty inline part is given.
        "copy"
            if toks.get(1).map(|t| &t.token) != Some(&Token::LParen)
                && toks.iter().any(
                    |t| matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case("stdin")),
                ) =>
        {
            let dialect = PostgreSqlDialect {};
            let with_end = format!("{text};\n\\.\n");
            let statement = sqlparser::parser::Parser::parse_sql(&dialect, &with_end)
                .map_err(syntax)?
                .into_iter()
                .next()
                .ok_or_else(|| syntax("expected COPY"))?;
            Ok(Some(Statement::Sql(Box::new(statement))))
        }
        "copy" if toks.get(1).map(|t| &t.token) == Some(&Token::LParen) => {
            let close = closing_paren(&toks, 1)?;
            let inner_text = &text[toks[1].end..toks[close].start];
            let inner = parse_inner(inner_text, "COPY")?;
            if w(close + 1) != "to" || w(close + 2) != "stdout" {
                return Err(PlanError::unsupported(
                    "COPY other than COPY (...) TO STDOUT",
                ));
            }
            let mut i = close + 3;
            if w(i) == "with" {
                let end = closing_paren(&toks, i + 1)?;
                let options: Vec<String> = toks[i + 2..end]
                    .iter()
                    .map(|t| t.token.to_string().to_lowercase())
                    .collect();
                let options = options.join(" ");
                if !matches!(options.as_str(), "format text" | "format = text" | "") {
                    return Err(PlanError::unsupported(format!("COPY option {options}")));
                }
                i = end + 1;
            }
            if i < toks.len() {
                return Err(syntax(format!("unexpected {} after COPY", toks[i].token)));
            }
            Ok(Some(Statement::CopyTo {
                inner: Box::new(inner),
            }))
        }
        "declare" => {
            let name = cursor_name(toks.get(1))?;
            let mut i = 2;
            while matches!(
                w(i).as_str(),
                "binary" | "insensitive" | "asensitive" | "no" | "scroll"
            ) {
                i += 1;
            }
            if w(i) != "cursor" {
                return Err(syntax("expected CURSOR"));
            }
            i += 1;
            if matches!(w(i).as_str(), "without" | "with") && w(i + 1) == "hold" {
                if w(i) == "with" {
                    return Err(PlanError::unsupported("DECLARE ... WITH HOLD"));
                }
                i += 2;
            }
            if w(i) != "for" {
                return Err(syntax("expected FOR"));
            }
            let inner_text = toks
                .get(i + 1)
                .map(|t| &text[t.start..])
                .ok_or_else(|| syntax("expected a query after FOR"))?;
            let inner = parse_inner(inner_text, "DECLARE")?;
            Ok(Some(Statement::Declare {
                name,
                inner: Box::new(inner),
            }))
        }
        "fetch" => parse_fetch(&toks).map(Some),
        "close" => {
            if w(1) == "all" && toks.len() == 2 {
                return Ok(Some(Statement::Close { name: None }));
            }
            if toks.len() != 2 {
                return Err(syntax("expected CLOSE name"));
            }
            Ok(Some(Statement::Close {
                name: Some(cursor_name(toks.get(1))?),
            }))
        }
        "explain" if w(1) == "timestamp" && w(2) == "for" => {
            let inner_text = toks
                .get(3)
                .map(|t| &text[t.start..])
                .ok_or_else(|| syntax("expected a query after EXPLAIN TIMESTAMP FOR"))?;
            match crate::parse::parse(inner_text)?.into_iter().next() {
                Some(p) => match p.statement {
                    Statement::Sql(s) if matches!(*s, ast::Statement::Query(_)) => {
                        Ok(Some(Statement::ExplainTimestamp { statement: s }))
                    }
                    _ => Err(PlanError::unsupported(
                        "EXPLAIN TIMESTAMP of statements other than SELECT",
                    )),
                },
                None => Err(syntax("expected a query after EXPLAIN TIMESTAMP FOR")),
            }
        }
        "select" | "with" => {
            // `... AS OF <ts>` at the very end, outside any parentheses.
            let n = toks.len();
            if n >= 4 && w(n - 3) == "as" && w(n - 2) == "of" {
                let depth_ok = toks[..n - 3]
                    .iter()
                    .map(|t| match t.token {
                        Token::LParen => 1i64,
                        Token::RParen => -1,
                        _ => 0,
                    })
                    .sum::<i64>()
                    == 0;
                if depth_ok {
                    let as_of = timestamp_literal(&toks[n - 1])?;
                    let query_text = &text[..toks[n - 3].start];
                    return match crate::parse::parse(query_text)?.into_iter().next() {
                        Some(p) => match p.statement {
                            Statement::Sql(s) => match *s {
                                ast::Statement::Query(query) => {
                                    Ok(Some(Statement::SelectAsOf { query, as_of }))
                                }
                                _ => Err(syntax("AS OF applies to queries")),
                            },
                            _ => Err(syntax("AS OF applies to queries")),
                        },
                        None => Err(syntax("expected a query before AS OF")),
                    };
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// The statement inside COPY (...) or DECLARE ... FOR: a SUBSCRIBE or a query.
fn parse_inner(text: &str, what: &str) -> Result<Statement, PlanError> {
    let parsed = crate::parse::parse(text)?;
    if parsed.len() != 1 {
        return Err(syntax(format!("{what} expects one statement")));
    }
    let statement = parsed.into_iter().next().expect("one").statement;
    match &statement {
        Statement::Subscribe(_) | Statement::SelectAsOf { .. } => Ok(statement),
        Statement::Sql(s) if matches!(**s, ast::Statement::Query(_)) => Ok(statement),
        _ => Err(PlanError::unsupported(format!(
            "{what} of statements other than SELECT and SUBSCRIBE"
        ))),
    }
}

fn cursor_name(t: Option<&Tok>) -> Result<String, PlanError> {
    match t.map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_some() => Ok(w.value.clone()),
        Some(Token::Word(w)) => Ok(w.value.to_lowercase()),
        _ => Err(syntax("expected a cursor name")),
    }
}

/// A timestamp in AS OF / UP TO: a non-negative integer (milliseconds since the epoch).
fn timestamp_literal(t: &Tok) -> Result<u64, PlanError> {
    let text = match &t.token {
        Token::Number(n, _) => n.clone(),
        Token::SingleQuotedString(s) => s.clone(),
        other => return Err(syntax(format!("expected a timestamp, found {other}"))),
    };
    text.trim().parse::<u64>().map_err(|_| PlanError::InvalidParameterValue(format!(
        "invalid timestamp \"{text}\": a timestamp is a non-negative integer (milliseconds since the epoch)"
    )))
}

fn parse_subscribe(text: &str, toks: &[Tok]) -> Result<SubscribeStatement, PlanError> {
    let w = |i: usize| word(toks.get(i));
    let mut i = 1;
    if w(i) == "to" {
        i += 1;
    }
    let from = match toks.get(i).map(|t| &t.token) {
        Some(Token::LParen) => {
            let close = closing_paren(toks, i)?;
            let inner = &text[toks[i].end..toks[close].start];
            i = close + 1;
            match crate::parse::parse(inner)?
                .into_iter()
                .next()
                .map(|p| p.statement)
            {
                Some(Statement::Sql(s)) => match *s {
                    ast::Statement::Query(q) => SubscribeFrom::Query(q),
                    _ => return Err(syntax("SUBSCRIBE expects a query in parentheses")),
                },
                _ => return Err(syntax("SUBSCRIBE expects a query in parentheses")),
            }
        }
        Some(Token::Word(_)) => {
            let mut parts = Vec::new();
            loop {
                match toks.get(i).map(|t| &t.token) {
                    Some(Token::Word(word)) => {
                        parts.push(ast::ObjectNamePart::Identifier(match word.quote_style {
                            Some(q) => ast::Ident::with_quote(q, word.value.clone()),
                            None => ast::Ident::new(word.value.clone()),
                        }));
                        i += 1;
                    }
                    _ => return Err(syntax("expected a name")),
                }
                if toks.get(i).map(|t| &t.token) == Some(&Token::Period) {
                    i += 1;
                } else {
                    break;
                }
            }
            SubscribeFrom::Name(ast::ObjectName(parts))
        }
        _ => return Err(syntax("expected a name or a query after SUBSCRIBE")),
    };
    let mut statement = SubscribeStatement {
        from,
        upsert_key: None,
        snapshot: true,
        progress: false,
        as_of: None,
        up_to: None,
    };
    while i < toks.len() {
        match w(i).as_str() {
            "envelope" => {
                if w(i + 1) == "debezium" {
                    return Err(PlanError::unsupported("SUBSCRIBE ... ENVELOPE DEBEZIUM"));
                }
                if w(i + 1) != "upsert"
                    || toks.get(i + 2).map(|t| &t.token) != Some(&Token::LParen)
                    || w(i + 3) != "key"
                    || toks.get(i + 4).map(|t| &t.token) != Some(&Token::LParen)
                {
                    return Err(syntax("expected ENVELOPE UPSERT (KEY (...))"));
                }
                let close = closing_paren(toks, i + 4)?;
                let mut key = Vec::new();
                for t in &toks[i + 5..close] {
                    match &t.token {
                        Token::Comma => {}
                        Token::Word(w) if w.quote_style.is_some() => key.push(w.value.clone()),
                        Token::Word(w) => key.push(w.value.to_lowercase()),
                        other => return Err(syntax(format!("unexpected {other} in KEY"))),
                    }
                }
                if toks.get(close + 1).map(|t| &t.token) != Some(&Token::RParen) {
                    return Err(syntax("expected ) after KEY (...)"));
                }
                statement.upsert_key = Some(key);
                i = close + 2;
            }
            "with" => {
                if toks.get(i + 1).map(|t| &t.token) != Some(&Token::LParen) {
                    return Err(syntax("expected ( after WITH"));
                }
                let close = closing_paren(toks, i + 1)?;
                let mut j = i + 2;
                while j < close {
                    let option = w(j);
                    j += 1;
                    let mut value = true;
                    if toks.get(j).map(|t| &t.token) == Some(&Token::Eq) {
                        j += 1;
                    }
                    if j < close && toks[j].token != Token::Comma {
                        value = match w(j).as_str() {
                            "true" | "on" => true,
                            "false" | "off" => false,
                            _ => match &toks[j].token {
                                Token::SingleQuotedString(s) if s == "true" || s == "on" => true,
                                Token::SingleQuotedString(s) if s == "false" || s == "off" => false,
                                other => {
                                    return Err(syntax(format!(
                                        "{} requires a Boolean value, found {other}",
                                        option.to_uppercase()
                                    )))
                                }
                            },
                        };
                        j += 1;
                    }
                    match option.as_str() {
                        "snapshot" => statement.snapshot = value,
                        "progress" => statement.progress = value,
                        other => {
                            return Err(PlanError::unsupported(format!(
                                "SUBSCRIBE option {}",
                                other.to_uppercase()
                            )))
                        }
                    }
                    if j < close {
                        if toks[j].token != Token::Comma {
                            return Err(syntax("expected , between options"));
                        }
                        j += 1;
                    }
                }
                i = close + 1;
            }
            "as" if w(i + 1) == "of" => {
                let t = toks
                    .get(i + 2)
                    .ok_or_else(|| syntax("expected a timestamp"))?;
                statement.as_of = Some(timestamp_literal(t)?);
                i += 3;
            }
            "up" if w(i + 1) == "to" => {
                let t = toks
                    .get(i + 2)
                    .ok_or_else(|| syntax("expected a timestamp"))?;
                statement.up_to = Some(timestamp_literal(t)?);
                i += 3;
            }
            _ => {
                return Err(PlanError::Parse {
                    message: format!("syntax error at or near \"{}\"", toks[i].token),
                    position: None,
                })
            }
        }
    }
    Ok(statement)
}

fn parse_fetch(toks: &[Tok]) -> Result<Statement, PlanError> {
    let w = |i: usize| word(toks.get(i));
    let mut i = 1;
    if matches!(w(i).as_str(), "forward" | "next") {
        i += 1;
    }
    let mut count = Some(1);
    match &toks.get(i).map(|t| &t.token) {
        Some(Token::Number(n, _)) => {
            count = Some(n.parse::<u64>().map_err(|_| {
                syntax(format!(
                    "FETCH count must be a non-negative integer, not {n}"
                ))
            })?);
            i += 1;
        }
        Some(Token::Minus) => {
            return Err(PlanError::unsupported(
                "FETCH BACKWARD (cursors only move forward)",
            ))
        }
        _ if w(i) == "all" => {
            count = None;
            i += 1;
        }
        _ if w(i) == "backward" || w(i) == "prior" || w(i) == "absolute" => {
            return Err(PlanError::unsupported(format!(
                "FETCH {} (cursors only move forward)",
                w(i).to_uppercase()
            )))
        }
        _ => {}
    }
    if matches!(w(i).as_str(), "from" | "in") {
        i += 1;
    }
    let name = cursor_name(toks.get(i))?;
    i += 1;
    let mut timeout = None;
    if w(i) == "with" {
        if toks.get(i + 1).map(|t| &t.token) != Some(&Token::LParen) {
            return Err(syntax("expected ( after WITH"));
        }
        let close = closing_paren(toks, i + 1)?;
        if w(i + 2) != "timeout" {
            return Err(PlanError::unsupported(format!(
                "FETCH option {}",
                w(i + 2).to_uppercase()
            )));
        }
        let mut j = i + 3;
        if toks.get(j).map(|t| &t.token) == Some(&Token::Eq) {
            j += 1;
        }
        let mut negative = false;
        if toks.get(j).map(|t| &t.token) == Some(&Token::Minus) {
            negative = true;
            j += 1;
        }
        let value = match toks.get(j).map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => s.clone(),
            Some(Token::Number(n, _)) => format!("{n}s"),
            _ => return Err(syntax("expected a TIMEOUT value")),
        };
        if j + 1 != close {
            return Err(syntax("expected ) after the TIMEOUT value"));
        }
        timeout = Some(parse_timeout(&value, negative)?);
        i = close + 1;
    }
    if i < toks.len() {
        return Err(syntax(format!("unexpected {} in FETCH", toks[i].token)));
    }
    Ok(Statement::Fetch {
        name,
        count,
        timeout,
    })
}

/// A FETCH timeout: an interval (`'1s'`, `'500ms'`, `'0'`) that must not be negative.
fn parse_timeout(value: &str, negative: bool) -> Result<Duration, PlanError> {
    let text = value.trim();
    let interval = if text.chars().all(|c| c.is_ascii_digit() || c == '.') && !text.is_empty() {
        repr::strconv::parse_interval(&format!("{text} seconds"))
    } else {
        repr::strconv::parse_interval(text)
    }
    .map_err(PlanError::Eval)?;
    let micros = interval.micros
        + (interval.days as i64) * 86_400_000_000
        + (interval.months as i64) * 30 * 86_400_000_000;
    if negative || micros < 0 {
        return Err(PlanError::InvalidParameterValue(format!(
            "timeout must not be negative: {}{value}",
            if negative { "-" } else { "" }
        )));
    }
    Ok(Duration::from_micros(micros as u64))
}

/// A planned `SUBSCRIBE`.
#[derive(Clone, Debug)]
pub struct SubscribePlan {
    /// What is subscribed to, with any ORDER BY ... LIMIT as a TopK.
    pub source: MirRelationExpr,
    /// The subscribed relation's columns.
    pub desc: RelationDesc,
    /// `ENVELOPE UPSERT`: the positions of the key columns.
    pub upsert_key: Option<Vec<usize>>,
    pub snapshot: bool,
    pub progress: bool,
    pub as_of: Option<u64>,
    pub up_to: Option<u64>,
}

impl SubscribePlan {
    /// The columns a subscriber receives, in Materialize's order: `mz_timestamp`,
    /// `mz_progressed` (with PROGRESS), then `mz_diff` and the relation's columns, or
    /// with ENVELOPE UPSERT `mz_state`, the key columns and the other columns. Progress
    /// rows are NULL in every column after `mz_progressed`.
    pub fn output_desc(&self) -> RelationDesc {
        let nullable = self.progress;
        let or_null = |typ: &ColumnType, null: bool| ColumnType {
            scalar_type: typ.scalar_type,
            nullable: typ.nullable || null,
        };
        let mut desc =
            RelationDesc::empty().with_column("mz_timestamp", ScalarType::Numeric.nullable(false));
        if self.progress {
            desc = desc.with_column("mz_progressed", ScalarType::Bool.nullable(false));
        }
        match &self.upsert_key {
            None => {
                desc = desc.with_column("mz_diff", ScalarType::Int64.nullable(nullable));
                for (name, typ) in self.desc.iter() {
                    desc = desc.with_column(name.clone(), or_null(typ, nullable));
                }
            }
            Some(key) => {
                desc = desc.with_column("mz_state", ScalarType::String.nullable(nullable));
                for &k in key {
                    let (name, typ) = self.desc.iter().nth(k).expect("key column exists");
                    desc = desc.with_column(name.clone(), or_null(typ, nullable));
                }
                for (i, (name, typ)) in self.desc.iter().enumerate() {
                    if !key.contains(&i) {
                        // A deleted key has no value: every value column is nullable.
                        desc = desc.with_column(name.clone(), or_null(typ, true));
                    }
                }
            }
        }
        desc
    }
}

/// A query's result as an expression a dataflow can maintain: ORDER BY with LIMIT or
/// OFFSET becomes a TopK (without them ORDER BY means nothing to a stream), and the
/// finishing's projection is applied.
pub fn finishing_into_expr(
    source: MirRelationExpr,
    finishing: &RowSetFinishing,
) -> MirRelationExpr {
    let arity = source.arity();
    let source = if finishing.limit.is_some() || finishing.offset > 0 {
        MirRelationExpr::TopK {
            input: Box::new(source),
            group_key: vec![],
            order_key: finishing.order_by.clone(),
            limit: finishing.limit,
            offset: finishing.offset,
        }
    } else {
        source
    };
    if finishing.project.iter().copied().eq(0..arity) {
        source
    } else {
        source.project(finishing.project.clone())
    }
}

pub fn plan_subscribe(
    qcx: &QueryContext,
    subscribe: &SubscribeStatement,
) -> Result<SubscribePlan, PlanError> {
    let query = match &subscribe.from {
        SubscribeFrom::Query(q) => q.clone(),
        SubscribeFrom::Name(name) => {
            let select = format!("SELECT * FROM {name}");
            match crate::parse::parse(&select)?.remove(0).statement {
                Statement::Sql(s) => match *s {
                    ast::Statement::Query(q) => q,
                    _ => return Err(syntax("expected a relation name")),
                },
                _ => return Err(syntax("expected a relation name")),
            }
        }
    };
    // A subscription's dataflow computes the views it reads from their inputs.
    qcx.read_view_indexes.set(false);
    let planned = query::plan_root_query(qcx, &query)?;
    query::refuse_volatile(qcx, "SUBSCRIBE")?;
    let source = finishing_into_expr(crate::optimize(planned.expr.lower()?), &planned.finishing);
    let desc = planned.desc;
    let upsert_key = match &subscribe.upsert_key {
        None => None,
        Some(names) => {
            let mut key = Vec::new();
            for name in names {
                let position = desc
                    .names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| PlanError::UnknownColumn(name.clone()))?;
                if key.contains(&position) {
                    return Err(PlanError::DuplicateColumn(format!(
                        "column \"{name}\" specified more than once in KEY"
                    )));
                }
                key.push(position);
            }
            Some(key)
        }
    };
    if let (Some(as_of), Some(up_to)) = (subscribe.as_of, subscribe.up_to) {
        if as_of > up_to {
            return Err(PlanError::InvalidParameterValue(format!(
                "AS OF ({as_of}) must be less than or equal to UP TO ({up_to})"
            )));
        }
    }
    Ok(SubscribePlan {
        source,
        desc,
        upsert_key,
        snapshot: subscribe.snapshot,
        progress: subscribe.progress,
        as_of: subscribe.as_of,
        up_to: subscribe.up_to,
    })
}

/// `COPY t [(cols)] FROM STDIN [WITH (...)]`, planned: how to turn each line's text
/// fields into a row of the table.
#[derive(Clone, Debug)]
pub struct CopyFromPlan {
    pub id: repr::GlobalId,
    pub name: String,
    pub desc: RelationDesc,
    /// Fields per line.
    pub fields: usize,
    /// From a row of `fields` text datums (NULL for the null string) to a table row:
    /// each value parsed as its column's type (as a cast from text) and fitted to the
    /// column's type modifier; columns not listed get their DEFAULT.
    pub mfp: expr::MapFilterProject,
    pub format: CopyFormat,
}

/// The text or CSV format of COPY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyFormat {
    pub csv: bool,
    pub delimiter: char,
    pub null: String,
    pub header: bool,
    pub quote: char,
    pub escape: char,
}

pub fn plan_copy_from(
    qcx: &QueryContext,
    table_name: &ast::ObjectName,
    columns: &[ast::Ident],
    options: &[ast::CopyOption],
) -> Result<CopyFromPlan, PlanError> {
    let table = crate::statement::resolve_table(qcx, table_name)?;
    let desc = table.desc.clone();
    let mut csv = false;
    let (mut delimiter, mut null, mut header, mut quote, mut escape) =
        (None, None, false, '"', None);
    for option in options {
        match option {
            ast::CopyOption::Format(f) => match f.value.to_lowercase().as_str() {
                "text" => csv = false,
                "csv" => csv = true,
                "binary" => return Err(PlanError::unsupported("COPY ... (FORMAT binary)")),
                other => {
                    return Err(PlanError::InvalidParameterValue(format!(
                        "COPY format \"{other}\" not recognized"
                    )))
                }
            },
            ast::CopyOption::Delimiter(c) => delimiter = Some(*c),
            ast::CopyOption::Null(n) => null = Some(n.clone()),
            ast::CopyOption::Header(h) => header = *h,
            ast::CopyOption::Quote(q) => quote = *q,
            ast::CopyOption::Escape(e) => escape = Some(*e),
            ast::CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            ast::CopyOption::Freeze(_) => {}
            other => return Err(PlanError::unsupported(format!("COPY option {other}"))),
        }
    }
    let format = CopyFormat {
        csv,
        delimiter: delimiter.unwrap_or(if csv { ',' } else { '\t' }),
        null: null.unwrap_or_else(|| {
            if csv {
                String::new()
            } else {
                "\\N".to_string()
            }
        }),
        header,
        quote,
        escape: escape.unwrap_or(quote),
    };
    let targets = crate::statement::target_columns(table, columns)?;
    let mut scalars = Vec::new();
    for (c, (column, typ)) in desc.iter().enumerate() {
        let to = typ.scalar_type;
        let e = match targets.iter().position(|t| *t == c) {
            Some(field) => {
                let text = crate::hir::HirScalarExpr::column(field);
                let value = if to == ScalarType::String {
                    text
                } else {
                    text.call_unary(expr::UnaryFunc::Cast(to))
                };
                query::apply_typmod(value, table.typmod(c), false)
            }
            None => crate::statement::plan_default(
                qcx,
                &table.defaults[c],
                to,
                table.typmod(c),
                column,
            )?,
        };
        scalars.push(e.lower()?);
    }
    let fields = targets.len();
    let mfp = expr::MapFilterProject::new(fields)
        .map(scalars)
        .project(fields..fields + desc.arity());
    Ok(CopyFromPlan {
        id: table.id,
        name: table.name.clone(),
        desc,
        fields,
        mfp,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        crate::parse::parse(sql).unwrap().remove(0).statement
    }

    #[test]
    fn subscribe_forms() {
        let Statement::Subscribe(s) = one("SUBSCRIBE TO t") else {
            panic!()
        };
        assert!(matches!(s.from, SubscribeFrom::Name(_)));
        assert!(s.snapshot && !s.progress && s.as_of.is_none());
        let Statement::Subscribe(s) = one(
            "SUBSCRIBE (SELECT a, count(*) FROM t GROUP BY a) ENVELOPE UPSERT (KEY (a)) \
             WITH (SNAPSHOT = false, PROGRESS) AS OF 5 UP TO 10",
        ) else {
            panic!()
        };
        assert!(matches!(s.from, SubscribeFrom::Query(_)));
        assert_eq!(s.upsert_key, Some(vec!["a".to_string()]));
        assert!(!s.snapshot && s.progress);
        assert_eq!((s.as_of, s.up_to), (Some(5), Some(10)));
        assert!(crate::parse::parse("SUBSCRIBE t WITH (FOO)").is_err());
        assert!(crate::parse::parse("SUBSCRIBE t garbage").is_err());
        assert!(crate::parse::parse("SUBSCRIBE (SELECT").is_err());
    }

    #[test]
    fn copy_from_stdin_parses() {
        let s = one("COPY c FROM STDIN");
        let Statement::Sql(s) = s else { panic!() };
        match *s {
            ast::Statement::Copy {
                to,
                target,
                values,
                legacy_options,
                ..
            } => {
                assert!(!to);
                assert!(matches!(target, ast::CopyTarget::Stdin));
                assert!(legacy_options.is_empty(), "{legacy_options:?}");
                assert!(
                    values.iter().all(|v| v.as_deref().unwrap_or("").is_empty()),
                    "{values:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cursors_copy_and_as_of() {
        assert!(matches!(
            one("COPY (SUBSCRIBE t) TO STDOUT"),
            Statement::CopyTo { inner } if matches!(*inner, Statement::Subscribe(_))
        ));
        assert!(matches!(
            one("DECLARE c CURSOR FOR SUBSCRIBE t WITH (PROGRESS)"),
            Statement::Declare { name, .. } if name == "c"
        ));
        assert_eq!(
            one("FETCH 10 c WITH (timeout = '1s')"),
            Statement::Fetch {
                name: "c".into(),
                count: Some(10),
                timeout: Some(Duration::from_secs(1)),
            }
        );
        assert_eq!(
            one("FETCH ALL FROM c"),
            Statement::Fetch {
                name: "c".into(),
                count: None,
                timeout: None,
            }
        );
        let negative = crate::parse::parse("FETCH c WITH (timeout = '-1s')").unwrap_err();
        assert_eq!(negative.sqlstate(), "22023");
        assert!(matches!(
            one("SELECT * FROM t AS OF 42"),
            Statement::SelectAsOf { as_of: 42, .. }
        ));
        // An alias named "of" inside parentheses is not AS OF.
        assert!(matches!(one("SELECT 1"), Statement::Sql(_)));
        assert!(matches!(
            one("EXPLAIN TIMESTAMP FOR SELECT 1"),
            Statement::ExplainTimestamp { .. }
        ));
    }
}
