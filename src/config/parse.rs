//! Parsers of single values: backend URLs, listen addresses, metadata pairs, forwarded header names.

use std::net::SocketAddr;

use super::{BackendTarget, ConfigError};

/// A `--backend` value (or an output section's `url`): the output kind that claims it checks it.
pub(super) fn parse_backend(raw: &str) -> Result<BackendTarget, ConfigError> {
    check_output_url(raw).map(BackendTarget::url)
}

/// `raw` in the normal form of the output kind that claims it.
pub(super) fn check_output_url(raw: &str) -> Result<String, ConfigError> {
    let url = raw.trim();
    let Some(kind) = crate::export::kind_for(url) else {
        let usage: Vec<&str> = crate::export::KINDS.iter().map(|k| k.usage).collect();
        return Err(ConfigError::Backend {
            url: mask_userinfo(url),
            reason: format!("the scheme must be {}", usage.join(", or ")),
        });
    };
    (kind.check_url)(url).map_err(|reason| ConfigError::Backend { url: mask_userinfo(url), reason })
}

/// The URL with whatever stands before an `@` in its authority replaced by `****`: credentials a user put there
/// must not reach the terminal or a CI log through an error message.
fn mask_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://****{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// IP:PORT as is; HOST:PORT resolved once, an IPv4 address first (a listener on `localhost` should be reachable as
/// 127.0.0.1, which is what most clients try).
pub(super) fn parse_listen_addr(raw: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = raw.parse() {
        return Ok(addr);
    }
    let usage = "use IP:PORT (127.0.0.1:4318, 0.0.0.0:4318 for every interface, [::1]:4318) or HOST:PORT";
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(raw)
        .map_err(|e| format!("{raw:?} is not an address to listen on ({e}): {usage}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{raw:?} resolves to no address: {usage}"))
}
/// Names that say how a request is framed, not what it is about: forwarding them would break the gRPC call.
const NOT_FORWARDABLE: [&str; 9] = [
    "content-type",
    "content-length",
    "content-encoding",
    "te",
    "host",
    "connection",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

pub(super) fn parse_forward_headers(raw: &[String]) -> Result<Vec<http::HeaderName>, ConfigError> {
    let mut names: Vec<http::HeaderName> = Vec::new();
    for name in raw.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let bad = |why: &str| ConfigError::Invalid(format!("--forward-header {name:?}: {why}"));
        let parsed = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .map_err(|_| bad("not a valid header name"))?;
        let text = parsed.as_str();
        if NOT_FORWARDABLE.contains(&text) || text.starts_with("grpc-") || text.ends_with("-bin") {
            return Err(bad("this header frames the gRPC call itself and cannot be forwarded"));
        }
        if !names.contains(&parsed) {
            names.push(parsed);
        }
    }
    Ok(names)
}

pub(super) fn parse_header(pair: &str) -> Result<(String, String), ConfigError> {
    let (k, v) = pair.split_once('=').ok_or_else(|| ConfigError::Header(pair.to_string()))?;
    let key = k.trim().to_ascii_lowercase();
    let value = v.trim().to_string();
    if tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(key.as_bytes()).is_err()
        || key.ends_with("-bin")
        || tonic::metadata::MetadataValue::<tonic::metadata::Ascii>::try_from(value.as_str()).is_err()
    {
        return Err(ConfigError::Header(pair.to_string()));
    }
    Ok((key, value))
}

/// OTEL_EXPORTER_OTLP_HEADERS values are percent-encoded (W3C baggage format).
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `--resource-attribute K=V`: the key up to the first `=` (surrounding blanks trimmed), the value after it as written.
pub(super) fn parse_attribute_flag(origin: &'static str, raw: &str) -> Result<(String, String), ConfigError> {
    let bad = |reason: &str| ConfigError::ResourceAttribute { origin, entry: raw.to_string(), reason: reason.into() };
    let (k, v) = raw.split_once('=').ok_or_else(|| bad("expected key=value"))?;
    let key = k.trim();
    if key.is_empty() {
        return Err(bad("the key is empty"));
    }
    Ok((key.to_string(), v.to_string()))
}

/// `OTLP_BRIDGE_RESOURCE_ATTRIBUTES*`: the `OTEL_RESOURCE_ATTRIBUTES` format of the OpenTelemetry specification, W3C
/// baggage without properties: `k=v,k2=v2`, blanks around keys and values trimmed, values percent-decoded (UTF-8).
/// Empty members (`a=1,,b=2`, a trailing comma) are skipped. Anything else refuses the whole variable, naming the
/// member: the specification tells SDKs to discard such a variable; a proxy that silently stamped less would hide it.
pub(super) fn parse_attribute_list(origin: &'static str, raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for member in raw.split(',').filter(|m| !m.trim().is_empty()) {
        let bad =
            |reason: &str| ConfigError::ResourceAttribute { origin, entry: member.to_string(), reason: reason.into() };
        let (k, v) = member.split_once('=').ok_or_else(|| bad("expected key=value"))?;
        let key = k.trim();
        if key.is_empty() {
            return Err(bad("the key is empty"));
        }
        if key.contains(|c: char| c.is_whitespace() || c.is_control() || c == ';') {
            return Err(bad("the key holds a blank, a control character or `;` (properties are not supported)"));
        }
        let value = strict_percent_decode(v.trim()).map_err(|reason| bad(&reason))?;
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Percent-decoding that refuses what it cannot decode: `%` not followed by two hex digits, or bytes that are not
/// UTF-8 once decoded.
fn strict_percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                _ => return Err(format!("`%` at byte {i} of the value is not followed by two hex digits (write %25)")),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the percent-decoded value is not UTF-8".to_string())
}
