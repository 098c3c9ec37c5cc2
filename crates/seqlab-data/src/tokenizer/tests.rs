//! The tokenizers against the seed's ids, their JSON round trips and bad input.

use super::*;
use proptest::prelude::*;

const REVIEWS: [&str; 4] = [
    "A wonderful film, wonderful acting.",
    "A dreadful film; dreadful plot!",
    "Wonderful. Simply wonderful.",
    "Dreadful acting, dreadful film.",
];

#[test]
fn a_word_tokenizer_round_trips_through_its_file() {
    let words = Tokenizer::word(&REVIEWS, 100, 2);
    assert_eq!(words.kind(), TokenizerKind::Word);
    // pad, unk, then words seen twice or more, most frequent first.
    assert_eq!(words.id("wonderful"), Some(2));
    assert_eq!(words.id("simply"), None);
    let ids = words.encode("Simply wonderful").unwrap();
    assert_eq!(ids, [1, 2]);
    assert_eq!(words.decode(&ids).unwrap(), "wonderful");
    let back = Tokenizer::from_json(words.to_json().unwrap().as_bytes()).unwrap();
    assert_eq!(
        back.encode("a dreadful plot").unwrap(),
        words.encode("a dreadful plot").unwrap()
    );
    assert_eq!(back.vocab_size(), words.vocab_size());
    assert!(matches!(
        words.decode(&[999]),
        Err(DataError::UnknownId { id: 999, .. })
    ));
}

#[test]
fn a_whitespace_tokenizer_keeps_tokens_as_written_and_ends_lines_with_eos() {
    let ptb = " the <unk> company said N mr. smith 's shares fell \n the company 's \n";
    let tokens = Tokenizer::whitespace(&[ptb], 100, 1);
    assert_eq!(tokens.kind(), TokenizerKind::Whitespace);
    // pad, unk, then by frequency: the (3), 's (2), company (2), <eos> (2), …
    let ids = tokens.encode(ptb).unwrap();
    assert_eq!(ids.len(), 15);
    assert_eq!(
        ids.iter().filter(|&&id| id == 1).count(),
        1,
        "<unk> is the unknown id"
    );
    assert_eq!(tokens.id("mr."), Some(ids[5]));
    assert_eq!((ids[10], ids[14]), (tokens.id(EOS_TOKEN).unwrap(), ids[10]));
    assert_eq!(
        tokens.decode(&ids).unwrap(),
        "the company said N mr. smith 's shares fell\nthe company 's\n"
    );
    let back = Tokenizer::from_json(tokens.to_json().unwrap().as_bytes()).unwrap();
    assert_eq!(back.kind(), TokenizerKind::Whitespace);
    assert_eq!(back.encode(ptb).unwrap(), ids);
}

#[test]
fn a_char_tokenizer_maps_unseen_characters_to_unknown() {
    let chars = Tokenizer::char(&["abcab"], 10, 1);
    assert_eq!(chars.vocab_size(), 5);
    assert_eq!(chars.encode("abz").unwrap(), [2, 3, 1]);
    assert_eq!(chars.decode(&[2, 3, 4]).unwrap(), "abc");
    assert_eq!(chars.special_id("<unk>"), Some(1));
    assert_eq!(chars.pad_id(), 0);
}

#[test]
fn a_trained_wordpiece_tokenizer_splits_unseen_words_into_pieces() {
    let texts: Vec<String> = (0..50).map(|i| REVIEWS[i % 4].to_string()).collect();
    let wp = Tokenizer::train_wordpiece(&texts, 120, 1).unwrap();
    assert_eq!(wp.kind(), TokenizerKind::HuggingFace);
    let ids = wp.encode("wonderfully dreadful").unwrap();
    assert_eq!(ids.first(), wp.special_id("[CLS]").as_ref());
    assert_eq!(ids.last(), wp.special_id("[SEP]").as_ref());
    let pieces = wp.pieces("wonderfully").unwrap();
    assert!(
        pieces.iter().any(|(_, p)| p.starts_with("##")),
        "{pieces:?}"
    );
    assert_eq!(wp.decode(&ids).unwrap(), "wonderfully dreadful");
    assert_eq!(wp.pad_id(), 0);
    let back = Tokenizer::from_json(wp.to_json().unwrap().as_bytes()).unwrap();
    assert_eq!(
        back.encode("dreadful acting").unwrap(),
        wp.encode("dreadful acting").unwrap()
    );
}

#[test]
fn a_trained_bpe_tokenizer_round_trips_any_text() {
    let texts: Vec<String> = (0..50).map(|i| REVIEWS[i % 4].to_string()).collect();
    let bpe = Tokenizer::train_bpe(&texts, 300, 2).unwrap();
    let text = "Wonderful plot — ünïcode too!";
    let ids = bpe.encode(text).unwrap();
    assert_eq!(bpe.decode(&ids).unwrap(), text);
    assert!(ids.len() < text.len(), "merges shorten the sequence");
    assert_eq!(bpe.pad_id(), 0);
}

#[test]
fn garbage_is_not_a_tokenizer() {
    assert!(matches!(
        Tokenizer::from_json(b"{\"hello\": 1}"),
        Err(DataError::Tokenizer(_))
    ));
    assert!(matches!(
        Tokenizer::from_json(b"\x00\x01"),
        Err(DataError::Tokenizer(_))
    ));
    let missing = Tokenizer::from_file("/nonexistent/tokenizer.json").unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/tokenizer.json"),
        "{missing}"
    );
}

proptest! {
    #[test]
    fn word_tokens_are_never_empty_or_spaced(text in "\\PC{0,60}") {
        for token in split_words_and_punctuation(&text) {
            prop_assert!(!token.is_empty());
            prop_assert!(!token.chars().any(char::is_whitespace));
        }
    }

    /// Counted a line at a time, the words, whitespace tokens and characters of texts make the
    /// vocabulary that the list of all their tokens makes.
    #[test]
    fn vocabularies_counted_by_line_are_those_of_the_whole_token_list(
        texts in proptest::collection::vec("(\\PC|\n|\r\n| |<br />|'){0,50}", 1..4),
        min_freq in 1usize..3,
    ) {
        for unit in [TokenizerKind::Word, TokenizerKind::Whitespace, TokenizerKind::Char] {
            let tokens: Vec<String> = texts.iter().flat_map(|t| split(unit, t)).collect();
            let listed = Vocab::builder()
                .specials([PAD_TOKEN, UNKNOWN_TOKEN])
                .unknown(UNKNOWN_TOKEN)
                .min_freq(min_freq)
                .max_size(20)
                .build(&tokens);
            let counted = Tokenizer::vocab_tokenizer(&texts, 20, min_freq, unit);
            let Inner::Vocab { vocab, .. } = &counted.inner else {
                unreachable!("a counted tokenizer has a vocabulary")
            };
            prop_assert_eq!(vocab, &listed, "{:?}", unit);
        }
    }

    #[test]
    fn char_tokenizers_round_trip_the_text_they_were_built_on(text in "[a-z ,.!?\n]{1,80}") {
        let chars = Tokenizer::char(&[text.as_str()], 1000, 1);
        let ids = chars.encode(&text).unwrap();
        prop_assert_eq!(ids.len(), text.chars().count());
        prop_assert_eq!(chars.decode(&ids).unwrap(), text);
    }
}
