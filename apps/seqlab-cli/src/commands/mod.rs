//! One module per subcommand, plus the options they share.

pub mod addition;
pub mod bench;
pub mod char_lm;
pub mod common;
pub mod copy;
pub mod human_numbers;
pub mod markov;
pub mod pos_tag;
pub mod sinusoid;
