//! Any bytes as a labelled table: the first byte picks CSV, TSV or JSON lines, the rest is the
//! file. Reading gives rows with a non-empty label, or an error; never a panic.
#![no_main]

mod scratch;

use libfuzzer_sys::fuzz_target;
use seqlab_data::LabelledColumns;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, contents)) = data.split_first() else {
        return;
    };
    let name = ["table.csv", "table.tsv", "table.jsonl"][kind as usize % 3];
    let path = scratch::scratch_file(name);
    std::fs::write(&path, contents).expect("the scratch file is writable");
    let columns = if kind & 0x80 == 0 {
        LabelledColumns::new("text", "label")
    } else {
        LabelledColumns::new("text", "label").only_where("source", "imdb")
    };
    if let Ok(rows) = columns.read(&path) {
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|row| !row.label.trim().is_empty()));
    }
});
