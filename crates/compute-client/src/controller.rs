//! [`ComputeController`]: drives the replicas of one cluster.
//!
//! Every command goes to every replica (active replication), and is kept in a history
//! so a replica that connects later can be brought up to date. Responses are merged:
//! the first answer to a peek wins and later ones are dropped; the reported upper of a
//! collection is the maximum over replicas, so losing a replica changes nothing.
//! Subscribe batches are merged the same way: the controller remembers how far each
//! subscription has been delivered and passes on only the part of a replica's batch
//! beyond it, so every update reaches the coordinator exactly once whichever replica
//! is ahead (replicas compute the same updates at the same times).

use std::collections::{BTreeMap, BTreeSet};

use repr::{GlobalId, Timestamp};
use uuid::Uuid;

use crate::protocol::{
    ComputeCommand, ComputeResponse, DataflowDescription, OperatorStat, Peek, PeekResponse,
    SubscribeBatch,
};
use crate::transport::ControllerEndpoint;

/// A merged response, at most one per event whatever the number of replicas.
#[derive(Clone, Debug, PartialEq)]
pub enum ControllerResponse {
    PeekResponse {
        uuid: Uuid,
        response: PeekResponse,
    },
    FrontierUpper {
        id: GlobalId,
        upper: Timestamp,
    },
    /// The latest size a replica reported for an index's arrangement.
    ArrangementSizes {
        id: GlobalId,
        records: u64,
        batches: u64,
        bytes: u64,
    },
    /// The operators a replica last reported.
    Operators {
        operators: Vec<OperatorStat>,
    },
    /// The next part of a subscription: `batch.lower` is where the previous one ended.
    SubscribeBatch {
        id: GlobalId,
        batch: SubscribeBatch,
    },
}

pub type ReplicaId = u64;

#[derive(Default)]
pub struct ComputeController {
    replicas: BTreeMap<ReplicaId, ControllerEndpoint>,
    history: Vec<ComputeCommand>,
    pending_peeks: BTreeSet<Uuid>,
    uppers: BTreeMap<GlobalId, Timestamp>,
    /// How far each active subscription has been delivered.
    subscribes: BTreeMap<GlobalId, Timestamp>,
}

impl ComputeController {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects a replica and replays the command history to it.
    pub fn add_replica(&mut self, id: ReplicaId, endpoint: ControllerEndpoint) {
        let mut ok = endpoint
            .commands
            .send(ComputeCommand::Hello {
                nonce: Uuid::new_v4(),
            })
            .is_ok();
        for command in &self.history {
            ok &= endpoint.commands.send(command.clone()).is_ok();
        }
        if ok {
            self.replicas.insert(id, endpoint);
        }
    }

    fn broadcast(&mut self, command: ComputeCommand) {
        let mut dead = Vec::new();
        for (id, replica) in &self.replicas {
            if replica.commands.send(command.clone()).is_err() {
                dead.push(*id);
            }
        }
        for id in dead {
            self.replicas.remove(&id);
        }
        self.history.push(command);
        self.compact_history();
    }

    /// Drops commands that no longer matter to a replica connecting now: peeks already
    /// answered and dataflows whose exports were all dropped.
    fn compact_history(&mut self) {
        let dropped: BTreeSet<GlobalId> = self
            .history
            .iter()
            .filter_map(|c| match c {
                ComputeCommand::AllowCompaction { id, frontier } if *frontier == Timestamp::MAX => {
                    Some(*id)
                }
                _ => None,
            })
            .collect();
        let pending = &self.pending_peeks;
        self.history.retain(|c| match c {
            ComputeCommand::Peek(p) => pending.contains(&p.uuid),
            ComputeCommand::CancelPeek { .. } => false,
            ComputeCommand::CreateDataflow(d) => !d.export_ids().all(|id| dropped.contains(&id)),
            ComputeCommand::AllowCompaction { id, .. } => !dropped.contains(id),
            ComputeCommand::Hello { .. } => false,
        });
    }

