//! `seqlab char-lm train | sample`: the RNN course's character-level LSTM on any text.

use super::common::{DiskArgs, RunArgs, fast_dev_run};
use super::resume::CheckpointArgs;
use clap::{Args as ClapArgs, Subcommand};
use seqlab::data::{TokenIds, char_ids_on_disk, read_text_files};
use seqlab::lessons::char_lm::{
    CharCorpus, CharLm, CharLmConfig, TrainWindows, text_files, train_char_lm,
};
use seqlab::models::{CellKind, GenerateConfig, Sampling};
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `seqlab char-lm` does.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// Trains on text files (or folders of .txt files), holding out the tail, and writes a
    /// checkpoint after every epoch.
    Train(TrainArgs),
    /// Generates text from a checkpoint, one character at a time.
    Sample(SampleArgs),
}

/// Options of `seqlab char-lm train`.
#[derive(ClapArgs, Debug)]
pub struct TrainArgs {
    /// UTF-8 text files, or folders whose .txt files are read in name order.
    #[arg(long, required = true, num_args = 1..)]
    text: Vec<PathBuf>,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    /// The recurrence: lstm, gru or rnn.
    #[arg(long, default_value = "lstm")]
    cell: CellKind,
    /// Hidden units per layer.
    #[arg(long, default_value = "512")]
    hidden: NonZeroUsize,
    /// Stacked layers.
    #[arg(long, default_value = "2")]
    layers: NonZeroUsize,
    /// Embedding width.
    #[arg(long, default_value = "64")]
    embedding: NonZeroUsize,
    /// Characters per training sequence.
    #[arg(long, default_value = "100")]
    seq_len: NonZeroUsize,
    /// Sequences per batch.
    #[arg(long, default_value = "32")]
    batch_size: NonZeroUsize,
    /// Passes over the training text.
    #[arg(long, default_value = "1")]
    epochs: NonZeroUsize,
    /// Peak learning rate (Adam, one-cycle).
    #[arg(long, default_value_t = 2e-3, allow_negative_numbers = true)]
    lr: f64,
    /// Dropout on the LSTM's output before the read-out, in training (0: none, as the notebook).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    dropout: f64,
    /// Fraction of the text, from the end, held out for validation.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    valid_fraction: f64,
    /// Train on at most this many characters of the training part.
    #[arg(long)]
    max_chars: Option<usize>,
    /// How the training text becomes samples: `stream` (batch-size streams in order, the state
    /// carried: each character once per epoch) or `overlapping` (a window at every character,
    /// shuffled: seq-len times the steps). Default: overlapping when streams would give fewer
    /// than 50 batches per epoch (a text under about 160,000 characters at the default sizes).
    #[arg(long)]
    windows: Option<TrainWindows>,
    #[command(flatten)]
    disk: DiskArgs,
    /// Characters to sample at temperatures 0.5 and 1.0 after training (0: none).
    #[arg(long, default_value_t = 400)]
    sample_length: usize,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of `seqlab char-lm sample`.
#[derive(ClapArgs, Debug)]
pub struct SampleArgs {
    /// A checkpoint written by `seqlab char-lm train`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// Text to start from (its characters must be in the model's vocabulary).
    #[arg(long, default_value = "\n")]
    prime: String,
    /// Characters to generate.
    #[arg(long, default_value_t = 1000)]
    length: usize,
    /// Always take the most likely character.
    #[arg(long)]
    greedy: bool,
    /// Softmax temperature: below 1 sharpens, above 1 flattens.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    temperature: f64,
    /// Sample only from the k most likely characters.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample only from the most likely characters whose probability reaches p (nucleus).
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f64>,
    #[command(flatten)]
    run: RunArgs,
}

/// Runs `train` or `sample`.
pub fn run(action: Action) -> Result<(), Box<dyn Error>> {
    match action {
        Action::Train(args) => train(args),
        Action::Sample(args) => sample(args),
    }
}

fn train(args: TrainArgs) -> Result<(), Box<dyn Error>> {
    let files = text_files(&args.text)?;
    let mut corpus = read_corpus(&files, &args)?;
    let mut windows = args.windows;
    let mut max_train_chars = args.max_chars;
    if args.run.fast_dev_run {
        // The windows the whole text would get, over few enough characters that the check
        // stays as short as a stream epoch over its head: seq-len times fewer for windows.
        let chosen = windows.unwrap_or_else(|| {
            TrainWindows::for_text(
                corpus.train.len(),
                args.seq_len.get(),
                args.batch_size.get(),
            )
        });
        windows = Some(chosen);
        if chosen == TrainWindows::Overlapping {
            max_train_chars = Some(fast_dev_run::CHARS / args.seq_len.get() + args.seq_len.get());
        }
        corpus = head_of(&corpus, fast_dev_run::CHARS, args.valid_fraction)?;
    }
    let config = CharLmConfig {
        cell: args.cell,
        embedding: args.embedding.get(),
        hidden: args.hidden.get(),
        layers: args.layers.get(),
        seq_len: args.seq_len.get(),
        batch_size: args.batch_size.get(),
        epochs: args.run.or_fast(args.epochs.get(), fast_dev_run::EPOCHS),
        lr: args.lr,
        dropout: args.dropout,
        max_train_chars,
        windows,
        seed: args.run.seed,
    };
    let (choice, device) = args.run.device()?;
    println!(
        "char-lm: {} files, {} characters ({} distinct), {} held out; {} {}x{} (embedding {}), on {choice}, seed {}",
        files.len(),
        corpus.train.len() + corpus.valid.len(),
        corpus.vocab.chars().len(),
        corpus.valid.len(),
        config.cell.name(),
        config.layers,
        config.hidden,
        config.embedding,
        config.seed
    );
    println!(
        "windows: {} ({})",
        config.train_windows(&corpus).name(),
        if args.windows.is_some() {
            "as asked"
        } else {
            "chosen from the text's size; --windows sets it"
        },
    );
    let out = args
        .checkpoint
        .out_dir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("char-lm"));
    let start = Instant::now();
    let (model, report) = args.checkpoint.train_into(Some(&out), &args.run, |run| {
        train_char_lm(&config, &corpus, run, &device)
    })?;
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    println!(
        "held out: {:.4} bits per character ({} characters); trained on {} characters an epoch ({} batches) in {minutes:.1} min; {} parameters",
        report.valid_bits_per_char,
        report.valid_chars,
        report.train_chars,
        report.batches_per_epoch,
        report.parameters
    );
    println!("wrote {}", out.display());
    let sample_length = args.run.or_fast(
        args.sample_length,
        args.sample_length.min(fast_dev_run::SAMPLE_LENGTH),
    );
    if sample_length > 0 {
        for temperature in [0.5, 1.0] {
            let generate = GenerateConfig {
                length: sample_length,
                sampling: Sampling::temperature(temperature),
                seed: config.seed,
                banned: Vec::new(),
            };
            println!("--- sample at temperature {temperature}:");
            println!("{}", model.sample("\n", &generate, &device)?);
        }
    }
    let run = json!({
        "command": "char-lm train",
        "device": choice.name(),
        "seed": config.seed,
        "hidden": config.hidden,
        "layers": config.layers,
        "windows": report.windows.name(),
        "batches_per_epoch": report.batches_per_epoch,
        "train_chars": report.train_chars,
        "valid_chars": report.valid_chars,
        "valid_bits_per_char": report.valid_bits_per_char,
        "minutes": minutes,
    });
    args.run.write_plots(|dir| {
        seqlab::plot::training_plots(dir, "char_lm", &report.batch_losses, &report.records)
    })?;
    args.run.write_metrics(run, &report.records)
}

