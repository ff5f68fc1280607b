//! Shards end to end: appends, races, snapshots, listens, compaction and leases, on the
//! memory backends and on files + SQLite.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::{each_backend, no_compaction, row, update, TestEnv};
use persist::{
    ListenEvent, PersistConfig, PersistError, ReadError, ShardId, Update, UpperMismatch,
};

#[test]
fn compare_and_append_commits_or_reports_the_mismatch() {
    each_backend(|env| {
        let client = env.client();
        let shard = ShardId::new();
        let mut writer = client.open_writer(shard, "w").unwrap();
        assert_eq!(writer.upper(), 0);
        let first = [update(1, 0, 1), update(2, 2, 1)];
        assert_eq!(writer.compare_and_append(&first, 0, 3).unwrap(), Ok(()));
        assert_eq!(writer.upper(), 3);

        let late = [update(3, 4, 1)];
        assert_eq!(
            writer.compare_and_append(&late, 0, 5).unwrap(),
            Err(UpperMismatch {
                expected: 0,
                current: 3
            })
        );
        let state = client.inspect_shard(shard).unwrap();
        assert_eq!((state.since, state.upper, state.batches.len()), (0, 3, 1));
        let keys = client.blob().list_keys(&shard.to_string()).unwrap();
        assert_eq!(
            keys,
            vec![state.batches[0].key.clone()],
            "the losing batch was deleted"
        );

        // An empty append only advances the upper.
        writer.append(&[], 3, 4).unwrap();
        let state = client.inspect_shard(shard).unwrap();
        assert_eq!((state.upper, state.batches.len()), (4, 1));
        let e = writer.append(&late, 3, 5).unwrap_err();
        assert_eq!(
            e,
            PersistError::UpperMismatch(UpperMismatch {
                expected: 3,
                current: 4
            })
        );

        let reader = client.open_reader(shard, "r").unwrap();
        assert_eq!(
            reader.snapshot(3).unwrap(),
            vec![update(1, 3, 1), update(2, 3, 1)]
        );
    });
}

#[test]
fn bad_appends_are_usage_errors_that_write_nothing() {
    each_backend(|env| {
        let client = env.client();
        let shard = ShardId::new();
        let mut writer = client.open_writer(shard, "w").unwrap();
        for (updates, lower, upper) in [
            (vec![update(1, 5, 1)], 0, 5),
            (vec![update(1, 0, 1)], 1, 5),
            (vec![], 3, 3),
            (vec![], 3, 2),
        ] {
            let e = writer
                .compare_and_append(&updates, lower, upper)
                .unwrap_err();
            assert!(matches!(e, PersistError::InvalidUsage(_)), "{e}");
        }
        assert_eq!(writer.fetch_recent_upper().unwrap(), 0);
        assert_eq!(
            client.blob().list_keys(&shard.to_string()).unwrap(),
            Vec::<String>::new()
        );
    });
}

#[test]
fn racing_writers_commit_each_interval_once() {
    each_backend(|env| {
        let shard = ShardId::new();
        const ROUNDS: u64 = 20;
        let barrier = Arc::new(Barrier::new(2));
        let replicas: Vec<_> = (0..2)
            .map(|replica| {
                // Separate clients, as separate replicas would have.
                let client = env.client();
                let barrier = Arc::clone(&barrier);
                let mut writer = client
                    .open_writer(shard, &format!("replica {replica}"))
                    .unwrap();
                thread::spawn(move || {
                    // No panics in here: the other thread would wait at the barrier.
                    let mut outcomes = Vec::new();
                    for round in 0..ROUNDS {
                        let (lower, upper) = (round * 10, round * 10 + 10);
                        let updates = [update(round as i64, lower + 1, 1)];
                        barrier.wait();
                        let outcome = writer.compare_and_append(&updates, lower, upper);
                        outcomes.push((round, outcome));
                    }
                    outcomes
                })
            })
            .collect();
        let mut wins = Vec::new();
        for (round, outcome) in replicas.into_iter().flat_map(|t| t.join().unwrap()) {
            let (lower, upper) = (round * 10, round * 10 + 10);
            match outcome.unwrap() {
                Ok(()) => wins.push(round),
                Err(m) => assert_eq!(
                    m,
                    UpperMismatch {
                        expected: lower,
                        current: upper
                    }
                ),
            }
        }
        wins.sort();
        assert_eq!(
            wins,
            (0..ROUNDS).collect::<Vec<_>>(),
            "every round won exactly once"
        );

        let client = env.client();
        let reader = client.open_reader(shard, "r").unwrap();
        let expected: Vec<Update> = (0..ROUNDS as i64).map(|i| update(i, 199, 1)).collect();
        assert_eq!(reader.snapshot(199).unwrap(), expected);
        let state = client.inspect_shard(shard).unwrap();
        let keys = client.blob().list_keys(&shard.to_string()).unwrap();
        assert_eq!(keys.len(), state.batches.len(), "losers' blobs are deleted");
    });
}

