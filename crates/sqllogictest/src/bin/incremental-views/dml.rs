//! Random writes for the incremental check: INSERTs of new and duplicate rows, UPDATEs
//! of one or two columns and DELETEs, generated from a snapshot of each table so that
//! new values stay near the existing ones (joins keep matching, groups keep colliding)
//! and predicates hit existing rows.
//!
//! Everything is drawn from one seeded [`Rng`], so a run is reproducible from its seed.

/// SplitMix64: small, seedable and good enough to pick test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) < p * ((1u64 << 53) as f64)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A row as text values, `None` for NULL.
pub type Row = Vec<Option<String>>;

/// A base table as `SHOW COLUMNS` describes it.
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    /// Rows when the check began; writes keep the table between half and twice that.
    pub initial_rows: usize,
}

pub struct Column {
    pub name: String,
    pub nullable: bool,
    /// The type as `SHOW COLUMNS` prints it (`integer`, `double precision`, ...).
    pub ty: String,
}

/// How values of a column are made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int {
        min: i64,
        max: i64,
    },
    Float,
    Numeric,
    Text,
    Bool,
    Date,
    /// timestamp, timestamptz, time, interval: they all add an interval.
    Temporal,
    Other,
}

fn kind(ty: &str) -> Kind {
    match ty {
        "smallint" => Kind::Int {
            min: i16::MIN.into(),
            max: i16::MAX.into(),
        },
        "integer" => Kind::Int {
            min: i32::MIN.into(),
            max: i32::MAX.into(),
        },
        "bigint" => Kind::Int {
            min: i64::MIN,
            max: i64::MAX,
        },
        "real" | "double precision" => Kind::Float,
        "numeric" => Kind::Numeric,
        "text" | "character varying" | "character" | "varchar" | "char" | "bpchar" => Kind::Text,
        "boolean" => Kind::Bool,
        "date" => Kind::Date,
        t if t.starts_with("timestamp") || t.starts_with("time") || t == "interval" => {
            Kind::Temporal
        }
        _ => Kind::Other,
    }
}

/// `name` as a quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL literal of column type `ty` for the text value `value`.
pub fn literal(ty: &str, value: Option<&str>) -> String {
    let Some(value) = value else {
        return "NULL".to_string();
    };
    let plain_number = value.parse::<f64>().is_ok_and(f64::is_finite)
        && value
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
    match kind(ty) {
        Kind::Int { .. } | Kind::Numeric | Kind::Float if plain_number => {
            format!("({value})::{ty}")
        }
        Kind::Bool if value == "t" => "true".to_string(),
        Kind::Bool if value == "f" => "false".to_string(),
        _ => format!("'{}'::{ty}", value.replace('\'', "''")),
    }
}

/// A value for `column`, near `base` (a value of the same column in some row) when
/// there is one.
fn value(rng: &mut Rng, column: &Column, base: Option<&str>) -> String {
    if column.nullable && rng.chance(0.1) {
        return "NULL".to_string();
    }
    let kind = kind(&column.ty);
    let ty = &column.ty;
    if let Some(base) = base {
        if rng.chance(0.35) && kind != Kind::Bool {
            return literal(ty, Some(base));
        }
    }
    let lit = base.map(|b| literal(ty, Some(b)));
    match (kind, lit) {
        (Kind::Int { min, max }, _) => {
            let base: i64 = base.and_then(|b| b.parse().ok()).unwrap_or(100);
            let delta = match rng.below(10) {
                0..=5 => rng.range(-5, 5),
                6..=8 => rng.range(-100, 100),
                _ => rng.range(-1000, 1000).saturating_sub(base),
            };
            let v = base
                .saturating_add(delta)
                .clamp(min.max(-1_000_000), max.min(1_000_000));
            format!("({v})::{ty}")
        }
        (Kind::Float, Some(lit)) => format!("({lit} + {})", rng.range(-400, 400) as f64 / 4.0),
        (Kind::Float, None) => format!("{}::{ty}", rng.range(-400, 400) as f64 / 4.0),
        (Kind::Numeric, Some(lit)) => {
            format!("({lit} + {:.2})", rng.range(-1000, 1000) as f64 / 100.0)
        }
        (Kind::Numeric, None) => format!("{:.2}::{ty}", rng.range(-1000, 1000) as f64 / 100.0),
        (Kind::Text, _) => format!("'s{}'::{ty}", rng.below(40)),
        (Kind::Bool, _) => if rng.chance(0.5) { "true" } else { "false" }.to_string(),
        (Kind::Date, Some(lit)) => format!("({lit} + {})", rng.range(-30, 30)),
        (Kind::Date, None) => format!("('2020-01-01'::date + {})", rng.range(0, 3000)),
        (Kind::Temporal, Some(lit)) => {
            format!("({lit} + interval '{} minutes')", rng.range(-5000, 5000))
        }
        (Kind::Temporal, None) => match ty.as_str() {
            "interval" => format!("'{} minutes'::interval", rng.range(-5000, 5000)),
            t if t.starts_with("timestamp") => {
                format!(
                    "('2020-01-01 00:00:00'::{ty} + interval '{} minutes')",
                    rng.range(0, 1_000_000)
                )
            }
            _ => format!(
                "('12:00:00'::{ty} + interval '{} minutes')",
                rng.range(-700, 700)
            ),
        },
        (Kind::Other, Some(lit)) => lit,
        (Kind::Other, None) => "NULL".to_string(),
    }
}