/// The corpus of `files`: read into memory, or memory-mapped from its id file in the cache
/// folder (`--from-disk`, or a corpus over 1 GiB).
fn read_corpus(files: &[PathBuf], args: &TrainArgs) -> Result<CharCorpus, Box<dyn Error>> {
    if !args.disk.reads_from_disk(files) {
        return Ok(CharCorpus::split(
            &read_text_files(files)?,
            args.valid_fraction,
        )?);
    }
    let start = Instant::now();
    let (vocab, ids, cache) = char_ids_on_disk(files, &args.disk.ids_dir())?;
    args.disk
        .report(ids.file(), cache, start.elapsed().as_secs_f64());
    Ok(CharCorpus::from_ids(vocab, ids, args.valid_fraction)?)
}

/// The corpus `corpus` would be were its text the first `chars` characters: the same
/// vocabulary, cut at the same fraction.
fn head_of(
    corpus: &CharCorpus,
    chars: usize,
    valid_fraction: f64,
) -> Result<CharCorpus, Box<dyn Error>> {
    let mut head = corpus.train.slice(0..chars).to_vec();
    head.extend(corpus.valid.slice(0..chars - head.len()).to_vec());
    Ok(CharCorpus::from_ids(
        corpus.vocab.clone(),
        TokenIds::from(head),
        valid_fraction,
    )?)
}

fn sample(args: SampleArgs) -> Result<(), Box<dyn Error>> {
    let sampling = if args.greedy {
        Sampling::Greedy
    } else {
        Sampling::Random {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
        }
    };
    sampling.check()?;
    let (_, device) = args.run.device()?;
    let model = CharLm::load(&args.checkpoint, &device)?;
    let length = args
        .run
        .or_fast(args.length, args.length.min(fast_dev_run::SAMPLE_LENGTH));
    let generate = GenerateConfig {
        length,
        sampling,
        seed: args.run.seed,
        banned: Vec::new(),
    };
    let start = Instant::now();
    let text = model.sample(&args.prime, &generate, &device)?;
    let seconds = start.elapsed().as_secs_f64();
    println!("{}{text}", args.prime);
    eprintln!(
        "{length} characters in {seconds:.2} s ({:.0} characters/s)",
        length as f64 / seconds.max(1e-9)
    );
    Ok(())
}