#[test]
fn snapshots_advance_times_and_consolidate() {
    each_backend(|env| {
        let client = env.client();
        let shard = ShardId::new();
        let mut writer = client.open_writer(shard, "w").unwrap();
        writer
            .append(&[update(1, 1, 1), update(2, 2, 1), update(2, 2, 1)], 0, 3)
            .unwrap();
        writer
            .append(&[update(1, 5, -1), update(3, 4, 1)], 3, 6)
            .unwrap();
        let reader = client.open_reader(shard, "r").unwrap();
        assert_eq!(reader.snapshot(0).unwrap(), vec![]);
        assert_eq!(
            reader.snapshot(2).unwrap(),
            vec![update(1, 2, 1), update(2, 2, 2)]
        );
        assert_eq!(
            reader.snapshot(4).unwrap(),
            vec![update(1, 4, 1), update(2, 4, 2), update(3, 4, 1)]
        );
        assert_eq!(
            reader.snapshot(5).unwrap(),
            vec![update(2, 5, 2), update(3, 5, 1)]
        );
    });
}

#[test]
fn reads_outside_since_and_upper_are_errors() {
    each_backend(|env| {
        let client = env.client();
        let shard = ShardId::new();
        let mut writer = client.open_writer(shard, "w").unwrap();
        writer.append(&[update(1, 1, 1)], 0, 6).unwrap();
        let mut reader = client.open_reader(shard, "r").unwrap();
        assert_eq!(reader.upper().unwrap(), 6);
        assert_eq!(
            reader.snapshot(6).unwrap_err(),
            ReadError::NotYetAvailable { as_of: 6, upper: 6 }
        );
        reader.downgrade_since(3).unwrap();
        reader.downgrade_since(1).unwrap();
        assert_eq!(reader.since(), 3, "the since never moves back");
        assert_eq!(
            reader.snapshot(2).unwrap_err(),
            ReadError::SinceViolation { as_of: 2, since: 3 }
        );
        assert_eq!(
            reader.listen(2).unwrap_err(),
            ReadError::SinceViolation { as_of: 2, since: 3 }
        );
        assert_eq!(reader.snapshot(3).unwrap(), vec![update(1, 3, 1)]);

        assert!(!reader
            .wait_for_upper_past(6, Duration::from_millis(20))
            .unwrap());
        let waiter = thread::spawn(move || {
            let done = reader
                .wait_for_upper_past(6, Duration::from_secs(10))
                .unwrap();
            (done, reader.snapshot(6).unwrap())
        });
        thread::sleep(Duration::from_millis(20));
        writer.append(&[update(2, 6, 1)], 6, 7).unwrap();
        assert_eq!(
            waiter.join().unwrap(),
            (true, vec![update(1, 6, 1), update(2, 6, 1)])
        );
    });
}

