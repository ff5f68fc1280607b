//! The Blob and Consensus contracts, checked on every backend, and location URLs.

mod common;

use std::sync::Arc;
use std::thread;

use common::{each_backend, TestEnv};
use persist::sqlite::SqliteConsensus;
use persist::{
    Blob, CasResult, Consensus, ErrorKind, PersistClient, PersistLocation, SeqNo, VersionedData,
};

fn vd(seqno: u64, data: &[u8]) -> VersionedData {
    VersionedData {
        seqno: SeqNo(seqno),
        data: data.to_vec(),
    }
}

fn check_consensus(c: &dyn Consensus) {
    let key = "catalog";
    assert_eq!(c.head(key).unwrap(), None);
    assert_eq!(
        c.compare_and_set(key, None, vd(0, b"a")).unwrap(),
        CasResult::Committed
    );
    assert_eq!(
        c.compare_and_set(key, None, vd(0, b"x")).unwrap(),
        CasResult::ExpectationMismatch
    );
    assert_eq!(
        c.compare_and_set(key, Some(SeqNo(1)), vd(2, b"x")).unwrap(),
        CasResult::ExpectationMismatch
    );
    let bad = c
        .compare_and_set(key, Some(SeqNo(0)), vd(5, b"x"))
        .unwrap_err();
    assert_eq!(bad.kind, ErrorKind::Determinate);
    for (i, data) in [b"b", b"c", b"d"].iter().enumerate() {
        let expected = Some(SeqNo(i as u64));
        let new = vd(i as u64 + 1, *data);
        assert_eq!(
            c.compare_and_set(key, expected, new).unwrap(),
            CasResult::Committed
        );
    }
    assert_eq!(c.head(key).unwrap(), Some(vd(3, b"d")));
    assert_eq!(
        c.head("timestamp_oracle").unwrap(),
        None,
        "keys are independent"
    );

    assert_eq!(
        c.scan(key, SeqNo(0), 10).unwrap(),
        vec![vd(0, b"a"), vd(1, b"b"), vd(2, b"c"), vd(3, b"d")]
    );
    assert_eq!(
        c.scan(key, SeqNo(2), 10).unwrap(),
        vec![vd(2, b"c"), vd(3, b"d")]
    );
    assert_eq!(c.scan(key, SeqNo(1), 1).unwrap(), vec![vd(1, b"b")]);

    assert_eq!(c.truncate(key, SeqNo(2)).unwrap(), 2);
    assert_eq!(
        c.scan(key, SeqNo(0), 10).unwrap(),
        vec![vd(2, b"c"), vd(3, b"d")]
    );
    assert_eq!(
        c.truncate(key, SeqNo(100)).unwrap(),
        1,
        "the head is never truncated"
    );
    assert_eq!(c.scan(key, SeqNo(0), 10).unwrap(), vec![vd(3, b"d")]);
    assert_eq!(c.truncate("missing", SeqNo(100)).unwrap(), 0);
}

fn check_blob(b: &dyn Blob) {
    assert_eq!(b.get("s1/a").unwrap(), None);
    b.set("s1/a", b"one").unwrap();
    b.set("s1/b", b"two").unwrap();
    b.set("s2/a", b"three").unwrap();
    b.set("s1/a", b"uno").unwrap();
    assert_eq!(b.get("s1/a").unwrap().as_deref(), Some(&b"uno"[..]));
    assert_eq!(b.list_keys("s1/").unwrap(), vec!["s1/a", "s1/b"]);
    assert_eq!(b.list_keys("").unwrap(), vec!["s1/a", "s1/b", "s2/a"]);
    b.delete("s1/a").unwrap();
    b.delete("s1/a").unwrap();
    assert_eq!(b.get("s1/a").unwrap(), None);
    assert_eq!(b.list_keys("s").unwrap(), vec!["s1/b", "s2/a"]);
    b.set("big", &vec![7u8; 1 << 20]).unwrap();
    assert_eq!(b.get("big").unwrap().map(|v| v.len()), Some(1 << 20));
}

