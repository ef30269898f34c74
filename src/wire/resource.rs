//! Resource attributes stamped on a validated request body without decoding it.
//!
//! A request is a run of top-level entries (`resource_spans`, `resource_metrics`, `resource_logs`,
//! `resource_profiles`), each an envelope whose `resource` field holds the `Resource` the attributes go on. Only
//! those `Resource` messages are rewritten: the attribute records of an upserted key are left out, the configured
//! attributes appended, and the two length prefixes above them (the resource's and its envelope's) written anew.
//! Every other byte is copied as a slice, in order: items, scopes, `schema_url`, `dropped_attributes_count`,
//! `entity_refs` and unknown fields, in the envelopes and inside `Resource` alike. Nothing is decoded beyond the
//! keys of the resource's attributes; the output is one buffer sized before the first byte is written.
//!
//! The result decodes (prost) equal to decode -> set -> encode, where "set" on the decoded request is, for every
//! envelope (a missing `resource` created): each upserted key's attributes removed and then `key = value` pushed;
//! each inserted key pushed only if no attribute has it; in the configured order. Why that equality holds on the
//! wire: an envelope's `resource` may occur several times, which a decode merges (attribute lists concatenated in
//! order, scalars from the last), so keys are looked up and removed in every occurrence and the new attributes are
//! appended to the last one, which is the end of the merged list.
//!
//! An attribute's key is its `key` field (the last occurrence, as a decode keeps). In a profiles request a key may
//! be a reference instead: `key_strindex`, an index into the request's `dictionary.string_table` (OTLP 1.10:
//! "key MUST NOT be set if key_strindex is used"), which is how a profiler that interns strings may write its
//! resource attributes too. So where the request type has a string table, an attribute without a `key` (or with an
//! empty one) is known by the string its `key_strindex` points at (index 0 is "not set", an index outside the
//! table names nothing), the table being every `dictionary` occurrence's strings in order, as a decode merges them,
//! wherever the dictionary sits in the body. An upserted key's referencing attributes are left out like the others;
//! the table itself is copied unchanged (a string no longer referenced stays: the spec only says there SHOULD NOT be
//! orphans). Other signals have no string table: there `key_strindex` names nothing, as the spec asks of receivers.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::scan::{for_each_field, read_key, read_varint};
use super::schema::{Kind, Schema};
use super::split::{put_varint, varint_len};
use super::{Entry, Scan};
use crate::config::{AttributeMode, ResourceAttribute};

/// Field numbers the new attributes are written with: `Resource.attributes`, `KeyValue.key`, `KeyValue.value`,
/// `AnyValue.string_value`. Reading goes by the generated tables ([`layout`]); a test checks these agree with them.
const ATTRIBUTES: u32 = 1;
const KEY: u32 = 1;
const VALUE: u32 = 2;
const STRING_VALUE: u32 = 1;

/// Most bytes an envelope can grow by besides its new attribute records: a created `resource` field's key (up to 5
/// bytes) and length (up to 10), or an existing resource's longer length prefix (up to 9 more), plus the envelope's
/// own longer length prefix (up to 9 more).
const ENVELOPE_OVERHEAD: usize = 5 + 10 + 9;

/// The configured resource attributes, encoded once at start-up as the `Resource.attributes` records they become.
#[derive(Debug, Clone)]
pub struct ResourceStamp {
    attrs: Vec<Attr>,
    /// Bytes of every record together: the most an envelope's attributes grow by.
    records_len: usize,
}

#[derive(Debug, Clone)]
struct Attr {
    key: Box<[u8]>,
    /// `Resource.attributes` record: key, length, `KeyValue { key, value: AnyValue { string_value } }`.
    record: Box<[u8]>,
    upsert: bool,
}

/// A body with its resources stamped.
#[derive(Debug, Clone)]
pub struct Stamped {
    /// The new request body.
    pub body: Bytes,
    /// The scan passed in, its entries moved to where they are in `body` (same items); `None` when none was passed.
    pub scan: Option<Scan>,
}

