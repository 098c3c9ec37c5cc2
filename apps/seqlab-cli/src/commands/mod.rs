//! One module per subcommand, plus the options they share.

pub mod addition;
pub mod bench;
pub mod char_lm;
pub mod classify;
pub mod common;
pub mod copy;
pub mod export;
pub mod human_numbers;
pub mod import;
pub mod lm;
pub mod markov;
pub mod pos_tag;
pub mod resume;
pub mod sinusoid;
pub mod text;
pub mod tokenize;
