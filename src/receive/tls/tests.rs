//! Tests of the TLS stream plumbing.

use super::*;

#[tokio::test]
async fn rewind_replays_the_prefix_then_reads_on() {
    let inner: &[u8] = b" world";
    let mut r = Rewind { prefix: Bytes::from_static(b"hello"), inner };
    let mut out = String::new();
    r.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "hello world");
}
