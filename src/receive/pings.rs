//! HTTP/2 PING enforcement, as grpc-go's server keepalive enforcement policy does it: h2 answers every PING a
//! client sends (it bounds the pending answers, not their rate), so a client can keep a core busy answering a
//! flood. [`PingGuard`] reads the client's frame headers as they pass (nothing is buffered or copied) and counts a
//! strike for each PING that comes sooner than [`PingPolicy::min_interval`] after the previous one; a request
//! (HEADERS or DATA) clears the strikes, as grpc-go clears them when it sends a response. Past
//! [`PingPolicy::max_strikes`] the connection gets GOAWAY `ENHANCE_YOUR_CALM` with the debug data `too_many_pings`
//! (grpc-go's words, which gRPC clients recognise and log) and is closed.
//!
//! Connections that do not begin with the HTTP/2 preface (HTTP/1.1) pass untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;
const ENHANCE_YOUR_CALM: u32 = 0xb;
const DEBUG_DATA: &[u8] = b"too_many_pings";

/// How often a client may ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PingPolicy {
    /// A PING sooner than this after the previous one is a strike.
    pub min_interval: Duration,
    /// Strikes allowed before the connection is closed (grpc-go: 2).
    pub max_strikes: u32,
}

/// Reads HTTP/2 frame boundaries in one direction without holding the bytes.
#[derive(Debug, Default)]
struct Frames {
    /// Bytes of the client preface still to come (inbound only).
    preface_left: usize,
    header: [u8; FRAME_HEADER],
    header_len: usize,
    payload_left: usize,
}

impl Frames {
    /// Feeds `bytes`; calls `frame(type, flags, stream)` at each frame header. False once the bytes are not HTTP/2.
    fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(u8, u8, u32)) -> bool {
        while !bytes.is_empty() {
            if self.preface_left > 0 {
                let at = PREFACE.len() - self.preface_left;
                let n = self.preface_left.min(bytes.len());
                if bytes[..n] != PREFACE[at..at + n] {
                    return false;
                }
                self.preface_left -= n;
                bytes = &bytes[n..];
            } else if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len());
                self.payload_left -= n;
                bytes = &bytes[n..];
            } else {
                let n = (FRAME_HEADER - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
                self.header_len += n;
                bytes = &bytes[n..];
                if self.header_len == FRAME_HEADER {
                    let h = self.header;
                    self.header_len = 0;
                    self.payload_left = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
                    frame(h[3], h[4], stream);
                }
            }
        }
        true
    }

    /// Between two frames (nothing of one written yet): where another frame may be put.
    fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }
}

/// A connection's IO with the ping policy enforced on what the client sends (see the module).
#[derive(Debug)]
pub(crate) struct PingGuard<T> {
    inner: T,
    policy: Option<PingPolicy>,
    inbound: Frames,
    outbound: Frames,
    last_ping: Option<Instant>,
    strikes: u32,
    last_stream: u32,
    refused: bool,
}

impl<T> PingGuard<T> {
    /// `inner` under `policy`; `None`: passes everything through.
    pub(crate) fn new(inner: T, policy: Option<PingPolicy>) -> PingGuard<T> {
        PingGuard {
            inner,
            policy,
            inbound: Frames { preface_left: PREFACE.len(), ..Frames::default() },
            outbound: Frames::default(),
            last_ping: None,
            strikes: 0,
            last_stream: 0,
            refused: false,
        }
    }

    /// Feeds what the client sent; true when the policy is now broken.
    fn inspect(&mut self, bytes: &[u8]) -> bool {
        let Some(policy) = self.policy else { return false };
        let (mut last_ping, mut strikes, mut last_stream) = (self.last_ping, self.strikes, self.last_stream);
        let http2 = self.inbound.feed(bytes, |kind, flags, stream| match kind {
            PING if flags & ACK == 0 => {
                let now = Instant::now();
                if last_ping.is_some_and(|at| now.duration_since(at) < policy.min_interval) {
                    strikes += 1;
                }
                last_ping = Some(now);
            }
            HEADERS | DATA => {
                strikes = 0;
                last_stream = last_stream.max(stream);
            }
            _ => {}
        });
        (self.last_ping, self.strikes, self.last_stream) = (last_ping, strikes, last_stream);
        if !http2 {
            // HTTP/1.1: nothing to enforce.
            self.policy = None;
            return false;
        }
        self.strikes > policy.max_strikes
    }
}

