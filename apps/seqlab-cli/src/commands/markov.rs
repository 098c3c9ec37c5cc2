//! `seqlab markov`: the character n-gram baseline, scored on the same held-out tail as
//! `seqlab char-lm train`.

use super::common::{fast_dev_run, head_chars, parse_range};
use clap::Args as ClapArgs;
use seqlab::data::read_text_files;
use seqlab::lessons::char_lm::{CharCorpus, text_files};
use seqlab::lessons::markov::run_markov;
use std::error::Error;
use std::path::PathBuf;

/// Options of `seqlab markov`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// UTF-8 text files, or folders whose .txt files are read in name order.
    #[arg(long, required = true, num_args = 1..)]
    text: Vec<PathBuf>,
    /// Context lengths to score, e.g. 4 or 2..8.
    #[arg(long, value_name = "K or MIN..MAX", default_value = "2..8")]
    order: String,
    /// Fraction of the text, from the end, held out for scoring.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    valid_fraction: f64,
    /// Characters to generate with the best order.
    #[arg(long, default_value_t = 400)]
    length: usize,
    /// Seed of the generation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Check the command in seconds: only the first 40,000 characters of the text.
    #[arg(long)]
    fast_dev_run: bool,
}

/// Fits, prints held-out bits per character for each order, and a sample.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let orders = parse_range(&args.order)?;
    let mut text = read_text_files(&text_files(&args.text)?)?;
    if args.fast_dev_run {
        text = head_chars(&text, fast_dev_run::CHARS);
    }
    let corpus = CharCorpus::split(&text, args.valid_fraction)?;
    let report = run_markov(&corpus, orders, args.length, args.seed)?;
    println!("order  contexts  held-out bits/char");
    for (order, bits, contexts) in &report.orders {
        println!("{order:>5}  {contexts:>8}  {bits:.4}");
    }
    println!(
        "best: order {} at {:.4} bits per character ({} held-out characters)",
        report.best_order,
        report.best_bits_per_char,
        corpus.valid.len()
    );
    println!("--- sample (order {}):", report.best_order);
    println!("{}", report.sample);
    Ok(())
}
