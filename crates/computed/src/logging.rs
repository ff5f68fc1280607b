//! Operator introspection: every timely operator a worker runs, and how long it has
//! been scheduled (what `mz_internal.mz_dataflow_operators` and
//! `mz_internal.mz_scheduling_elapsed` show).
//!
//! The worker's timely logger delivers its events here: `Operates` adds an operator,
//! a `Schedule` start/stop pair adds the time between them to the operator's elapsed
//! time, `Shutdown` removes it (so a dropped dataflow's operators go with it). A scope
//! is scheduled around its operators, so its time includes theirs.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use compute_client::OperatorStat;
use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};
use timely::worker::Worker;

struct Operator {
    address: Vec<usize>,
    name: String,
    elapsed: Duration,
}

/// This worker's live operators and their scheduling time.
#[derive(Default)]
pub struct OperatorLog {
    operators: BTreeMap<usize, Operator>,
    /// When each operator scheduled right now started.
    started: BTreeMap<usize, Duration>,
    /// Whether anything changed since the last [`OperatorLog::report`].
    changed: bool,
}

impl OperatorLog {
    /// Registers a log that the worker's timely logger feeds.
    pub fn register(worker: &mut Worker) -> Rc<RefCell<OperatorLog>> {
        let log = Rc::new(RefCell::new(OperatorLog::default()));
        let shared = Rc::clone(&log);
        if let Some(mut registry) = worker.log_register() {
            registry.insert::<TimelyEventBuilder, _>("timely", move |_time, data| {
                if let Some(events) = data {
                    let mut log = shared.borrow_mut();
                    for (time, event) in events.iter() {
                        log.record(*time, event);
                    }
                }
            });
        }
        log
    }

    fn record(&mut self, time: Duration, event: &TimelyEvent) {
        match event {
            TimelyEvent::Operates(op) => {
                self.operators.insert(
                    op.id,
                    Operator {
                        address: op.addr.to_vec(),
                        name: op.name.clone(),
                        elapsed: Duration::ZERO,
                    },
                );
                self.changed = true;
            }
            TimelyEvent::Schedule(schedule) => match schedule.start_stop {
                StartStop::Start => {
                    self.started.insert(schedule.id, time);
                }
                StartStop::Stop => {
                    if let Some(start) = self.started.remove(&schedule.id) {
                        if let Some(op) = self.operators.get_mut(&schedule.id) {
                            op.elapsed += time.saturating_sub(start);
                            self.changed = true;
                        }
                    }
                }
            },
            TimelyEvent::Shutdown(shutdown) => {
                self.operators.remove(&shutdown.id);
                self.started.remove(&shutdown.id);
                self.changed = true;
            }
            _ => {}
        }
    }

    /// Every live operator of the `installed` dataflows, if anything changed since
    /// the last report. (Operators of a dataflow no longer installed are forgotten,
    /// should their shutdown not have been logged.)
    pub fn report(&mut self, installed: &BTreeSet<usize>) -> Option<Vec<OperatorStat>> {
        let before = self.operators.len();
        self.operators
            .retain(|_, op| op.address.first().is_some_and(|d| installed.contains(d)));
        if !self.changed && self.operators.len() == before {
            return None;
        }
        self.changed = false;
        Some(
            self.operators
                .iter()
                .map(|(id, op)| OperatorStat {
                    id: *id as u64,
                    address: op.address.iter().map(|a| *a as u64).collect(),
                    name: op.name.clone(),
                    elapsed_ns: u64::try_from(op.elapsed.as_nanos()).unwrap_or(u64::MAX),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::logging::{OperatesEvent, ScheduleEvent, ShutdownEvent};

    fn operates(id: usize, addr: Vec<usize>, name: &str) -> TimelyEvent {
        TimelyEvent::Operates(OperatesEvent {
            id,
            addr,
            name: name.into(),
        })
    }

    fn schedule(id: usize, start_stop: StartStop) -> TimelyEvent {
        TimelyEvent::Schedule(ScheduleEvent { id, start_stop })
    }

    #[test]
    fn elapsed_time_adds_up_and_shutdown_forgets() {
        let ms = Duration::from_millis;
        let mut log = OperatorLog::default();
        log.record(ms(0), &operates(1, vec![0], "Dataflow: a"));
        log.record(ms(0), &operates(2, vec![0, 1], "Map"));
        log.record(ms(10), &schedule(1, StartStop::Start));
        log.record(ms(11), &schedule(2, StartStop::Start));
        log.record(ms(14), &schedule(2, StartStop::Stop));
        log.record(ms(20), &schedule(1, StartStop::Stop));
        log.record(ms(30), &schedule(2, StartStop::Start));
        log.record(ms(32), &schedule(2, StartStop::Stop));
        let installed: BTreeSet<usize> = [0].into();
        let report = log.report(&installed).expect("changed");
        let elapsed: Vec<(u64, u64)> = report.iter().map(|o| (o.id, o.elapsed_ns)).collect();
        assert_eq!(elapsed, vec![(1, 10_000_000), (2, 5_000_000)]);
        assert_eq!(report[1].address, vec![0, 1]);
        assert!(log.report(&installed).is_none(), "nothing changed");
        log.record(ms(40), &TimelyEvent::Shutdown(ShutdownEvent { id: 2 }));
        let report = log.report(&installed).expect("changed");
        assert_eq!(report.len(), 1);
        // A dataflow no longer installed takes its operators with it.
        let report = log.report(&BTreeSet::new()).expect("changed");
        assert!(report.is_empty());
    }
}
