//! The OTLP messages as prost types, generated from `proto/` (OTLP v1.10.0) into `src/generated/` by `src/codegen`.
//! Their module tree mirrors the protobuf packages (`opentelemetry.proto.trace.v1` -> `trace::v1`, collector services
//! under `collector`), the shape prost's relative paths between packages need and the one `opentelemetry_proto::tonic`
//! has. The bridge builds these only where it must (responses, the JSON tree decoder of the tests); requests are
//! forwarded as the client's bytes.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// `opentelemetry.proto.common.v1`: values, attributes, instrumentation scopes.
pub mod common {
    pub mod v1 {
        include!("generated/opentelemetry.proto.common.v1.rs");
    }
}
/// `opentelemetry.proto.resource.v1`.
pub mod resource {
    pub mod v1 {
        include!("generated/opentelemetry.proto.resource.v1.rs");
    }
}
/// `opentelemetry.proto.trace.v1`: spans.
pub mod trace {
    pub mod v1 {
        include!("generated/opentelemetry.proto.trace.v1.rs");
    }
}
/// `opentelemetry.proto.metrics.v1`: metrics and their data points.
pub mod metrics {
    pub mod v1 {
        include!("generated/opentelemetry.proto.metrics.v1.rs");
    }
}
/// `opentelemetry.proto.logs.v1`: log records.
pub mod logs {
    pub mod v1 {
        include!("generated/opentelemetry.proto.logs.v1.rs");
    }
}
/// `opentelemetry.proto.profiles.v1development`: profiles and their dictionary.
pub mod profiles {
    pub mod v1development {
        include!("generated/opentelemetry.proto.profiles.v1development.rs");
    }
}
/// The collector services' requests and responses, one package per signal.
pub mod collector {
    pub mod trace {
        pub mod v1 {
            include!("generated/opentelemetry.proto.collector.trace.v1.rs");
        }
    }
    pub mod metrics {
        pub mod v1 {
            include!("generated/opentelemetry.proto.collector.metrics.v1.rs");
        }
    }
    pub mod logs {
        pub mod v1 {
            include!("generated/opentelemetry.proto.collector.logs.v1.rs");
        }
    }
    pub mod profiles {
        pub mod v1development {
            include!("generated/opentelemetry.proto.collector.profiles.v1development.rs");
        }
    }
}
