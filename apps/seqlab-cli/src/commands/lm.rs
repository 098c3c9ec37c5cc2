//! `seqlab lm train`: a recurrent language model on a corpus of texts, saved with its
//! tokenizer for `seqlab classify --pretrained-lm`.

use super::common::LayerSizes;
use super::common::fetched_dataset;
use super::common::{DiskArgs, RunArgs, TOKENIZER_SAMPLE_BYTES, fast_dev_run, spread};
use super::resume::CheckpointArgs;
use super::text::{DataArgs, TokenizerArgs, describe, head_rows};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use seqlab::data::{
    LabelledTable, TokenIds, Tokenizer, encode_in_pieces, read_text_chunks, read_text_files,
    table_ids_on_disk, token_ids_on_disk,
};
use seqlab::lessons::text_lm::{
    LmSchedule, LmTexts, TextLm, TextLmConfig, shuffled_order, train_text_lm,
};
use seqlab::models::CellKind;
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `seqlab lm` does.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// Trains a language model on every text of the data (labels are not used; every tune
    /// of an ABC collection counts, labelled or not).
    Train(TrainArgs),
}

/// Options of `seqlab lm train`.
#[derive(ClapArgs, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    tokenizer: TokenizerArgs,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    #[command(flatten)]
    disk: DiskArgs,
    /// rnn, lstm or gru.
    #[arg(long, default_value = "lstm")]
    cell: CellKind,
    #[command(flatten)]
    sizes: LayerSizes,
    /// Tokens per sequence.
    #[arg(long, default_value = "64")]
    seq_len: NonZeroUsize,
    /// Streams per batch.
    #[arg(long, default_value = "32")]
    batch_size: NonZeroUsize,
    /// Epochs.
    #[arg(long, default_value = "3")]
    epochs: NonZeroUsize,
    /// Peak learning rate (one cycle), or the rate before the decay (--decay-after).
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    lr: f64,
    /// adam (PyTorch's) or sgd (plain, as Zaremba et al. train).
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// Keep the rate for this many epochs, then multiply it by --decay every epoch (Zaremba
    /// et al.'s schedule) instead of one cycle.
    #[arg(long, value_name = "EPOCHS")]
    decay_after: Option<usize>,
    /// The factor per epoch after --decay-after.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    decay: f64,
    /// Clip the gradients to this global norm (default 5). The loss is a mean per token, so
    /// Zaremba et al.'s recipe (a sum over the 20 steps of a sequence, clipped at 5) is
    /// --lr 20 --grad-clip 0.25 here.
    #[arg(long, allow_negative_numbers = true)]
    grad_clip: Option<f64>,
    /// Share of the shuffled corpus, from the end, held out.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    valid_fraction: f64,
    /// Train on at most this many tokens (the held-out tail stays whole).
    #[arg(long, value_name = "N")]
    max_train_tokens: Option<usize>,
    #[command(flatten)]
    run: RunArgs,
}

/// The optimizer of `lm train`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OptimizerArg {
    /// PyTorch's Adam.
    Adam,
    /// Plain SGD, no momentum.
    Sgd,
}

/// Runs `train`.
pub fn run(action: Action) -> Result<(), Box<dyn Error>> {
    match action {
        Action::Train(args) => train(args),
    }
}

