//! The transcoder's fast reader (`reader.rs`) against serde_json, both driving the same visitors.
//!
//! The property: on any body, the fast reader either gives up (and leaves the buffer as it was) or answers exactly
//! what serde_json's reading answers, with the same protobuf bytes. `dec` checks it on every body of this folder;
//! here it is checked on random requests spelled in the many ways OTLP/JSON allows (escapes, `\u` and surrogate
//! pairs, whitespace, snake_case keys, 64-bit integers as numbers, unknown fields of any shape), on odd spellings
//! (nulls, duplicates, fractions, integers past 64 bits, lone surrogates, deep nesting) and on damaged bodies. The
//! usual spellings must also be taken by the fast reader, not left to serde_json: a reader that always gave up
//! would agree with anything.

use std::fmt::Write as _;

use proptest::prelude::*;
use serde_json::Value;

use super::super::{encode, readers};
use super::*;
use crate::test_gen::{logs, metrics, traces};

/// Keys whose values (or array elements) are 64-bit integers, which our encoder writes as decimal strings and
/// OTLP/JSON also accepts as numbers.
const INT64_KEYS: &[&str] = &[
    "timeUnixNano",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "observedTimeUnixNano",
    "intValue",
    "asInt",
    "count",
    "zeroCount",
    "bucketCounts",
];

/// Writes a JSON value with random but equivalent choices: whitespace, escapes, key spellings, integers as
/// numbers, unknown members. With `odd`, also choices that change the value or leave the usual path: `null`s,
/// duplicate keys, integers with fractions, numbers past 64 bits, lone surrogates, deep nesting.
struct Spell {
    rng: fastrand::Rng,
    odd: bool,
}

impl Spell {
    fn one_in(&mut self, n: u32) -> bool {
        self.rng.u32(..n) == 0
    }

    fn ws(&mut self, out: &mut String) {
        if self.one_in(6) {
            out.push_str([" ", "\n", "\t", "\r\n  ", "  "][self.rng.usize(..5)]);
        }
    }

