//! Data for sequence models: tokenize, numericalize, window, group and batch.
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

mod atomic;
mod batch;
mod error;
mod group;
mod human_numbers;
mod lm;
mod tokenize;
mod vocab;

pub use atomic::write_atomic;
pub use batch::{LmBatch, batches};
pub use error::DataError;
pub use group::group_chunks;
pub use human_numbers::{HumanNumbers, human_numbers, number_to_words};
pub use lm::{LmSample, LmSplit, LmTask, fixed_windows, sequence_windows, split_train_valid};
pub use tokenize::split_words;
pub use vocab::{Vocab, VocabBuilder, VocabOrder};
