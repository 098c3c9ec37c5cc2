//! `seqlab copy`: the RNN course's copy task.

use super::common::{MaskingArgs, RunArgs, fast_dev_run, parse_range};
use super::resume::CheckpointArgs;
use clap::{Args as ClapArgs, ValueEnum};
use seqlab::lessons::copy_task::{CopyConfig, CopyModel, run_copy};
use seqlab::models::{CellKind, DecoderKind, Nonlinearity};
use seqlab::plot;
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;

/// Options of `seqlab copy`. Without `--variable-length` it is the notebook's fixed-length
/// task (hand-built model, 100 epochs, 32 hidden: `--hidden 20` is the notebook's size); with it, the variable-length one (a
/// 200-unit RNN encoder, masked) with an attention decoder for 5 epochs, or with
/// `--decoder zero` the notebook's input-less decoder for its 20 epochs.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Output the sequence backwards.
    #[arg(long)]
    reverse: bool,
    /// Train on lengths 3..=14 padded with a stop symbol (the notebook's second setting).
    #[arg(long)]
    variable_length: bool,
    /// Masking (both halves by default with --variable-length).
    #[command(flatten)]
    masking: MaskingArgs,
    /// What the decoder reads: nothing (the notebook), its previous symbol, or that plus
    /// attention. Picking one uses seqlab's recurrent layers instead of the hand-built model.
    #[arg(long, value_enum)]
    decoder: Option<DecoderArg>,
    /// The recurrence (seqlab's layers; the fixed-length default is the hand-built tanh RNN).
    #[arg(long, value_enum)]
    cell: Option<CellArg>,
    /// Symbols in the alphabet (a, b, c, …).
    #[arg(long, default_value_t = 3)]
    alphabet: usize,
    /// Shortest and longest training sequence, e.g. 3..14 (default 10..10, or 3..14 with
    /// --variable-length).
    #[arg(long, value_name = "MIN..MAX")]
    lengths: Option<String>,
    /// Training sequences.
    #[arg(long)]
    sequences: Option<NonZeroUsize>,
    /// Hidden units.
    #[arg(long)]
    hidden: Option<NonZeroUsize>,
    /// Epochs.
    #[arg(long)]
    epochs: Option<NonZeroUsize>,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f64,
    /// Clip the global gradient norm to this (default: 1 with --variable-length, none
    /// otherwise; 0 turns it off).
    #[arg(long, value_name = "NORM", allow_negative_numbers = true)]
    grad_clip: Option<f64>,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Command-line names of the decoders.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DecoderArg {
    /// No input: everything comes from the encoder's state.
    Zero,
    /// The previous symbol (teacher forcing, greedy decoding).
    Feedback,
    /// The previous symbol and Luong attention over the encoder's outputs.
    Attention,
}

impl From<DecoderArg> for DecoderKind {
    fn from(arg: DecoderArg) -> Self {
        match arg {
            DecoderArg::Zero => DecoderKind::Zero,
            DecoderArg::Feedback => DecoderKind::Feedback,
            DecoderArg::Attention => DecoderKind::Attention,
        }
    }
}

/// Command-line names of the recurrences.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum CellArg {
    /// tanh RNN.
    Rnn,
    /// LSTM.
    Lstm,
    /// GRU.
    Gru,
}

impl From<CellArg> for CellKind {
    fn from(arg: CellArg) -> Self {
        match arg {
            CellArg::Rnn => CellKind::Rnn(Nonlinearity::Tanh),
            CellArg::Lstm => CellKind::Lstm,
            CellArg::Gru => CellKind::Gru,
        }
    }
}

/// Trains, prints the table, the held-out accuracy, the generalisation table and examples.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let zero_decoder = matches!(args.decoder, Some(DecoderArg::Zero));
    let mut config = if args.variable_length && zero_decoder {
        CopyConfig::notebook_variable_length()
    } else if args.variable_length {
        CopyConfig::variable_length()
    } else {
        CopyConfig::fixed_length()
    };
    if args.decoder.is_some() || args.cell.is_some() {
        let (cell, decoder) = match config.model {
            CopyModel::Layers { cell, decoder } => (cell, decoder),
            CopyModel::HandBuilt => (CellKind::Rnn(Nonlinearity::Tanh), DecoderKind::Zero),
        };
        config.model = CopyModel::Layers {
            cell: args.cell.map_or(cell, CellKind::from),
            decoder: args.decoder.map_or(decoder, DecoderKind::from),
        };
    }
    if let Some(lengths) = &args.lengths {
        config.lengths = parse_range(lengths)?;
    }
    config.masking = args.masking.apply(config.masking);
    config.reverse = args.reverse;
    config.alphabet_size = args.alphabet;
    config.train_sequences = args
        .sequences
        .map(NonZeroUsize::get)
        .unwrap_or(config.train_sequences);
    config.hidden = args.hidden.map(NonZeroUsize::get).unwrap_or(config.hidden);
    config.epochs = args.epochs.map(NonZeroUsize::get).unwrap_or(config.epochs);
    if args.run.fast_dev_run {
        config.epochs = fast_dev_run::EPOCHS;
        config.train_sequences = config.train_sequences.min(fast_dev_run::EXAMPLES);
        config.test_sequences = config.test_sequences.min(fast_dev_run::EXAMPLES);
    }
    config.lr = args.lr;
    if let Some(norm) = args.grad_clip {
        if !(norm.is_finite() && norm >= 0.0) {
            return Err(format!("--grad-clip must be positive (or 0 for none), got {norm}").into());
        }
        config.grad_clip = (norm != 0.0).then_some(norm);
    }
    config.seed = args.run.seed;
    let (choice, device) = args.run.device()?;
    let model = match config.model {
        CopyModel::HandBuilt => "hand-built tanh encoder-decoder".to_string(),
        CopyModel::Layers { cell, decoder } => format!("{cell:?} encoder, {decoder} decoder"),
    };
    println!(
        "copy{}: lengths {}..{}, alphabet {}, {model}, {} hidden, {}, on {choice}, seed {}",
        if config.reverse { " reversed" } else { "" },
        config.lengths.start(),
        config.lengths.end(),
        config.alphabet_size,
        config.hidden,
        config.masking.name(),
        config.seed
    );
    let report = args
        .checkpoint
        .train(&args.run, |run| run_copy(&config, run, &device))?;
    println!(
        "test: token accuracy {:.4} (real symbols only), exact match {:.4}",
        report.test.token_accuracy, report.test.exact_match
    );
    println!("accuracy by input length:");
    for (length, accuracy) in &report.by_length {
        println!("{length:>4} {accuracy:.4}");
    }
    for (input, target, output) in &report.examples {
        println!(
            "{input} - {output}{}",
            if output == target { "" } else { "  (wrong)" }
        );
    }
    args.run.write_plots(|dir| {
        let mut written = plot::copy_plots(dir, &report)?;
        written.extend(plot::epoch_plots(dir, "copy", &report.records)?);
        Ok(written)
    })?;
    let run = json!({
        "command": "copy",
        "device": choice.name(),
        "seed": config.seed,
        "reverse": config.reverse,
        "masking": config.masking.name(),
        "lengths": [config.lengths.start(), config.lengths.end()],
        "model": model,
        "hidden": config.hidden,
        "test_token_accuracy": report.test.token_accuracy,
        "test_exact_match": report.test.exact_match,
        "accuracy_by_length": report.by_length,
    });
    args.run.write_metrics(run, &report.records)
}