    fn value(&mut self, v: &Value, int64: bool, out: &mut String) {
        self.ws(out);
        if self.odd && self.one_in(60) {
            out.push_str("null");
        } else {
            match v {
                Value::Null => out.push_str("null"),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Value::Number(n) => self.number(n, out),
                Value::String(s) if int64 && self.rng.bool() && s.parse::<i128>().is_ok() => {
                    // A 64-bit integer as a JSON number; written as a fraction only where it stays exact.
                    out.push_str(s);
                    if self.odd && self.one_in(4) {
                        out.push_str([".0", "e0", ".000", "E+0"][self.rng.usize(..4)]);
                    }
                }
                Value::String(s) => self.string(s, out),
                Value::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.ws(out);
                            out.push(',');
                        }
                        self.value(item, int64, out);
                    }
                    self.ws(out);
                    out.push(']');
                }
                Value::Object(members) => {
                    out.push('{');
                    let mut first = true;
                    for (key, item) in members {
                        if self.one_in(12) {
                            self.unknown_member(&mut first, out);
                        }
                        let key = if self.rng.bool() { snake(key) } else { key.clone() };
                        let int64 = INT64_KEYS.contains(&key.as_str()) || INT64_KEYS.contains(&camel(&key).as_str());
                        self.member(&mut first, &key, out);
                        self.value(item, int64, out);
                        if self.odd && self.one_in(80) {
                            self.member(&mut first, &key, out);
                            self.value(item, int64, out);
                        }
                    }
                    if self.one_in(12) {
                        self.unknown_member(&mut first, out);
                    }
                    self.ws(out);
                    out.push('}');
                }
            }
        }
        self.ws(out);
    }

    fn member(&mut self, first: &mut bool, key: &str, out: &mut String) {
        if !std::mem::take(first) {
            self.ws(out);
            out.push(',');
        }
        self.ws(out);
        self.string(key, out);
        self.ws(out);
        out.push(':');
    }

    fn unknown_member(&mut self, first: &mut bool, out: &mut String) {
        let key = ["unknownField", "x", "é\"ß", "traceId2", ""][self.rng.usize(..5)];
        self.member(first, key, out);
        self.random_value(3, out);
    }

    /// Numbers as our encoder wrote them (int32 fields, doubles), in another of their spellings.
    fn number(&mut self, n: &serde_json::Number, out: &mut String) {
        if let Some(i) = n.as_i64() {
            match self.rng.u32(..8) {
                0 if i.unsigned_abs() < 1 << 53 => {
                    let _ = write!(out, "{i}.0");
                }
                1 if i.unsigned_abs() < 1 << 53 => {
                    let _ = write!(out, "{i}e0");
                }
                _ => {
                    let _ = write!(out, "{i}");
                }
            }
        } else if let Some(u) = n.as_u64() {
            let _ = write!(out, "{u}");
        } else if let Some(x) = n.as_f64() {
            match self.rng.u32(..4) {
                0 => {
                    let _ = write!(out, "{x:e}");
                }
                1 => {
                    let _ = write!(out, "{x:.16e}");
                }
                2 => {
                    let _ = write!(out, "{x:E}");
                }
                // Plain decimals only where they stay short: a long one is an integer past 64 bits.
                _ if x.abs() < 1e15 && (x == 0.0 || x.abs() > 1e-5) => {
                    let _ = write!(out, "{x}");
                }
                _ => {
                    let _ = write!(out, "{x:e}");
                }
            }
        }
    }

    fn string(&mut self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            let n = u32::from(c);
            match c {
                '"' => out.push_str(["\\\"", "\\u0022"][self.rng.usize(..2)]),
                '\\' => out.push_str(["\\\\", "\\u005c", "\\u005C"][self.rng.usize(..3)]),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                _ if n < 0x20 => {
                    let _ = write!(out, "\\u{n:04x}");
                }
                '/' if self.one_in(3) => out.push_str("\\/"),
                _ if self.one_in(10) => escape_u(c, self.rng.bool(), out),
                _ => out.push(c),
            }
        }
        out.push('"');
    }

    /// An unknown member's value: anything JSON allows, nested.
    fn random_value(&mut self, depth: u32, out: &mut String) {
        self.ws(out);
        let pick = self.rng.u32(..if depth == 0 { 8 } else { 10 });
        match pick {
            0 => out.push_str("null"),
            1 => out.push_str(["true", "false"][self.rng.usize(..2)]),
            2 => {
                let _ = write!(out, "{}", self.rng.i64(..));
            }
            3 => {
                let x = f64::from_bits(self.rng.u64(..));
                let _ = write!(out, "{:e}", if x.is_finite() { x } else { 0.5 });
            }
            4 => out.push_str(["0", "-0", "0.5", "-1.25e-3", "18446744073709551615"][self.rng.usize(..5)]),
            5 if self.odd => out.push_str(
                [
                    "18446744073709551616",
                    "-9223372036854775809",
                    "123456789012345678901234567890",
                    "1e400",
                    "1e-400",
                    "0.00000000000000000000000000000000000000000001",
                    "\"\\ud800\"",
                    "\"\\udc00 lone\"",
                ][self.rng.usize(..8)],
            ),
            6 if self.odd => {
                // Deeper than the fast reader goes (100), within serde_json's limit (127).
                let levels = 95 + self.rng.usize(..20);
                out.push_str(&"[".repeat(levels));
                out.push_str(&"]".repeat(levels));
            }
            5..=7 => {
                let mut s = String::new();
                for _ in 0..self.rng.usize(..6) {
                    s.push(['a', 'é', '"', '\\', '😀', '\n', '/', '\u{1}'][self.rng.usize(..8)]);
                }
                self.string(&s, out);
            }
            8 => {
                out.push('[');
                for i in 0..self.rng.usize(..4) {
                    if i > 0 {
                        out.push(',');
                    }
                    self.random_value(depth - 1, out);
                }
                self.ws(out);
                out.push(']');
            }
            _ => {
                out.push('{');
                let mut first = true;
                for _ in 0..self.rng.usize(..4) {
                    let key = ["a", "traceId", "\\u0041", "spans"][self.rng.usize(..4)];
                    self.member(&mut first, key, out);
                    self.random_value(depth - 1, out);
                }
                self.ws(out);
                out.push('}');
            }
        }
        self.ws(out);
    }
}

/// `c` as a `\u` escape: a surrogate pair beyond the BMP.
fn escape_u(c: char, upper: bool, out: &mut String) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        let _ = if upper { write!(out, "\\u{unit:04X}") } else { write!(out, "\\u{unit:04x}") };
    }
}