#[test]
fn listen_emits_updates_then_progress_exactly_once() {
    each_backend(|env| {
        let client = env.client();
        let shard = ShardId::new();
        let mut writer = client.open_writer(shard, "w").unwrap();
        writer
            .append(&[update(1, 0, 1), update(2, 1, 1), update(3, 2, 1)], 0, 3)
            .unwrap();
        let reader = client.open_reader(shard, "r").unwrap();
        let mut listen = reader.listen(1).unwrap();
        assert_eq!(listen.frontier(), 1);
        assert_eq!(
            listen.poll().unwrap(),
            vec![
                ListenEvent::Updates(vec![update(3, 2, 1)]),
                ListenEvent::Progress(3)
            ]
        );
        assert_eq!(listen.poll().unwrap(), vec![]);
        writer
            .append(&[update(4, 4, 1), update(3, 3, -1)], 3, 5)
            .unwrap();
        writer.append(&[], 5, 7).unwrap();
        assert_eq!(
            listen.poll().unwrap(),
            vec![
                ListenEvent::Updates(vec![update(3, 3, -1), update(4, 4, 1)]),
                ListenEvent::Progress(7)
            ]
        );
        writer.append(&[], 7, 8).unwrap();
        assert_eq!(listen.poll().unwrap(), vec![ListenEvent::Progress(8)]);
        assert_eq!(listen.frontier(), 8);

        // A listen may start at or past the upper; it skips times up to its as_of.
        let mut ahead = reader.listen(10).unwrap();
        assert_eq!(ahead.poll().unwrap(), vec![]);
        writer
            .append(
                &[update(5, 9, 1), update(6, 10, 1), update(7, 11, 1)],
                8,
                12,
            )
            .unwrap();
        assert_eq!(
            ahead.poll().unwrap(),
            vec![
                ListenEvent::Updates(vec![update(7, 11, 1)]),
                ListenEvent::Progress(12)
            ]
        );
        // From another client, which shares no caches with the writer.
        let other = env.client().open_reader(shard, "other").unwrap();
        let mut from_start = other.listen(0).unwrap();
        let events = from_start.poll().unwrap();
        let ListenEvent::Updates(all) = &events[0] else {
            panic!("expected updates first, got {events:?}");
        };
        assert_eq!(all.len(), 7);
        assert_eq!(events[1], ListenEvent::Progress(12));
    });
}

#[test]
fn compaction_merges_batches_and_preserves_reads() {
    each_backend(|env| {
        let config = PersistConfig {
            compaction_threshold: 3,
            ..PersistConfig::default()
        };
        let client = env.client_with(config);
        let shard = ShardId::new();
        let mut writer = client.open_writer(shard, "w").unwrap();
        let mut reader = client.open_reader(shard, "r").unwrap();
        let mut listen = reader.listen(0).unwrap();
        let mut heard = Vec::new();
        // At time t, row t replaces row t-1.
        let mut all: Vec<Update> = Vec::new();
        writer.append(&[], 0, 1).unwrap();
        for t in 1..=12u64 {
            let mut updates = vec![update(t as i64, t, 1)];
            if t > 1 {
                updates.push(update(t as i64 - 1, t, -1));
            }
            writer.append(&updates, t, t + 1).unwrap();
            all.extend(updates);
            if t == 6 {
                reader.downgrade_since(6).unwrap();
            }
            for event in listen.poll().unwrap() {
                if let ListenEvent::Updates(u) = event {
                    heard.extend(u);
                }
            }
        }
        let state = client.inspect_shard(shard).unwrap();
        assert_eq!(
            state.since, 0,
            "the listen's lease at 0 holds the since back"
        );
        assert!(state.batches.len() <= 3, "batches: {:?}", state.batches);
        let keys = client.blob().list_keys(&shard.to_string()).unwrap();
        assert_eq!(
            keys.len(),
            state.batches.len(),
            "replaced blobs are deleted"
        );
        persist::consolidate(&mut heard);
        let mut expected = all.clone();
        persist::consolidate(&mut expected);
        assert_eq!(heard, expected, "the listen heard every update once");

        // With the listen gone, the since is the reader's and compaction advances times.
        drop(listen);
        assert_eq!(client.inspect_shard(shard).unwrap().since, 6);
        for t in 13..=20u64 {
            let updates = [update(t as i64, t, 1), update(t as i64 - 1, t, -1)];
            writer.append(&updates, t, t + 1).unwrap();
        }
        let state = client.inspect_shard(shard).unwrap();
        assert!(state.batches.len() <= 3, "batches: {:?}", state.batches);
        for as_of in 6..=20u64 {
            assert_eq!(
                reader.snapshot(as_of).unwrap(),
                vec![update(as_of as i64, as_of, 1)]
            );
        }
        // The merged batch holds no update before the since.
        let merged = &state.batches[0];
        assert_eq!(merged.lower, 1);
        let blob = client.blob().get(&merged.key).unwrap().unwrap();
        let updates = persist::codec::decode_batch(&blob).unwrap();
        assert!(updates.iter().all(|(_, t, _)| *t >= 6), "{updates:?}");
        let at_since: Vec<&Update> = updates.iter().filter(|(_, t, _)| *t == 6).collect();
        assert_eq!(
            at_since,
            vec![&update(6, 6, 1)],
            "rows 1 to 5 consolidated away"
        );
    });
}

