//! The agent's frame decoder and message decoding on arbitrary bytes, fed in arbitrary chunks:
//! never a panic, never a frame above the limit, and a decoded request re-encodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nos_protocol::{Decoder, MAX_REQUEST_FRAME, Request, Response, decode, encode};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so split frames and headers are reached.
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = Decoder::new(MAX_REQUEST_FRAME);
    for piece in bytes.chunks(chunk) {
        if decoder.handle_bytes(piece).is_err() {
            return;
        }
        while let Ok(Some(payload)) = decoder.poll_frame() {
            assert!(payload.len() <= MAX_REQUEST_FRAME);
            if let Ok(request) = decode::<Request>(&payload) {
                // What decodes encodes again (it may be larger than the limit only if it
                // came in within it, which the decoder already bounded).
                let _ = encode(&request, usize::MAX);
            }
            let _ = decode::<Response>(&payload);
        }
    }
    let _ = decoder.handle_eof();
});
