//! The resource splice against decode -> set -> encode: worked cases, then random requests of all four signals with
//! their wire shuffled the ways an encoder other than prost may write it (unknown fields in the envelopes, inside
//! `Resource` and at the top level; `resource` in several occurrences; missing resources; existing and duplicate
//! keys; long values whose length prefixes grow).

use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::profiles::v1development::ExportProfilesServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
use crate::proto::common::v1::{any_value::Value, AnyValue, KeyValue};
use crate::proto::profiles::v1development::{Profile, ProfilesDictionary, ResourceProfiles, ScopeProfiles};
use crate::proto::resource::v1::Resource;
use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message;

use super::super::scan::for_each_field;
use super::super::{scan, ResourceStamp, Schema, LOGS, METRICS, PROFILES, TRACES};
use crate::config::{AttributeMode, ResourceAttribute};
use crate::test_gen as gen;

// ---- the oracle ----

/// A request type whose envelopes' resources the oracle sets attributes on.
trait Envelopes: Message + Default {
    const SCHEMA: &'static Schema;
    fn resources(&mut self) -> Vec<&mut Option<Resource>>;
    /// The string table `key_strindex` indexes (profiles only).
    fn strings(&self) -> Vec<String> {
        Vec::new()
    }
}

impl Envelopes for ExportTraceServiceRequest {
    const SCHEMA: &'static Schema = &TRACES;
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_spans.iter_mut().map(|e| &mut e.resource).collect()
    }
}
impl Envelopes for ExportMetricsServiceRequest {
    const SCHEMA: &'static Schema = &METRICS;
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_metrics.iter_mut().map(|e| &mut e.resource).collect()
    }
}
impl Envelopes for ExportLogsServiceRequest {
    const SCHEMA: &'static Schema = &LOGS;
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_logs.iter_mut().map(|e| &mut e.resource).collect()
    }
}
impl Envelopes for ExportProfilesServiceRequest {
    const SCHEMA: &'static Schema = &PROFILES;
    fn resources(&mut self) -> Vec<&mut Option<Resource>> {
        self.resource_profiles.iter_mut().map(|e| &mut e.resource).collect()
    }
    fn strings(&self) -> Vec<String> {
        self.dictionary.as_ref().map(|d| d.string_table.clone()).unwrap_or_default()
    }
}

/// The key an attribute has once decoded: `key`, or when that is empty the string its `key_strindex` points at
/// (0 and indexes outside the table: none).
fn key_of<'a>(kv: &'a KeyValue, strings: &'a [String]) -> &'a str {
    if !kv.key.is_empty() {
        return &kv.key;
    }
    let index = usize::try_from(kv.key_strindex).ok().filter(|i| *i > 0);
    index.and_then(|i| strings.get(i)).map_or("", String::as_str)
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        key_strindex: 0,
    }
}

/// decode -> set -> encode, the meaning the splice must have.
fn oracle<R: Envelopes>(body: &[u8], attrs: &[ResourceAttribute]) -> Vec<u8> {
    let mut req = R::decode(body).unwrap();
    let strings = req.strings();
    for resource in req.resources() {
        let r = resource.get_or_insert_with(Resource::default);
        for a in attrs {
            match a.mode {
                AttributeMode::Upsert => {
                    r.attributes.retain(|kv| key_of(kv, &strings) != a.key);
                    r.attributes.push(string_kv(&a.key, &a.value));
                }
                AttributeMode::Insert if !r.attributes.iter().any(|kv| key_of(kv, &strings) == a.key) => {
                    r.attributes.push(string_kv(&a.key, &a.value));
                }
                AttributeMode::Insert => {}
            }
        }
    }
    req.encode_to_vec()
}

/// The records of `body` that are neither a resource's attribute records nor the length prefixes above them, in
/// order: what the splice must copy unchanged (unknown fields at every level, envelopes' other fields, the rest of
/// `Resource`).
fn kept(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for_each_field(body, |num, r, p| {
        if num != 1 {
            return out.push(body[r].to_vec());
        }
        let env = &body[p];
        for_each_field(env, |num, r, p| {
            if num != 1 {
                return out.push(env[r].to_vec());
            }
            let res = &env[p];
            for_each_field(res, |num, r, _| {
                if num != 1 {
                    out.push(res[r].to_vec());
                }
            });
        });
    });
    out
}

fn attr(key: &str, value: &str, mode: AttributeMode) -> ResourceAttribute {
    ResourceAttribute { key: key.into(), value: value.into(), mode }
}

