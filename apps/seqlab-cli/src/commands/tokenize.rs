//! `seqlab tokenize`: a text's token ids, one per line with the text each decodes to, as the
//! tglcourse lesson prints them.

use super::text::{describe, read_tokenizer};
use clap::Args as ClapArgs;
use std::error::Error;

/// Options of `seqlab tokenize`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// bert (datasets/fetch bert) or a tokenizer file (a Hugging Face tokenizer.json, or one
    /// that `seqlab lm train` saved).
    #[arg(long, default_value = "bert")]
    tokenizer: String,
    /// The text to tokenize.
    text: String,
}

/// Prints the ids, then `id:piece` lines, then the vocabulary size.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let tokenizer = read_tokenizer(&args.tokenizer)?;
    let pieces = tokenizer.pieces(&args.text)?;
    let ids: Vec<u32> = pieces.iter().map(|(id, _)| *id).collect();
    println!("ids: {ids:?}");
    for (id, piece) in &pieces {
        println!("{id}:{piece}");
    }
    println!("{}", describe(&tokenizer));
    Ok(())
}
