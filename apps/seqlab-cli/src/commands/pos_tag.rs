//! `seqlab pos-tag train | tag`: part-of-speech tagging, from the tutorial's two sentences to
//! the Brown corpus.

use super::common::{RunArgs, fast_dev_run, fetched_dataset, spread};
use super::resume::CheckpointArgs;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use seqlab::data::{
    TaggedSentence, parse_brown, parse_conllu, read_brown_dir, read_text_files,
    toy_tagged_sentences,
};
use seqlab::lessons::TrainRun;
use seqlab::lessons::pos_tag::{
    PosTagger, TaggingConfig, new_tagger, split_sentences, train_tagger,
};
use serde_json::json;
use std::error::Error;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `seqlab pos-tag` does.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// Trains a tagger: `--corpus toy` is the tutorial's LSTMTag on its two sentences;
    /// `brown` the fetched Brown corpus (datasets/fetch brown); or a folder of Brown files, a
    /// Brown-format file, or a .conllu file.
    Train(Box<TrainArgs>),
    /// Tags a sentence with a trained tagger.
    Tag(TagArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `word/tag` tokens, one sentence per line.
    Brown,
    /// Universal Dependencies' CoNLL-U (FORM and UPOS).
    Conllu,
}

/// Options of `seqlab pos-tag train`.
#[derive(ClapArgs, Debug)]
pub struct TrainArgs {
    /// toy, brown, or a path.
    #[arg(long, default_value = "toy")]
    corpus: String,
    /// The format of a corpus file (default: by its extension, .conllu or Brown).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Keep the Brown corpus's full tags (`nn-tl`, `fw-in`) instead of the base tags.
    #[arg(long)]
    full_tags: bool,
    #[command(flatten)]
    checkpoint: CheckpointArgs,
    /// Word embedding width (tutorial 6, default 100).
    #[arg(long)]
    embedding: Option<NonZeroUsize>,
    /// Hidden units per direction (tutorial 6, default 128).
    #[arg(long)]
    hidden: Option<NonZeroUsize>,
    /// Read sentences both ways (true/false).
    #[arg(long)]
    bidirectional: Option<bool>,
    /// Character embedding width; 0 switches the spelling features off.
    #[arg(long)]
    char_embedding: Option<usize>,
    /// The character LSTM's width.
    #[arg(long)]
    char_hidden: Option<NonZeroUsize>,
    /// Epochs (tutorial 300, default 3).
    #[arg(long)]
    epochs: Option<NonZeroUsize>,
    /// Sentences per batch.
    #[arg(long)]
    batch_size: Option<NonZeroUsize>,
    /// Learning rate (SGD for the tutorial, Adam otherwise).
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Fraction of the sentences held out (0: train and score on all, as the tutorial).
    #[arg(long, allow_negative_numbers = true)]
    valid_fraction: Option<f64>,
    /// Use at most this many sentences.
    #[arg(long)]
    max_sentences: Option<usize>,
    #[command(flatten)]
    run: RunArgs,
}

/// Options of `seqlab pos-tag tag`.
#[derive(ClapArgs, Debug)]
pub struct TagArgs {
    /// A tagger written by `seqlab pos-tag train --out`.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// The sentence, words separated by spaces.
    sentence: String,
    /// Device: flex, ndarray, wgpu, cuda (built with the feature), or cpu.
    #[arg(long, default_value = "cpu")]
    device: seqlab::device::DeviceChoice,
}

/// Runs `train` or `tag`.
pub fn run(action: Action) -> Result<(), Box<dyn Error>> {
    match action {
        Action::Train(args) => train(*args),
        Action::Tag(args) => tag(args),
    }
}

fn load(args: &TrainArgs) -> Result<Vec<TaggedSentence>, Box<dyn Error>> {
    let base_tags = !args.full_tags;
    let sentences = match args.corpus.as_str() {
        "toy" => toy_tagged_sentences(),
        "brown" => read_brown_dir(&fetched_dataset("brown")?, base_tags)?,
        path => {
            let path = Path::new(path);
            if path.is_dir() {
                read_brown_dir(path, base_tags)?
            } else {
                let text = read_text_files(&[path])?;
                let origin = path.display().to_string();
                let conllu = args.format == Some(Format::Conllu)
                    || (args.format.is_none() && path.extension().is_some_and(|e| e == "conllu"));
                if conllu {
                    parse_conllu(&text, &origin)?
                } else {
                    parse_brown(&text, &origin, base_tags)?
                }
            }
        }
    };
    if sentences.is_empty() {
        return Err(format!("{} has no tagged sentences", args.corpus).into());
    }
    let sentences = match args.max_sentences {
        Some(limit) => sentences.into_iter().take(limit).collect(),
        None => sentences,
    };
    Ok(if args.run.fast_dev_run {
        spread(sentences, fast_dev_run::SENTENCES)
    } else {
        sentences
    })
}