    pub fn create_dataflow(&mut self, dataflow: DataflowDescription) {
        for id in dataflow.subscribe_exports.keys() {
            self.subscribes.insert(*id, dataflow.as_of);
        }
        self.broadcast(ComputeCommand::CreateDataflow(dataflow));
    }

    pub fn peek(&mut self, peek: Peek) {
        self.pending_peeks.insert(peek.uuid);
        self.broadcast(ComputeCommand::Peek(peek));
    }

    pub fn cancel_peek(&mut self, uuid: Uuid) {
        self.broadcast(ComputeCommand::CancelPeek { uuid });
    }

    /// Lets every replica forget the history of an index, table or materialized view
    /// before `frontier`. Only the latest such command per collection is kept for
    /// replicas that connect later.
    pub fn allow_compaction(&mut self, id: GlobalId, frontier: Timestamp) {
        self.history.retain(|c| {
            !matches!(c, ComputeCommand::AllowCompaction { id: i, frontier: f }
                if *i == id && *f != Timestamp::MAX)
        });
        self.broadcast(ComputeCommand::AllowCompaction { id, frontier });
    }

    /// Drops a collection on every replica.
    pub fn drop_collection(&mut self, id: GlobalId) {
        self.uppers.remove(&id);
        self.subscribes.remove(&id);
        self.broadcast(ComputeCommand::AllowCompaction {
            id,
            frontier: Timestamp::MAX,
        });
    }

    /// The number of connected replicas.
    pub fn replica_count(&self) -> usize {
        self.replicas.len()
    }

    /// The receivers of every replica, for a `select` loop.
    pub fn response_receivers(
        &self,
    ) -> Vec<(ReplicaId, crossbeam_channel::Receiver<ComputeResponse>)> {
        self.replicas
            .iter()
            .map(|(id, r)| (*id, r.responses.clone()))
            .collect()
    }

