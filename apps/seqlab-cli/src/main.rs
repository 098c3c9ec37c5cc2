//! `seqlab`: the command line that runs every lesson on the device you choose.

mod allocator;
mod commands;
mod group;

/// mimalloc keeps freed memory for reuse: glibc maps buffers over 128 KiB fresh from the
/// system and unmaps them on free, so every step of a model paid page faults for its
/// temporaries. Running out of memory ends the run with one line, not an abort.
#[global_allocator]
static ALLOCATOR: allocator::ExitOnOutOfMemory<mimalloc::MiMalloc> =
    allocator::ExitOnOutOfMemory(mimalloc::MiMalloc);

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Sequence models in Rust: run the lessons on flex, ndarray, wgpu or cuda.
#[derive(Parser, Debug)]
#[command(name = "seqlab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// fastai's human-numbers language models LMModel1–7, as the lesson and the book train them.
    HumanNumbers(commands::human_numbers::Args),
    /// The RNN course: a linear RNN learns sinusoids, then runs free.
    Sinusoid(commands::sinusoid::Args),
    /// The RNN course: encoder-decoders copy (or reverse) symbol sequences.
    Copy(commands::copy::Args),
    /// The RNN course: encoder-decoders learn to add, "123+4567" -> "4690".
    Addition(commands::addition::Args),
    /// The RNN course's character-level LSTM: train on any text, then sample.
    #[command(subcommand)]
    CharLm(commands::char_lm::Action),
    /// Goldberg's character n-gram baseline: held-out bits per character by order.
    Markov(commands::markov::Args),
    /// Part-of-speech tagging: the tutorial's LSTMTag, then a real tagger on the Brown corpus.
    #[command(subcommand)]
    PosTag(commands::pos_tag::Action),
    /// Token ids of a text, one per line with what each decodes to (bert-base-uncased by
    /// default).
    Tokenize(commands::tokenize::Args),
    /// Text classification: MLP, RNN, LSTM or GRU, from scratch or from a language model.
    Classify(commands::classify::Args),
    /// Language models on a corpus of texts, for classifiers to start from.
    #[command(subcommand)]
    Lm(commands::lm::Action),
    /// Training and inference speed in the PyTorch reference benchmark's configurations.
    Bench(commands::bench::Args),
    /// A checkpoint as an ONNX file with real RNN/LSTM/GRU nodes, for ONNX Runtime.
    Export(commands::export::Args),
    /// A language model from an ONNX file (exported from PyTorch, say) as a checkpoint that
    /// `classify --pretrained-lm` fine-tunes.
    Import(commands::import::Args),
}

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("seqlab: {}", one_line(&error.to_string()));
            return ExitCode::from(2);
        }
    };
    // Each command runs on one of rayon's threads, so that the parallel loops of the kernels
    // and of Burn's CPU backends split their work from inside the pool (a cheap join) rather
    // than each handing it over from this thread and waiting on a lock.
    // Under mpirun, MPI starts on that thread and the command trains data-parallel.
    on_thread_pool(move || {
        let membership = match group::Membership::join() {
            Ok(membership) => membership,
            Err(error) => {
                eprintln!("seqlab: {}", one_line(&error));
                return ExitCode::FAILURE;
            }
        };
        match run(cli.command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                // One write, so that the lines of processes sharing mpirun's stderr stay whole.
                let line = format!(
                    "seqlab{}: {}\n",
                    membership.label(),
                    one_line(&error.to_string())
                );
                if membership.reports() {
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                }
                membership.fail();
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs `command`.
fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::HumanNumbers(args) => commands::human_numbers::run(args),
        Command::Sinusoid(args) => commands::sinusoid::run(args),
        Command::Copy(args) => commands::copy::run(args),
        Command::Addition(args) => commands::addition::run(args),
        Command::CharLm(args) => commands::char_lm::run(args),
        Command::Markov(args) => commands::markov::run(args),
        Command::PosTag(args) => commands::pos_tag::run(args),
        Command::Tokenize(args) => commands::tokenize::run(args),
        Command::Classify(args) => commands::classify::run(args),
        Command::Lm(args) => commands::lm::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Export(args) => commands::export::run(args),
        Command::Import(args) => commands::import::run(args),
    }
}

/// Runs `work` on a thread of rayon's global pool, whose threads get the main thread's usual
/// stack size (8 MiB; rayon's default is 2 MiB).
fn on_thread_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    // Fails only if the pool already exists, which is then the pool to use.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(8 << 20)
        .build_global();
    rayon::scope(|_| work())
}

/// Folds a multi-line message into one line, leaving out clap's usage and help hints.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with("For more information")
                && !line.starts_with("Usage:")
        })
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join(" ")
}
