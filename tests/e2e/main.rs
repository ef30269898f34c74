//! Every end-to-end test of otlp-bridge, in one test binary: one module per behaviour area, all on one harness
//! (`common`). One crate means rustc sees every helper of the harness once (an unused one is reported, not hidden
//! under `allow(dead_code)`), and cargo compiles and links tonic, hyper, rustls and reqwest into one binary instead
//! of one per file. See tests/README.md for the layout and the rules; add a behaviour area as a module here.
//!
//! Run one area with `cargo test --test e2e protocol::`, one test with its name; `--ignored` tests are the long ones
//! `.ci/run` runs against the release binary.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../fuzz_props/mod.rs"]
mod fuzz_props;

// In process (the library on 127.0.0.1:0 against the in-process MockBackend).
mod admin;
mod backend_errors;
mod balance;
mod connection_age;
mod delivery;
mod gateway_tenants;
mod gateway_tls;
mod grpc;
mod pipeline;
mod profiles;
mod protocol;
mod queue;
mod real_client_rust;
mod resource_attributes;
mod robustness;
mod tls;

// Mostly as a binary (the otlp-bridge executable as a child process).
mod adversarial;
mod config_file;
mod debug_backend;
mod durability;
mod files;
mod gateway_auth;
mod operators;
mod shutdown;

// The fuzz corpora, replayed through the properties fuzz/ shares.
mod fuzz_corpus;