    /// Merges one replica's response; returns what the coordinator needs to know.
    pub fn handle_response(
        &mut self,
        _replica: ReplicaId,
        response: ComputeResponse,
    ) -> Option<ControllerResponse> {
        match response {
            ComputeResponse::PeekResponse { uuid, response } => {
                if self.pending_peeks.remove(&uuid) {
                    self.compact_history();
                    Some(ControllerResponse::PeekResponse { uuid, response })
                } else {
                    None
                }
            }
            ComputeResponse::SubscribeResponse { id, batch } => {
                let delivered = self.subscribes.get_mut(&id)?;
                if batch.upper <= *delivered || batch.lower > *delivered {
                    // Already delivered by a faster replica (a gap cannot happen: a
                    // replica's batches are contiguous from the as_of).
                    return None;
                }
                let lower = *delivered;
                let updates = match batch.updates {
                    Ok(mut updates) => {
                        updates.retain(|(_, t, _)| *t >= lower);
                        *delivered = batch.upper;
                        Ok(updates)
                    }
                    Err(e) => {
                        self.subscribes.remove(&id);
                        Err(e)
                    }
                };
                let batch = SubscribeBatch {
                    lower,
                    upper: batch.upper,
                    updates,
                };
                Some(ControllerResponse::SubscribeBatch { id, batch })
            }
            ComputeResponse::ArrangementSizes {
                id,
                records,
                batches,
                bytes,
            } => Some(ControllerResponse::ArrangementSizes {
                id,
                records,
                batches,
                bytes,
            }),
            ComputeResponse::Operators { operators } => {
                Some(ControllerResponse::Operators { operators })
            }
            ComputeResponse::Frontiers { id, upper } => {
                let current = self.uppers.entry(id).or_insert(0);
                if upper > *current {
                    *current = upper;
                    Some(ControllerResponse::FrontierUpper { id, upper })
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::channel;

    #[test]
    fn first_peek_response_wins_and_history_replays() {
        let mut controller = ComputeController::new();
        let (c1, r1) = channel();
        controller.add_replica(1, c1);
        let uuid = Uuid::new_v4();
        controller.peek(Peek {
            uuid,
            id: GlobalId::Transient(1),
            timestamp: 5,
            mfp: expr::MapFilterProject::new(1),
            key: None,
        });
        // A replica connecting now still receives the pending peek.
        let (c2, r2) = channel();
        controller.add_replica(2, c2);
        let replayed: Vec<_> = r2.commands.try_iter().collect();
        assert!(matches!(replayed[0], ComputeCommand::Hello { .. }));
        assert!(matches!(&replayed[1], ComputeCommand::Peek(p) if p.uuid == uuid));
        assert_eq!(r1.commands.try_iter().count(), 2);
        let answer = ComputeResponse::PeekResponse {
            uuid,
            response: PeekResponse::Rows(vec![]),
        };
        assert!(controller.handle_response(1, answer.clone()).is_some());
        assert_eq!(controller.handle_response(2, answer), None);
        // Answered peeks are not replayed.
        let (c3, r3) = channel();
        controller.add_replica(3, c3);
        assert_eq!(r3.commands.try_iter().count(), 1);
    }

    #[test]
    fn subscribe_batches_are_delivered_once_across_replicas() {
        let mut controller = ComputeController::new();
        let id = GlobalId::Transient(9);
        let mut dataflow = DataflowDescription {
            debug_name: "s".into(),
            source_imports: BTreeMap::new(),
            index_imports: BTreeMap::new(),
            objects_to_build: vec![],
            index_exports: BTreeMap::new(),
            sink_exports: BTreeMap::new(),
            subscribe_exports: BTreeMap::new(),
            as_of: 10,
            until: None,
        };
        dataflow.subscribe_exports.insert(
            id,
            crate::SubscribeExport {
                on_id: GlobalId::Transient(8),
                up_to: None,
            },
        );
        controller.create_dataflow(dataflow);
        let row = |i: i32| repr::Row::pack_slice(&[repr::Datum::Int32(i)]);
        let batch = |lower, upper, updates: Vec<(repr::Row, u64, i64)>| {
            ComputeResponse::SubscribeResponse {
                id,
                batch: SubscribeBatch {
                    lower,
                    upper,
                    updates: Ok(updates),
                },
            }
        };
        // Replica 1 delivers [10, 15); replica 2 then reports [10, 20): only [15, 20)
        // is new.
        let first = controller.handle_response(1, batch(10, 15, vec![(row(1), 10, 1)]));
        assert!(
            matches!(first, Some(ControllerResponse::SubscribeBatch { ref batch, .. })
            if batch.lower == 10 && batch.upper == 15 && batch.updates.as_ref().unwrap().len() == 1)
        );
        let second =
            controller.handle_response(2, batch(10, 20, vec![(row(1), 10, 1), (row(2), 17, 1)]));
        match second {
            Some(ControllerResponse::SubscribeBatch { batch, .. }) => {
                assert_eq!((batch.lower, batch.upper), (15, 20));
                assert_eq!(batch.updates, Ok(vec![(row(2), 17, 1)]));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Replica 1 catching up with [15, 20) is a duplicate.
        assert_eq!(
            controller.handle_response(1, batch(15, 20, vec![(row(2), 17, 1)])),
            None
        );
    }

    #[test]
    fn only_the_latest_compaction_of_an_index_is_replayed() {
        let mut controller = ComputeController::new();
        let id = GlobalId::Transient(3);
        for frontier in [10, 20, 30] {
            controller.allow_compaction(id, frontier);
        }
        let (c, r) = channel();
        controller.add_replica(1, c);
        let replayed: Vec<_> = r.commands.try_iter().collect();
        assert_eq!(replayed.len(), 2, "{replayed:?}");
        assert_eq!(
            replayed[1],
            ComputeCommand::AllowCompaction { id, frontier: 30 }
        );
    }

    #[test]
    fn upper_is_the_maximum_over_replicas() {
        let mut controller = ComputeController::new();
        let id = GlobalId::Transient(7);
        assert!(controller
            .handle_response(1, ComputeResponse::Frontiers { id, upper: 10 })
            .is_some());
        assert_eq!(
            controller.handle_response(2, ComputeResponse::Frontiers { id, upper: 8 }),
            None
        );
    }
}
