//! A tonic codec that sends protobuf bytes as they are and reads any `Export*ServiceResponse`.
//!
//! The request side is why this exists: the batch is already valid protobuf (the clients' own bytes, concatenated
//! at whole top-level entries), so encoding is at most a copy into the gRPC frame (for a compressed export; an
//! uncompressed one is written from the parts without it, see `super::frame`), and fields this build does not know
//! reach the backend intact. The three OTLP response messages have the same layout (`partial_success` = 1, with
//! `rejected_*` = 1 and `error_message` = 2), so one decoder reads them all.

use bytes::BufMut;

use crate::proto::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::export::Payload;
use crate::signal::PartialSuccess;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PassThroughCodec {
    /// The message is written below tonic from the batch's parts (`super::frame`), and tonic gets an empty one: no
    /// buffer sized for a batch is needed.
    pub(crate) framed_outside: bool,
}

impl Codec for PassThroughCodec {
    type Encode = Payload;
    type Decode = PartialSuccess;
    type Encoder = PayloadEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PayloadEncoder { framed_outside: self.framed_outside }
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

/// Writes the payload's parts into the frame.
#[derive(Debug)]
pub(crate) struct PayloadEncoder {
    framed_outside: bool,
}

impl Encoder for PayloadEncoder {
    type Item = Payload;
    type Error = Status;

    fn encode(&mut self, item: Payload, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        for part in &item.parts {
            dst.put_slice(part);
        }
        Ok(())
    }

    fn buffer_settings(&self) -> BufferSettings {
        if self.framed_outside {
            // Only the empty message's 5-byte prefix, which `frame::WriteParts` replaces.
            return BufferSettings::new(64, 32 * 1024);
        }
        // Batches are usually tens of KiB to a few MiB: start big enough to avoid regrowing for typical ones.
        BufferSettings::new(64 * 1024, 32 * 1024)
    }
}

/// Reads the backend's `partial_success`.
#[derive(Debug)]
pub(crate) struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = PartialSuccess;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<PartialSuccess>, Status> {
        let response = ExportTraceServiceResponse::decode(src)
            .map_err(|e| Status::internal(format!("the backend's response is not an OTLP export response: {e}")))?;
        let partial = response.partial_success.unwrap_or_default();
        Ok(Some(PartialSuccess { rejected: partial.rejected_spans, message: partial.error_message }))
    }
}
