//! Any bytes as a frame body, and as a stream of frames: decoding must
//! return a message or an error, never panic, hang or allocate blindly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tractor_host::wire::frame;

fuzz_target!(|data: &[u8]| {
    let _ = frame::decode(data);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut input = data;
        for _ in 0..8 {
            if frame::read_msg(&mut input).await.is_err() {
                break;
            }
        }
    });
});