fn train(args: TrainArgs) -> Result<(), Box<dyn Error>> {
    let config = TextLmConfig {
        cell: args.cell,
        embedding: args.sizes.embedding.get(),
        hidden: args.sizes.hidden.get(),
        layers: args.sizes.layers.get(),
        seq_len: args.seq_len.get(),
        batch_size: args.batch_size.get(),
        epochs: args.run.or_fast(args.epochs.get(), fast_dev_run::EPOCHS),
        lr: args.lr,
        sgd: args.optimizer == OptimizerArg::Sgd,
        schedule: match args.decay_after {
            Some(flat_epochs) => {
                if !(args.decay > 0.0 && args.decay <= 1.0) {
                    return Err(format!("--decay must be in (0, 1], got {}", args.decay).into());
                }
                LmSchedule::StepDecay {
                    flat_epochs,
                    factor: args.decay,
                }
            }
            None => LmSchedule::OneCycle,
        },
        grad_clip: match args.grad_clip {
            Some(norm) if !(norm.is_finite() && norm > 0.0) => {
                return Err(format!("--grad-clip must be positive, got {norm}").into());
            }
            other => other,
        },
        valid_fraction: args.valid_fraction,
        max_train_tokens: args.max_train_tokens,
        seed: args.run.seed,
    };
    let (_, device) = args.run.device()?;
    let (texts, splits, encoded);
    let (tokenizer, corpus) = if let Some(file) = plain_text(&args.data.data) {
        let tokenizer;
        (tokenizer, encoded) = encode_plain_text(file, &args, &device)?;
        println!(
            "{}: {} tokens; {}",
            file.display(),
            encoded.len(),
            describe(&tokenizer)
        );
        (tokenizer, LmTexts::Encoded(&encoded))
    } else if args.data.data == "ptb" {
        splits = ptb_splits(args.run.fast_dev_run)?;
        let [train, valid, test] = &splits;
        let tokenizer = args.tokenizer.tokenizer(&[train])?;
        println!(
            "Penn Treebank: {}, {} and {} sentences; {}",
            train.lines().count(),
            valid.lines().count(),
            test.lines().count(),
            describe(&tokenizer)
        );
        (tokenizer, LmTexts::Split { train, valid, test })
    } else if let Some(table) = args.data.table_on_disk(&args.disk)? {
        let (tokenizer, texts);
        (tokenizer, encoded, texts) = encode_table(table, &config, &args, &device)?;
        println!("{texts} texts; {}", describe(&tokenizer));
        (tokenizer, LmTexts::Encoded(&encoded))
    } else {
        let mut read: Vec<String> = args
            .data
            .read(true)?
            .into_iter()
            .map(|row| row.text)
            .collect();
        if args.run.fast_dev_run {
            read = spread(read, fast_dev_run::TEXTS);
        }
        texts = read;
        let tokenizer = args.tokenizer.tokenizer(&texts)?;
        println!("{} texts; {}", texts.len(), describe(&tokenizer));
        (tokenizer, LmTexts::Shuffled(&texts))
    };
    let out = args
        .checkpoint
        .out_dir()
        .map(Path::to_path_buf)
        .ok_or("lm train needs --out DIR")?;
    let (_, report) = args.checkpoint.train_into(Some(&out), &args.run, |run| {
        train_text_lm(&config, corpus, tokenizer, run, &device)
    })?;
    println!(
        "{} training / {} held-out tokens, {} parameters, {:.1} s; held-out perplexity {:.2}",
        report.tokens.0, report.tokens.1, report.parameters, report.seconds, report.perplexity
    );
    if let Some(perplexity) = report.test_perplexity {
        println!("test perplexity {perplexity:.2}");
    }
    if let Some((epoch, best)) = report
        .records
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.valid_loss.total_cmp(&b.1.valid_loss))
    {
        let minutes: f64 = report.records[..=epoch]
            .iter()
            .map(|r| r.time_s)
            .sum::<f64>()
            / 60.0;
        println!(
            "best held-out perplexity {:.2} after epoch {epoch}, {minutes:.1} min of training",
            best.valid_loss.exp()
        );
    }
    println!("saved to {}", out.display());
    args.run.write_plots(|dir| {
        seqlab::plot::training_plots(dir, "lm", &report.batch_losses, &report.records)
    })?;
    args.run.write_metrics(
        json!({
            "command": "lm train",
            "data": args.data.data,
            "tokenizer": args.tokenizer.tokenizer,
            "perplexity": report.perplexity,
            "test_perplexity": report.test_perplexity,
            "seed": config.seed,
        }),
        &report.records,
    )?;
    Ok(())
}

/// The file `data` names when it is plain text (a `.txt` file), read in order with its tail
/// held out.
fn plain_text(data: &str) -> Option<&Path> {
    let path = Path::new(data);
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"))
        .then_some(path)
}

