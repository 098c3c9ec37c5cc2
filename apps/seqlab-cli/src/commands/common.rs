//! Options every training subcommand takes: the device, the seed, the metrics file and the
//! quick check of `--fast-dev-run`.

use clap::Args as ClapArgs;
use seqlab::data::CacheUse;
use seqlab::device::DeviceChoice;
use seqlab::lessons::LessonError;
use seqlab::lessons::seq2seq_task::Masking;
use seqlab::train::{EpochRecord, write_metrics_json};
use std::error::Error;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// Where and how to run.
#[derive(ClapArgs, Debug)]
pub struct RunArgs {
    /// Device: flex, ndarray, wgpu, cuda (built with the feature), or cpu (the fastest CPU
    /// device built in).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Seed for initialisation and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write every epoch's numbers to this JSON file.
    #[arg(long, value_name = "PATH")]
    pub metrics_json: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Write PNG plots into this folder (made if missing): the losses and metrics by epoch,
    /// the loss of every batch where the command keeps it, and the lesson's own plots.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Check the whole command in seconds before a long run: one epoch on a small slice of
    /// the data, then everything the command prints and writes (PyTorch Lightning's
    /// `fast_dev_run`). Its numbers show that the pipeline works, not how well it learns.
    #[arg(long)]
    pub fast_dev_run: bool,
}

/// The widths and depth of a token model (`lm train`, and `classify` from scratch).
#[derive(ClapArgs, Debug)]
pub struct LayerSizes {
    /// Embedding width.
    #[arg(long, default_value = "64")]
    pub embedding: NonZeroUsize,
    /// Hidden width.
    #[arg(long, default_value = "128")]
    pub hidden: NonZeroUsize,
    /// Recurrent layers.
    #[arg(long, default_value = "1")]
    pub layers: NonZeroUsize,
}

/// Which halves of the RNN course's masked recipe a sequence-to-sequence run uses.
#[derive(ClapArgs, Debug)]
pub struct MaskingArgs {
    /// The masked recipe, both halves: the encoder's state at each source's length, the loss
    /// up to the first stop symbol (--masked=false: neither; the default depends on the task).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    masked: Option<bool>,
    /// The encoder's half alone: its state at each source's length, not after the padding
    /// (true/false; overrides --masked).
    #[arg(long)]
    mask_encoder: Option<bool>,
    /// The loss's half alone: only target steps up to the first stop symbol count
    /// (true/false; overrides --masked).
    #[arg(long)]
    mask_loss: Option<bool>,
}

impl MaskingArgs {
    /// `default`, with what the options say.
    pub fn apply(&self, default: Masking) -> Masking {
        let base = match self.masked {
            Some(true) => Masking::BOTH,
            Some(false) => Masking::NONE,
            None => default,
        };
        Masking {
            encoder: self.mask_encoder.unwrap_or(base.encoder),
            loss: self.mask_loss.unwrap_or(base.loss),
        }
    }
}

/// How much of a run `--fast-dev-run` keeps.
pub mod fast_dev_run {
    /// Epochs.
    pub const EPOCHS: usize = 1;
    /// Texts of a labelled or unlabelled corpus, spread over the whole file.
    pub const TEXTS: usize = 200;
    /// Characters of a character corpus, from its start.
    pub const CHARS: usize = 40_000;
    /// Tokens of an encoded text corpus, from its start.
    pub const TOKENS: usize = 20_000;
    /// Tagged sentences.
    pub const SENTENCES: usize = 200;
    /// Generated training examples (sequences, sums, series).
    pub const EXAMPLES: usize = 256;
    /// Characters sampled from a language model.
    pub const SAMPLE_LENGTH: usize = 100;
}

impl RunArgs {
    /// The chosen device, started and checked, after checking that the plot folder can be
    /// written; under `--fast-dev-run`, first a note on stderr that what follows is a check.
    pub fn device(&self) -> Result<(DeviceChoice, seqlab::Device), Box<dyn Error>> {
        let choice = self.device;
        if let Some(dir) = &self.plot {
            seqlab::plot::check_dir(dir)?;
        }
        if let Some(path) = &self.metrics_json {
            check_writable(parent_of(path), "the metrics file")?;
        }
        if self.fast_dev_run {
            eprintln!(
                "seqlab: --fast-dev-run: one epoch on a slice of the data, to check the command"
            );
        }
        Ok((choice, choice.device()?))
    }

    /// `full`, or `quick` under `--fast-dev-run`.
    pub fn or_fast<T>(&self, full: T, quick: T) -> T {
        if self.fast_dev_run { quick } else { full }
    }

    /// Writes the plots that `draw` makes into the `--plot` folder, if one was given, and
    /// prints their paths.
    pub fn write_plots(
        &self,
        draw: impl FnOnce(&Path) -> Result<Vec<PathBuf>, LessonError>,
    ) -> Result<(), Box<dyn Error>> {
        if let Some(dir) = &self.plot {
            for path in draw(dir)? {
                println!("wrote {}", path.display());
            }
        }
        Ok(())
    }

