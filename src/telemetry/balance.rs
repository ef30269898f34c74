//! The metrics of backend address balancing (`otlp_bridge_backend_address*`): how many addresses a backend's name
//! has, and the export attempts each address took.

use super::Telemetry;

impl Telemetry {
    pub(super) fn describe_balancing(&self) {
        self.describe_counter(
            "otlp_bridge_backend_address_exports_total",
            "export attempts per backend address (label address: ip:port), by outcome: ok, failed".into(),
        );
        self.describe_gauge("otlp_bridge_backend_addresses", "addresses a backend's host name resolves to now");
    }
}
