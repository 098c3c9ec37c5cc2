//! `seqlab human-numbers`: fastai's LMModel1–7.

use super::common::{RunArgs, fast_dev_run};
use super::resume::CheckpointArgs;
use clap::{Args as ClapArgs, ValueEnum};
use seqlab::lessons::human_numbers::{HumanNumbersConfig, HumanNumbersModel, HumanNumbersSchedule};
use seqlab::train::{AdamConfig, OptimizerConfig, SgdConfig};
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;

/// Options of `seqlab human-numbers`. Unset options take the lesson's values.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model: lm1–lm4 (the lesson), lm5 (2-layer RNN), lm6 (2-layer LSTM), lm7 (AWD-LSTM style).
    #[arg(long, default_value = "lm4")]
    model: HumanNumbersModel,
    /// Epochs (one fit instead of the lesson's phases).
    #[arg(long)]
    epochs: Option<NonZeroUsize>,
    /// Learning rate (peak rate for one-cycle).
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Samples per batch.
    #[arg(long, default_value = "64")]
    batch_size: NonZeroUsize,
    /// Tokens per sample: 3 of context for lm1–lm3, 16 per sequence for lm4–lm7.
    #[arg(long)]
    seq_len: Option<NonZeroUsize>,
    /// Hidden size (the lesson: 64, and 128 for lm2).
    #[arg(long)]
    hidden: Option<NonZeroUsize>,
    /// Schedule: as the lesson, one constant-rate fit, or one-cycle (the book's lm4 recipe).
    #[arg(long, value_enum, default_value_t = ScheduleArg::Lesson)]
    schedule: ScheduleArg,
    /// Optimizer: fastai's Adam (as the lesson), PyTorch's Adam, or SGD.
    #[arg(long, value_enum, default_value_t = OptimizerArg::FastaiAdam)]
    optimizer: OptimizerArg,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ScheduleArg {
    Lesson,
    Fit,
    OneCycle,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum OptimizerArg {
    FastaiAdam,
    TorchAdam,
    Sgd,
}

/// Trains the chosen model, printing fastai's table, then a summary line.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let model = args.model;
    let config = HumanNumbersConfig {
        model,
        schedule: match args.schedule {
            ScheduleArg::Lesson => HumanNumbersSchedule::Lesson,
            ScheduleArg::Fit => HumanNumbersSchedule::Fit,
            ScheduleArg::OneCycle => HumanNumbersSchedule::OneCycle,
        },
        epochs: args.run.or_fast(
            args.epochs.map(NonZeroUsize::get),
            Some(fast_dev_run::EPOCHS),
        ),
        lr: args.lr,
        batch_size: args.batch_size.get(),
        seq_len: args.seq_len.map(NonZeroUsize::get),
        hidden: args.hidden.map(NonZeroUsize::get),
        seed: args.run.seed,
        optimizer: match args.optimizer {
            OptimizerArg::FastaiAdam => OptimizerConfig::Adam(AdamConfig::fastai()),
            OptimizerArg::TorchAdam => OptimizerConfig::Adam(AdamConfig::pytorch()),
            OptimizerArg::Sgd => OptimizerConfig::Sgd(SgdConfig {
                momentum: 0.9,
                weight_decay: 0.0,
            }),
        },
    };
    // Check the settings and the data before starting a device.
    let (vocab, data) = config.data()?;
    let (choice, device) = args.run.device()?;
    println!("human numbers, {model} on {choice}, seed {}", config.seed);
    let epochs = args.checkpoint.train(&args.run, |run| {
        config.run_on(vocab.len(), data, run, &device)
    })?;
    let last = epochs.last().expect("at least one epoch ran");
    let accuracy = last.metric("accuracy").unwrap_or(f64::NAN);
    println!(
        "final: valid_loss {:.6} accuracy {accuracy:.6}",
        last.valid_loss
    );
    let run = json!({
        "command": "human-numbers",
        "model": model.name(),
        "device": choice.name(),
        "seed": config.seed,
        "batch_size": config.batch_size,
    });
    args.run
        .write_plots(|dir| seqlab::plot::epoch_plots(dir, "human_numbers", &epochs))?;
    args.run.write_metrics(run, &epochs)
}
