//! `seqlab classify`: text classification with an MLP, RNN, LSTM or GRU, from scratch or
//! from a language model that `seqlab lm train` saved.

use super::common::LayerSizes;
use super::common::{DiskArgs, RunArgs, TOKENIZER_SAMPLE_BYTES, fast_dev_run, spread};
use super::resume::CheckpointArgs;
use super::text::{DataArgs, TokenizerArgs, describe};
use clap::Args as ClapArgs;
use seqlab::lessons::classify::{
    ClassifierArch, ClassifyConfig, Start, TextDataset, Transfer, train_classifier, training_texts,
};
use seqlab::lessons::text_lm::TextLm;
use seqlab::models::Pooling;
use seqlab::train::SchedulePolicy;
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// Options of `seqlab classify`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    tokenizer: TokenizerArgs,
    /// mlp, rnn, lstm or gru.
    #[arg(long, default_value = "lstm")]
    model: ClassifierArch,
    /// Start from this language model's encoder and tokenizer (`seqlab lm train --out`).
    #[arg(long, value_name = "DIR")]
    pretrained_lm: Option<PathBuf>,
    /// Tokens kept per text (the first ones); the MLP reads exactly this many.
    #[arg(long, default_value = "256")]
    max_len: NonZeroUsize,
    #[command(flatten)]
    sizes: LayerSizes,
    /// Run the recurrent layers both ways.
    #[arg(long)]
    bidirectional: bool,
    /// Pooling over time: mean (over the real, unpadded steps), last (the output at the last
    /// real step) or concat (ULMFiT's: the last output, the maximum and the mean, side by
    /// side).
    #[arg(long, default_value = "mean")]
    pooling: Pooling,
    /// Dropout on the pooled features before the head (recurrent classifiers; 0 for none).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    dropout: f64,
    /// Epochs (after the head-only epochs when fine-tuning).
    #[arg(long, default_value = "4")]
    epochs: NonZeroUsize,
    /// Epochs that train only the head of a pretrained classifier.
    #[arg(long, default_value_t = 1)]
    head_epochs: usize,
    /// Peak learning rate (Adam, one cycle per phase).
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    lr: f64,
    /// How the learning rate moves in each phase: one-cycle (warm up to --lr, then anneal),
    /// constant, or flat-cos (--lr, then anneal over the last quarter).
    #[arg(long, default_value = "one-cycle")]
    schedule: SchedulePolicy,
    /// Clip the gradients to this global L2 norm before each step (PyTorch's
    /// clip_grad_norm_); none by default.
    #[arg(long, allow_negative_numbers = true)]
    grad_clip: Option<f64>,
    /// Fine-tuning a pretrained encoder, divide the learning rate by this per layer group
    /// below the head (ULMFiT: 2.6); 1 trains all alike.
    #[arg(long, default_value_t = 2.6, allow_negative_numbers = true)]
    lr_decay: f64,
    /// What a classifier started from --pretrained-lm takes from the language model: its
    /// whole encoder, embedding and recurrent layers (ULMFiT), or its embedding only, the
    /// recurrent layers starting fresh.
    #[arg(long, default_value = "encoder")]
    transfer: Transfer,
    /// Texts per batch.
    #[arg(long, default_value = "32")]
    batch_size: NonZeroUsize,
    /// Share of every class held out.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    valid_fraction: f64,
    /// Leave out classes with fewer texts than this.
    #[arg(long, default_value_t = 10)]
    min_class_count: usize,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    #[command(flatten)]
    disk: DiskArgs,
    #[command(flatten)]
    run: RunArgs,
}

