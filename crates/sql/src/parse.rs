//! Parsing: SQL text into [`ParsedStatement`]s.
//!
//! The text is tokenized once with sqlparser's tokenizer and split at top-level
//! semicolons. Freshet's own statements (`SET`/`SHOW`/`RESET` in every PostgreSQL form,
//! `EXPLAIN ... PLAN FOR`) are recognised from their first words; everything else is
//! parsed by sqlparser's PostgreSQL dialect. Syntax errors carry the 1-based character
//! position in the whole query text, as PostgreSQL reports it.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, TokenizerError, Whitespace};

use crate::error::PlanError;

/// Which stage of planning `EXPLAIN` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExplainStage {
    /// HIR, as planned from SQL.
    Raw,
    /// MIR, as lowered from HIR, before optimization.
    Decorrelated,
    /// MIR after the optimizer.
    Optimized,
    /// LIR, what the dataflow renders.
    Physical,
}

/// The value of a `SET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetValue {
    Default,
    Values(Vec<String>),
}

/// A statement: sqlparser's AST, or one of Freshet's own.
#[derive(Clone, Debug, PartialEq)]
pub enum Statement {
    Sql(Box<ast::Statement>),
    SetVariable {
        name: String,
        value: SetValue,
    },
    /// `RESET name`, or `RESET ALL` (`name` is `None`).
    ResetVariable {
        name: Option<String>,
    },
    /// `SHOW name`; `SHOW ALL` has name "all".
    ShowVariable {
        name: String,
    },
    Explain {
        stage: ExplainStage,
        statement: Box<ast::Statement>,
    },
    /// `CREATE DEFAULT INDEX [IN CLUSTER c] ON obj`: an index keyed on every column.
    CreateDefaultIndex {
        on: ast::ObjectName,
    },
    /// `SHOW TABLES | VIEWS | MATERIALIZED VIEWS | INDEXES [ON obj] | OBJECTS`,
    /// `SHOW COLUMNS FROM obj`, `SHOW CREATE TABLE|VIEW|MATERIALIZED VIEW|INDEX obj`.
    ShowObjects {
        what: ShowWhat,
        on: Option<String>,
    },
    /// `SHOW SCHEMAS [FROM database]`.
    ShowSchemas {
        from: Option<ast::Ident>,
    },
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `SUBSCRIBE ...` (see [`crate::streaming`] for this and the forms below).
    Subscribe(Box<crate::streaming::SubscribeStatement>),
    /// `COPY (SUBSCRIBE ... | SELECT ...) TO STDOUT`.
    CopyTo {
        inner: Box<Statement>,
    },
    /// `DECLARE name CURSOR FOR (SUBSCRIBE ... | SELECT ...)`.
    Declare {
        name: String,
        inner: Box<Statement>,
    },
    /// `FETCH [n | ALL] name [WITH (TIMEOUT = ...)]`; `count` is `None` for ALL.
    Fetch {
        name: String,
        count: Option<u64>,
        timeout: Option<std::time::Duration>,
    },
    /// `CLOSE name`, or `CLOSE ALL` (`None`).
    Close {
        name: Option<String>,
    },
    /// `SELECT ... AS OF <ts>`.
    SelectAsOf {
        query: Box<ast::Query>,
        as_of: u64,
    },
    /// `CREATE TABLE | MATERIALIZED VIEW | INDEX ... WITH (RETAIN HISTORY FOR '...')`:
    /// the statement without the clause, and the clause's interval text.
    WithRetainHistory {
        inner: Box<Statement>,
        interval: String,
    },
    /// `ALTER TABLE | MATERIALIZED VIEW | INDEX name SET (RETAIN HISTORY FOR '...')`,
    /// or `RESET (RETAIN HISTORY)` (`interval` is `None`).
    AlterRetainHistory {
        kind: crate::catalog::ItemKind,
        name: ast::ObjectName,
        interval: Option<String>,
    },
    /// `ALTER SYSTEM SET name = value` or `ALTER SYSTEM RESET name` (`value` is `None`).
    AlterSystem {
        name: String,
        value: Option<String>,
    },
    /// `EXPLAIN TIMESTAMP FOR SELECT ...`.
    ExplainTimestamp {
        statement: Box<ast::Statement>,
    },
    /// The rows a `COPY ... FROM STDIN` received (never parsed from text: the
    /// protocol layer builds it), appended to the table like an INSERT.
    CopyRows {
        id: repr::GlobalId,
        name: String,
        desc: repr::RelationDesc,
        rows: Vec<repr::Row>,
    },
}

