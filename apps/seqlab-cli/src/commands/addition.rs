//! `seqlab addition`: the RNN course's addition task.

use super::common::{MaskingArgs, parse_range};
use super::common::{RunArgs, fast_dev_run};
use super::copy::{CellArg, DecoderArg};
use super::resume::CheckpointArgs;
use clap::Args as ClapArgs;
use seqlab::lessons::addition::{AdditionConfig, run_addition};
use seqlab::models::{CellKind, DecoderKind};
use seqlab::plot;
use seqlab::train::SchedulePolicy;
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;

/// Options of `seqlab addition`. The zero decoder is the notebook's `SumLSTM` (5 layers, 200
/// hidden, 10 epochs); feedback and attention default to a 1-layer 128-unit LSTM reading the
/// question backwards and writing the answer least-significant digit first, Adam at 1e-2.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// What the decoder reads.
    #[arg(long, value_enum, default_value_t = DecoderArg::Attention)]
    decoder: DecoderArg,
    /// The recurrence.
    #[arg(long, value_enum)]
    cell: Option<CellArg>,
    /// Stacked layers in encoder and decoder.
    #[arg(long)]
    layers: Option<NonZeroUsize>,
    /// Hidden units per layer.
    #[arg(long)]
    hidden: Option<NonZeroUsize>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<NonZeroUsize>,
    /// Training problems.
    #[arg(long)]
    examples: Option<NonZeroUsize>,
    /// Held-out problems.
    #[arg(long, default_value = "1000")]
    test_examples: NonZeroUsize,
    /// Digits of each operand, e.g. 3..4.
    #[arg(long, value_name = "MIN..MAX", default_value = "3..4")]
    digits: String,
    /// Adam's learning rate.
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Problems per batch.
    #[arg(long)]
    batch_size: Option<NonZeroUsize>,
    /// How the learning rate moves: constant, one-cycle (warm up to --lr, then anneal) or
    /// flat-cos (--lr, then anneal over the last quarter).
    #[arg(long)]
    schedule: Option<SchedulePolicy>,
    /// Read the question backwards (true/false; default: false for zero, true otherwise).
    #[arg(long)]
    reverse_question: Option<bool>,
    /// Write the answer least-significant digit first (true/false; default as the question).
    #[arg(long)]
    reverse_answer: Option<bool>,
    /// Write the operands with leading zeros to one width (true/false).
    #[arg(long)]
    pad_operands: Option<bool>,
    /// Masking (both halves by default for the feedback and attention decoders, neither for
    /// the zero decoder, as the notebook's SumLSTM).
    #[command(flatten)]
    masking: MaskingArgs,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Trains, prints the table, the held-out accuracies and examples.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let mut config = AdditionConfig::new(DecoderKind::from(args.decoder));
    config.cell = args.cell.map_or(config.cell, CellKind::from);
    config.layers = args.layers.map(NonZeroUsize::get).unwrap_or(config.layers);
    config.hidden = args.hidden.map(NonZeroUsize::get).unwrap_or(config.hidden);
    config.epochs = args.epochs.map(NonZeroUsize::get).unwrap_or(config.epochs);
    config.train_examples = args
        .examples
        .map(NonZeroUsize::get)
        .unwrap_or(config.train_examples);
    config.test_examples = args.test_examples.get();
    if args.run.fast_dev_run {
        config.epochs = fast_dev_run::EPOCHS;
        config.train_examples = config.train_examples.min(fast_dev_run::EXAMPLES);
        config.test_examples = config.test_examples.min(fast_dev_run::EXAMPLES);
    }
    config.lr = args.lr.unwrap_or(config.lr);
    config.batch_size = args
        .batch_size
        .map(NonZeroUsize::get)
        .unwrap_or(config.batch_size);
    config.schedule = args.schedule.unwrap_or(config.schedule);
    config.reverse_question = args.reverse_question.unwrap_or(config.reverse_question);
    config.reverse_answer = args.reverse_answer.unwrap_or(config.reverse_answer);
    config.pad_operands = args.pad_operands.unwrap_or(config.pad_operands);
    config.masking = args.masking.apply(config.masking);
    let digits = parse_range(&args.digits)?;
    config.x_digits = digits.clone();
    config.y_digits = digits;
    config.seed = args.run.seed;
    let (choice, device) = args.run.device()?;
    println!(
        "addition: {:?} x{} layers, {} hidden, {} decoder, {}, {} problems, on {choice}, seed {}",
        config.cell,
        config.layers,
        config.hidden,
        config.decoder,
        config.masking.name(),
        config.train_examples,
        config.seed
    );
    let report = args
        .checkpoint
        .train(&args.run, |run| run_addition(&config, run, &device))?;
    println!(
        "test: exact match {:.4}, digit accuracy {:.4} on {} held-out sums; {} parameters",
        report.test.exact_match,
        report.test.token_accuracy,
        report.test.predictions.len(),
        report.parameters
    );
    for (question, answer, predicted) in &report.examples {
        println!("{question} = {answer} ? {predicted}");
    }
    args.run.write_plots(|dir| {
        plot::training_plots(dir, "addition", &report.batch_losses, &report.records)
    })?;
    let run = json!({
        "command": "addition",
        "device": choice.name(),
        "seed": config.seed,
        "decoder": config.decoder.name(),
        "masking": config.masking.name(),
        "layers": config.layers,
        "hidden": config.hidden,
        "parameters": report.parameters,
        "test_exact_match": report.test.exact_match,
        "test_digit_accuracy": report.test.token_accuracy,
    });
    args.run.write_metrics(run, &report.records)
}