#[test]
fn reader_leases_hold_back_the_since() {
    each_backend(|env| {
        let client = env.client();
        let shard = ShardId::new();
        let mut a = client.open_reader(shard, "a").unwrap();
        let mut b = client.open_reader(shard, "b").unwrap();
        a.downgrade_since(5).unwrap();
        assert_eq!(client.inspect_shard(shard).unwrap().since, 0);
        b.downgrade_since(3).unwrap();
        assert_eq!(client.inspect_shard(shard).unwrap().since, 3);
        b.expire().unwrap();
        assert_eq!(client.inspect_shard(shard).unwrap().since, 5);
        drop(a);
        let state = client.inspect_shard(shard).unwrap();
        assert_eq!(
            (state.since, state.readers.len()),
            (5, 0),
            "no readers: the since stays"
        );
        let c = client.open_reader(shard, "c").unwrap();
        assert_eq!(c.since(), 5);
    });
}

#[test]
fn silent_leases_expire() {
    each_backend(|env| {
        let config = PersistConfig {
            lease_duration: Duration::from_millis(100),
            ..no_compaction()
        };
        let client = env.client_with(config);
        let shard = ShardId::new();
        let mut silent = client.open_reader(shard, "silent").unwrap();
        silent.downgrade_since(0).unwrap();
        thread::sleep(Duration::from_millis(250));
        let mut writer = client.open_writer(shard, "w").unwrap();
        writer.append(&[update(1, 0, 1)], 0, 1).unwrap();
        let state = client.inspect_shard(shard).unwrap();
        assert!(state.readers.is_empty(), "{:?}", state.readers);
        assert_eq!(
            silent.heartbeat().unwrap_err(),
            PersistError::LeaseExpired {
                shard,
                reader: silent.reader_id()
            }
        );
    });
}

#[test]
fn state_survives_reopening_the_location() {
    let env = TestEnv::files();
    let shard = ShardId::new();
    {
        let client = env.client();
        let mut writer = client.open_writer(shard, "w").unwrap();
        writer
            .append(&[update(1, 0, 1), update(2, 1, 1)], 0, 2)
            .unwrap();
        writer.append(&[update(2, 3, -1)], 2, 4).unwrap();
    }
    let client = env.client();
    let mut writer = client.open_writer(shard, "w2").unwrap();
    assert_eq!(writer.upper(), 4);
    let reader = client.open_reader(shard, "r").unwrap();
    assert_eq!(reader.snapshot(3).unwrap(), vec![update(1, 3, 1)]);
    assert_eq!(
        reader.snapshot(1).unwrap(),
        vec![update(1, 1, 1), update(2, 1, 1)]
    );
    assert_eq!(row(1), update(1, 0, 0).0);
    writer.append(&[], 4, 5).unwrap();
    assert_eq!(
        env.client()
            .open_reader(shard, "r2")
            .unwrap()
            .upper()
            .unwrap(),
        5
    );
}
