//! Data for sequence models: tokenize, numericalize, window, group and batch; and the RNN
//! course's synthetic tasks (sinusoids, symbol sequences, additions) with stop-symbol padding,
//! length masks and one-hot encoding.
//!
//! The pieces follow the fastai "human numbers" lesson and work on any text:
//!
//! ```
//! use seqlab_data::{human_numbers, split_words, Vocab};
//!
//! let text = human_numbers().text();
//! let tokens = split_words(&text);
//! let vocab = Vocab::builder().build(&tokens);
//! assert_eq!(vocab.len(), 30);
//! let ids = vocab.encode(&tokens).unwrap();
//! assert_eq!(vocab.decode(&ids[..3]).unwrap(), ["one", ".", "two"]);
//! ```

#![warn(missing_docs)]

mod abc;
mod addition;
mod atomic;
mod batch;
mod chars;
mod disk_ids;
mod error;
mod group;
mod human_numbers;
mod labelled;
mod lm;
mod padding;
mod sinusoid;
mod streams;
mod symbols;
mod table;
mod tagged;
mod text;
mod token_ids;
mod tokenize;
mod tokenizer;
mod vocab;
mod windows;

pub use abc::{AbcTune, key_mode, label_tunes, parse_abc, read_abc};
pub use addition::{
    ADDITION_ANSWER_SYMBOLS, ADDITION_QUESTION_SYMBOLS, Addition, generate_additions,
};
pub use atomic::{commit_atomic, set_writes_outputs, temporary_path, write_atomic, writes_outputs};
pub use batch::{LmBatch, batches};
pub use chars::CharVocab;
pub use disk_ids::{
    CacheUse, char_ids_on_disk, encode_in_pieces, table_ids_on_disk, token_ids_on_disk,
};
pub use error::DataError;
pub use group::group_chunks;
pub use human_numbers::{HumanNumbers, human_numbers, number_to_words};
pub use labelled::{LabelledColumns, LabelledText, stratified_split};
pub use lm::{LmSample, LmSplit, LmTask, fixed_windows, sequence_windows, split_train_valid};
pub use padding::{Padded, batch_rows, pad_with_stop, pad_with_stop_to};
pub use sinusoid::{SinusoidConfig, Sinusoids, generate_sinusoids};
pub use streams::{LmStreams, StreamBatches};
pub use symbols::{Alphabet, STOP, random_sequences};
pub use table::{LabelledTable, RowIds};
pub use tagged::{
    TaggedSentence, brown_base_tag, parse_brown, parse_conllu, read_brown_dir, toy_tagged_sentences,
};
pub use text::{MAX_TEXT_BYTES, read_text_chunks, read_text_files};
pub use token_ids::{IdFileWriter, TokenIds};
pub use tokenize::split_words;
pub use tokenizer::{
    EOS_TOKEN, PAD_TOKEN, Tokenizer, TokenizerKind, UNKNOWN_TOKEN, split_words_and_punctuation,
};
pub use vocab::{TokenCounts, Vocab, VocabBuilder, VocabOrder};
pub use windows::OverlappingWindows;
