//! In-process transport: a pair of channels between the controller and a replica.
//!
//! The embedded default runs replicas on threads of the same process; the commands and
//! responses are the same values that a TCP transport will serialize.

use crossbeam_channel::{Receiver, Sender};

use crate::protocol::{ComputeCommand, ComputeResponse};

/// The replica's end: commands in, responses out.
pub struct ReplicaEndpoint {
    pub commands: Receiver<ComputeCommand>,
    pub responses: Sender<ComputeResponse>,
}

/// The controller's end of one replica connection.
pub struct ControllerEndpoint {
    pub commands: Sender<ComputeCommand>,
    pub responses: Receiver<ComputeResponse>,
}

/// A connected pair of endpoints.
pub fn channel() -> (ControllerEndpoint, ReplicaEndpoint) {
    let (ctx, crx) = crossbeam_channel::unbounded();
    let (rtx, rrx) = crossbeam_channel::unbounded();
    (
        ControllerEndpoint {
            commands: ctx,
            responses: rrx,
        },
        ReplicaEndpoint {
            commands: crx,
            responses: rtx,
        },
    )
}
