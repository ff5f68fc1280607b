//! Recursive views kept up to date: `WITH MUTUALLY RECURSIVE` transitive closure and
//! connected components of a random 10,000-edge graph, as materialized views, equal
//! to a from-scratch evaluation (breadth-first search and union-find here in the test,
//! independent of Freshet) after the initial load and after every change of a series
//! of edge inserts and deletes.
//!
//! Run: `cargo test -p environmentd --test recursion -- --nocapture` (prints what it
//! checked). `FRESHET_RECURSION_EDGES` and `FRESHET_RECURSION_ROUNDS` scale it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod common;

use common::{connect, exec, rows};
use environmentd::testing::start_server;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Every pair (a, b) with a path of one or more edges from a to b.
fn closure(edges: &BTreeMap<(i32, i32), usize>) -> BTreeSet<(i32, i32)> {
    let mut out: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (src, dst) in edges.keys() {
        out.entry(*src).or_default().push(*dst);
    }
    let mut pairs = BTreeSet::new();
    for start in out.keys() {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<i32> = out[start].iter().copied().collect();
        while let Some(node) = queue.pop_front() {
            if seen.insert(node) {
                queue.extend(out.get(&node).into_iter().flatten().copied());
            }
        }
        pairs.extend(seen.into_iter().map(|b| (*start, b)));
    }
    pairs
}

/// Each node of an edge, labelled with the smallest node of its (undirected)
/// connected component.
fn components(edges: &BTreeMap<(i32, i32), usize>) -> BTreeMap<i32, i32> {
    let mut parent: BTreeMap<i32, i32> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<i32, i32>, x: i32) -> i32 {
        let p = *parent.entry(x).or_insert(x);
        if p == x {
            return x;
        }
        let root = find(parent, p);
        parent.insert(x, root);
        root
    }
    for (a, b) in edges.keys() {
        let (ra, rb) = (find(&mut parent, *a), find(&mut parent, *b));
        // The smaller root wins, so every root is its component's minimum.
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        parent.insert(hi, lo);
    }
    let nodes: Vec<i32> = parent.keys().copied().collect();
    nodes
        .into_iter()
        .map(|n| (n, find(&mut parent, n)))
        .collect()
}

fn pairs(rows: Vec<Vec<String>>) -> Vec<(i32, i32)> {
    rows.into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
        .collect()
}

const CLOSURE: &str = "CREATE MATERIALIZED VIEW closure AS
    WITH MUTUALLY RECURSIVE reach (a int, b int) AS (
        SELECT src, dst FROM edges
        UNION
        SELECT reach.a, edges.dst FROM reach JOIN edges ON reach.b = edges.src
    )
    SELECT a, b FROM reach";