/// What a `SHOW` of catalog objects lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShowWhat {
    Tables,
    Views,
    MaterializedViews,
    Indexes,
    Objects,
    Columns,
    Create,
}

/// One statement with its text.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedStatement {
    pub statement: Statement,
    pub sql: String,
}

/// Parses every statement in `sql`.
pub fn parse(sql: &str) -> Result<Vec<ParsedStatement>, PlanError> {
    let dialect = PostgreSqlDialect {};
    let line_starts = line_starts(sql);
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| tokenizer_error(sql, &line_starts, &e))?;
    let mut out = Vec::new();
    for group in tokens.split(|t| t.token == Token::SemiColon) {
        let meaningful: Vec<&TokenWithSpan> = group
            .iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
            .collect();
        let (Some(first), Some(last)) = (meaningful.first(), meaningful.last()) else {
            continue;
        };
        let start = byte_offset(
            &line_starts,
            first.span.start.line,
            first.span.start.column,
            sql,
        );
        let end = byte_offset(&line_starts, last.span.end.line, last.span.end.column, sql);
        let text = &sql[start..end.max(start)];
        // A Materialize clause sqlparser does not know: the statement parsed without
        // its tokens `clause` (which begin with `word`).
        let parse_without = |clause: std::ops::Range<usize>, word: &str| {
            let span_of = |i: usize| meaningful[i].span;
            let (first, last) = (span_of(clause.start), span_of(clause.end - 1));
            let cut_start = byte_offset(&line_starts, first.start.line, first.start.column, sql);
            let cut_end = byte_offset(&line_starts, last.end.line, last.end.column, sql);
            let rewritten = format!("{} {}", &sql[start..cut_start], &sql[cut_end..end]);
            let mut inner = parse(&rewritten)?;
            if inner.len() != 1 {
                return Err(PlanError::Parse {
                    message: format!("syntax error at or near \"{word}\""),
                    position: None,
                });
            }
            Ok(inner.remove(0).statement)
        };
        if let Some(clause) = crate::options::find_in_cluster(&meaningful)? {
            // There is one cluster: the clause changes nothing.
            out.push(ParsedStatement {
                statement: parse_without(clause, "IN")?,
                sql: text.to_string(),
            });
            continue;
        }
        if let Some(clause) = crate::options::find_retain_history(&meaningful)? {
            // The statement, with the clause attached to it.
            out.push(ParsedStatement {
                statement: Statement::WithRetainHistory {
                    inner: Box::new(parse_without(clause.tokens, "WITH")?),
                    interval: clause.interval,
                },
                sql: text.to_string(),
            });
            continue;
        }
        if let Some((kind, name, interval)) =
            crate::options::parse_alter_retain_history(&meaningful)?
        {
            out.push(ParsedStatement {
                statement: Statement::AlterRetainHistory {
                    kind,
                    name,
                    interval,
                },
                sql: text.to_string(),
            });
            continue;
        }
        refuse_null_treatment(&meaningful, sql, &line_starts)?;
        // `WITH MUTUALLY RECURSIVE`: parsed as `WITH RECURSIVE` with a marker.
        let rewritten = rewrite_mutually_recursive(&meaningful, sql, &line_starts, start)?;
        let text_as_parsed = rewritten.as_deref().unwrap_or(text);
        let words: Vec<&Token> = meaningful.iter().map(|t| &t.token).collect();
        let statement = match crate::streaming::parse(text_as_parsed)? {
            Some(s) => s,
            None => match parse_custom(&words, text)? {
                Some(s) => s,
                None => parse_sqlparser(text_as_parsed, sql, start, &line_starts)?,
            },
        };
        out.push(ParsedStatement {
            statement,
            sql: text.to_string(),
        });
    }
    Ok(out)
}

/// `IGNORE NULLS` / `RESPECT NULLS` after a function call, which sqlparser accepts
/// and PostgreSQL 15 does not: it reads the word as the call's alias and fails at
/// `NULLS` (42601). `NULLS FIRST`/`LAST` after a column named `ignore` is fine.
fn refuse_null_treatment(
    tokens: &[&TokenWithSpan],
    sql: &str,
    line_starts: &[usize],
) -> Result<(), PlanError> {
    let unquoted = |i: usize| match tokens.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_lowercase(),
        _ => String::new(),
    };
    for (i, nulls) in tokens.iter().enumerate().skip(1) {
        let before = unquoted(i - 1);
        if (before == "ignore" || before == "respect")
            && unquoted(i) == "nulls"
            && !matches!(unquoted(i + 1).as_str(), "first" | "last")
        {
            let at = nulls.span.start;
            return Err(PlanError::Parse {
                message: format!("syntax error at or near \"{}\"", token_text(&nulls.token)),
                position: char_position(sql, line_starts, at.line, at.column),
            });
        }
    }
    Ok(())
}