/// Stamps `body` and checks everything the splice promises; returns the new body.
fn check<R: Envelopes>(body: &[u8], attrs: &[ResourceAttribute]) -> Vec<u8> {
    let schema = R::SCHEMA;
    let before = scan(schema, body).unwrap_or_else(|e| panic!("test body does not scan: {e}"));
    let stamp = ResourceStamp::new(attrs).unwrap();
    let bytes = Bytes::copy_from_slice(body);
    let bound = stamp.max_len(schema, body, Some(&before));
    assert_eq!(bound, stamp.max_len(schema, body, None), "the bound does not depend on having the scan");
    for given in [Some(&before), None] {
        let out = stamp.apply(schema, &bytes, given);
        assert!(out.body.len() <= bound, "{} bytes over the announced bound {bound}", out.body.len());
        let after = scan(schema, &out.body).unwrap_or_else(|e| panic!("spliced body does not scan: {e}"));
        assert_eq!(after.items, before.items, "the splice changed the item count");
        assert_eq!(out.scan.as_ref(), given.map(|_| &after), "the returned scan does not describe the new body");
        let got = R::decode(&out.body[..]).unwrap().encode_to_vec();
        assert!(
            got == oracle::<R>(body, attrs),
            "spliced body decodes to another request than decode -> set -> encode"
        );
        assert_eq!(kept(&out.body), kept(body), "a byte outside the attribute records changed");
    }
    stamp.apply(schema, &bytes, Some(&before)).body.to_vec()
}

// ---- worked cases ----

fn one_span_request(resource: Option<Resource>) -> ExportTraceServiceRequest {
    let span = Span { name: "op".into(), trace_id: vec![1; 16], span_id: vec![2; 8], ..Span::default() };
    let scope = ScopeSpans { spans: vec![span], ..ScopeSpans::default() };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans { resource, scope_spans: vec![scope], schema_url: "s".into() }],
    }
}

#[test]
fn no_attributes_no_stamp() {
    assert!(ResourceStamp::new(&[]).is_none());
}

#[test]
fn the_constants_written_agree_with_the_generated_tables() {
    for schema in [&TRACES, &METRICS, &LOGS, &PROFILES] {
        assert!(super::super::resource::written_numbers_match(schema), "{schema:?}");
    }
}

#[test]
fn upsert_replaces_every_occurrence_and_keeps_the_rest() {
    let resource = Resource {
        attributes: vec![string_kv("service.name", "a"), string_kv("env", "dev"), string_kv("env", "dev2")],
        dropped_attributes_count: 3,
        entity_refs: vec![],
    };
    let body = one_span_request(Some(resource)).encode_to_vec();
    let out = check::<ExportTraceServiceRequest>(&body, &[attr("env", "prod", AttributeMode::Upsert)]);
    let r = ExportTraceServiceRequest::decode(&out[..]).unwrap().resource_spans[0].resource.clone().unwrap();
    assert_eq!(r.attributes, vec![string_kv("service.name", "a"), string_kv("env", "prod")]);
    assert_eq!(r.dropped_attributes_count, 3);
}

#[test]
fn insert_leaves_a_present_key_and_the_body_alone() {
    let body = one_span_request(Some(Resource { attributes: vec![string_kv("env", "dev")], ..Resource::default() }))
        .encode_to_vec();
    let out = check::<ExportTraceServiceRequest>(&body, &[attr("env", "prod", AttributeMode::Insert)]);
    assert_eq!(out, body, "nothing to insert: the very same bytes");
    let out = check::<ExportTraceServiceRequest>(&body, &[attr("k8s.pod.name", "p-1", AttributeMode::Insert)]);
    let r = ExportTraceServiceRequest::decode(&out[..]).unwrap().resource_spans[0].resource.clone().unwrap();
    assert_eq!(r.attributes, vec![string_kv("env", "dev"), string_kv("k8s.pod.name", "p-1")]);
}

#[test]
fn a_missing_resource_is_created() {
    let body = one_span_request(None).encode_to_vec();
    let out = check::<ExportTraceServiceRequest>(&body, &[attr("a", "", AttributeMode::Insert)]);
    let r = ExportTraceServiceRequest::decode(&out[..]).unwrap().resource_spans[0].resource.clone().unwrap();
    assert_eq!(r.attributes, vec![string_kv("a", "")]);
}

