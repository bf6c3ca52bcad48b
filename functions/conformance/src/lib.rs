//! The conformance suites of mailferry's ports, written once and run unchanged against every
//! adapter: [`store_suite`] against the SQLite store and the DynamoDB store (with the
//! limiter's slots every store keeps), [`queue_suite`]
//! against the SQLite queue and SQS. An adapter is done when its suite passes; a behaviour the
//! domain relies on belongs here, not in one adapter's own tests.
//!
//! Each suite takes a factory and runs a list of named checks, each on a fresh adapter from the
//! factory, one after the other. A failing check does not stop the others: at the end the suite
//! panics naming every failed check and why. Set `CONFORMANCE_ONLY` to a comma-separated list
//! of name fragments to run only matching checks while debugging an adapter.
//!
//! Checks depend on timing only where the port is about time (visibility, delays); those poll
//! with generous deadlines and use whole seconds where SQS rounds, so they pass on a loaded
//! machine and against moto. The suites must never import an adapter crate (`embedded`, `aws`):
//! they know the ports from `domain` and nothing else.

mod audit;
mod limiter;
mod queue;
mod runner;
mod store;

pub use queue::queue_suite;
pub use store::store_suite;