#[test]
fn consensus_and_blob_keep_their_contracts() {
    each_backend(|env| {
        let client = env.client();
        check_consensus(client.consensus().as_ref());
        check_blob(client.blob().as_ref());
    });
}

#[test]
fn mem_urls_share_state_within_the_process() {
    let env = TestEnv::mem();
    let a = env.client();
    let b = env.client();
    a.blob().set("k", b"v").unwrap();
    assert_eq!(b.blob().get("k").unwrap().as_deref(), Some(&b"v"[..]));
    a.consensus()
        .compare_and_set("k", None, vd(0, b"v"))
        .unwrap();
    assert_eq!(b.consensus().head("k").unwrap(), Some(vd(0, b"v")));
    let other = TestEnv::mem().client();
    assert_eq!(other.consensus().head("k").unwrap(), None);
}

#[test]
fn urls_select_backends_or_say_why_not() {
    let env = TestEnv::files();
    let dir = env.dir.clone().unwrap();
    let plain = PersistLocation::new(
        dir.join("plain").display().to_string(),
        format!("sqlite://{}", dir.join("c.db").display()),
    );
    PersistClient::open(&plain)
        .unwrap()
        .blob()
        .set("k", b"v")
        .unwrap();
    assert!(dir.join("plain/k").exists());

    let s3 = PersistLocation::new("s3://bucket/prefix", "mem://x");
    let e = PersistClient::open(&s3).unwrap_err();
    assert!(
        e.message.starts_with("unsupported blob url scheme \"s3\""),
        "{e}"
    );
    let pg = PersistLocation::new("mem://x", "postgres://localhost/db");
    let e = PersistClient::open(&pg).unwrap_err();
    assert!(
        e.message
            .starts_with("unsupported consensus url scheme \"postgres\""),
        "{e}"
    );
    let e = PersistClient::open(&PersistLocation::new("", "mem://x")).unwrap_err();
    assert!(e.message.starts_with("unsupported blob url scheme"), "{e}");
}

/// Counter increments by compare-and-set: every increment must land exactly once.
fn increment(c: &dyn Consensus, key: &str) -> usize {
    let mut conflicts = 0;
    loop {
        let head = c.head(key).unwrap();
        let (expected, count) = match &head {
            None => (None, 0u64),
            Some(v) => (
                Some(v.seqno),
                u64::from_le_bytes(v.data[..].try_into().unwrap()),
            ),
        };
        let new = VersionedData {
            seqno: expected.map_or(SeqNo(0), SeqNo::next),
            data: (count + 1).to_le_bytes().to_vec(),
        };
        match c.compare_and_set(key, expected, new).unwrap() {
            CasResult::Committed => return conflicts,
            CasResult::ExpectationMismatch => conflicts += 1,
        }
    }
}

#[test]
fn sqlite_cas_from_concurrent_threads_counts_exactly() {
    let env = TestEnv::files();
    let path = env.dir.clone().unwrap().join("consensus.db");
    let shared = Arc::new(SqliteConsensus::open(&path).unwrap());
    const PER_THREAD: u64 = 100;
    // Two threads share one connection; two more have their own, as processes would.
    let consensuses: Vec<Arc<SqliteConsensus>> = vec![
        Arc::clone(&shared),
        Arc::clone(&shared),
        Arc::new(SqliteConsensus::open(&path).unwrap()),
        Arc::new(SqliteConsensus::open(&path).unwrap()),
    ];
    let threads: Vec<_> = consensuses
        .into_iter()
        .map(|c| {
            thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|_| increment(c.as_ref(), "counter"))
                    .sum::<usize>()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let head = shared.head("counter").unwrap().unwrap();
    assert_eq!(
        u64::from_le_bytes(head.data[..].try_into().unwrap()),
        4 * PER_THREAD
    );
    assert_eq!(head.seqno, SeqNo(4 * PER_THREAD - 1));
}
