//! `seqlab import`: a language model from an ONNX file (exported from PyTorch, say) as a
//! seqlab checkpoint that `classify --pretrained-lm` fine-tunes.

use super::text::{describe, read_tokenizer};
use clap::Args as ClapArgs;
use seqlab::lessons::export::import_language_model;
use std::error::Error;
use std::path::PathBuf;

/// Options of `seqlab import`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The ONNX file: an embedding, RNN/LSTM/GRU nodes and a linear head.
    #[arg(long, value_name = "FILE")]
    onnx: PathBuf,
    /// The tokenizer the model's ids come from: bert, or a tokenizer.json file.
    #[arg(long)]
    tokenizer: String,
    /// The checkpoint folder to write (a text-lm checkpoint).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Reads the model, checks it against the tokenizer, and writes the checkpoint.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let tokenizer = read_tokenizer(&args.tokenizer)?;
    let device = seqlab::device::DeviceChoice::default_cpu()?.device()?;
    let lm = import_language_model(&args.onnx, tokenizer, &device)?;
    lm.save(&args.out)?;
    let config = &lm.config;
    println!(
        "imported {}: {}, {} layer(s) of {} (embedding {}), {}; wrote the checkpoint {}",
        args.onnx.display(),
        config.kind.name(),
        config.num_layers,
        config.hidden_size,
        config.embedding_width(),
        describe(&lm.tokenizer),
        args.out.display()
    );
    Ok(())
}