/// Reads, splits, tokenizes, trains and reports.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let config = ClassifyConfig {
        arch: args.model,
        embedding: args.sizes.embedding.get(),
        hidden: args.sizes.hidden.get(),
        layers: args.sizes.layers.get(),
        bidirectional: args.bidirectional,
        pooling: args.pooling,
        dropout: args.dropout,
        max_len: args.max_len.get(),
        batch_size: args.batch_size.get(),
        epochs: args.run.or_fast(args.epochs.get(), fast_dev_run::EPOCHS),
        head_epochs: args
            .run
            .or_fast(args.head_epochs, args.head_epochs.min(fast_dev_run::EPOCHS)),
        lr: args.lr,
        schedule: args.schedule,
        grad_clip: args.grad_clip,
        lr_decay: args.lr_decay,
        transfer: args.transfer,
        valid_fraction: args.valid_fraction,
        min_class_count: args.min_class_count,
        seed: args.run.seed,
    };
    let (_, device) = args.run.device()?;
    let table = args.data.table_on_disk(&args.disk)?;
    let data = match &table {
        Some(table) => {
            let mut table = table.clone();
            if args.run.fast_dev_run {
                table = table.select(&spread((0..table.len()).collect(), fast_dev_run::TEXTS));
            }
            TextDataset::from_table(&table, config.min_class_count, &args.disk.ids_dir())?
        }
        None => {
            let mut rows = args.data.read(false)?;
            if args.run.fast_dev_run {
                rows = spread(rows, fast_dev_run::TEXTS);
            }
            TextDataset::new(rows, config.min_class_count)?
        }
    };
    let counts = data.class_counts();
    println!(
        "{} texts, {} classes: {}",
        data.len(),
        data.classes.len(),
        data.classes
            .iter()
            .zip(&counts)
            .map(|(class, count)| format!("{class} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !data.dropped.is_empty() {
        println!(
            "left out (fewer than {} texts): {}",
            config.min_class_count,
            data.dropped
                .iter()
                .map(|(class, count)| format!("{class} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let start = match &args.pretrained_lm {
        Some(dir) => {
            let lm = TextLm::load(dir, &device)?;
            println!(
                "pretrained: {} {} layer(s) of {} from {}",
                lm.config.kind.name(),
                lm.config.num_layers,
                lm.config.hidden_size,
                dir.display()
            );
            Start::Pretrained(Box::new(lm))
        }
        None => {
            // Read from disk, a tokenizer is trained on the first training texts only.
            let sample = table.is_some().then_some(TOKENIZER_SAMPLE_BYTES);
            Start::Scratch(
                args.tokenizer
                    .tokenizer(&training_texts(&config, &data, sample)?)?,
            )
        }
    };
    let tokenizer = match &start {
        Start::Scratch(tokenizer) => tokenizer,
        Start::Pretrained(lm) => &lm.tokenizer,
    };
    println!("{}", describe(tokenizer));
    // A resumed run reads the texts with its saved tokenizer: its first run encoded them.
    if args.checkpoint.resume.is_none()
        && let Some(ids) = data.encode_on_disk(tokenizer, config.max_len)?
    {
        args.disk.report(Some(&ids.file), ids.cache, ids.seconds);
    }
    let report = args.checkpoint.train(&args.run, |run| {
        train_classifier(&config, &data, start, run, &device)
    })?;
    println!(
        "{} training / {} held-out texts, {} parameters, {:.1} s",
        report.sizes.0, report.sizes.1, report.parameters, report.seconds
    );
    println!(
        "held-out accuracy {:.4}, balanced accuracy {:.4}, majority-class baseline {:.4}",
        report.accuracy, report.balanced_accuracy, report.majority_accuracy
    );
    println!("{}", report.confusion_table());
    if let Some(out) = args.checkpoint.out_dir() {
        println!("wrote {}", out.display());
    }
    args.run
        .write_plots(|dir| seqlab::plot::epoch_plots(dir, "classify", &report.records))?;
    args.run.write_metrics(
        json!({
            "command": "classify",
            "data": args.data.data,
            "model": args.model.name(),
            "tokenizer": args.tokenizer.tokenizer,
            "pretrained_lm": args.pretrained_lm,
            "accuracy": report.accuracy,
            "balanced_accuracy": report.balanced_accuracy,
            "majority_accuracy": report.majority_accuracy,
            "classes": report.classes,
            "confusion": report.confusion,
            "seed": config.seed,
        }),
        &report.records,
    )?;
    Ok(())
}
