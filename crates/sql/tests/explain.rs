//! EXPLAIN goldens: each query in `testdata/explain.txt` is planned against a fixed
//! catalog and its optimized (MIR) and physical (LIR) plans are compared with the file.
//!
//! Regenerate after an intended planner change with `REWRITE=1 cargo test -p sql --test explain`
//! and review the diff.

use std::collections::BTreeMap;
use std::path::PathBuf;

use repr::{GlobalId, RelationDesc, ScalarType};
use sql::catalog::{CatalogItem, ItemKind, SqlCatalog};
use sql::parse::{parse, Statement};
use sql::query::Params;
use sql::Plan;

struct TestCatalog {
    items: BTreeMap<String, CatalogItem>,
}

impl SqlCatalog for TestCatalog {
    fn resolve(&self, name: &str) -> Option<&CatalogItem> {
        self.items.get(name)
    }
}

fn catalog() -> TestCatalog {
    type Columns<'a> = &'a [(&'a str, ScalarType, bool)];
    let tables: [(&str, Columns); 4] = [
        (
            "t1",
            &[
                ("a", ScalarType::Int32, true),
                ("b", ScalarType::Int32, true),
                ("c", ScalarType::String, true),
            ],
        ),
        (
            "t2",
            &[
                ("x", ScalarType::Int32, false),
                ("y", ScalarType::Int32, true),
            ],
        ),
        (
            "t3",
            &[
                ("k", ScalarType::Int64, false),
                ("v", ScalarType::Numeric, true),
            ],
        ),
        (
            "t4",
            &[
                ("k", ScalarType::Int64, false),
                ("w", ScalarType::String, true),
            ],
        ),
    ];
    let mut items = BTreeMap::new();
    for (i, (name, columns)) in tables.iter().enumerate() {
        let mut desc = RelationDesc::empty();
        for (column, typ, nullable) in columns.iter() {
            desc = desc.with_column(*column, typ.nullable(*nullable));
        }
        let item = CatalogItem {
            id: GlobalId::User(i as u64 + 1),
            name: name.to_string(),
            kind: ItemKind::Table,
            definition: None,
            on: None,
            defaults: vec![None; desc.arity()],
            typmods: vec![],
            desc,
        };
        items.insert(name.to_string(), item);
    }
    // A view, planned in place wherever a query names it.
    let view_desc = RelationDesc::empty()
        .with_column("k", ScalarType::Int64.nullable(false))
        .with_column("n", ScalarType::Int64.nullable(false));
    let view = CatalogItem {
        id: GlobalId::User(5),
        name: "v3".into(),
        kind: ItemKind::View,
        definition: Some("SELECT k, count(*) AS n FROM t3 GROUP BY k".into()),
        on: None,
        defaults: vec![None; 2],
        typmods: vec![],
        desc: view_desc,
    };
    items.insert("v3".into(), view);
    TestCatalog { items }
}

/// The optimized and physical plans of one query, as EXPLAIN prints them.
fn explain(catalog: &TestCatalog, query: &str) -> String {
    let mut out = String::new();
    for stage in ["OPTIMIZED", "PHYSICAL"] {
        let text = format!("EXPLAIN {stage} PLAN FOR {query}");
        let result = parse(&text).and_then(|mut parsed| {
            let statement = parsed.remove(0);
            assert!(matches!(statement.statement, Statement::Explain { .. }));
            sql::plan(catalog, &statement, Params::default())
        });
        match result {
            Ok((Plan::Explain { text, .. }, _)) => {
                out.push_str(&format!("{}:\n{}", stage.to_lowercase(), text));
                if !text.ends_with('\n') {
                    out.push('\n');
                }
            }
            Ok((other, _)) => panic!("EXPLAIN planned as {other:?}"),
            Err(e) => out.push_str(&format!(
                "{}: error {}: {}\n",
                stage.to_lowercase(),
                e.sqlstate(),
                e
            )),
        }
    }
    out
}

#[test]
fn explain_goldens() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/explain.txt");
    let file = std::fs::read_to_string(&path).expect("testdata/explain.txt exists");
    let catalog = catalog();
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    let mut count = 0;
    // Records: "query" line, the SQL, "----", the expected plans, a blank line.
    for record in file.split("\n\n").filter(|r| !r.trim().is_empty()) {
        let (head, expected) = record.split_once("\n----\n").unwrap_or((record, ""));
        let mut lines = head.lines();
        let comments: Vec<&str> = lines.by_ref().take_while(|l| *l != "query").collect();
        let query: String = lines.collect::<Vec<_>>().join("\n");
        assert!(
            !query.trim().is_empty(),
            "a record without a query in {}",
            path.display()
        );
        let actual = explain(&catalog, &query);
        count += 1;
        if actual.trim_end() != expected.trim_end() {
            failures.push(format!(
                "{query}\n--- expected\n{expected}\n--- actual\n{actual}"
            ));
        }
        for c in comments {
            rewritten.push_str(c);
            rewritten.push('\n');
        }
        rewritten.push_str(&format!("query\n{query}\n----\n{}\n\n", actual.trim_end()));
    }
    if rewrite {
        std::fs::write(&path, rewritten.trim_end().to_string() + "\n")
            .expect("testdata is writable");
        return;
    }
    assert!(
        count >= 20,
        "the goldens pin at least 20 queries, found {count}"
    );
    assert!(
        failures.is_empty(),
        "{} of {count} plans changed (REWRITE=1 to accept):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