/// A new row: a copy of an existing row, or values near those of one.
fn new_row(rng: &mut Rng, table: &Table, rows: &[Row]) -> Vec<String> {
    let base = (!rows.is_empty()).then(|| rng.pick(rows));
    if let Some(base) = base {
        if rng.chance(0.2) {
            return table
                .columns
                .iter()
                .zip(base)
                .map(|(c, v)| literal(&c.ty, v.as_deref()))
                .collect();
        }
    }
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let from = base.and_then(|b| b[i].as_deref());
            if from.is_some() && rng.chance(0.5) {
                literal(&c.ty, from)
            } else {
                // Near the value of a random row, so values spread but stay in range.
                let near = (!rows.is_empty())
                    .then(|| rng.pick(rows)[i].as_deref())
                    .flatten();
                value(rng, c, near)
            }
        })
        .collect()
}

/// A predicate that matches one chosen row and as few others as possible: equality on
/// the column of that row whose value is rarest.
fn predicate(rng: &mut Rng, table: &Table, rows: &[Row]) -> String {
    let row = rng.pick(rows);
    let mut best: Vec<usize> = Vec::new();
    let mut best_hits = usize::MAX;
    for i in 0..table.columns.len() {
        let hits = rows.iter().filter(|r| r[i] == row[i]).count();
        if hits < best_hits {
            best_hits = hits;
            best.clear();
        }
        if hits == best_hits {
            best.push(i);
        }
    }
    let i = *rng.pick(&best);
    let column = &table.columns[i];
    match &row[i] {
        None => format!("{} IS NULL", ident(&column.name)),
        Some(v) => format!("{} = {}", ident(&column.name), literal(&column.ty, Some(v))),
    }
}

/// One to two random write statements for `table`, whose current contents are `rows`.
pub fn writes(rng: &mut Rng, table: &Table, rows: &[Row]) -> Vec<String> {
    let floor = table.initial_rows.max(4) / 2;
    let ceiling = table.initial_rows.max(4) * 2;
    let count = 1 + rng.below(2);
    let mut out = Vec::new();
    for _ in 0..count {
        let roll = rng.below(100);
        let what = if rows.is_empty() || rows.len() <= floor {
            0
        } else if rows.len() >= ceiling {
            99
        } else {
            roll
        };
        let name = ident(&table.name);
        let columns: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
        let statement = match what {
            0..=34 => {
                let n = 1 + rng.below(3);
                let values: Vec<String> = (0..n)
                    .map(|_| format!("({})", new_row(rng, table, rows).join(", ")))
                    .collect();
                format!(
                    "INSERT INTO {name} ({}) VALUES {}",
                    columns.join(", "),
                    values.join(", ")
                )
            }
            35..=69 => {
                let n = 1 + rng.below(2.min(table.columns.len()));
                let mut sets = Vec::new();
                let mut used = Vec::new();
                for _ in 0..n {
                    let i = rng.below(table.columns.len());
                    if used.contains(&i) {
                        continue;
                    }
                    used.push(i);
                    let c = &table.columns[i];
                    let near = rng.pick(rows)[i].clone();
                    sets.push(format!(
                        "{} = {}",
                        ident(&c.name),
                        value(rng, c, near.as_deref())
                    ));
                }
                format!(
                    "UPDATE {name} SET {} WHERE {}",
                    sets.join(", "),
                    predicate(rng, table, rows)
                )
            }
            _ => format!("DELETE FROM {name} WHERE {}", predicate(rng, table, rows)),
        };
        out.push(statement);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal("integer", Some("-5")), "(-5)::integer");
        assert_eq!(literal("integer", None), "NULL");
        assert_eq!(literal("text", Some("it's")), "'it''s'::text");
        assert_eq!(
            literal("double precision", Some("Infinity")),
            "'Infinity'::double precision"
        );
        assert_eq!(literal("boolean", Some("t")), "true");
    }

    #[test]
    fn writes_are_deterministic() {
        let table = Table {
            name: "t1".into(),
            columns: vec![
                Column {
                    name: "a".into(),
                    nullable: true,
                    ty: "integer".into(),
                },
                Column {
                    name: "x".into(),
                    nullable: false,
                    ty: "text".into(),
                },
            ],
            initial_rows: 2,
        };
        let rows = vec![
            vec![Some("1".into()), Some("a".into())],
            vec![None, Some("b".into())],
        ];
        let a: Vec<_> = (0..20)
            .flat_map(|_| writes(&mut Rng::new(7), &table, &rows))
            .collect();
        let b: Vec<_> = (0..20)
            .flat_map(|_| writes(&mut Rng::new(7), &table, &rows))
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|s| s.contains("\"t1\"")));
    }
}