/// Where the resource of a request type sits, read from the generated tables.
#[derive(Clone, Copy)]
struct Layout {
    /// Top-level field of the envelopes (`resource_spans` = 1, ...).
    entries: u32,
    /// The envelope's `resource` field.
    resource: u32,
    /// `Resource.attributes`.
    attributes: u32,
    /// `KeyValue.key`.
    key: u32,
    /// `KeyValue.key_strindex` and, in the request, the dictionary field and its string table field: the
    /// references a key may be written as, when the request type has a string table (profiles).
    strindex: Option<Strindex>,
}

#[derive(Clone, Copy)]
struct Strindex {
    key_strindex: u32,
    dictionary: u32,
    string_table: u32,
}

fn layout(schema: &'static Schema) -> Option<Layout> {
    let field = |s: &'static Schema, name: &str| s.fields.iter().find(|f| f.name == name);
    let msg = |f: &super::schema::Field| match f.kind {
        Kind::Msg(s) => Some(s),
        _ => None,
    };
    schema.fields.iter().filter(|f| f.repeated).find_map(|entries| {
        let envelope = msg(entries)?;
        let resource = field(envelope, "resource")?;
        let resource_schema = msg(resource).filter(|s| s.name == "Resource")?;
        let attributes = field(resource_schema, "attributes")?;
        let kv = msg(attributes)?;
        let key = field(kv, "key")?;
        let strindex = field(kv, "key_strindex").and_then(|key_strindex| {
            schema.fields.iter().filter(|f| !f.repeated).find_map(|dictionary| {
                let string_table = field(msg(dictionary)?, "string_table")?;
                Some(Strindex {
                    key_strindex: key_strindex.num,
                    dictionary: dictionary.num,
                    string_table: string_table.num,
                })
            })
        });
        Some(Layout {
            entries: entries.num,
            resource: resource.num,
            attributes: attributes.num,
            key: key.num,
            strindex,
        })
    })
}

const fn len_key(num: u32) -> u64 {
    ((num as u64) << 3) | 2
}

fn put_record(out: &mut BytesMut, num: u32, payload: &[u8]) {
    put_varint(out, len_key(num));
    put_varint(out, payload.len() as u64);
    out.put_slice(payload);
}

impl Attr {
    fn new(key: &str, value: &str, upsert: bool) -> Attr {
        let mut any = BytesMut::new();
        put_record(&mut any, STRING_VALUE, value.as_bytes());
        let mut kv = BytesMut::new();
        put_record(&mut kv, KEY, key.as_bytes());
        put_record(&mut kv, VALUE, &any);
        let mut record = BytesMut::new();
        put_record(&mut record, ATTRIBUTES, &kv);
        Attr { key: key.as_bytes().into(), record: record.to_vec().into_boxed_slice(), upsert }
    }
}

/// Reusable per-request scratch space, so an envelope costs no allocation.
#[derive(Default)]
struct Work {
    /// The `resource` occurrences of the current envelope.
    resources: Vec<Occurrence>,
    /// Attribute records to leave out (upserted keys), in envelope payload offsets, in order.
    drops: Vec<Range<usize>>,
    /// Per configured attribute: whether the envelope's resource has its key.
    present: Vec<bool>,
    /// The request's string table (body offsets of each string), which `key_strindex` indexes; empty when the
    /// request type has none.
    strings: Vec<Range<usize>>,
}

struct Occurrence {
    /// Key, length and payload, in envelope payload offsets.
    record: Range<usize>,
    payload: Range<usize>,
    /// Bytes of the key as the client wrote it (copied, not re-encoded).
    key_len: usize,
    /// Its records in `Work::drops`.
    drops: Range<usize>,
    /// Payload length once rewritten.
    new_len: usize,
}

impl ResourceStamp {
    /// The stamp for `attributes`; `None` when there are none, so that a bridge without attributes never touches a
    /// body. Keys are expected once each (the configuration sees to it); a repeated key keeps its last entry.
    pub fn new(attributes: &[ResourceAttribute]) -> Option<ResourceStamp> {
        let mut attrs: Vec<Attr> = Vec::with_capacity(attributes.len());
        for a in attributes {
            attrs.retain(|x| *x.key != *a.key.as_bytes());
            attrs.push(Attr::new(&a.key, &a.value, a.mode == AttributeMode::Upsert));
        }
        let records_len = attrs.iter().map(|a| a.record.len()).sum();
        (!attrs.is_empty()).then_some(ResourceStamp { attrs, records_len })
    }

