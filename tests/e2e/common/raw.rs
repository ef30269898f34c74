//! HTTP/1.1 by hand, for what a client library hides: pipelining, dribbled bytes, half-sent bodies, and the
//! `Connection` header of each answer. The one raw response parser of the suite.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 response read off a stream.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code (0 when the status line does not parse).
    pub status: u16,
    /// The head (status line and headers), lowercased.
    pub head: String,
    /// The body (`Content-Length` bytes).
    pub body: Bytes,
}

impl RawResponse {
    /// Whether the answer says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.head.lines().any(|l| l.starts_with("connection:") && l.contains("close"))
    }
}

/// Reads one HTTP/1.1 response with a `Content-Length` body from `stream`, keeping what follows in `buf` (pipelined
/// answers); `None` on a clean EOF before any byte of it.
pub async fn read_response(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> std::io::Result<Option<RawResponse>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
            if buf.len() >= end + 4 + length {
                let mut message = buf.split_to(end + 4 + length);
                let body = message.split_off(end + 4).freeze();
                return Ok(Some(RawResponse { status, head, body }));
            }
        }
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-response"))
            };
        }
    }
}

/// `GET path` on a fresh connection: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Bytes)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: bridge\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let answer = read_response(&mut stream, &mut BytesMut::new())
        .await?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no answer"))?;
    Ok((answer.status, answer.body))
}
