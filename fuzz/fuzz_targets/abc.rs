//! Any UTF-8 text as ABC notation: tunes with their header fields, or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seqlab_data::{label_tunes, parse_abc};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tunes) = parse_abc(text) {
        for tune in &tunes {
            let _ = (tune.title(), tune.tune_type(), tune.mode());
        }
        for label in ["type", "mode", "key", "meter"] {
            let _ = label_tunes(&tunes, label);
        }
    }
});
