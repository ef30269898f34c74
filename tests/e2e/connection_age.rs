//! `--max-connection-age`: an HTTP/1.1 keep-alive connection and an h2c connection are each ended gracefully around
//! the age (HTTP/1.1: `Connection: close` on an answer, then the close; HTTP/2: GOAWAY), and every request made on
//! them is answered 200 (h2c: those the client sent; one queued after the GOAWAY is never sent, which hyper's
//! pooled client retries on a new connection).

#![allow(clippy::disallowed_methods)] // test code: a panic is the failure report; small bodies

use std::time::Duration;

use crate::common::raw::read_response;
use crate::common::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const AGE: Duration = Duration::from_millis(1000);

async fn bridge(backend: &MockBackend) -> Bridge {
    let mut config = config_for(&[backend]);
    config.max_connection_age = Some(AGE);
    Bridge::start(config).await
}

#[tokio::test]
async fn an_http1_keep_alive_connection_gets_connection_close_around_the_age_and_every_answer() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend).await;
    let mut stream = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    let opened = Instant::now();
    let body = prost::Message::encode_to_vec(&spans(1, 1));
    let mut buf = bytes::BytesMut::new();
    let mut answered = 0;
    let closed_at = loop {
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nhost: bridge\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let answer = read_response(&mut stream, &mut buf).await.ok().flatten().expect("every request is answered");
        let (status, close) = (answer.status, answer.closes());
        assert_eq!(status, 200);
        answered += 1;
        if close {
            break opened.elapsed();
        }
        assert!(opened.elapsed() < AGE * 3, "never told to close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The server closes after that answer.
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut rest)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "connection closed after the Connection: close answer");
    eprintln!("HTTP/1.1: {answered} answers, Connection: close after {closed_at:?} (age {AGE:?} +-10%)");
    // Never before the age less its jitter; after it, eventually (the +-10 % window is the paused-time unit test
    // receive::age::tests::http1_answers_say_close_once_the_age_is_reached_and_not_before).
    assert!(closed_at >= AGE.mul_f64(0.9) && closed_at < AGE * 3, "{closed_at:?}");
    assert_eq!(backend.span_ids().len(), answered);
    bridge.shutdown().await;
}

#[tokio::test]
async fn an_h2c_connection_gets_goaway_around_the_age_and_requests_in_flight_are_answered() {
    let backend = MockBackend::start().await;
    // Slow answers, so that requests are in flight when the GOAWAY goes out.
    backend.always(Action::Delay(Duration::from_millis(150), Box::new(Action::Ok(None))));
    let bridge = bridge(&backend).await;
    let stream = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    let opened = Instant::now();
    let (mut sender, connection) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let url = bridge.url("/v1/traces");
    let mut requests = Vec::new();
    while !connection.is_finished() && opened.elapsed() < AGE * 3 {
        if sender.ready().await.is_err() {
            break;
        }
        let request = http::Request::post(&url)
            .header("content-type", "application/x-protobuf")
            .body(Full::new(Bytes::from(prost::Message::encode_to_vec(&spans(requests.len() as u64, 1)))))
            .unwrap();
        let answer = sender.send_request(request);
        requests.push(tokio::spawn(async move {
            let r = answer.await?;
            let status = r.status().as_u16();
            r.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await.expect("the connection ends").unwrap();
    let ended_at = opened.elapsed();
    assert!(ended.is_ok(), "graceful end: {ended:?}");
    let (mut statuses, mut unsent) = (Vec::new(), 0);
    for r in requests {
        match r.await.unwrap() {
            Ok(status) => statuses.push(status),
            // Queued in the client after the GOAWAY, never sent: hyper says Canceled, and its pooled client
            // retries exactly these on a new connection. Anything else would be a request lost to the age.
            Err(e) if e.is_canceled() => unsent += 1,
            Err(e) => panic!("a request sent on the connection failed: {e:?}"),
        }
    }
    eprintln!(
        "h2c: {} requests answered, {unsent} never sent; connection ended after {ended_at:?} (age {AGE:?} +-10%)",
        statuses.len()
    );
    assert!(statuses.len() >= 10);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(ended_at >= AGE.mul_f64(0.9) && ended_at < AGE * 3, "{ended_at:?}");
    assert_eq!(backend.span_ids().len(), statuses.len(), "every answered request delivered");
    bridge.shutdown().await;
}