#[test]
fn unknown_fields_and_repeated_resources_on_the_wire() {
    // Envelope: unknown varint 9, resource {a=old, unknown 15}, scope_spans..., resource {dropped=7, a=old2},
    // schema_url; top level: an unknown record before the entry.
    let span_req = one_span_request(None).encode_to_vec();
    let mut env_rest = Vec::new();
    for_each_field(&span_req, |_, _, p| env_rest.extend_from_slice(&span_req[p]));
    let kv = |k: &str, v: &str| string_kv(k, v).encode_to_vec();
    let rec = |num: u32, payload: &[u8]| {
        let mut b = Vec::new();
        prost::encoding::encode_key(num, prost::encoding::WireType::LengthDelimited, &mut b);
        prost::encoding::encode_varint(payload.len() as u64, &mut b);
        b.extend_from_slice(payload);
        b
    };
    let res1 = [rec(1, &kv("a", "old")), rec(15, b"x")].concat();
    let res2 = [vec![0x10, 7], rec(1, &kv("a", "old2")), rec(1, &kv("b", "keep"))].concat();
    let env = [vec![0x48, 0x01], rec(1, &res1), env_rest, rec(1, &res2)].concat();
    let body = [rec(7, b"top"), rec(1, &env)].concat();
    let long = "v".repeat(300);
    let out = check::<ExportTraceServiceRequest>(
        &body,
        &[attr("a", &long, AttributeMode::Upsert), attr("b", "no", AttributeMode::Insert)],
    );
    let r = ExportTraceServiceRequest::decode(&out[..]).unwrap().resource_spans[0].resource.clone().unwrap();
    assert_eq!(r.attributes, vec![string_kv("b", "keep"), string_kv("a", &long)]);
    assert_eq!(r.dropped_attributes_count, 7);
    assert!(out.starts_with(&rec(7, b"top")), "the top-level unknown record stays first");
}

#[test]
fn profiles_keys_by_reference_into_the_string_table_are_matched() {
    // OTLP 1.10: a profiles KeyValue may name its key by key_strindex into dictionary.string_table. The table
    // comes in two dictionary occurrences (a decode concatenates them), one before and one after the envelope.
    let by_ref = |i: i32, v: &str| KeyValue { key_strindex: i, ..string_kv("", v) };
    let resource = Resource {
        attributes: vec![by_ref(1, "old"), by_ref(3, "pod-0"), by_ref(0, "no key"), by_ref(9, "no key either")],
        ..Resource::default()
    };
    let request = |dictionary: Option<ProfilesDictionary>| ExportProfilesServiceRequest {
        resource_profiles: vec![ResourceProfiles { resource: Some(resource.clone()), ..ResourceProfiles::default() }],
        dictionary,
    };
    let table = |t: &[&str]| ProfilesDictionary {
        string_table: t.iter().map(|s| s.to_string()).collect(),
        ..ProfilesDictionary::default()
    };
    let whole = request(Some(table(&["", "service.name", "x", "k8s.pod.name"]))).encode_to_vec();
    let first = request(Some(table(&["", "service.name"]))).encode_to_vec();
    let second = request(Some(table(&["x", "k8s.pod.name"]))).encode_to_vec();
    let (mut envelope, mut dict1, mut dict2) = (Vec::new(), Vec::new(), Vec::new());
    for_each_field(&first, |num, r, _| if num == 1 { envelope = first[r].to_vec() } else { dict1 = first[r].to_vec() });
    for_each_field(&second, |num, r, _| {
        if num == 2 {
            dict2 = second[r].to_vec()
        }
    });
    let split = [dict1, envelope, dict2].concat();
    let attrs = [
        attr("service.name", "checkout", AttributeMode::Upsert),
        attr("k8s.pod.name", "pod-1", AttributeMode::Insert),
        attr("k8s.namespace.name", "shop", AttributeMode::Insert),
    ];
    for body in [whole, split] {
        let out = check::<ExportProfilesServiceRequest>(&body, &attrs);
        let got = ExportProfilesServiceRequest::decode(&out[..]).unwrap();
        assert_eq!(
            got.resource_profiles[0].resource.as_ref().unwrap().attributes,
            vec![
                by_ref(3, "pod-0"),
                by_ref(0, "no key"),
                by_ref(9, "no key either"),
                string_kv("service.name", "checkout"),
                string_kv("k8s.namespace.name", "shop"),
            ],
            "the referenced service.name replaced, the referenced k8s.pod.name kept and not added again"
        );
        assert_eq!(got.dictionary.unwrap().string_table, ["", "service.name", "x", "k8s.pod.name"]);
    }
}

