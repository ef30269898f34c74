//! The metrics of backend address balancing (`otlp_bridge_backend_address*`): how many addresses a backend's name
//! has, and the export attempts each address took.

use metrics::Label;

use super::Telemetry;

impl Telemetry {
    pub(super) fn describe_balancing(&self) {
        self.describe_counter(
            "otlp_bridge_backend_address_exports_total",
            "export attempts per backend address (label address: ip:port), by outcome: ok, failed".into(),
        );
        self.describe_gauge("otlp_bridge_backend_addresses", "addresses a backend's host name resolves to now");
    }

    /// The number of addresses `backend` has now.
    pub(crate) fn backend_addresses(&self, backend: &str, known: usize) {
        self.gauge("otlp_bridge_backend_addresses", vec![Label::new("backend", backend.to_string())]).set(known as f64);
    }

    /// A new address of `backend`: its counters start at 0.
    pub(crate) fn backend_address_known(&self, backend: &str, address: &str) {
        for outcome in ["ok", "failed"] {
            self.address_counter(backend, address, outcome).increment(0);
        }
    }

    /// One export attempt on one address of `backend`.
    pub(crate) fn backend_address_export(&self, backend: &str, address: &str, ok: bool) {
        self.address_counter(backend, address, if ok { "ok" } else { "failed" }).increment(1);
    }

    fn address_counter(&self, backend: &str, address: &str, outcome: &'static str) -> metrics::Counter {
        let labels = vec![
            Label::new("backend", backend.to_string()),
            Label::new("address", address.to_string()),
            Label::new("outcome", outcome),
        ];
        self.counter("otlp_bridge_backend_address_exports_total", labels)
    }
}
