//! `resource_splice`: the resource attributes splice (`wire::ResourceStamp`) against decode -> set -> encode.

use bytes::Bytes;
use otlp_bridge::internals::wire::{self, ResourceStamp};
use otlp_bridge::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_bridge::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_bridge::proto::collector::profiles::v1development::ExportProfilesServiceRequest;
use otlp_bridge::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_bridge::proto::common::v1::{any_value::Value, AnyValue, KeyValue};
use otlp_bridge::proto::resource::v1::Resource;
use otlp_bridge::{AttributeMode, Logs, Metrics, Profiles, ResourceAttribute, Signal, Traces};
use prost::Message;

/// The keys the spec byte configures: two bits each (0 absent, 1 upsert, 2 insert, 3 upsert of a 200-byte value,
/// whose length prefix takes two bytes). Real payloads carry `service.name`; the others are mostly absent.
const KEYS: [&str; 4] = ["service.name", "k8s.pod.name", "deployment.environment", "a"];

/// A request type whose envelopes' resources the oracle can set attributes on.
pub trait Envelopes: Message + Default {
    /// Each envelope's `resource`.
    fn resources(&mut self) -> Vec<&mut Option<Resource>>;
    /// The string table a `KeyValue.key_strindex` indexes (profiles only).
    fn strings(&self) -> Vec<String> {
        Vec::new()
    }
}

impl Envelopes for ExportTraceServiceRequest {
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_spans.iter_mut().map(|e| &mut e.resource).collect()
    }
}
impl Envelopes for ExportMetricsServiceRequest {
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_metrics.iter_mut().map(|e| &mut e.resource).collect()
    }
}
impl Envelopes for ExportLogsServiceRequest {
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_logs.iter_mut().map(|e| &mut e.resource).collect()
    }
}
impl Envelopes for ExportProfilesServiceRequest {
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_profiles.iter_mut().map(|e| &mut e.resource).collect()
    }
    fn strings(&self) -> Vec<String> {
        self.dictionary.as_ref().map(|d| d.string_table.clone()).unwrap_or_default()
    }
}

/// An attribute's key once decoded: `key`, or when that is empty the string its `key_strindex` points at (index 0
/// and indexes outside the table name nothing).
fn key_of<'a>(kv: &'a KeyValue, strings: &'a [String]) -> &'a str {
    if !kv.key.is_empty() {
        return &kv.key;
    }
    let index = usize::try_from(kv.key_strindex).ok().filter(|i| *i > 0);
    index.and_then(|i| strings.get(i)).map_or("", String::as_str)
}

/// Input = signal selector byte (`% 4`: traces, metrics, logs, profiles), attribute spec byte (see [`KEYS`]; none
/// configured means an upsert of `service.name`), protobuf body.
///
/// For a body the wire scan accepts, the stamped body: scans with the same item count; comes with the scan of
/// itself; is no longer than `max_len` announced; decodes (prost) to what decoding the body, setting the attributes
/// on every resource (creating missing ones; upsert: every attribute of the key removed, then `key = value` pushed;
/// insert: pushed if no attribute has the key; a profiles attribute's key may be a `key_strindex` into the
/// request's string table) and encoding gives; and keeps every byte outside the resources'
/// attribute records (unknown fields at every level, the envelopes' other fields, the rest of `Resource`), in order.
pub fn resource_splice(data: &[u8]) {
    let [selector, spec, body @ ..] = data else { return };
    let mut attrs: Vec<ResourceAttribute> = Vec::new();
    for (i, key) in KEYS.iter().enumerate() {
        let (mode, value) = match (spec >> (2 * i)) & 3 {
            0 => continue,
            1 => (AttributeMode::Upsert, "v".to_string()),
            2 => (AttributeMode::Insert, String::new()),
            _ => (AttributeMode::Upsert, "long".repeat(50)),
        };
        attrs.push(ResourceAttribute { key: key.to_string(), value, mode });
    }
    if attrs.is_empty() {
        attrs.push(ResourceAttribute { key: KEYS[0].into(), value: "v".into(), mode: AttributeMode::Upsert });
    }
    match selector % 4 {
        0 => splice_signal::<Traces>(body, &attrs),
        1 => splice_signal::<Metrics>(body, &attrs),
        2 => splice_signal::<Logs>(body, &attrs),
        _ => splice_signal::<Profiles>(body, &attrs),
    }
}