/// Label propagation: every node starts as its own label and takes the smallest label
/// of its neighbours until nothing changes.
const COMPONENTS: &str = "CREATE MATERIALIZED VIEW components AS
    WITH MUTUALLY RECURSIVE label (node int, comp int) AS (
        SELECT node, min(comp) FROM (
            SELECT src AS node, src AS comp FROM edges
            UNION ALL SELECT dst, dst FROM edges
            UNION ALL SELECT edges.dst, label.comp FROM label JOIN edges ON label.node = edges.src
            UNION ALL SELECT edges.src, label.comp FROM label JOIN edges ON label.node = edges.dst
        ) candidates
        GROUP BY node
    )
    SELECT node, comp FROM label";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_views_equal_a_fresh_evaluation_under_changes() {
    let edge_count = env_usize("FRESHET_RECURSION_EDGES", 10_000);
    let rounds = env_usize("FRESHET_RECURSION_ROUNDS", 10);
    // Nodes: 1.5 per edge, so the directed graph is sparse (short reachability
    // sets) and the undirected one has a giant component (long label paths).
    let nodes = (edge_count * 3 / 2) as i32;
    let (addr, _server) = start_server().await;
    let client = connect(addr).await;
    let mut rng = StdRng::seed_from_u64(0x0005_eed0_fc10);
    let random_edge = |rng: &mut StdRng| (rng.gen_range(0..nodes), rng.gen_range(0..nodes));

    exec(&client, "CREATE TABLE edges (src int, dst int)").await;
    // Edges with multiplicity: duplicates are allowed, as in any table.
    let mut edges: BTreeMap<(i32, i32), usize> = BTreeMap::new();
    let mut batch = Vec::new();
    for i in 0..edge_count {
        let (a, b) = random_edge(&mut rng);
        *edges.entry((a, b)).or_default() += 1;
        batch.push(format!("({a}, {b})"));
        if batch.len() == 1000 || i + 1 == edge_count {
            exec(
                &client,
                &format!("INSERT INTO edges VALUES {}", batch.join(", ")),
            )
            .await;
            batch.clear();
        }
    }
    exec(&client, CLOSURE).await;
    exec(&client, COMPONENTS).await;

    let mut checked_pairs = 0;
    let mut checked_labels = 0;
    for round in 0..=rounds {
        if round > 0 {
            // Delete a few existing edges (every copy) and insert a few new ones, in
            // one transaction; some rounds only insert or only delete.
            let mut statements = Vec::new();
            let deletes = if round % 3 == 1 { 0 } else { 3 };
            let inserts = if round % 3 == 2 { 0 } else { 4 };
            for _ in 0..deletes {
                let index = rng.gen_range(0..edges.len());
                let (a, b) = *edges.keys().nth(index).unwrap();
                edges.remove(&(a, b));
                statements.push(format!("DELETE FROM edges WHERE src = {a} AND dst = {b}"));
            }
            for _ in 0..inserts {
                // New edges between existing nodes join paths and components.
                let keys: Vec<(i32, i32)> = edges.keys().copied().collect();
                let from = keys[rng.gen_range(0..keys.len())].1;
                let to = keys[rng.gen_range(0..keys.len())].0;
                *edges.entry((from, to)).or_default() += 1;
                statements.push(format!("INSERT INTO edges VALUES ({from}, {to})"));
            }
            exec(
                &client,
                &format!("BEGIN; {}; COMMIT", statements.join("; ")),
            )
            .await;
        }
        let expected_closure = closure(&edges);
        let actual_closure: BTreeSet<(i32, i32)> =
            pairs(rows(&client, "SELECT a, b FROM closure").await)
                .into_iter()
                .collect();
        let count = rows(&client, "SELECT count(*) FROM closure").await[0][0].clone();
        assert_eq!(
            count,
            expected_closure.len().to_string(),
            "round {round}: the closure has duplicate or missing rows"
        );
        if actual_closure != expected_closure {
            let missing: Vec<_> = expected_closure
                .difference(&actual_closure)
                .take(5)
                .collect();
            let extra: Vec<_> = actual_closure
                .difference(&expected_closure)
                .take(5)
                .collect();
            panic!("round {round}: closure differs; missing {missing:?}, extra {extra:?}");
        }
        let expected_labels = components(&edges);
        let actual_labels: BTreeMap<i32, i32> =
            pairs(rows(&client, "SELECT node, comp FROM components").await)
                .into_iter()
                .collect();
        assert_eq!(
            actual_labels.len(),
            expected_labels.len(),
            "round {round}: components label a different set of nodes"
        );
        for (node, label) in &expected_labels {
            assert_eq!(
                actual_labels.get(node),
                Some(label),
                "round {round}: node {node} is in the component of {label}"
            );
        }
        checked_pairs += expected_closure.len();
        checked_labels += expected_labels.len();
        let biggest = {
            let mut sizes: BTreeMap<i32, usize> = BTreeMap::new();
            for label in expected_labels.values() {
                *sizes.entry(*label).or_default() += 1;
            }
            sizes.values().copied().max().unwrap_or(0)
        };
        println!(
            "round {round}: {} edges, closure {} pairs, {} nodes in components (largest {biggest})",
            edges.len(),
            expected_closure.len(),
            expected_labels.len()
        );
    }
    println!(
        "recursion: {edge_count} edges, {rounds} rounds of changes, {checked_pairs} closure pairs and {checked_labels} component labels checked, 0 mismatches"
    );
}
