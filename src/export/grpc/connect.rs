//! The gRPC output's TCP connections: Nagle's algorithm off on our side (`TCP_NODELAY`), and every segment read from
//! the backend acknowledged at once (`TCP_QUICKACK`, Linux).
//!
//! Why the second: a backend that leaves Nagle's algorithm on holds a small write (a call's response, a
//! `WINDOW_UPDATE`) until its previous small write is acknowledged, and Linux delays the acknowledgement of a small
//! segment by up to 40 ms while it has nothing to send back. Calls share one HTTP/2 connection, so when every call
//! in flight waits for its answer (clients waiting for their batch have nothing more to send), one such pair stalls
//! all of them for 40 ms. rotel's OTLP receiver is such a backend (it never sets `TCP_NODELAY` on the connections it
//! accepts): against it, exports stalled 25-50 ms often enough to put the answers' p99 at 44 ms on an idle machine
//! and to halve the bridge's throughput on logs and metrics on a busy one (bench/README.md, "Acknowledging the
//! backend at once"). Acknowledging at once costs one `setsockopt` per read and a bare ACK segment where one would
//! otherwise have been delayed (or merged into our next write).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What [`connector`] makes for tonic: a TCP connection in hyper's I/O traits.
pub(super) type Connection = TokioIo<QuickAck>;

/// The future of one connection attempt (tonic bounds it with the endpoint's connect timeout).
type Connecting = Pin<Box<dyn Future<Output = io::Result<Connection>> + Send>>;

/// Connects to `addr` (whatever URI tonic asks for: the channel is per address), with the options above. TLS, when
/// configured, is layered on top by tonic.
pub(super) fn connector(
    addr: SocketAddr,
) -> impl tower::Service<http::Uri, Response = Connection, Error = io::Error, Future = Connecting> + Clone + Send + 'static
{
    tower::service_fn(move |_: http::Uri| -> Connecting {
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(QuickAck(stream)))
        })
    })
}

/// A TCP stream that acknowledges what it read at once.
#[derive(Debug)]
pub(super) struct QuickAck(TcpStream);

impl QuickAck {
    /// Sends the acknowledgement of what was just read now, and leaves delayed-ACK ("ping-pong") mode until the
    /// kernel enters it again (after our next write): the flag is not sticky, hence once per read. A failure only
    /// means a delayed ACK, as without it.
    fn acknowledge(&self) {
        #[cfg(target_os = "linux")]
        let _ = rustix::net::sockopt::set_tcp_quickack(&self.0, true);
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.acknowledge();
        }
        polled
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tower::ServiceExt;

    /// A connection made by [`connector`] to a fresh loopback listener, and the listener's side of it.
    async fn pair() -> (QuickAck, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let uri: http::Uri = format!("http://{addr}").parse().unwrap();
        let (connected, accepted) = tokio::join!(connector(addr).oneshot(uri), listener.accept());
        (connected.unwrap().into_inner(), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn a_connection_to_the_backend_sends_small_writes_at_once() {
        let (client, _server) = pair().await;
        assert!(client.0.nodelay().unwrap(), "TCP_NODELAY is set");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn what_is_read_from_the_backend_is_acknowledged_at_once() {
        use rustix::net::sockopt::{set_tcp_quickack, tcp_quickack};
        let (mut client, mut server) = pair().await;
        for round in 0..3u8 {
            // Delayed-ACK mode, as the kernel enters it once a connection exchanges data both ways.
            set_tcp_quickack(&client.0, false).unwrap();
            assert!(!tcp_quickack(&client.0).unwrap(), "round {round}: the socket delays its ACKs");
            server.write_all(&[round]).await.unwrap();
            let mut got = [0u8; 1];
            client.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [round]);
            assert!(tcp_quickack(&client.0).unwrap(), "round {round}: the read left delayed-ACK mode");
            // Our own writes still go through unchanged.
            client.write_all(&[round]).await.unwrap();
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [round]);
        }
    }
}
