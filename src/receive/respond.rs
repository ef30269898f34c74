//! The respond step: the body format a request named (mirrored in every answer to it) and the success answer.
//! Error answers are built in [`super::rescue`] only.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use prost::Message;

use crate::signal::{PartialSuccess, Signal};

/// The body encoding of a request, mirrored in its response (`application/x-protobuf` or `application/json`).
pub(crate) use crate::ingest::Format;

// What only HTTP knows of a format: its media type.
impl Format {
    /// The request's format from its `Content-Type`, if it is one OTLP allows (parameters such as charset are fine).
    pub(crate) fn from_content_type(value: Option<&str>) -> Option<Format> {
        let media = value?.split(';').next()?.trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") || media.eq_ignore_ascii_case("application/protobuf") {
            Some(Format::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    /// The format of error bodies: the request's when it has a valid one, else JSON (readable with curl).
    pub(crate) fn for_errors(value: Option<&str>) -> Format {
        Format::from_content_type(value).unwrap_or(Format::Json)
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// The success response for signal `S`, with `partial_success` when items were rejected.
pub(crate) fn success<S: Signal>(format: Format, partial: Option<PartialSuccess>) -> Response<Full<Bytes>> {
    let message = S::response(partial.filter(|p| !p.is_empty()));
    let body = match format {
        Format::Protobuf => message.encode_to_vec(),
        Format::Json => crate::json::encode(&message).into_bytes(),
    };
    build(StatusCode::OK, format, body)
}

/// An answer of `status` whose body is `body`, encoded as `format` says.
pub(super) fn build(status: StatusCode, format: Format, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response
}

/// A trailers-only gRPC answer: HTTP 200, `content-type: application/grpc`, the status in `grpc-status` and
/// `grpc-message` (percent-encoded as gRPC requires), no body. hyper ends the stream with these headers, which is
/// what gRPC clients read as the call's status.
pub(super) fn grpc_status(code: tonic::Code, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(code as i32));
    // gRPC's percent-encoding: everything outside printable ASCII, and '%' itself.
    let mut encoded = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    if let Ok(value) = HeaderValue::from_str(&encoded) {
        headers.insert("grpc-message", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_tolerate_parameters_and_case() {
        assert_eq!(Format::from_content_type(Some("application/json; charset=utf-8")), Some(Format::Json));
        assert_eq!(Format::from_content_type(Some("Application/X-Protobuf")), Some(Format::Protobuf));
        assert_eq!(Format::from_content_type(Some("application/protobuf")), Some(Format::Protobuf));
        assert_eq!(Format::from_content_type(Some("text/plain")), None);
        assert_eq!(Format::from_content_type(None), None);
    }

    #[test]
    fn a_grpc_status_is_trailers_only_with_a_percent_encoded_message() {
        let r = grpc_status(tonic::Code::Unimplemented, "50% off: café");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/grpc");
        assert_eq!(r.headers()["grpc-status"], "12");
        assert_eq!(r.headers()["grpc-message"], "50%25 off: caf%C3%A9");
        assert!(http_body::Body::is_end_stream(r.body()));
    }
}