    /// Writes the metrics file if one was asked for, with the run's peak resident memory
    /// (`peak_memory_mib`, where the system tells it).
    pub fn write_metrics(
        &self,
        mut run: serde_json::Value,
        epochs: &[EpochRecord],
    ) -> Result<(), Box<dyn Error>> {
        if let Some(path) = &self.metrics_json {
            if let (Some(mib), Some(fields)) = (peak_resident_mib(), run.as_object_mut()) {
                fields.insert("peak_memory_mib".into(), mib.into());
            }
            write_metrics_json(path, run, epochs)?;
        }
        Ok(())
    }
}

/// The most memory this process has held resident, in MiB: Linux's `VmHWM` (`None` where
/// there is no `/proc/self/status`).
fn peak_resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Makes `dir` if it is missing and checks that files can be written in it, so that a long
/// run cannot fail at its end for an output it cannot write.
pub fn check_writable(dir: &Path, what: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {what} in {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".seqlab-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)
}

/// The folder `path` is in (`.` for a bare file name).
pub fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// At most `keep` of `items`, taken at even steps through the list, so that a file sorted by
/// label keeps every label.
pub fn spread<T>(items: Vec<T>, keep: usize) -> Vec<T> {
    let step = items.len().div_ceil(keep.max(1)).max(1);
    items.into_iter().step_by(step).collect()
}

/// The first `keep` characters of `text`.
pub fn head_chars(text: &str, keep: usize) -> String {
    text.chars().take(keep).collect()
}

/// Parses `MIN..MAX` (or one number) into a range.
pub fn parse_range(text: &str) -> Result<std::ops::RangeInclusive<usize>, String> {
    let number = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("{text:?} is not a range like 3..14"))
    };
    match text.split_once("..") {
        Some((low, high)) => Ok(number(low)?..=number(high.trim_start_matches('='))?),
        None => {
            let n = number(text)?;
            Ok(n..=n)
        }
    }
}

/// The text a tokenizer is trained on when a corpus is read from disk: its first bytes.
pub const TOKENIZER_SAMPLE_BYTES: usize = 64 << 20;

/// Where a corpus is read from: memory, or a memory-mapped id file on disk.
#[derive(ClapArgs, Debug)]
pub struct DiskArgs {
    /// Read the corpus from disk as the model trains, not into memory: the text (or a
    /// table's rows) is encoded once, a piece (a row) at a time, into a file of token ids in
    /// the cache folder, reused while the files (and the tokenizer) are unchanged, and each
    /// batch's rows are read from it. Chosen by itself for a corpus over 1 GiB.
    #[arg(long)]
    pub from_disk: bool,
    /// The folder of the id files --from-disk writes [default: $XDG_CACHE_HOME/seqlab, else
    /// ~/.cache/seqlab].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl DiskArgs {
    /// Whether the corpus of `files` is read from disk: asked for, or over
    /// [`MAX_TEXT_BYTES`](seqlab::data::MAX_TEXT_BYTES).
    pub fn reads_from_disk(&self, files: &[PathBuf]) -> bool {
        let bytes: u64 = files
            .iter()
            .map(|file| std::fs::metadata(file).map_or(0, |m| m.len()))
            .sum();
        self.from_disk || bytes > seqlab::data::MAX_TEXT_BYTES
    }

    /// The folder of the id files: `--cache-dir`, else `$XDG_CACHE_HOME/seqlab`, else
    /// `~/.cache/seqlab`, else the temporary folder's `seqlab`; then `ids`.
    pub fn ids_dir(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .filter(|dir| !dir.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"))
                    })
                    .unwrap_or_else(std::env::temp_dir)
                    .join("seqlab")
            })
            .join("ids")
    }

    /// Says where the ids were read from (`file`), and how long finding or writing them took.
    pub fn report(&self, file: Option<&Path>, cache: CacheUse, seconds: f64) {
        println!(
            "from disk: {} ({}, {seconds:.1} s)",
            file.unwrap_or(&self.ids_dir()).display(),
            match cache {
                CacheUse::Reused => "encoded before",
                CacheUse::Written => "encoded now",
            },
        );
    }
}

/// The folder `datasets/fetch NAME` fills (under `$SEQLAB_DATA`, or
/// `~/.cache/seqlab/datasets`); an error saying how to fetch it when it is not there.
pub fn fetched_dataset(name: &str) -> Result<PathBuf, String> {
    let root = match std::env::var_os("SEQLAB_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/seqlab/datasets"),
    };
    let dir = root.join(name);
    if dir.join(".complete").is_file() {
        Ok(dir)
    } else {
        Err(format!(
            "the {name} dataset is not in {}: run datasets/fetch {name} first",
            dir.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_at_most_the_number_asked_from_the_whole_list() {
        let kept = spread((0..1000).collect::<Vec<_>>(), 200);
        assert_eq!(kept.len(), 200);
        assert_eq!((kept[0], kept[1], kept[199]), (0, 5, 995));
        assert_eq!(spread(vec![1, 2, 3], 200), vec![1, 2, 3]);
        assert_eq!(spread((0..10).collect::<Vec<_>>(), 3), vec![0, 4, 8]);
    }

    #[test]
    fn head_chars_counts_characters_not_bytes() {
        assert_eq!(head_chars("héllo", 2), "hé");
        assert_eq!(head_chars("ab", 5), "ab");
    }
}
