//! `seqlab bench`: training and inference tokens/s in the PyTorch reference's configurations,
//! for seqlab's layers and burn's own LSTM, on every CPU device built in (or the ones named).

use clap::{Args as ClapArgs, ValueEnum};
use seqlab::bench::{BenchConfig, BenchResult, CONFIGS, Core, Timing, run as run_bench};
use seqlab::device::DeviceChoice;
use seqlab::train::write_json_atomic;
use serde_json::{Value, json};
use std::error::Error;
use std::path::PathBuf;

/// Options of `seqlab bench`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Configurations: a (human-numbers LSTM), b (human-numbers RNN), c (char-LSTM), d (the
    /// RNN course's 5-layer LSTM encoder-decoder for addition), e (the notebook's RNN and LSTM
    /// classifiers; e_rnn, e_lstm), or all.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    config: Vec<String>,
    /// Devices, comma-separated (default: every CPU device built in).
    #[arg(long, value_delimiter = ',')]
    device: Vec<String>,
    /// Implementations to measure.
    #[arg(long = "impl", value_enum, value_delimiter = ',', default_values_t = [ImplArg::Seqlab, ImplArg::BurnNnLstm])]
    implementation: Vec<ImplArg>,
    /// Timed steps at least (after 3 warm-up steps).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Seconds to keep timing each measurement for (up to 500 steps).
    #[arg(long, default_value_t = 2.0)]
    min_time: f64,
    /// Write the results as JSON (the reference's structure, plus `impl` and `device`).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// The PyTorch reference's `--json` output, to print seqlab/PyTorch ratios.
    #[arg(long, value_name = "PATH")]
    reference: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ImplArg {
    /// seqlab's layers (fused on the CPU).
    Seqlab,
    /// seqlab's layers on the plain tensor-operation path.
    SeqlabPlain,
    /// burn's own `burn::nn::Lstm` (LSTM configurations only).
    BurnNnLstm,
}

impl From<ImplArg> for Core {
    fn from(arg: ImplArg) -> Self {
        match arg {
            ImplArg::Seqlab => Core::Fused,
            ImplArg::SeqlabPlain => Core::Plain,
            ImplArg::BurnNnLstm => Core::BurnLstm,
        }
    }
}

fn configs(names: &[String]) -> Result<Vec<BenchConfig>, String> {
    if names.iter().any(|name| name == "all") {
        return Ok(CONFIGS.to_vec());
    }
    let mut configs = Vec::new();
    for name in names {
        let named = BenchConfig::named(name);
        if named.is_empty() {
            return Err(format!(
                "unknown configuration {name:?}: expected a, b, c, d, e, e_rnn, e_lstm or all"
            ));
        }
        configs.extend(named);
    }
    Ok(configs)
}

fn devices(names: &[String]) -> Result<Vec<DeviceChoice>, Box<dyn Error>> {
    if names.is_empty() {
        return Ok([DeviceChoice::Flex, DeviceChoice::NdArray]
            .into_iter()
            .filter(|choice| choice.is_built())
            .collect());
    }
    Ok(names
        .iter()
        .map(|name| name.parse())
        .collect::<Result<_, _>>()?)
}

/// One configuration of the reference's JSON.
struct ReferenceRow {
    name: String,
    train_tok_s: f64,
    infer_tok_s: f64,
}

/// Tokens/s of the reference per configuration name.
fn reference(path: &PathBuf) -> Result<Vec<ReferenceRow>, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read reference {}: {e}", path.display()))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| format!("reference {} is not JSON: {e}", path.display()))?;
    let rows = document["configs"]
        .as_array()
        .ok_or_else(|| format!("reference {} has no \"configs\" list", path.display()))?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(ReferenceRow {
                name: row["name"].as_str()?.to_string(),
                train_tok_s: row["train_tok_s"].as_f64()?,
                infer_tok_s: row["infer_tok_s"].as_f64()?,
            })
        })
        .collect())
}

/// Measures every configuration × device × implementation and prints a table.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let configs = configs(&args.config)?;
    let choices = devices(&args.device)?;
    let reference = args.reference.as_ref().map(reference).transpose()?;
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    let timing = Timing {
        steps: args.steps,
        min_time: args.min_time,
        ..Timing::default()
    };
    println!(
        "{:<8} {:<14} {:<8} {:>12} {:>12} {:>10} {:>9} {:>9}",
        "config",
        "impl",
        "device",
        "train tok/s",
        "infer tok/s",
        "train GF/s",
        "train ×pt",
        "infer ×pt"
    );
    let mut rows = Vec::new();
    for config in &configs {
        for &choice in &choices {
            let device = choice.device()?;
            for &implementation in &args.implementation {
                let core = Core::from(implementation);
                if !config.supports(core) {
                    continue;
                }
                let result = run_bench(config, core, &device, timing)?;
                print_row(&result, choice, reference.as_deref());
                let mut row = result.to_json();
                row["device"] = json!(choice.name());
                rows.push(row);
            }
        }
    }
    if let Some(path) = &args.json {
        let names: Vec<&str> = choices.iter().map(|c| c.name()).collect();
        write_json_atomic(
            path,
            &json!({ "device": names.join(","), "cpus": available_cpus(), "configs": rows }),
        )?;
    }
    Ok(())
}

fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn print_row(result: &BenchResult, choice: DeviceChoice, reference: Option<&[ReferenceRow]>) {
    let ratio = |pick: fn(&ReferenceRow) -> f64, ours: f64| {
        reference
            .and_then(|rows| rows.iter().find(|row| row.name == result.config.name))
            .map_or("-".to_string(), |row| format!("{:.2}", ours / pick(row)))
    };
    println!(
        "{:<8} {:<14} {:<8} {:>12.0} {:>12.0} {:>10.1} {:>9} {:>9}",
        result.config.name,
        result.core.name(),
        choice.name(),
        result.train_tok_s,
        result.infer_tok_s,
        result.train_gflops(),
        ratio(|row| row.train_tok_s, result.train_tok_s),
        ratio(|row| row.infer_tok_s, result.infer_tok_s),
    );
}
