//! environmentd: the coordinator process, and the whole system in the embedded default.
//!
//! The life of a statement:
//! 1. [`pgwire::serve`] accepts a connection; its handlers decode each protocol message
//!    and call the connection's [`adapter::Client`] with the [`session::Session`].
//! 2. [`adapter::Client::execute_simple`] parses the text (`sql::parse::parse`) and
//!    sends a [`coord::Command`] to the coordinator thread.
//! 3. [`coord::Coordinator`] plans each statement (`sql::plan`: HIR → MIR →
//!    optimizer) and executes it:
//!    - INSERT / UPDATE / DELETE: rows to write, computed directly when constant or by a
//!      peek otherwise, get a write timestamp from the [`oracle::TimestampOracle`] and
//!      go to storaged (`storage_client::StorageController::append`), which appends
//!      them to the table's persist shard with `compare_and_append`;
//!    - SELECT: the optimized MIR is lowered to LIR (`sql::lir::plan_to_lir`); the
//!      coordinator sends `CreateDataflow` and `Peek` at the oracle's read timestamp
//!      through the `compute_client::ComputeController`;
//! 4. the replica (`computed`) renders the dataflow (`render`), reads the tables'
//!    shards with `render::persist_source`, arranges the result, and answers the peek
//!    once the arrangement is complete at the timestamp;
//! 5. the coordinator drops the dataflow, applies ORDER BY / LIMIT
//!    (`expr::RowSetFinishing`), and replies; pgwire encodes the rows.
//!
//! Module map: [`server`] starts everything; [`catalog`] and [`oracle`] are durable in
//! the consensus store; [`testing`] runs it all in-process for tests.

pub mod adapter;
pub mod catalog;
pub mod coord;
pub mod introspection;
pub mod oracle;
pub mod pgwire;
pub mod server;
pub mod session;
pub mod subscribe;
pub mod testing;
