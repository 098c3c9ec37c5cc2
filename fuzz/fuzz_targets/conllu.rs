//! Any UTF-8 text as CoNLL-U: sentences with one tag per word, or an error naming the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seqlab_data::parse_conllu;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sentences) = parse_conllu(text, "fuzz") {
        assert!(sentences.iter().all(|s| s.words.len() == s.tags.len()));
    }
});