/// The prefix of the marker [`rewrite_mutually_recursive`] leaves on the first binding
/// of a `WITH MUTUALLY RECURSIVE`: `__freshet_wmr`, then `_return_<n>` or `_error_<n>`
/// for a recursion limit.
pub const MUTUALLY_RECURSIVE_MARKER: &str = "__freshet_wmr";

/// Materialize's `WITH MUTUALLY RECURSIVE [(RETURN | ERROR) AT RECURSION LIMIT n]
/// name (col type, ...) AS (query), ...`, which sqlparser does not know, rewritten
/// into what it does: `WITH RECURSIVE name (col type, ...) AS (query) FROM <marker>,
/// ...`, the marker (see [`MUTUALLY_RECURSIVE_MARKER`]) after the first binding
/// telling the planner which form it was and its limit. `None` if the statement has
/// no such clause. Positions in syntax errors after a rewritten clause may be off
/// by the few characters the rewrite moved.
fn rewrite_mutually_recursive(
    tokens: &[&TokenWithSpan],
    sql: &str,
    line_starts: &[usize],
    start: usize,
) -> Result<Option<String>, PlanError> {
    let w = |i: usize| {
        tokens
            .get(i)
            .and_then(|t| word(&t.token))
            .unwrap_or_default()
    };
    let is = |i: usize, t: Token| tokens.get(i).map(|x| x.token == t).unwrap_or(false);
    let offset = |i: usize, end: bool| {
        let span = tokens[i].span;
        let at = if end { span.end } else { span.start };
        byte_offset(line_starts, at.line, at.column, sql) - start
    };
    let syntax_at = |i: usize| PlanError::Parse {
        message: match tokens.get(i) {
            Some(t) => format!("syntax error at or near \"{}\"", token_text(&t.token)),
            None => "syntax error at end of input".into(),
        },
        position: tokens
            .get(i)
            .and_then(|t| char_position(sql, line_starts, t.span.start.line, t.span.start.column)),
    };
    // Byte ranges of the statement text to replace, in order.
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut i = 0;
    while i + 2 < tokens.len() {
        if !(w(i) == "with" && w(i + 1) == "mutually" && w(i + 2) == "recursive") {
            i += 1;
            continue;
        }
        edits.push((offset(i + 1, false)..offset(i + 2, false), String::new()));
        let mut j = i + 3;
        let mut marker = MUTUALLY_RECURSIVE_MARKER.to_string();
        if is(j, Token::LParen) && (w(j + 1) == "return" || w(j + 1) == "error") {
            for (k, expected) in ["at", "recursion", "limit"].iter().enumerate() {
                if w(j + 2 + k) != *expected {
                    return Err(syntax_at(j + 2 + k));
                }
            }
            let limit = match tokens.get(j + 5).map(|t| &t.token) {
                Some(Token::Number(n, _)) => n.parse::<u64>().map_err(|_| syntax_at(j + 5))?,
                _ => return Err(syntax_at(j + 5)),
            };
            if limit == 0 {
                return Err(PlanError::InvalidParameterValue(
                    "invalid RECURSION LIMIT: 0 (it must be at least 1)".into(),
                ));
            }
            if !is(j + 6, Token::RParen) {
                return Err(syntax_at(j + 6));
            }
            if j + 7 >= tokens.len() {
                return Err(syntax_at(j + 7));
            }
            marker = format!("{marker}_{}_{limit}", w(j + 1));
            edits.push((offset(j, false)..offset(j + 7, false), String::new()));
            j += 7;
        }
        // The first binding: `name (columns) AS [[NOT] MATERIALIZED] ( query )`.
        if !matches!(tokens.get(j).map(|t| &t.token), Some(Token::Word(_))) {
            return Err(syntax_at(j));
        }
        j += 1;
        let mut depth = 0usize;
        let mut seen_query = false;
        while j < tokens.len() {
            match tokens[j].token {
                Token::LParen => depth += 1,
                Token::RParen if depth > 0 => {
                    depth -= 1;
                    if depth == 0 && seen_query {
                        break;
                    }
                }
                Token::RParen => return Err(syntax_at(j)),
                Token::Word(ref x) if depth == 0 && x.value.eq_ignore_ascii_case("as") => {
                    seen_query = true;
                }
                _ => {}
            }
            j += 1;
        }
        if j >= tokens.len() {
            return Err(syntax_at(j));
        }
        let end = offset(j, true);
        edits.push((end..end, format!(" FROM {marker}")));
        i = j + 1;
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let text_end = offset(tokens.len() - 1, true);
    let text = &sql[start..start + text_end];
    let mut out = String::with_capacity(text.len() + 32);
    let mut at = 0;
    for (range, replacement) in edits {
        out.push_str(&text[at..range.start]);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    Ok(Some(out))
}

/// Parses one query (the SQL a windowing function in FROM stands for).
pub fn parse_query(sql: &str) -> Result<ast::Query, PlanError> {
    let line_starts = line_starts(sql);
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| parse_error(e, sql, 0, &line_starts))?;
    let query = parser
        .parse_query()
        .map_err(|e| parse_error(e, sql, 0, &line_starts))?;
    if parser.peek_token().token != Token::EOF {
        return Err(PlanError::Parse {
            message: format!("syntax error at or near \"{}\"", parser.peek_token().token),
            position: None,
        });
    }
    Ok(*query)
}

/// Parses one scalar expression (a column's stored DEFAULT).
pub fn parse_expr(sql: &str) -> Result<ast::Expr, PlanError> {
    let line_starts = line_starts(sql);
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| parse_error(e, sql, 0, &line_starts))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| parse_error(e, sql, 0, &line_starts))?;
    if parser.peek_token().token != Token::EOF {
        return Err(PlanError::Parse {
            message: format!("syntax error at or near \"{}\"", parser.peek_token().token),
            position: None,
        });
    }
    Ok(expr)
}

