//! Any UTF-8 text as Brown-corpus `word/tag` lines: sentences with one tag per word, or an
//! error naming the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seqlab_data::parse_brown;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for base_tags in [false, true] {
        if let Ok(sentences) = parse_brown(text, "fuzz", base_tags) {
            assert!(sentences.iter().all(|s| s.words.len() == s.tags.len()));
        }
    }
});