#[test]
fn a_body_that_does_not_walk_comes_back_as_it_was() {
    let stamp = ResourceStamp::new(&[attr("a", "b", AttributeMode::Upsert)]).unwrap();
    let body = Bytes::from_static(&[0x0a, 0x05, 0x0a]);
    let out = std::panic::catch_unwind(|| stamp.apply(&TRACES, &body, None));
    // Debug builds assert (the caller broke the precondition); release builds return the body untouched.
    if let Ok(out) = out {
        assert_eq!(out.body, body);
    }
}

// ---- random requests ----

const KEYS: [&str; 4] = ["service.name", "k8s.pod.name", "env", "a"];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![".{0,6}", "[a-z]{120,200}"]
}

fn configured() -> impl Strategy<Value = Vec<ResourceAttribute>> {
    vec((0..KEYS.len(), value(), any::<bool>()), 1..5).prop_map(|v| {
        let mut out: Vec<ResourceAttribute> = Vec::new();
        for (k, value, upsert) in v {
            let mode = if upsert { AttributeMode::Upsert } else { AttributeMode::Insert };
            out.retain(|a| a.key != KEYS[k]);
            out.push(attr(KEYS[k], &value, mode));
        }
        out
    })
}

/// Existing attributes with the configured keys (duplicates, other value types) mixed into random resources, some
/// resources removed.
fn seed_keys<R: Envelopes>(req: &mut R, choices: &[u8]) {
    let mut c = choices.iter().copied().cycle();
    for resource in req.resources() {
        match c.next().unwrap_or(0) % 4 {
            0 => *resource = None,
            1 => {}
            _ => {
                let r = resource.get_or_insert_with(Resource::default);
                for _ in 0..c.next().unwrap_or(0) % 4 {
                    let key = KEYS[usize::from(c.next().unwrap_or(0)) % KEYS.len()];
                    let at = usize::from(c.next().unwrap_or(0)) % (r.attributes.len() + 1);
                    let v = if c.next().unwrap_or(0) % 2 == 0 {
                        Value::IntValue(7)
                    } else {
                        Value::StringValue("old".into())
                    };
                    r.attributes.insert(
                        at,
                        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), key_strindex: 0 },
                    );
                }
            }
        }
    }
}

fn profiles() -> impl Strategy<Value = ExportProfilesServiceRequest> {
    let profile = (any::<u64>(), any::<u64>(), any::<i64>()).prop_map(|(t, d, period)| Profile {
        time_unix_nano: t,
        duration_nano: d,
        period,
        ..Profile::default()
    });
    let sp = vec(profile, 0..3).prop_map(|profiles| ScopeProfiles { profiles, ..ScopeProfiles::default() });
    // Attributes by reference too: key_strindex into a table that holds some of the configured keys (in or out of
    // range, 0, negative; sometimes with a `key` beside it, which wins), as profilers that intern strings write them.
    let by_ref = (prop_oneof![Just(""), Just("a")], -1..8i32, ".{0,3}")
        .prop_map(|(key, key_strindex, v)| KeyValue { key_strindex, ..string_kv(key, &v) });
    let attributes = (gen::attrs(), vec(by_ref, 0..4)).prop_map(|(a, b)| [a, b].concat());
    let rp = (attributes, vec(sp, 0..3), ".{0,4}").prop_map(|(attributes, scope_profiles, schema_url)| {
        ResourceProfiles { resource: Some(Resource { attributes, ..Resource::default() }), scope_profiles, schema_url }
    });
    let table = vec(prop_oneof![".{0,4}", (0..KEYS.len()).prop_map(|k| KEYS[k].to_string())], 0..6);
    (vec(rp, 0..3), table, any::<bool>()).prop_map(|(resource_profiles, string_table, present)| {
        ExportProfilesServiceRequest {
            resource_profiles,
            dictionary: present.then(|| ProfilesDictionary { string_table, ..ProfilesDictionary::default() }),
        }
    })
}