fn parse_sqlparser(
    text: &str,
    whole: &str,
    start: usize,
    line_starts: &[usize],
) -> Result<Statement, PlanError> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| parse_error(e, whole, start, line_starts))?;
    let statement = parser
        .parse_statement()
        .map_err(|e| parse_error(e, whole, start, line_starts))?;
    // Anything after the statement is a syntax error.
    if parser.peek_token().token != Token::EOF {
        let tok = parser.peek_token();
        let position = char_position_in(
            whole,
            start,
            text,
            tok.span.start.line,
            tok.span.start.column,
        );
        return Err(PlanError::Parse {
            message: format!("syntax error at or near \"{}\"", tok.token),
            position,
        });
    }
    if let Some(id) = reserved_name(&statement) {
        let position =
            char_position_in(whole, start, text, id.span.start.line, id.span.start.column);
        return Err(PlanError::Parse {
            message: format!("syntax error at or near \"{}\"", id.value),
            position,
        });
    }
    Ok(Statement::Sql(Box::new(statement)))
}

/// PostgreSQL's reserved key words, and those only usable as function or type names:
/// neither may name a table or column unless double-quoted. sqlparser takes any word
/// as a name, so `SELECT * FROM FROM t` would parse.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "table",
    "tablesample",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// The first unquoted reserved word used as a table or column name in `stmt`.
