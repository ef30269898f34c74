//! otlp-bridge: receives OTLP over HTTP (JSON and protobuf) and forwards it over OTLP/gRPC.
//!
//! ```text
//!  client --HTTP--> receive (route, limits, inflate, decode)      json: transcoded to protobuf (no prost types)
//!                     |                                            protobuf: wire scan (validate + count), bytes kept
//!                     v
//!                   limit (bytes held, reserved until answered)
//!                     v
//!                   sink (direct: batch and wait for the backends; queued: fsync to the durable queue)
//!                     v
//!                   batch (per signal: Batcher state machine + worker, answers each request with its batch's fate)
//!                     v
//!                   export (fan-out to every backend; per backend retry -> tonic pass-through codec) --gRPC--> backend
//! ```
//!
//! Modules (all private; the API is the re-exports below): `config` (flags, env, defaults), `app` (wiring, run,
//! drain), `check` (`--check`), `signal` (the one generic path), `receive` (HTTP side and the only error -> HTTP
//! mapping), `json` (OTLP/JSON codec), `wire` (protobuf scan and split), `limit` (memory limit), `sink` (delivery
//! modes), `batch`, `queue` (durable queue), `retry`, `export`, `telemetry` (metrics, admin server).
//!
//! The API: [`run`] a bridge with a [`Config`] on bound [`Listeners`] until a shutdown future resolves; the
//! [`Config`] comes from the binary's flags ([`Cli`], [`Config::from_cli_and_env`]) or is built in code
//! ([`Config::default`] and its public fields); [`check`] is `--check`. [`internals`] holds the few codec steps the
//! fuzz targets and benchmarks call directly.

// Every module is private: what embedders, the binary, the tests and the benchmarks use is re-exported below, so
// rustc sees every other item as internal and reports it when nothing uses it.
mod app;
mod batch;
mod check;
// The generator of src/generated/ (test-only: `cargo test` checks the checked-in files against it).
#[cfg(test)]
mod codegen;
mod config;
mod export;
mod ingest;
mod input;
// The schema work (issue 10, items 1-2) is replacing these modules' hand-written tables with generated ones; the
// visibility of their internals is settled there.
#[allow(unreachable_pub)]
mod json;
mod limit;
pub mod proto;
mod queue;
mod receive;
mod replay;
mod retry;
mod signal;
mod sink;
mod telemetry;
// The one proptest generator of random valid OTLP requests, shared by the wire and JSON property tests.
#[cfg(test)]
mod test_gen;
#[allow(unreachable_pub)]
mod wire;

pub use app::{run, Listeners, RunError};
pub use check::{check, CheckReport};
pub use config::{
    explain_cli_error, ArchiveDefaults, AttributeMode, BackendTarget, BatchConfig, Cli, Config, ConfigError,
    FileEncoding, FileInputConfig, FileParser, InputSettings, LoadError, LogFormat, NamedInput, QueueConfig, Resolver,
    ResourceAttribute, RetryConfig, ServerTlsFiles, Setting, Source, StartAt, TlsFiles,
};
pub use export::s3::{ArchiveCompression, ArchiveFormat, StoreSettings};
pub use input::file::PositionsError;
pub use replay::{replay, ReplayCli, ReplayReport};
pub use signal::{Logs, Metrics, Profiles, Signal, SignalKind, Traces};

// Why `run` failed: the sources of `RunError`'s variants.
pub use export::SetupError;
// What an output said about a batch it did not deliver (kept, with its cause, in an export error).
pub use export::{Disposition, Problem, ProblemKind, SendError};
pub use queue::OpenError;
pub use receive::auth::TokenFileError;
pub use receive::tls::TlsError;

/// The codecs and receive steps that the fuzz targets, their shared properties (`tests/fuzz_props`) and the
/// benchmarks drive one by one. Not an API for embedders (the bridge runs them behind [`run`]); it follows the code.
pub mod internals {
    pub use crate::limit::MemoryBudget;
    pub use crate::receive::body::{inflate, ContentEncoding};
    pub use crate::receive::ReceiveError;

    /// OTLP/JSON: the receiver's transcoder, and the tree decoder and encoder the properties check it against.
    pub mod json {
        /// The tree decoder exists only with the `json-tree` feature (which tests, benchmarks and fuzz targets
        /// turn on): the bridge itself never builds a message tree.
        #[cfg(feature = "json-tree")]
        pub use crate::json::decode;
        /// The transcoder's two readers one at a time (the fast one, and serde_json it falls back to), for the
        /// differential properties and the benchmarks.
        #[cfg(feature = "json-tree")]
        pub use crate::json::readers;
        pub use crate::json::{encode, transcode, transcode_within};
    }

    /// The protobuf wire scan (validate and count) and the split at entry boundaries.
    pub mod wire {
        pub use crate::wire::{scan, split, ErrorKind, ResourceStamp, Stamped};
    }
}