fn len_record(num: u32, payload: &[u8], out: &mut Vec<u8>) {
    prost::encoding::encode_key(num, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A well-formed field number no OTLP message here uses, with a random wire type.
fn unknown(c: &mut impl Iterator<Item = u8>, out: &mut Vec<u8>) {
    let num = 20 + u32::from(c.next().unwrap_or(0)) % 200;
    match c.next().unwrap_or(0) % 4 {
        0 => {
            prost::encoding::encode_key(num, prost::encoding::WireType::Varint, out);
            prost::encoding::encode_varint(u64::from(c.next().unwrap_or(0)) << 20, out);
        }
        1 => {
            prost::encoding::encode_key(num, prost::encoding::WireType::SixtyFourBit, out);
            out.extend_from_slice(&[c.next().unwrap_or(0); 8]);
        }
        2 => {
            prost::encoding::encode_key(num, prost::encoding::WireType::ThirtyTwoBit, out);
            out.extend_from_slice(&[c.next().unwrap_or(0); 4]);
        }
        _ => len_record(num, &vec![0xff; usize::from(c.next().unwrap_or(0) % 5)], out),
    }
}

/// Rewrites a prost-encoded body the way other encoders may: unknown records among the top-level entries, among an
/// envelope's fields and inside `Resource`; a resource's fields spread over several `resource` occurrences (in
/// order, before and after the scopes). Decodes to the same request (prost drops unknown fields, merges resources).
fn shuffle(body: &[u8], choices: &[u8]) -> Vec<u8> {
    let mut c = choices.iter().copied().cycle();
    let mut out = Vec::new();
    for_each_field(body, |num, r, p| {
        if c.next().unwrap_or(0) % 3 == 0 {
            unknown(&mut c, &mut out);
        }
        if num != 1 {
            return out.extend_from_slice(&body[r]);
        }
        let env = &body[p];
        let (mut resource_fields, mut rest, mut had_resource) = (Vec::new(), Vec::new(), false);
        for_each_field(env, |num, r, p| {
            if num == 1 {
                had_resource = true;
                let res = &env[p];
                for_each_field(res, |_, r, _| resource_fields.push(res[r].to_vec()));
            } else {
                rest.push(env[r].to_vec());
            }
        });
        let mut payload = Vec::new();
        if c.next().unwrap_or(0) % 3 == 0 {
            unknown(&mut c, &mut payload);
        }
        let occurrences = if had_resource { 1 + usize::from(c.next().unwrap_or(0) % 3) } else { 0 };
        let per = resource_fields.len().div_ceil(occurrences.max(1)).max(1);
        let mut groups: Vec<Vec<u8>> = resource_fields.chunks(per).map(<[Vec<u8>]>::concat).collect();
        groups.resize(occurrences.max(groups.len()), Vec::new());
        let split_at = usize::from(c.next().unwrap_or(0)) % (groups.len() + 1);
        put_resources(&groups[..split_at], &mut payload, &mut c);
        payload.extend(rest.concat());
        put_resources(&groups[split_at..], &mut payload, &mut c);
        if c.next().unwrap_or(0) % 3 == 0 {
            unknown(&mut c, &mut payload);
        }
        len_record(1, &payload, &mut out);
    });
    out
}

fn put_resources(groups: &[Vec<u8>], payload: &mut Vec<u8>, c: &mut impl Iterator<Item = u8>) {
    for g in groups {
        let mut g = g.clone();
        if c.next().unwrap_or(0).is_multiple_of(3) {
            unknown(c, &mut g);
        }
        len_record(1, &g, payload);
    }
}

fn case<R: Envelopes + std::fmt::Debug>(
    req: impl Strategy<Value = R>,
) -> impl Strategy<Value = (Vec<u8>, Vec<ResourceAttribute>)> {
    (req, vec(any::<u8>(), 8..64), vec(any::<u8>(), 8..64), configured()).prop_map(|(mut req, seed, wire, attrs)| {
        seed_keys(&mut req, &seed);
        (shuffle(&req.encode_to_vec(), &wire), attrs)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn traces_splice_equals_decode_set_encode((body, attrs) in case(gen::traces())) {
        check::<ExportTraceServiceRequest>(&body, &attrs);
    }

    #[test]
    fn metrics_splice_equals_decode_set_encode((body, attrs) in case(gen::metrics())) {
        check::<ExportMetricsServiceRequest>(&body, &attrs);
    }

    #[test]
    fn logs_splice_equals_decode_set_encode((body, attrs) in case(gen::logs())) {
        check::<ExportLogsServiceRequest>(&body, &attrs);
    }

    #[test]
    fn profiles_splice_equals_decode_set_encode((body, attrs) in case(profiles())) {
        check::<ExportProfilesServiceRequest>(&body, &attrs);
    }
}
