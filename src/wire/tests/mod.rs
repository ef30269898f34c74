//! Tests of the wire scanner and splitter, checked against prost decodes of the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accept;
mod cases;
mod prop;
mod resource;
mod utf8;

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::logs::v1::{ResourceLogs, ScopeLogs};
use crate::proto::metrics::v1::{
    metric::Data, ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;

use super::{Schema, LOGS, METRICS, TRACES};

/// A decoded body flattened to one row per item (or per empty container), each row a
/// one-item request with the item's resource and scope (and, for metrics, metric), encoded.
/// Comparing rows compares items with their context, in order, NaN-safe.
#[derive(Debug, PartialEq)]
pub struct Flat {
    pub items: u64,
    pub rows: Vec<Vec<u8>>,
}

/// One OTLP signal: its schema and a prost-based flattener.
pub struct Sig {
    pub schema: &'static Schema,
    pub flat: fn(&[u8]) -> Result<Flat, prost::DecodeError>,
}

pub const SIGS: [Sig; 3] = [
    Sig { schema: &TRACES, flat: flat_traces },
    Sig { schema: &METRICS, flat: flat_metrics },
    Sig { schema: &LOGS, flat: flat_logs },
];

fn flat_traces(b: &[u8]) -> Result<Flat, prost::DecodeError> {
    let req = ExportTraceServiceRequest::decode(b)?;
    let mut f = Flat { items: 0, rows: Vec::new() };
    let row = |rs: &ResourceSpans, ss: Option<ScopeSpans>| {
        let rs = ResourceSpans { scope_spans: ss.into_iter().collect(), ..rs.clone() };
        ExportTraceServiceRequest { resource_spans: vec![rs] }.encode_to_vec()
    };
    for rs in req.resource_spans {
        let head = ResourceSpans { scope_spans: vec![], ..rs.clone() };
        if rs.scope_spans.is_empty() {
            f.rows.push(row(&head, None));
        }
        for ss in rs.scope_spans {
            let sh = ScopeSpans { spans: vec![], ..ss.clone() };
            if ss.spans.is_empty() {
                f.rows.push(row(&head, Some(sh.clone())));
            }
            for sp in ss.spans {
                f.items += 1;
                f.rows.push(row(&head, Some(ScopeSpans { spans: vec![sp], ..sh.clone() })));
            }
        }
    }
    Ok(f)
}

fn flat_logs(b: &[u8]) -> Result<Flat, prost::DecodeError> {
    let req = ExportLogsServiceRequest::decode(b)?;
    let mut f = Flat { items: 0, rows: Vec::new() };
    let row = |rl: &ResourceLogs, sl: Option<ScopeLogs>| {
        let rl = ResourceLogs { scope_logs: sl.into_iter().collect(), ..rl.clone() };
        ExportLogsServiceRequest { resource_logs: vec![rl] }.encode_to_vec()
    };
    for rl in req.resource_logs {
        let head = ResourceLogs { scope_logs: vec![], ..rl.clone() };
        if rl.scope_logs.is_empty() {
            f.rows.push(row(&head, None));
        }
        for sl in rl.scope_logs {
            let sh = ScopeLogs { log_records: vec![], ..sl.clone() };
            if sl.log_records.is_empty() {
                f.rows.push(row(&head, Some(sh.clone())));
            }
            for lr in sl.log_records {
                f.items += 1;
                f.rows.push(row(&head, Some(ScopeLogs { log_records: vec![lr], ..sh.clone() })));
            }
        }
    }
    Ok(f)
}

/// A metric per data point (or the metric itself if it has none).
fn split_metric(m: Metric) -> Vec<(bool, Metric)> {
    let one = |data| (true, Metric { data: Some(data), ..m.clone() });
    let out: Vec<(bool, Metric)> = match m.data.clone() {
        Some(Data::Gauge(g)) => {
            g.data_points.into_iter().map(|p| one(Data::Gauge(Gauge { data_points: vec![p] }))).collect()
        }
        Some(Data::Sum(s)) => {
            s.data_points.iter().map(|p| one(Data::Sum(Sum { data_points: vec![p.clone()], ..s.clone() }))).collect()
        }
        Some(Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| one(Data::Histogram(Histogram { data_points: vec![p.clone()], ..h.clone() })))
            .collect(),
        Some(Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                let d = ExponentialHistogram { data_points: vec![p.clone()], ..h.clone() };
                one(Data::ExponentialHistogram(d))
            })
            .collect(),
        Some(Data::Summary(s)) => {
            s.data_points.into_iter().map(|p| one(Data::Summary(Summary { data_points: vec![p] }))).collect()
        }
        None => Vec::new(),
    };
    if out.is_empty() {
        vec![(false, m)]
    } else {
        out
    }
}

fn flat_metrics(b: &[u8]) -> Result<Flat, prost::DecodeError> {
    let req = ExportMetricsServiceRequest::decode(b)?;
    let mut f = Flat { items: 0, rows: Vec::new() };
    let row = |rm: &ResourceMetrics, sm: Option<ScopeMetrics>| {
        let rm = ResourceMetrics { scope_metrics: sm.into_iter().collect(), ..rm.clone() };
        ExportMetricsServiceRequest { resource_metrics: vec![rm] }.encode_to_vec()
    };
    for rm in req.resource_metrics {
        let head = ResourceMetrics { scope_metrics: vec![], ..rm.clone() };
        if rm.scope_metrics.is_empty() {
            f.rows.push(row(&head, None));
        }
        for sm in rm.scope_metrics {
            let sh = ScopeMetrics { metrics: vec![], ..sm.clone() };
            if sm.metrics.is_empty() {
                f.rows.push(row(&head, Some(sh.clone())));
            }
            for (is_item, m) in sm.metrics.into_iter().flat_map(split_metric) {
                f.items += u64::from(is_item);
                f.rows.push(row(&head, Some(ScopeMetrics { metrics: vec![m], ..sh.clone() })));
            }
        }
    }
    Ok(f)
}

// ---- hand encoding, for bodies prost would never produce ----

pub fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

pub fn key(num: u32, wt: u8) -> Vec<u8> {
    varint((u64::from(num) << 3) | u64::from(wt))
}

/// A length-delimited field.
pub fn ld(num: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = key(num, 2);
    out.extend(varint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}

/// A varint field.
pub fn vi(num: u32, v: u64) -> Vec<u8> {
    let mut out = key(num, 0);
    out.extend(varint(v));
    out
}

/// Wraps a span payload into a full traces request body (resource_spans[0].scope_spans[0]).
pub fn in_span(span: &[u8]) -> Vec<u8> {
    ld(1, &ld(2, &ld(2, span)))
}