fn splice_signal<S: Signal>(body: &[u8], attrs: &[ResourceAttribute])
where
    S::Request: Envelopes,
{
    let schema = S::KIND.schema();
    let Ok(before) = wire::scan(schema, body) else { return };
    let stamp = ResourceStamp::new(attrs).expect("attributes configured");
    let bytes = Bytes::copy_from_slice(body);
    let bound = stamp.max_len(schema, body, Some(&before));
    let out = stamp.apply(schema, &bytes, Some(&before));
    assert!(out.body.len() <= bound, "{} bytes over the announced {bound}", out.body.len());
    let after = wire::scan(schema, &out.body).unwrap_or_else(|e| panic!("the stamped body does not scan: {e}"));
    assert_eq!(after.items, before.items, "stamping changed the item count");
    assert_eq!(out.scan.as_ref(), Some(&after), "the returned scan does not describe the stamped body");
    let without_scan = stamp.apply(schema, &bytes, None);
    assert!(without_scan.body == out.body && without_scan.scan.is_none(), "the scan changed the result");

    let mut want = S::Request::decode(body).expect("scanned, so prost decodes it");
    let strings = want.strings();
    for resource in want.resources() {
        let r = resource.get_or_insert_with(Resource::default);
        for a in attrs {
            let kv = KeyValue {
                key: a.key.clone(),
                value: Some(AnyValue { value: Some(Value::StringValue(a.value.clone())) }),
                key_strindex: 0,
            };
            match a.mode {
                AttributeMode::Upsert => {
                    r.attributes.retain(|x| key_of(x, &strings) != a.key);
                    r.attributes.push(kv);
                }
                AttributeMode::Insert if !r.attributes.iter().any(|x| key_of(x, &strings) == a.key) => {
                    r.attributes.push(kv)
                }
                AttributeMode::Insert => {}
            }
        }
    }
    let got = S::Request::decode(&out.body[..]).expect("scanned, so prost decodes it");
    // Compared encoded: NaN doubles make the messages themselves unequal to themselves.
    assert!(
        got.encode_to_vec() == want.encode_to_vec(),
        "stamped body decodes to another request than decode -> set -> encode"
    );
    assert!(kept(&out.body) == kept(body), "a byte outside the resources' attribute records changed");
}

/// Each field of a validated message: (number, whole record, payload of a length-delimited one).
fn fields(msg: &[u8]) -> Vec<(u32, &[u8], &[u8])> {
    let mut out = Vec::new();
    let mut rest = msg;
    while !rest.is_empty() {
        let start = rest;
        let (num, wt) = prost::encoding::decode_key(&mut rest).expect("validated");
        let payload: &[u8] = match wt {
            prost::encoding::WireType::Varint => {
                prost::encoding::decode_varint(&mut rest).expect("validated");
                &[]
            }
            prost::encoding::WireType::SixtyFourBit => {
                rest = &rest[8..];
                &[]
            }
            prost::encoding::WireType::ThirtyTwoBit => {
                rest = &rest[4..];
                &[]
            }
            _ => {
                let len = prost::encoding::decode_varint(&mut rest).expect("validated") as usize;
                let (p, r) = rest.split_at(len);
                rest = r;
                p
            }
        };
        out.push((num, &start[..start.len() - rest.len()], payload));
    }
    out
}

/// The records of a request that are not inside a resource's attribute list or the length prefixes above them.
fn kept(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    for (num, record, envelope) in fields(body) {
        if num != 1 {
            out.push(record);
            continue;
        }
        for (num, record, resource) in fields(envelope) {
            if num != 1 {
                out.push(record);
                continue;
            }
            out.extend(fields(resource).into_iter().filter(|f| f.0 != 1).map(|f| f.1));
        }
    }
    out
}
