//! The lesson's data, end to end through the data crate: the numbers the notebook prints.

use seqlab::data::{
    Vocab, fixed_windows, group_chunks, human_numbers, sequence_windows, split_train_valid,
    split_words,
};

fn lesson_ids() -> (Vocab, Vec<u32>) {
    let tokens = split_words(&human_numbers().text());
    let vocab = Vocab::builder().build(&tokens);
    let ids = vocab.encode(&tokens).unwrap();
    (vocab, ids)
}

#[test]
fn lines_tokens_vocab_and_windows_match_the_lesson() {
    let hn = human_numbers();
    assert_eq!(hn.lines().count(), 9998);
    let (vocab, ids) = lesson_ids();
    assert_eq!(ids.len(), 63095);
    assert_eq!(vocab.len(), 30);
    let windows = fixed_windows(&ids, 3).unwrap();
    assert_eq!(windows.len(), 21031);
    let words = |ids: &[u32]| vocab.decode(ids).unwrap().join(" ");
    // The samples the lesson trains on (`nums[i+3]`, In [150]; its word example In [149] shows
    // `tokens[i+4]` instead): (['one', '.', 'two'], '.'), (['.', 'three', '.'], 'four').
    assert_eq!(
        (words(&windows[0].input), words(&windows[0].target)),
        ("one . two".into(), ".".into())
    );
    assert_eq!(
        (words(&windows[1].input), words(&windows[1].target)),
        (". three .".into(), "four".into())
    );
    let sequences = sequence_windows(&ids, 16).unwrap();
    assert_eq!(
        words(&sequences[0].input),
        "one . two . three . four . five . six . seven . eight ."
    );
    assert_eq!(
        words(&sequences[0].target),
        ". two . three . four . five . six . seven . eight . nine"
    );
}

#[test]
fn encode_decode_round_trips_the_whole_text() {
    let (vocab, ids) = lesson_ids();
    let text = human_numbers().text();
    assert_eq!(vocab.decode(&ids).unwrap().join(" "), text);
}

#[test]
fn grouped_batches_continue_the_stream_row_by_row() {
    let (_, ids) = lesson_ids();
    let windows = fixed_windows(&ids, 3).unwrap();
    let (train, _) = split_train_valid(&windows, 0.2).unwrap();
    let grouped = group_chunks(&train, 64).unwrap();
    let per_row = train.len() / 64; // 262 windows per stream
    assert_eq!(grouped.len(), per_row * 64);
    // Row j of batch i is window i + per_row * j: consecutive batches continue each stream.
    for (i, batch) in grouped.chunks(64).enumerate().take(5) {
        for (j, sample) in batch.iter().enumerate() {
            assert_eq!(sample, &train[i + per_row * j]);
        }
    }
}