/// `traceId` -> `trace_id`.
fn snake(key: &str) -> String {
    let mut s = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

/// `trace_id` -> `traceId`.
fn camel(key: &str) -> String {
    let mut s = String::with_capacity(key.len());
    let mut up = false;
    for c in key.chars() {
        if c == '_' {
            up = true;
        } else if std::mem::take(&mut up) {
            s.push(c.to_ascii_uppercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Whether the fast reader took `body` (else it gave up); either way it agrees with serde_json, uncapped and
/// under a cap the protobuf may overflow.
fn agrees<T: Both>(body: &[u8]) -> Result<bool, TestCaseError> {
    let mut took = false;
    for cap in [usize::MAX, body.len() / 3] {
        let mut fast_out = b"kept".to_vec();
        let fast = readers::fast::<T>(body, &mut fast_out, cap);
        let mut serde_out = b"kept".to_vec();
        let serde = readers::serde::<T>(body, &mut serde_out, cap);
        match fast {
            None => prop_assert!(fast_out == b"kept", "gave up and left output for {}", shown(body)),
            Some(fast) => {
                prop_assert_eq!(&serde, &Ok(fast), "different answers for {}", shown(body));
                prop_assert!(fast_out == serde_out, "different bytes for {}", shown(body));
                took |= cap == usize::MAX;
            }
        }
        // The receiver's entry point answers as serde_json does, whichever reader read.
        let mut out = b"kept".to_vec();
        prop_assert_eq!(super::super::transcode_within::<T>(body, &mut out, cap), serde);
        prop_assert!(out == serde_out);
    }
    Ok(took)
}

/// A random message in a random usual spelling: the fast reader takes it, and it is the message.
fn respelled<T: Both>(msg: &T, seed: u64) -> Result<(), TestCaseError> {
    let value: Value = serde_json::from_str(&encode(msg)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut body = String::new();
    Spell { rng: fastrand::Rng::with_seed(seed), odd: false }.value(&value, false, &mut body);
    prop_assert!(agrees::<T>(body.as_bytes())?, "the fast reader gave up on a usual body: {body}");
    let mut out = Vec::new();
    transcode::<T>(body.as_bytes(), &mut out).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
    let back = T::decode(out.as_slice()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(back.encode_to_vec() == msg.encode_to_vec(), "another message from {body}");
    Ok(())
}

/// A random message in an odd spelling, then damaged at a few random bytes: the readers agree at each step.
fn odd_and_damaged<T: Both>(msg: &T, seed: u64) -> Result<(), TestCaseError> {
    let value: Value = serde_json::from_str(&encode(msg)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut spell = Spell { rng: fastrand::Rng::with_seed(seed), odd: true };
    let mut body = String::new();
    spell.value(&value, false, &mut body);
    agrees::<T>(body.as_bytes())?;
    let mut bytes = body.into_bytes();
    let rng = &mut spell.rng;
    for _ in 0..rng.usize(1..4) {
        let at = rng.usize(..=bytes.len());
        let byte = b"{}[],:\"\\ 0-9.eEnulltrf\x01\xC3"[rng.usize(..24)];
        match rng.u32(..3) {
            0 => bytes.insert(at, byte),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ if at < bytes.len() => bytes[at] = byte,
            _ => bytes.push(byte),
        }
        agrees::<T>(&bytes)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_fast_reader_takes_usual_trace_bodies_and_writes_what_serde_json_writes(msg in traces(), seed in any::<u64>()) {
        respelled(&msg, seed)?;
    }

    #[test]
    fn the_fast_reader_takes_usual_metric_bodies_and_writes_what_serde_json_writes(msg in metrics(), seed in any::<u64>()) {
        respelled(&msg, seed)?;
    }

    #[test]
    fn the_fast_reader_takes_usual_log_bodies_and_writes_what_serde_json_writes(msg in logs(), seed in any::<u64>()) {
        respelled(&msg, seed)?;
    }

    #[test]
    fn on_odd_and_damaged_trace_bodies_the_fast_reader_gives_up_or_agrees(msg in traces(), seed in any::<u64>()) {
        odd_and_damaged(&msg, seed)?;
    }

    #[test]
    fn on_odd_and_damaged_metric_bodies_the_fast_reader_gives_up_or_agrees(msg in metrics(), seed in any::<u64>()) {
        odd_and_damaged(&msg, seed)?;
    }

    #[test]
    fn on_odd_and_damaged_log_bodies_the_fast_reader_gives_up_or_agrees(msg in logs(), seed in any::<u64>()) {
        odd_and_damaged(&msg, seed)?;
    }

    /// Doubles of every bit pattern, in each spelling: the standard library's parse (fast reader) and
    /// serde_json's `float_roundtrip` parse give the same bits.
    #[test]
    fn doubles_read_to_the_same_bits_on_both_readers(bits in any::<u64>(), spelling in 0usize..4) {
        let x = f64::from_bits(bits);
        prop_assume!(x.is_finite());
        let text = match spelling {
            0 => format!("{x:e}"),
            1 => format!("{x:.16e}"),
            2 => format!("{x:.19e}"),
            _ => format!("{x:.3e}"),
        };
        let body = format!(
            r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"gauge":{{"dataPoints":[{{"asDouble":{text}}}]}}}}]}}]}}]}}"#
        );
        let took = agrees::<ExportMetricsServiceRequest>(body.as_bytes())?;
        prop_assert!(took || text.len() > 40, "gave up on {text}");
    }
}