/// The tokens of the plain-text corpus `file` and the tokenizer that reads them: trained on
/// the text (or read from a file, `--tokenizer PATH`), or saved in the checkpoint a run
/// resumes; the text read into memory, or encoded into an id file on disk (`--from-disk`, or
/// over 1 GiB: the tokenizer is then trained on the text's first 64 MiB).
fn encode_plain_text(
    file: &Path,
    args: &TrainArgs,
    device: &seqlab::Device,
) -> Result<(Tokenizer, TokenIds), Box<dyn Error>> {
    let files = [file.to_path_buf()];
    let saved = match &args.checkpoint.resume {
        Some(dir) => Some(TextLm::load(dir, device)?.tokenizer),
        None => None,
    };
    let (tokenizer, ids) = if args.disk.reads_from_disk(&files) {
        let tokenizer = match saved {
            Some(tokenizer) => tokenizer,
            None => args
                .tokenizer
                .tokenizer(&[head_text(&files, TOKENIZER_SAMPLE_BYTES)?])?,
        };
        let start = Instant::now();
        let (ids, cache) = token_ids_on_disk(&files, &args.disk.ids_dir(), &tokenizer)?;
        args.disk
            .report(ids.file(), cache, start.elapsed().as_secs_f64());
        (tokenizer, ids)
    } else {
        let text = read_text_files(&files)?;
        let tokenizer = match saved {
            Some(tokenizer) => tokenizer,
            None => args.tokenizer.tokenizer(&[&text])?,
        };
        let ids = encode_in_pieces(&text, &tokenizer)?;
        (tokenizer, TokenIds::from(ids))
    };
    let ids = if args.run.fast_dev_run {
        ids.slice(0..fast_dev_run::TOKENS)
    } else {
        ids
    };
    Ok((tokenizer, ids))
}

/// The tokens of the texts of a table read from disk, in the order a table read into memory
/// is shuffled in ([`shuffled_order`]), and the tokenizer that reads them (saved in the
/// checkpoint a run resumes, or trained on the table's first 64 MiB of texts, or read from a
/// file), and how many texts: one text in memory at a time.
fn encode_table(
    table: LabelledTable,
    config: &TextLmConfig,
    args: &TrainArgs,
    device: &seqlab::Device,
) -> Result<(Tokenizer, TokenIds, usize), Box<dyn Error>> {
    let table = if args.run.fast_dev_run {
        table.select(&spread((0..table.len()).collect(), fast_dev_run::TEXTS))
    } else {
        table
    };
    let tokenizer = match &args.checkpoint.resume {
        Some(dir) => TextLm::load(dir, device)?.tokenizer,
        None => args
            .tokenizer
            .tokenizer(&head_rows(&table, TOKENIZER_SAMPLE_BYTES)?)?,
    };
    let start = Instant::now();
    let how = format!("lm tokenizer {}", tokenizer.to_json()?);
    let (rows, cache) = table_ids_on_disk(
        &table,
        Some(&shuffled_order(table.len(), config.seed)),
        &args.disk.ids_dir(),
        tokenizer.vocab_size(),
        &how,
        |text| tokenizer.encode(text),
    )?;
    args.disk
        .report(rows.ids().file(), cache, start.elapsed().as_secs_f64());
    Ok((tokenizer, rows.ids().clone(), table.len()))
}

/// The first `bytes` (or so: whole pieces) of the text of `files`.
fn head_text(files: &[PathBuf], bytes: usize) -> Result<String, Box<dyn Error>> {
    let mut text = String::new();
    read_text_chunks(files, |piece| {
        text.push_str(piece);
        if text.len() >= bytes {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(text)
}

/// The Penn Treebank's train, valid and test files (`datasets/fetch ptb`); under
/// `--fast-dev-run`, their first 200 sentences each.
fn ptb_splits(fast_dev_run: bool) -> Result<[String; 3], Box<dyn Error>> {
    let dir = fetched_dataset("ptb")?;
    let read = |name: &str| -> Result<String, Box<dyn Error>> {
        let text = read_text_files(&[dir.join(format!("{name}.txt"))])?;
        Ok(if fast_dev_run {
            text.lines()
                .take(fast_dev_run::SENTENCES)
                .map(|line| format!("{line}\n"))
                .collect()
        } else {
            text
        })
    };
    Ok([read("train")?, read("valid")?, read("test")?])
}