fn print_scores(title: &str, tags: &[&str], scores: &[Vec<f32>]) {
    println!("{title} (rows: words; columns: {})", tags.join(", "));
    for row in scores {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:8.4}")).collect();
        println!("  [{}]", cells.join(","));
    }
}

fn train(args: TrainArgs) -> Result<(), Box<dyn Error>> {
    let toy = args.corpus == "toy";
    let defaults = if toy {
        TaggingConfig::tutorial()
    } else {
        TaggingConfig::default()
    };
    let config = TaggingConfig {
        embedding: args
            .embedding
            .map(NonZeroUsize::get)
            .unwrap_or(defaults.embedding),
        hidden: args
            .hidden
            .map(NonZeroUsize::get)
            .unwrap_or(defaults.hidden),
        bidirectional: args.bidirectional.unwrap_or(defaults.bidirectional),
        char_embedding: args.char_embedding.unwrap_or(defaults.char_embedding),
        char_hidden: args
            .char_hidden
            .map(NonZeroUsize::get)
            .unwrap_or(defaults.char_hidden),
        epochs: args.run.or_fast(
            args.epochs
                .map(NonZeroUsize::get)
                .unwrap_or(defaults.epochs),
            fast_dev_run::EPOCHS,
        ),
        batch_size: args
            .batch_size
            .map(NonZeroUsize::get)
            .unwrap_or(defaults.batch_size),
        lr: args.lr.unwrap_or(defaults.lr),
        valid_fraction: args.valid_fraction.unwrap_or(defaults.valid_fraction),
        max_sentences: args.max_sentences,
        seed: args.run.seed,
        ..defaults
    };
    let sentences = load(&args)?;
    let (train_set, valid_set) = split_sentences(&sentences, config.valid_fraction, config.seed)?;
    let (choice, device) = args.run.device()?;
    let tag_order: Option<&[&str]> = toy.then_some(&["V", "NN", "DET"][..]);
    let tagger = new_tagger(&config, &train_set, &valid_set, tag_order, &device)?;
    println!(
        "pos-tag: {} sentences ({} held out), {} words, {} tags; embedding {}, hidden {}{}{}, on {choice}, seed {}",
        sentences.len(),
        if config.valid_fraction == 0.0 {
            0
        } else {
            valid_set.len()
        },
        tagger.words.len(),
        tagger.tags.len(),
        config.embedding,
        config.hidden,
        if config.bidirectional {
            " x2 directions"
        } else {
            ""
        },
        if config.char_embedding > 0 {
            format!(
                ", characters {}/{}",
                config.char_embedding, config.char_hidden
            )
        } else {
            String::new()
        },
        config.seed
    );
    let first = &train_set[0].words;
    let tag_names: Vec<String> = tagger.tags.tokens().to_vec();
    let tag_names: Vec<&str> = tag_names.iter().map(String::as_str).collect();
    if toy {
        print_scores(
            &format!("scores before training, \"{}\"", first.join(" ")),
            &tag_names,
            &tagger.scores(first, &device)?,
        );
    }
    let start = Instant::now();
    let (tagger, report) = args.checkpoint.train(&args.run, |run| {
        let run = TrainRun {
            print_table: !toy,
            ..*run
        };
        train_tagger(tagger, &config, &train_set, &valid_set, &run, &device)
    })?;
    let minutes = start.elapsed().as_secs_f64() / 60.0;
    if toy {
        print_scores(
            &format!("scores after training, \"{}\"", first.join(" ")),
            &tag_names,
            &tagger.scores(first, &device)?,
        );
        println!("tags: {}", tagger.tag(first, &device)?.join(" "));
    }
    println!(
        "held out: accuracy {:.4}; most-frequent-tag baseline {:.4}; {} parameters, {minutes:.1} min",
        report.accuracy, report.baseline_accuracy, report.parameters
    );
    if let Some(out) = args.checkpoint.out_dir() {
        println!("wrote {}", out.display());
    }
    let run = json!({
        "command": "pos-tag train",
        "corpus": args.corpus,
        "device": choice.name(),
        "seed": config.seed,
        "accuracy": report.accuracy,
        "baseline_accuracy": report.baseline_accuracy,
        "train_sentences": report.train_sentences,
        "valid_sentences": report.valid_sentences,
        "minutes": minutes,
    });
    args.run
        .write_plots(|dir| seqlab::plot::epoch_plots(dir, "pos_tag", &report.records))?;
    args.run.write_metrics(run, &report.records)
}

fn tag(args: TagArgs) -> Result<(), Box<dyn Error>> {
    let choice = args.device;
    let device = choice.device()?;
    let tagger = PosTagger::load(&args.checkpoint, &device)?;
    let words: Vec<String> = args
        .sentence
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let tags = tagger.tag(&words, &device)?;
    let pairs: Vec<String> = words
        .iter()
        .zip(&tags)
        .map(|(word, tag)| format!("{word}/{tag}"))
        .collect();
    println!("{}", pairs.join(" "));
    Ok(())
}