fn reserved_name(stmt: &ast::Statement) -> Option<&ast::Ident> {
    fn ident(id: &ast::Ident) -> Option<&ast::Ident> {
        (id.quote_style.is_none() && RESERVED.contains(&id.value.to_lowercase().as_str()))
            .then_some(id)
    }
    fn object(name: &ast::ObjectName) -> Option<&ast::Ident> {
        name.0.iter().filter_map(|p| p.as_ident()).find_map(ident)
    }
    fn alias(a: &Option<ast::TableAlias>) -> Option<&ast::Ident> {
        a.as_ref().and_then(|a| ident(&a.name))
    }
    fn factor(f: &ast::TableFactor) -> Option<&ast::Ident> {
        match f {
            ast::TableFactor::Table { name, alias: a, .. } => object(name).or_else(|| alias(a)),
            ast::TableFactor::Derived {
                subquery, alias: a, ..
            } => query(subquery).or_else(|| alias(a)),
            ast::TableFactor::NestedJoin {
                table_with_joins, ..
            } => from(std::slice::from_ref(table_with_joins)),
            _ => None,
        }
    }
    fn from(twjs: &[ast::TableWithJoins]) -> Option<&ast::Ident> {
        twjs.iter().find_map(|twj| {
            factor(&twj.relation).or_else(|| twj.joins.iter().find_map(|j| factor(&j.relation)))
        })
    }
    fn set_expr(body: &ast::SetExpr) -> Option<&ast::Ident> {
        match body {
            ast::SetExpr::Select(s) => from(&s.from),
            ast::SetExpr::Query(q) => query(q),
            ast::SetExpr::SetOperation { left, right, .. } => {
                set_expr(left).or_else(|| set_expr(right))
            }
            _ => None,
        }
    }
    fn query(q: &ast::Query) -> Option<&ast::Ident> {
        set_expr(&q.body)
    }
    match stmt {
        ast::Statement::Query(q) => query(q),
        ast::Statement::CreateTable(ct) => {
            object(&ct.name).or_else(|| ct.columns.iter().find_map(|c| ident(&c.name)))
        }
        ast::Statement::Drop { names, .. } => names.iter().find_map(object),
        ast::Statement::Insert(insert) => match &insert.table {
            ast::TableObject::TableName(name) => object(name),
            _ => None,
        }
        .or_else(|| insert.columns.iter().find_map(ident))
        .or_else(|| insert.source.as_deref().and_then(query)),
        ast::Statement::Update(update) => from(std::slice::from_ref(&update.table)),
        ast::Statement::Delete(delete) => match &delete.from {
            ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => from(f),
        },
        _ => None,
    }
}

fn parse_error(e: ParserError, whole: &str, start: usize, _line_starts: &[usize]) -> PlanError {
    let message = match &e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => {
            return PlanError::Parse {
                message: "statement is too deeply nested".into(),
                position: None,
            }
        }
    };
    // sqlparser appends " at Line: L, Column: C" to its messages.
    let (text, position) = match message.rsplit_once(" at Line: ") {
        Some((msg, loc)) => {
            let mut parts = loc.split(", Column: ");
            let line: u64 = parts
                .next()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(1);
            let col: u64 = parts
                .next()
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(1);
            let stmt_text = &whole[start..];
            (
                msg.to_string(),
                char_position_in(whole, start, stmt_text, line, col),
            )
        }
        None => (message.clone(), None),
    };
    let near = text.split("found: ").nth(1).map(|f| f.trim().to_string());
    let message = match near {
        Some(tok) if tok != "EOF" => format!("syntax error at or near \"{tok}\""),
        Some(_) => "syntax error at end of input".to_string(),
        None => format!("syntax error: {text}"),
    };
    PlanError::Parse { message, position }
}

/// PostgreSQL's message for a token the tokenizer cannot finish: an unterminated
/// string or quoted identifier is reported "at or near" the rest of the input from
/// its opening quote.
fn tokenizer_error(sql: &str, line_starts: &[usize], e: &TokenizerError) -> PlanError {
    let (line, col) = (e.location.line, e.location.column);
    let position = char_position(sql, line_starts, line, col);
    let rest = &sql[byte_offset(line_starts, line, col, sql)..];
    let what = if e.message.starts_with("Unterminated string literal")
        || e.message.starts_with("Unterminated encoded string literal")
    {
        Some("unterminated quoted string")
    } else if e.message.starts_with("Expected close delimiter '\"'") {
        Some("unterminated quoted identifier")
    } else {
        None
    };
    let message = match what {
        Some(what) => format!("{what} at or near \"{rest}\""),
        None if e.message.starts_with("Unterminated dollar-quoted") => {
            "unterminated dollar-quoted string".to_string()
        }
        None if e
            .message
            .starts_with("Unexpected EOF while in a multi-line comment") =>
        {
            "unterminated /* comment".to_string()
        }
        None => format!("syntax error: {}", e.message),
    };
    PlanError::Parse { message, position }
}

fn line_starts(s: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(s.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// The byte offset of a 1-based (line, column-in-chars) location.
fn byte_offset(line_starts: &[usize], line: u64, col: u64, s: &str) -> usize {
    let Some(&line_start) = line_starts.get(line.saturating_sub(1) as usize) else {
        return s.len();
    };
    let rest = &s[line_start..];
    rest.char_indices()
        .nth(col.saturating_sub(1) as usize)
        .map(|(i, _)| line_start + i)
        .unwrap_or(s.len())
}

fn char_position(s: &str, line_starts: &[usize], line: u64, col: u64) -> Option<usize> {
    let byte = byte_offset(line_starts, line, col, s);
    Some(s[..byte].chars().count() + 1)
}

/// The 1-based character position in `whole` of a location inside the statement that
/// starts at byte `start`.
fn char_position_in(whole: &str, start: usize, stmt: &str, line: u64, col: u64) -> Option<usize> {
    let local = byte_offset(&line_starts(stmt), line, col, stmt);
    Some(
        whole[..start + local.min(whole.len() - start)]
            .chars()
            .count()
            + 1,
    )
}

fn word(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) => Some(w.value.to_lowercase()),
        _ => None,
    }
}