    /// The most bytes [`apply`](Self::apply) can return for `body` (which it allocates up front): what the caller
    /// reserves in its memory budget before calling it. `scan` is `body`'s, when there is one (it saves a walk).
    pub fn max_len(&self, schema: &'static Schema, body: &[u8], scan: Option<&Scan>) -> usize {
        let Some(layout) = layout(schema) else { return body.len() };
        let entries = match scan {
            Some(s) => s.entries.len(),
            None => {
                let mut n = 0;
                for_each_field(body, |num, _, _| n += usize::from(num == layout.entries));
                n
            }
        };
        body.len().saturating_add(entries.saturating_mul(self.records_len + ENVELOPE_OVERHEAD))
    }

    /// Stamps every resource of `body`, a request of type `schema` that [`super::scan`] accepted (`scan`, when
    /// given, must be its result: the returned one then describes the new body). See the module documentation for
    /// what changes and what is kept. A body that does not walk (not scanned) comes back as it was.
    pub fn apply(&self, schema: &'static Schema, body: &Bytes, scan: Option<&Scan>) -> Stamped {
        let unchanged = || Stamped { body: body.clone(), scan: scan.cloned() };
        let Some(layout) = layout(schema) else { return unchanged() };
        let mut out = BytesMut::with_capacity(self.max_len(schema, body, scan));
        let mut work = Work::default();
        if let Some(refs) = layout.strindex {
            // A body the scan accepted, so the dictionary walks; its strings are in order of occurrence.
            for_each_field(body, |num, _, dictionary| {
                if num == refs.dictionary {
                    for_each_field(&body[dictionary.clone()], |num, _, s| {
                        if num == refs.string_table {
                            work.strings.push(dictionary.start + s.start..dictionary.start + s.end);
                        }
                    });
                }
            });
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(scan.map_or(0, |s| s.entries.len()));
        let mut walked = true;
        let complete = for_each_field(body, |num, record, payload| {
            if num != layout.entries {
                out.put_slice(&body[record]);
                return;
            }
            let start = out.len();
            walked &= self.envelope(layout, body, record, payload, &mut work, &mut out);
            let items = scan.and_then(|s| s.entries.get(entries.len())).map_or(0, |e| e.items);
            entries.push(Entry { range: start..out.len(), items });
        });
        if !complete || !walked {
            debug_assert!(false, "resource splice on a body the scan did not accept");
            return unchanged();
        }
        let scan = scan.filter(|s| s.entries.len() == entries.len()).map(|s| Scan { items: s.items, entries });
        Stamped { body: out.freeze(), scan }
    }

    /// Writes the envelope record `record` (payload at `payload`) of `body` to `out`, stamped. False if it does not
    /// walk.
    fn envelope(
        &self,
        layout: Layout,
        body: &[u8],
        record: Range<usize>,
        payload: Range<usize>,
        work: &mut Work,
        out: &mut BytesMut,
    ) -> bool {
        let env = &body[payload];
        let Work { resources, drops, present, strings } = work;
        resources.clear();
        drops.clear();
        present.clear();
        present.resize(self.attrs.len(), false);

        // 1. The resource occurrences and, in them, the attributes with a configured key.
        let mut seen = 0;
        let mut ok = for_each_field(env, |num, r, p| {
            if num != layout.resource {
                return;
            }
            seen += 1;
            let mut key_end = r.start;
            if read_key(env, &mut key_end).is_err() {
                return;
            }
            let first = drops.len();
            let walked = for_each_field(&env[p.clone()], |num, a, kv| {
                if num != layout.attributes {
                    return;
                }
                let kv = &env[p.start + kv.start..p.start + kv.end];
                let mut key: &[u8] = &[];
                let mut strindex = None;
                for_each_field(kv, |num, r, k| {
                    if num == layout.key {
                        key = &kv[k];
                    } else if layout.strindex.is_some_and(|s| s.key_strindex == num) {
                        let mut at = r.start;
                        if read_key(kv, &mut at).is_ok_and(|(_, wire_type)| wire_type == 0) {
                            strindex = read_varint(kv, &mut at).ok();
                        }
                    }
                });
                if key.is_empty() {
                    // An int32 as a decode reads it: the low 32 bits, so a negative index names nothing.
                    let index = strindex.map_or(0, |v| v as i32);
                    let string = usize::try_from(index).ok().filter(|i| *i > 0).and_then(|i| strings.get(i));
                    key = string.map_or(&[][..], |s| &body[s.clone()]);
                }
                if let Some(i) = self.attrs.iter().position(|x| *x.key == *key) {
                    if self.attrs[i].upsert {
                        drops.push(p.start + a.start..p.start + a.end);
                    } else {
                        present[i] = true;
                    }
                }
            });
            if walked {
                let key_len = key_end - r.start;
                resources.push(Occurrence { record: r, payload: p, key_len, drops: first..drops.len(), new_len: 0 });
            }
        });
        // Every resource occurrence must have walked: one left out would be copied past its own length prefix.
        ok &= resources.len() == seen;

        // 2. What the last resource gains.
        let appended = self.attrs.iter().zip(present.iter()).filter(|(a, present)| a.upsert || !**present);
        let append_len: usize = appended.clone().map(|(a, _)| a.record.len()).sum();
        if !ok || (append_len == 0 && drops.is_empty()) {
            out.put_slice(&body[record]);
            return ok;
        }

        // 3. New lengths, innermost first.
        let last = resources.len().wrapping_sub(1);
        let mut env_len = env.len();
        for (i, res) in resources.iter_mut().enumerate() {
            let dropped: usize = drops[res.drops.clone()].iter().map(Range::len).sum();
            res.new_len = res.payload.len() - dropped + if i == last { append_len } else { 0 };
            env_len = env_len - res.record.len() + res.key_len + varint_len(res.new_len as u64) + res.new_len;
        }
        if resources.is_empty() {
            env_len += varint_len(len_key(layout.resource)) + varint_len(append_len as u64) + append_len;
        }

        // 4. Write: the envelope's key as the client wrote it, its new length, then its fields in order with each
        // resource rewritten (a created one first, where an encoder puts field 1).
        let mut key_end = record.start;
        if read_key(body, &mut key_end).is_err() {
            out.put_slice(&body[record]);
            return false;
        }
        out.put_slice(&body[record.start..key_end]);
        put_varint(out, env_len as u64);
        let put_appended = |out: &mut BytesMut| appended.clone().for_each(|(a, _)| out.put_slice(&a.record));
        if resources.is_empty() {
            put_varint(out, len_key(layout.resource));
            put_varint(out, append_len as u64);
            put_appended(out);
        }
        let mut at = 0;
        for (i, res) in resources.iter().enumerate() {
            out.put_slice(&env[at..res.record.start + res.key_len]);
            put_varint(out, res.new_len as u64);
            let mut p = res.payload.start;
            for d in &drops[res.drops.clone()] {
                out.put_slice(&env[p..d.start]);
                p = d.end;
            }
            out.put_slice(&env[p..res.payload.end]);
            if i == last {
                put_appended(out);
            }
            at = res.record.end;
        }
        out.put_slice(&env[at..]);
        true
    }
}

/// Whether the field numbers written ([`ATTRIBUTES`], [`KEY`], [`VALUE`], [`STRING_VALUE`]) are the tables' for
/// `schema`'s resources.
#[cfg(test)]
pub(super) fn written_numbers_match(schema: &'static Schema) -> bool {
    let num = |s: &'static Schema, name: &str| s.fields.iter().find(|f| f.name == name).map(|f| (f.num, f.kind));
    let Some(l) = layout(schema) else { return false };
    let Some((_, Kind::Msg(resource))) = schema.fields.iter().find(|f| f.num == l.entries).and_then(|f| match f.kind {
        Kind::Msg(envelope) => num(envelope, "resource"),
        _ => None,
    }) else {
        return false;
    };
    let Some((attributes, Kind::Msg(kv))) = num(resource, "attributes") else { return false };
    let Some((key, _)) = num(kv, "key") else { return false };
    let Some((value, Kind::Msg(any))) = num(kv, "value") else { return false };
    let Some((string_value, _)) = num(any, "string_value") else { return false };
    (attributes, key, value, string_value) == (ATTRIBUTES, KEY, VALUE, STRING_VALUE) && l.attributes == ATTRIBUTES
}
