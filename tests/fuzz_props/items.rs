//! Items of a decoded request with their context, to compare a body with the chunks `wire::split` makes of it.

use otlp_bridge::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_bridge::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_bridge::proto::collector::profiles::v1development::ExportProfilesServiceRequest;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_bridge::proto::logs::v1::{ResourceLogs, ScopeLogs};
use otlp_bridge::proto::metrics::v1::metric::Data;
use otlp_bridge::proto::metrics::v1::{
    Exemplar, ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use otlp_bridge::proto::profiles::v1development::{ResourceProfiles, ScopeProfiles};
use otlp_bridge::proto::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;

/// A request type whose items can be listed.
pub trait Items {
    /// Each item as the protobuf of a request holding only it, under its resource, scope (and metric).
    fn items(&self) -> Vec<Vec<u8>>;
    /// Whether every trace (and profile) id is 0 or 16 bytes and every span id 0 or 8 (the Collector's rule the scan
    /// adds).
    fn ids_ok(&self) -> bool;
}

fn id_ok(id: &[u8], len: usize) -> bool {
    id.is_empty() || id.len() == len
}

impl Items for ExportTraceServiceRequest {
    fn items(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for rs in &self.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    let one = ExportTraceServiceRequest {
                        resource_spans: vec![ResourceSpans {
                            resource: rs.resource.clone(),
                            schema_url: rs.schema_url.clone(),
                            scope_spans: vec![ScopeSpans {
                                scope: ss.scope.clone(),
                                schema_url: ss.schema_url.clone(),
                                spans: vec![span.clone()],
                            }],
                        }],
                    };
                    out.push(one.encode_to_vec());
                }
            }
        }
        out
    }

    fn ids_ok(&self) -> bool {
        let spans = self.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans);
        spans.clone().all(|s| id_ok(&s.trace_id, 16) && id_ok(&s.span_id, 8) && id_ok(&s.parent_span_id, 8))
            && spans.flat_map(|s| &s.links).all(|l| id_ok(&l.trace_id, 16) && id_ok(&l.span_id, 8))
    }
}

impl Items for ExportLogsServiceRequest {
    fn items(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for rl in &self.resource_logs {
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    let one = ExportLogsServiceRequest {
                        resource_logs: vec![ResourceLogs {
                            resource: rl.resource.clone(),
                            schema_url: rl.schema_url.clone(),
                            scope_logs: vec![ScopeLogs {
                                scope: sl.scope.clone(),
                                schema_url: sl.schema_url.clone(),
                                log_records: vec![record.clone()],
                            }],
                        }],
                    };
                    out.push(one.encode_to_vec());
                }
            }
        }
        out
    }

    fn ids_ok(&self) -> bool {
        let mut records = self.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records);
        records.all(|r| id_ok(&r.trace_id, 16) && id_ok(&r.span_id, 8))
    }
}

/// The metric with only its `i`-th data point (`None` when it has fewer).
fn metric_with_point(m: &Metric, i: usize) -> Option<Metric> {
    let data = match m.data.as_ref()? {
        Data::Gauge(g) => Data::Gauge(Gauge { data_points: vec![g.data_points.get(i)?.clone()] }),
        Data::Sum(s) => Data::Sum(Sum {
            data_points: vec![s.data_points.get(i)?.clone()],
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        }),
        Data::Histogram(h) => Data::Histogram(Histogram {
            data_points: vec![h.data_points.get(i)?.clone()],
            aggregation_temporality: h.aggregation_temporality,
        }),
        Data::ExponentialHistogram(h) => Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![h.data_points.get(i)?.clone()],
            aggregation_temporality: h.aggregation_temporality,
        }),
        Data::Summary(s) => Data::Summary(Summary { data_points: vec![s.data_points.get(i)?.clone()] }),
    };
    Some(Metric {
        name: m.name.clone(),
        description: m.description.clone(),
        unit: m.unit.clone(),
        metadata: m.metadata.clone(),
        data: Some(data),
    })
}

fn exemplars(m: &Metric) -> Vec<&Exemplar> {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.iter().flat_map(|p| &p.exemplars).collect(),
        Some(Data::Sum(s)) => s.data_points.iter().flat_map(|p| &p.exemplars).collect(),
        Some(Data::Histogram(h)) => h.data_points.iter().flat_map(|p| &p.exemplars).collect(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.iter().flat_map(|p| &p.exemplars).collect(),
        Some(Data::Summary(_)) | None => Vec::new(),
    }
}

impl Items for ExportMetricsServiceRequest {
    fn items(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for rm in &self.resource_metrics {
            for sm in &rm.scope_metrics {
                for metric in &sm.metrics {
                    for i in 0.. {
                        let Some(one_point) = metric_with_point(metric, i) else { break };
                        let one = ExportMetricsServiceRequest {
                            resource_metrics: vec![ResourceMetrics {
                                resource: rm.resource.clone(),
                                schema_url: rm.schema_url.clone(),
                                scope_metrics: vec![ScopeMetrics {
                                    scope: sm.scope.clone(),
                                    schema_url: sm.schema_url.clone(),
                                    metrics: vec![one_point],
                                }],
                            }],
                        };
                        out.push(one.encode_to_vec());
                    }
                }
            }
        }
        out
    }

    fn ids_ok(&self) -> bool {
        let mut metrics = self.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
        metrics.all(|m| exemplars(m).iter().all(|e| id_ok(&e.trace_id, 16) && id_ok(&e.span_id, 8)))
    }
}

impl Items for ExportProfilesServiceRequest {
    /// Each profile with its resource, scope and the request's dictionary (which its indices point into).
    fn items(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for rp in &self.resource_profiles {
            for sp in &rp.scope_profiles {
                for profile in &sp.profiles {
                    let one = ExportProfilesServiceRequest {
                        resource_profiles: vec![ResourceProfiles {
                            resource: rp.resource.clone(),
                            schema_url: rp.schema_url.clone(),
                            scope_profiles: vec![ScopeProfiles {
                                scope: sp.scope.clone(),
                                schema_url: sp.schema_url.clone(),
                                profiles: vec![profile.clone()],
                            }],
                        }],
                        dictionary: self.dictionary.clone(),
                    };
                    out.push(one.encode_to_vec());
                }
            }
        }
        out
    }

    fn ids_ok(&self) -> bool {
        let mut profiles = self.resource_profiles.iter().flat_map(|r| &r.scope_profiles).flat_map(|s| &s.profiles);
        let links = self.dictionary.iter().flat_map(|d| &d.link_table);
        profiles.all(|p| id_ok(&p.profile_id, 16))
            && links.into_iter().all(|l| id_ok(&l.trace_id, 16) && id_ok(&l.span_id, 8))
    }
}
