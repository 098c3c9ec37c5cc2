//! `seqlab sinusoid`: the RNN course's linear RNN on sinusoids.

use super::common::{RunArgs, fast_dev_run};
use super::resume::CheckpointArgs;
use clap::Args as ClapArgs;
use seqlab::lessons::sinusoid::{SinusoidLessonConfig, run_sinusoid};
use seqlab::plot;
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;

/// Options of `seqlab sinusoid`; the defaults are the notebook's.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Hidden units (the notebook starts with 1; one frequency needs 2).
    #[arg(long, default_value = "1")]
    hidden: NonZeroUsize,
    /// Epochs.
    #[arg(long, default_value = "5")]
    epochs: NonZeroUsize,
    /// Frequencies of the summed sinusoids, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    frequencies: Vec<f64>,
    /// Standard deviation of Gaussian noise on every sample.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    noise: f64,
    /// Series per batch.
    #[arg(long, default_value = "2")]
    batch_size: NonZeroUsize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    lr: f64,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Trains, prints the table and the final numbers, and writes plots if asked.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let mut config = SinusoidLessonConfig {
        hidden: args.hidden.get(),
        epochs: args.run.or_fast(args.epochs.get(), fast_dev_run::EPOCHS),
        batch_size: args.batch_size.get(),
        lr: args.lr,
        seed: args.run.seed,
        ..SinusoidLessonConfig::default()
    };
    if args.run.fast_dev_run {
        config.train_series = config.train_series.min(fast_dev_run::EXAMPLES);
    }
    config.data.frequencies = args.frequencies.clone();
    config.data.noise = args.noise;
    let (choice, device) = args.run.device()?;
    println!(
        "sinusoid: linear RNN, {} hidden, frequencies {:?}, noise {}, on {choice}, seed {}",
        config.hidden, config.data.frequencies, config.data.noise, config.seed
    );
    let report = args
        .checkpoint
        .train(&args.run, |run| run_sinusoid(&config, run, &device))?;
    println!(
        "final: train_mse {:.6} test_mse {:.6} test_mse_after_warmup {:.6} free_run_mse {:.6}",
        report.records.last().map_or(f64::NAN, |r| r.train_loss),
        report.test_mse,
        report.test_mse_after_warmup,
        report.generated_mse
    );
    args.run.write_plots(|dir| {
        let mut written = plot::sinusoid_plots(dir, &report)?;
        written.extend(plot::epoch_plots(dir, "sinusoid", &report.records)?);
        Ok(written)
    })?;
    let run = json!({
        "command": "sinusoid",
        "device": choice.name(),
        "seed": config.seed,
        "hidden": config.hidden,
        "frequencies": config.data.frequencies,
        "noise": config.data.noise,
        "test_mse": report.test_mse,
        "test_mse_after_warmup": report.test_mse_after_warmup,
        "free_run_mse": report.generated_mse,
    });
    args.run.write_metrics(run, &report.records)
}
