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
/// "Eventually" after the age: generous, as a loaded machine stretches real time (the +-10 % window is asserted in
/// paused time by the unit tests in receive::age).
const LIMIT: Duration = Duration::from_secs(30);

async fn bridge(backend: &MockBackend) -> Bridge {
    let mut config = config_for(&[backend]);
    config.max_connection_age = Some(AGE);
    Bridge::start(config).await
}

#[tokio::test]
async fn an_http1_keep_alive_connection_gets_connection_close_around_the_age_and_every_answer() {
    let backend = MockBackend::start().await;
    let bridge = bridge(&backend).await;
    let stream = tokio::net::TcpStream::connect(bridge.addr).await.unwrap();
    let opened = Instant::now();
    let body = prost::Message::encode_to_vec(&spans(1, 1));
    let connection = tokio::sync::Mutex::new((stream, bytes::BytesMut::new(), 0usize));
    let (shared, body) = (&connection, &body);
    // One request every 50 ms until an answer says Connection: close.
    let closed_at = eventually("an answer with Connection: close", LIMIT, || async move {
        let (stream, buf, answered) = &mut *shared.lock().await;
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nhost: bridge\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let answer = read_response(stream, buf).await.ok().flatten().expect("every request is answered");
        assert_eq!(answer.status, 200);
        *answered += 1;
        if answer.closes() {
            Ok(opened.elapsed())
        } else {
            Err(format!("{answered} answers without it"))
        }
    })
    .await;
    let (mut stream, _, answered) = connection.into_inner();
    // The server closes after that answer.
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(LIMIT, stream.read(&mut rest)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "connection closed after the Connection: close answer");
    eprintln!("HTTP/1.1: {answered} answers, Connection: close after {closed_at:?} (age {AGE:?} +-10%)");
    // Never before the age less its jitter; after it, eventually (the +-10 % window is the paused-time unit test
    // receive::age::tests::http1_answers_say_close_once_the_age_is_reached_and_not_before).
    assert!(closed_at >= AGE.mul_f64(0.9), "{closed_at:?}");
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
    let (sender, connection) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let url = bridge.url("/v1/traces");
    let state = tokio::sync::Mutex::new((sender, Vec::new()));
    let (shared, running, url) = (&state, &connection, &url);
    // One request every 50 ms until the GOAWAY ends the connection.
    eventually("the end of the connection", LIMIT, || async move {
        let (sender, requests) = &mut *shared.lock().await;
        if running.is_finished() || sender.ready().await.is_err() {
            return Ok(());
        }
        let request = http::Request::post(url)
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
        Err(format!("{} requests sent", requests.len()))
    })
    .await;
    let (_, requests) = state.into_inner();
    let ended = tokio::time::timeout(LIMIT, connection).await.expect("the connection ends").unwrap();
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
    assert!(ended_at >= AGE.mul_f64(0.9), "{ended_at:?}");
    assert_eq!(backend.span_ids().len(), statuses.len(), "every answered request delivered");
    bridge.shutdown().await;
}
