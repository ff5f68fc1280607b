//! The compute protocol and its controller.
//!
//! Module map:
//! - [`protocol`]: [`ComputeCommand`] and [`ComputeResponse`], what crosses between the
//!   coordinator and a replica, and [`DataflowDescription`], what a replica renders.
//! - [`controller`]: [`ComputeController`], which sends every command to every replica
//!   (active replication) and merges their responses so a replica can die unnoticed.
//! - [`transport`]: the in-process channel transport (TCP comes with multi-process).

pub mod controller;
pub mod protocol;
pub mod transport;

pub use controller::{ComputeController, ControllerResponse};
pub use protocol::{
    BuildDesc, ComputeCommand, ComputeResponse, DataflowDescription, IndexExport, OperatorStat,
    Peek, PeekResponse, PersistSinkExport, SourceImport, SubscribeBatch, SubscribeExport,
};