fn token_text(t: &Token) -> String {
    match t {
        Token::Word(w) => w.value.clone(),
        Token::SingleQuotedString(s) => s.clone(),
        Token::Number(n, _) => n.clone(),
        other => other.to_string(),
    }
}

/// Freshet's own statements, recognised by their leading words.
fn parse_custom(tokens: &[&Token], text: &str) -> Result<Option<Statement>, PlanError> {
    let words: Vec<Option<String>> = tokens.iter().map(|t| word(t)).collect();
    let w = |i: usize| words.get(i).cloned().flatten().unwrap_or_default();
    let syntax = |msg: &str| PlanError::Parse {
        message: format!("syntax error: {msg}"),
        position: None,
    };
    if w(0) == "create" && w(1) == "default" && w(2) == "index" {
        // CREATE DEFAULT INDEX [IN CLUSTER c] ON name
        let mut i = 3;
        if w(i) == "in" && w(i + 1) == "cluster" {
            i += 3;
        }
        if w(i) != "on" {
            return Err(syntax("expected ON after CREATE DEFAULT INDEX"));
        }
        let parts: Vec<ast::Ident> = tokens[i + 1..]
            .iter()
            .filter(|t| **t != &Token::Period)
            .map(|t| match t {
                Token::Word(w) => Ok(match w.quote_style {
                    Some(q) => ast::Ident::with_quote(q, w.value.clone()),
                    None => ast::Ident::new(w.value.clone()),
                }),
                other => Err(syntax(&format!(
                    "unexpected {other} in CREATE DEFAULT INDEX"
                ))),
            })
            .collect::<Result<_, _>>()?;
        if parts.is_empty() {
            return Err(syntax("expected a name after ON"));
        }
        let on = ast::ObjectName(
            parts
                .into_iter()
                .map(ast::ObjectNamePart::Identifier)
                .collect(),
        );
        return Ok(Some(Statement::CreateDefaultIndex { on }));
    }
    if w(0) == "alter" && w(1) == "system" {
        // ALTER SYSTEM SET name { = | TO } value | ALTER SYSTEM RESET name
        let name = w(3);
        if name.is_empty() {
            return Err(syntax(
                "expected a variable name after ALTER SYSTEM SET | RESET",
            ));
        }
        return match w(2).as_str() {
            "reset" if tokens.len() == 4 => Ok(Some(Statement::AlterSystem { name, value: None })),
            "set" if matches!(tokens.get(4), Some(Token::Eq)) || w(4) == "to" => {
                let value: Vec<String> = tokens[5..].iter().map(|t| token_text(t)).collect();
                if value.is_empty() {
                    return Err(syntax("expected a value in ALTER SYSTEM SET"));
                }
                Ok(Some(Statement::AlterSystem {
                    name,
                    value: Some(value.join("")),
                }))
            }
            _ => Err(syntax(
                "expected ALTER SYSTEM SET name = value or ALTER SYSTEM RESET name",
            )),
        };
    }
    match w(0).as_str() {
        "set" => {
            let mut i = 1;
            if matches!(w(i).as_str(), "session" | "local") {
                i += 1;
                if w(i) == "characteristics" {
                    // SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL ...
                    i += 2;
                }
            }
            if w(i) == "transaction" && w(i + 1) == "isolation" && w(i + 2) == "level" {
                let level: Vec<String> = tokens[i + 3..]
                    .iter()
                    .map(|t| token_text(t).to_lowercase())
                    .collect();
                return Ok(Some(Statement::SetVariable {
                    name: "transaction_isolation".into(),
                    value: SetValue::Values(vec![level.join(" ")]),
                }));
            }
            if w(i) == "time" && w(i + 1) == "zone" {
                let value = tokens[i + 2..]
                    .iter()
                    .map(|t| token_text(t))
                    .collect::<Vec<_>>()
                    .join("");
                return Ok(Some(Statement::SetVariable {
                    name: "timezone".into(),
                    value: SetValue::Values(vec![value]),
                }));
            }
            if w(i) == "names" {
                let value = tokens[i + 1..]
                    .iter()
                    .map(|t| token_text(t))
                    .collect::<Vec<_>>()
                    .join("");
                return Ok(Some(Statement::SetVariable {
                    name: "client_encoding".into(),
                    value: SetValue::Values(vec![value]),
                }));
            }
            let name = match tokens.get(i) {
                Some(Token::Word(w)) => w.value.to_lowercase(),
                _ => return Err(syntax("expected a variable name after SET")),
            };
            i += 1;
            // Dotted names (`foo.bar`) are custom variables.
            let mut name = name;
            while tokens.get(i) == Some(&&Token::Period) {
                name.push('.');
                name.push_str(&tokens.get(i + 1).map(|t| token_text(t)).unwrap_or_default());
                i += 2;
            }
            match tokens.get(i) {
                Some(Token::Eq) => i += 1,
                Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("to") => i += 1,
                _ => return Err(syntax("expected TO or = after the variable name")),
            }
            if tokens.len() == i + 1 && w(i) == "default" {
                return Ok(Some(Statement::SetVariable {
                    name,
                    value: SetValue::Default,
                }));
            }
            let mut values = Vec::new();
            let mut current = String::new();
            for t in &tokens[i..] {
                match t {
                    Token::Comma => values.push(std::mem::take(&mut current)),
                    // A list of schema names, shown as PostgreSQL shows it: unquoted
                    // names fold to lowercase, quoted ones keep their quotes.
                    Token::Word(w) if name == "search_path" => match w.quote_style {
                        Some('"') => {
                            current.push_str(&format!("\"{}\"", w.value.replace('"', "\"\"")))
                        }
                        Some(_) => current.push_str(&w.value),
                        None => current.push_str(&w.value.to_lowercase()),
                    },
                    _ => current.push_str(&token_text(t)),
                }
            }
            if current.is_empty() && values.is_empty() {
                return Err(syntax("expected a value"));
            }
            values.push(current);
            Ok(Some(Statement::SetVariable {
                name,
                value: SetValue::Values(values),
            }))
        }
        "reset" => {
            let name = if w(1) == "all" {
                None
            } else {
                Some(
                    tokens[1..]
                        .iter()
                        .map(|t| token_text(t))
                        .collect::<String>()
                        .to_lowercase(),
                )
            };
            if name.as_deref() == Some("") {
                return Err(syntax("expected a variable name after RESET"));
            }
            Ok(Some(Statement::ResetVariable { name }))
        }
        "show" if w(1) == "databases" && tokens.len() == 2 => Ok(Some(Statement::ShowDatabases)),
        "show" if w(1) == "schemas" => {
            let from = match (tokens.len(), tokens.get(3)) {
                (2, _) => None,
                (4, Some(Token::Word(name))) if w(2) == "from" => Some(match name.quote_style {
                    Some(q) => ast::Ident::with_quote(q, name.value.clone()),
                    None => ast::Ident::new(name.value.clone()),
                }),
                _ => return Err(syntax("expected SHOW SCHEMAS [FROM database]")),
            };
            Ok(Some(Statement::ShowSchemas { from }))
        }
        "show"
            if matches!(w(1).as_str(), "tables" | "views" | "indexes" | "objects")
                || (w(1) == "materialized" && w(2) == "views")
                || (w(1) == "columns" && matches!(w(2).as_str(), "from" | "in"))
                || (w(1) == "create"
                    && matches!(w(2).as_str(), "table" | "view" | "materialized" | "index")) =>
        {
            let (what, skip) = match (w(1).as_str(), w(2).as_str(), w(3).as_str()) {
                ("materialized", "views", _) => (ShowWhat::MaterializedViews, 3),
                ("tables", ..) => (ShowWhat::Tables, 2),
                ("views", ..) => (ShowWhat::Views, 2),
                ("indexes", ..) => (ShowWhat::Indexes, 2),
                ("objects", ..) => (ShowWhat::Objects, 2),
                ("columns", ..) => (ShowWhat::Columns, 3),
                ("create", "materialized", "view") => (ShowWhat::Create, 4),
                ("create", ..) => (ShowWhat::Create, 3),
                _ => unreachable!("matched above"),
            };
            // An optional object name (for SHOW COLUMNS / CREATE / INDEXES ON|FROM name),
            // as SQL text: `s."T"` (resolved by the planner).
            let mut rest: Vec<String> = tokens[skip..]
                .iter()
                .map(|t| match t {
                    Token::Word(w) if w.quote_style.is_some() => {
                        format!("\"{}\"", w.value.replace('"', "\"\""))
                    }
                    other => token_text(other).to_lowercase(),
                })
                .collect();
            if matches!(rest.first().map(String::as_str), Some("on" | "from" | "in")) {
                rest.remove(0);
            }
            let on = Some(rest.concat()).filter(|on| !on.is_empty());
            if matches!(what, ShowWhat::Columns | ShowWhat::Create) && on.is_none() {
                return Err(syntax("expected an object name"));
            }
            Ok(Some(Statement::ShowObjects { what, on }))
        }
        "show" => {
            let rest: Vec<String> = tokens[1..]
                .iter()
                .map(|t| token_text(t).to_lowercase())
                .collect();
            let name = match rest.join(" ").as_str() {
                "transaction isolation level" => "transaction_isolation".to_string(),
                "time zone" => "timezone".to_string(),
                "" => return Err(syntax("expected a variable name after SHOW")),
                _ => rest.join(""),
            };
            Ok(Some(Statement::ShowVariable { name }))
        }
        "explain" => {
            let (stage, skip) = match (w(1).as_str(), w(2).as_str(), w(3).as_str()) {
                ("raw", "plan", "for") => (ExplainStage::Raw, 4),
                ("decorrelated", "plan", "for") => (ExplainStage::Decorrelated, 4),
                ("optimized", "plan", "for") => (ExplainStage::Optimized, 4),
                ("physical", "plan", "for") => (ExplainStage::Physical, 4),
                ("plan", "for", _) => (ExplainStage::Optimized, 3),
                _ => (ExplainStage::Optimized, 1),
            };
            // Re-parse the explained statement from its text.
            let mut rest = text;
            for _ in 0..skip {
                rest = rest.trim_start();
                let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
                rest = &rest[end..];
            }
            let inner = parse(rest)?;
            match inner.into_iter().next().map(|p| p.statement) {
                Some(Statement::Sql(statement)) => {
                    Ok(Some(Statement::Explain { stage, statement }))
                }
                _ => Err(syntax("EXPLAIN expects a query")),
            }
        }
        _ => Ok(None),
    }
}

