//! Options every training subcommand takes: the device, the seed and the metrics file.

use clap::Args as ClapArgs;
use seqlab::device::DeviceChoice;
use seqlab::train::{EpochRecord, write_metrics_json};
use std::error::Error;
use std::path::PathBuf;

/// Where and how to run.
#[derive(ClapArgs, Debug)]
pub struct RunArgs {
    /// Device: flex, ndarray, wgpu, or cpu (the fastest CPU device built in).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed for initialisation and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write every epoch's numbers to this JSON file.
    #[arg(long, value_name = "PATH")]
    pub metrics_json: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl RunArgs {
    /// The chosen device, started and checked.
    pub fn device(&self) -> Result<(DeviceChoice, seqlab::Device), Box<dyn Error>> {
        let choice: DeviceChoice = self.device.parse()?;
        Ok((choice, choice.device()?))
    }

    /// Writes the metrics file if one was asked for.
    pub fn write_metrics(
        &self,
        run: serde_json::Value,
        epochs: &[EpochRecord],
    ) -> Result<(), Box<dyn Error>> {
        if let Some(path) = &self.metrics_json {
            write_metrics_json(path, run, epochs)?;
        }
        Ok(())
    }
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
