//! The lessons seqlab grew from, as functions that build their data and models and train them
//! with the notebooks' settings. The command line runs them; tests drive them too.

pub mod human_numbers;