use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use crate::proto::collector::trace::v1::ExportTraceServiceRequest;

/// Runs `body` through both readers; returns whether the fast reader took it.
#[track_caller]
fn took(body: &str) -> bool {
    match agrees::<ExportTraceServiceRequest>(body.as_bytes()) {
        Ok(took) => took,
        Err(e) => panic!("{e}"),
    }
}

fn span(fields: &str) -> String {
    format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{{fields}}}]}}]}}]}}"#)
}

#[test]
fn escapes_whitespace_and_numbers_stay_on_the_fast_path() {
    for fields in [
        r#""name":"a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00\u0000""#,
        r#""trace\u0049d":"\u0030102030405060708090a0b0c0d0e0f10""#,
        "\t\"name\" :\r\n \"x\" ,\n\"kind\" : 2 ",
        r#""startTimeUnixNano":1700000000000000000,"endTimeUnixNano":"18446744073709551615""#,
        r#""startTimeUnixNano":18446744073709551615,"droppedAttributesCount":4294967295"#,
        r#""attributes":[{"key":"i","value":{"intValue":-9223372036854775808}}]"#,
        r#""attributes":[{"key":"i","value":{"intValue":"-9223372036854775808"}}]"#,
        r#""attributes":[{"key":"d","value":{"doubleValue":-0}}]"#,
        r#""attributes":[{"key":"d","value":{"doubleValue":-0.0}}]"#,
        r#""attributes":[{"key":"d","value":{"doubleValue":"-Infinity"}}]"#,
        r#""attributes":[{"key":"d","value":{"doubleValue":1.7976931348623157e308}}]"#,
        r#""attributes":[{"key":"d","value":{"doubleValue":5e-324}}]"#,
        r#""attributes":[{"key":"i","value":{"intValue":1e3}}]"#,
        r#""attributes":[{"key":"i","value":{"intValue":-0}}]"#,
        r#""kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_ERROR"}"#,
        r#""unknown":{"a":[1,-2.5e-3,"x\u00e9",null,true,false,{}],"b":[]},"name":"n""#,
        r#""parentSpanId":null,"traceState":null,"status":null,"events":[null,{}]"#,
    ] {
        let body = span(fields);
        assert!(took(&body), "left to serde_json: {body}");
    }
}

#[test]
fn errors_and_rare_forms_are_left_to_serde_json_which_answers_as_before() {
    for fields in [
        // Errors: serde_json names them.
        r#""name":"a","name":"b""#,
        r#""traceId":"xyz""#,
        r#""name":"x","#,
        r#""name":"x"}"#,
        r#""events":[{},]"#,
        r#""kind":01"#,
        "\"name\":\"a\u{1}b\"",
        r#""name":"\ud800""#,
        r#""startTimeUnixNano":1e400"#,
        r#""startTimeUnixNano":18446744073709551616"#,
        // Accepted, but read by serde_json: integers past 64 bits and lone surrogates in unknown values,
        // nesting deeper than the fast reader goes.
        r#""unknown":123456789012345678901234567890"#,
        r#""unknown":"\udc00""#,
        r#""unknown":1e400"#,
    ] {
        let body = span(fields);
        assert!(!took(&body), "the fast reader took {body}");
    }
    let deep = span(&format!(r#""unknown":{}{}"#, "[".repeat(110), "]".repeat(110)));
    assert!(!took(&deep), "the fast reader took nesting past its depth");
    let mut out = Vec::new();
    assert_eq!(transcode::<ExportTraceServiceRequest>(deep.as_bytes(), &mut out), Ok(1), "serde_json accepts it");
    // Not UTF-8: serde_json's error, with its position.
    assert!(readers::fast::<ExportTraceServiceRequest>(b"{\"resourceSpans\":[\xff]}", &mut out, usize::MAX).is_none());
}