/// Whitespace tokens are never meaningful; re-exported for tests.
pub fn is_whitespace(t: &Token) -> bool {
    matches!(
        t,
        Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_keeps_text() {
        let parsed = parse("SELECT 1; ; select 'a;b' ;").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].sql, "select 'a;b'");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("SELECT 1;\nSELEC 2").unwrap_err();
        assert_eq!(err.sqlstate(), "42601");
        assert_eq!(err.position(), Some(11));
        assert_eq!(err.to_string(), "syntax error at or near \"SELEC\"");
    }

    #[test]
    fn null_treatment_is_a_syntax_error() {
        let err = parse("SELECT lag(x) IGNORE NULLS OVER () FROM t").unwrap_err();
        assert_eq!(err.sqlstate(), "42601");
        assert_eq!(err.position(), Some(22));
        assert_eq!(err.to_string(), "syntax error at or near \"NULLS\"");
        assert!(parse("SELECT lag(x) respect nulls OVER () FROM t").is_err());
        // A column named `ignore`, sorted with its NULLs first.
        assert!(parse("SELECT ignore FROM t ORDER BY ignore NULLS FIRST").is_ok());
    }

    #[test]
    fn recognises_set_show_reset_and_explain() {
        let p = |s: &str| parse(s).unwrap().remove(0).statement;
        assert_eq!(
            p("SET application_name = 'x'"),
            Statement::SetVariable {
                name: "application_name".into(),
                value: SetValue::Values(vec!["x".into()])
            }
        );
        assert_eq!(
            p("SET search_path TO a, b"),
            Statement::SetVariable {
                name: "search_path".into(),
                value: SetValue::Values(vec!["a".into(), "b".into()])
            }
        );
        assert_eq!(p("RESET ALL"), Statement::ResetVariable { name: None });
        assert_eq!(
            p("SHOW TRANSACTION ISOLATION LEVEL"),
            Statement::ShowVariable {
                name: "transaction_isolation".into()
            }
        );
        assert!(matches!(
            p("EXPLAIN PHYSICAL PLAN FOR SELECT 1"),
            Statement::Explain {
                stage: ExplainStage::Physical,
                ..
            }
        ));
    }
}