/// GOAWAY `ENHANCE_YOUR_CALM` "too_many_pings" naming `last_stream` as the last one processed.
fn goaway(last_stream: u32) -> Vec<u8> {
    let len = 8 + DEBUG_DATA.len();
    let mut frame = vec![0, 0, len as u8, 0x7, 0, 0, 0, 0, 0];
    frame.extend_from_slice(&last_stream.to_be_bytes());
    frame.extend_from_slice(&ENHANCE_YOUR_CALM.to_be_bytes());
    frame.extend_from_slice(DEBUG_DATA);
    frame
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for PingGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.refused {
            return Poll::Ready(Err(io::Error::other("too many pings")));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if this.inspect(&buf.filled()[before..]) {
                this.refused = true;
                tracing::debug!("client sent too many pings: GOAWAY ENHANCE_YOUR_CALM, closing the connection");
                // Best effort, and only between two of h2's own frames; the connection closes either way.
                if this.outbound.at_boundary() {
                    let frame = goaway(this.last_stream);
                    if let Poll::Ready(Ok(n)) = Pin::new(&mut this.inner).poll_write(cx, &frame) {
                        if n == frame.len() {
                            let _ = Pin::new(&mut this.inner).poll_flush(cx);
                        }
                    }
                }
                return Poll::Ready(Err(io::Error::other("too many pings")));
            }
        }
        polled
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PingGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(_)) = (&polled, this.policy) {
            this.outbound.feed(&buf[..*n], |_, _, _| {});
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let (Poll::Ready(Ok(n)), Some(_)) = (&polled, this.policy) {
            let mut left = *n;
            for buf in bufs {
                let take = left.min(buf.len());
                this.outbound.feed(&buf[..take], |_, _, _| {});
                left -= take;
                if left == 0 {
                    break;
                }
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    const POLICY: PingPolicy = PingPolicy { min_interval: Duration::from_secs(10), max_strikes: 2 };

    #[tokio::test(start_paused = true)]
    async fn a_ping_flood_gets_goaway_too_many_pings_and_the_connection_ends() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let mut guard = PingGuard::new(server, Some(POLICY));
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let mut sent = PREFACE.to_vec();
        sent.extend(frame(HEADERS, 0x4, 1, b"h"));
        for _ in 0..4 {
            sent.extend(frame(PING, 0, 0, &[0; 8]));
        }
        client_write.write_all(&sent).await.unwrap();
        let mut buf = vec![0; 4096];
        let mut read = 0;
        let error = loop {
            match guard.read(&mut buf[read..]).await {
                Ok(n) => read += n,
                Err(e) => break e,
            }
        };
        assert_eq!(error.to_string(), "too many pings");
        let mut answer = vec![0; goaway(1).len()];
        client_read.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, goaway(1), "GOAWAY naming the last stream, ENHANCE_YOUR_CALM, too_many_pings");
        assert_eq!(&answer[13..17], &ENHANCE_YOUR_CALM.to_be_bytes());
    }

    #[tokio::test(start_paused = true)]
    async fn pings_at_the_allowed_pace_and_pings_between_requests_pass() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut guard = PingGuard::new(server, Some(POLICY));
        client.write_all(PREFACE).await.unwrap();
        let mut buf = vec![0; 4096];
        for round in 0..10 {
            // Keepalive every 10 s: never a strike.
            client.write_all(&frame(PING, 0, 0, &[0; 8])).await.unwrap();
            assert!(guard.read(&mut buf).await.is_ok(), "round {round}");
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        for round in 0..10 {
            // Pings close together, each after a request (BDP probes ride on data): strikes cleared.
            client.write_all(&frame(DATA, 0, 1, b"x")).await.unwrap();
            client.write_all(&frame(PING, 0, 0, &[0; 8])).await.unwrap();
            assert!(guard.read(&mut buf).await.is_ok(), "round {round}");
        }
    }

    #[tokio::test]
    async fn http1_and_no_policy_pass_untouched() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut guard = PingGuard::new(server, Some(POLICY));
        client.write_all(b"POST /v1/traces HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = vec![0; 64];
        let n = guard.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"POST /v1/traces HTTP/1.1\r\n\r\n");
        assert!(guard.policy.is_none(), "not HTTP/2: nothing enforced");
    }
}
