//! Fuzz target: the RESP request and reply decoders must never panic, never consume a partial
//! frame, and never yield more arguments than the limit, whatever bytes a client sends.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use zdb::limits::ARGS_MAX;
use zdb::resp::{decode, decode_reply};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decode(&mut buf) {
            Ok(Some(args)) => {
                assert!(!args.is_empty() && args.len() <= ARGS_MAX);
                assert!(buf.len() < before);
            }
            Ok(None) | Err(_) => {
                assert_eq!(buf.len(), before);
                break;
            }
        }
    }
    let mut replies = BytesMut::from(data);
    while let Ok(Some(_)) = decode_reply(&mut replies) {}
});
