#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_props::http::http_request(data));
