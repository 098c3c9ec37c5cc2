//! One module per subcommand, plus the options they share.

pub mod bench;
pub mod common;
pub mod human_numbers;
