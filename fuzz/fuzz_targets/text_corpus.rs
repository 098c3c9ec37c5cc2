//! Any bytes as a text corpus: `read_text_files` refuses them with an error or returns text
//! whose characters encode and decode back to it, and that splits into words.
#![no_main]

mod scratch;

use libfuzzer_sys::fuzz_target;
use seqlab_data::{CharVocab, read_text_files, split_words};

fuzz_target!(|data: &[u8]| {
    let path = scratch::scratch_file("corpus.txt");
    std::fs::write(&path, data).expect("the scratch file is writable");
    let Ok(text) = read_text_files(&[&path]) else {
        return;
    };
    let vocab = CharVocab::from_text(&text);
    let ids = vocab
        .encode(&text)
        .expect("every character of the text is in its vocabulary");
    assert_eq!(vocab.decode(&ids).expect("its own ids decode"), text);
    let _ = split_words(&text);
});
