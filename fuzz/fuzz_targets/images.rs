//! Fuzzes image decoding (PNG and JPEG, as image folders are read): no input may panic, and
//! none may allocate past the decoding limits (run with `-rss_limit_mb=512`).

#![no_main]

use std::path::Path;

use auglocal_data::formats::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drop(decode::decode(data, Path::new("fuzz-input"), 0));
});
