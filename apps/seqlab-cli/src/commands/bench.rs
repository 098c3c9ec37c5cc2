//! `seqlab bench`: training and inference tokens/s in the PyTorch reference's configurations,
//! for seqlab's layers and burn's own LSTM, on every CPU device built in (or the ones named).

use super::common::fast_dev_run;
use clap::{Args as ClapArgs, ValueEnum};
use seqlab::bench::{
    BenchConfig, BenchResult, CONFIGS, Core, Timing, onnx_model, run as run_bench,
    run_all_reduce as all_reduce_times, run_sampling,
};
use seqlab::device::DeviceChoice;
use seqlab::train::parallel::current_group;
use seqlab::train::write_json_atomic;
use serde_json::{Value, json};
use std::error::Error;
use std::path::PathBuf;

/// Options of `seqlab bench`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Configurations: a (human-numbers LSTM), b (human-numbers RNN), c (char-LSTM), d (the
    /// RNN course's 5-layer LSTM encoder-decoder for addition), e (the notebook's RNN and LSTM
    /// classifiers; e_rnn, e_lstm), sample (step-wise character sampling with config c's
    /// model), or all.
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
    /// Check the command in seconds: one step per measurement, no warm-up, and short
    /// sampling runs. The speeds it prints are not measurements.
    #[arg(long)]
    fast_dev_run: bool,
    /// Time instead the gradient exchange of data-parallel training: all-reduces of 1 KB to
    /// 64 MB across the processes of an `mpirun` job (built with `--features mpi`).
    #[arg(long)]
    all_reduce: bool,
    /// Write instead each chosen language model and classifier as DIR/<config>.onnx (seeded
    /// weights, the batch shape in its metadata), for timing in ONNX Runtime with
    /// scripts/bench-onnx.
    #[arg(long, value_name = "DIR")]
    onnx: Option<PathBuf>,
}

/// The buffer sizes `--all-reduce` times: 1 KB to 64 MB, by factors of 4.
const ALL_REDUCE_SIZES: [usize; 9] = [
    1 << 10,
    1 << 12,
    1 << 14,
    1 << 16,
    1 << 18,
    1 << 20,
    1 << 22,
    1 << 24,
    1 << 26,
];

/// `--all-reduce`: one row per size.
fn run_all_reduce(args: &Args) -> Result<(), Box<dyn Error>> {
    let group = current_group().ok_or(
        "bench --all-reduce times the exchange between processes: run it under \
         mpirun -np 2 (or more) with a binary built with --features mpi",
    )?;
    let min_time = if args.fast_dev_run {
        0.0
    } else {
        args.min_time
    };
    let sizes = if args.fast_dev_run {
        &ALL_REDUCE_SIZES[..2]
    } else {
        &ALL_REDUCE_SIZES[..]
    };
    let times = all_reduce_times(group.as_ref(), sizes, min_time);
    println!("all-reduce (sum of f32) across {} processes", group.size());
    println!(
        "{:>10} {:>12} {:>8} {:>14}",
        "bytes", "median ms", "repeats", "bus GB/s"
    );
    let mut rows = Vec::new();
    for time in &times {
        let bus = time.bus_bytes_per_s(group.size()) / 1e9;
        println!(
            "{:>10} {:>12.4} {:>8} {:>14.3}",
            time.bytes,
            time.seconds * 1e3,
            time.repeats,
            bus
        );
        rows.push(json!({
            "bytes": time.bytes,
            "seconds": time.seconds,
            "repeats": time.repeats,
            "bus_gb_s": bus,
        }));
    }
    if let Some(path) = &args.json {
        let document = json!({"processes": group.size(), "all_reduce": rows});
        write_json_atomic(path, &document)?;
    }
    Ok(())
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

/// `--onnx DIR`: the chosen configurations' models as ONNX files.
fn write_onnx(configs: &[BenchConfig], dir: &std::path::Path) -> Result<(), Box<dyn Error>> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let device = DeviceChoice::default_cpu()?.device()?;
    for config in configs {
        let Some(model) = onnx_model(config, &device) else {
            println!(
                "{}: an encoder–decoder, which has no ONNX export",
                config.name
            );
            continue;
        };
        let path = dir.join(format!("{}.onnx", config.name));
        model?.save(&path)?;
        println!("wrote {} ({})", path.display(), config.description);
    }
    Ok(())
}

fn configs(names: &[String]) -> Result<Vec<BenchConfig>, String> {
    if names.iter().any(|name| name == "all") {
        return Ok(CONFIGS.to_vec());
    }
    let mut configs = Vec::new();
    for name in names.iter().filter(|name| *name != SAMPLE) {
        let named = BenchConfig::named(name);
        if named.is_empty() {
            return Err(format!(
                "unknown configuration {name:?}: expected a, b, c, d, e, e_rnn, e_lstm, sample or all"
            ));
        }
        configs.extend(named);
    }
    Ok(configs)
}

/// The `--config` name of the sampling benchmark.
const SAMPLE: &str = "sample";

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

/// The reference's run: tokens/s per configuration and its best step-wise sampling speed.
struct Reference {
    rows: Vec<ReferenceRow>,
    stepwise_chars_s: Option<f64>,
}

/// Reads the reference's `--json` output.
fn reference(path: &PathBuf) -> Result<Reference, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read reference {}: {e}", path.display()))?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| format!("reference {} is not JSON: {e}", path.display()))?;
    let rows = document["configs"]
        .as_array()
        .ok_or_else(|| format!("reference {} has no \"configs\" list", path.display()))?;
    let rows = rows
        .iter()
        .filter_map(|row| {
            Some(ReferenceRow {
                name: row["name"].as_str()?.to_string(),
                train_tok_s: row["train_tok_s"].as_f64()?,
                infer_tok_s: row["infer_tok_s"].as_f64()?,
            })
        })
        .collect();
    // PyTorch's best of its oneDNN and plain-ATen sampling runs.
    let stepwise_chars_s = document["sampling"]
        .as_object()
        .into_iter()
        .flat_map(|runs| runs.values())
        .filter_map(|run| run["stepwise_chars_s"].as_f64())
        .reduce(f64::max);
    Ok(Reference {
        rows,
        stepwise_chars_s,
    })
}

/// Measures every configuration × device × implementation and prints a table.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    if args.all_reduce {
        return run_all_reduce(&args);
    }
    if let Some(dir) = &args.onnx {
        return write_onnx(&configs(&args.config)?, dir);
    }
    if let Some(group) = current_group() {
        println!(
            "data-parallel: {} processes, each training its share of every batch; the speeds \
             are the whole batch's",
            group.size()
        );
    }
    let configs = configs(&args.config)?;
    let sample = args
        .config
        .iter()
        .any(|name| name == SAMPLE || name == "all");
    let choices = devices(&args.device)?;
    let reference = args.reference.as_ref().map(reference).transpose()?;
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    let timing = if args.fast_dev_run {
        Timing {
            warmup: 0,
            steps: 1,
            min_time: 0.0,
        }
    } else {
        Timing {
            steps: args.steps,
            min_time: args.min_time,
            ..Timing::default()
        }
    };
    let (stepwise, naive) = if args.fast_dev_run {
        (fast_dev_run::SAMPLE_LENGTH, 10)
    } else {
        (1000, 300)
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
                print_row(&result, choice, reference.as_ref().map(|r| &r.rows[..]));
                let mut row = result.to_json();
                row["device"] = json!(choice.name());
                rows.push(row);
            }
        }
    }
    let mut sampling = Vec::new();
    if sample {
        for &choice in &choices {
            let result = run_sampling(&choice.device()?, stepwise, naive)?;
            let ratio = reference
                .as_ref()
                .and_then(|r| r.stepwise_chars_s)
                .map_or("-".to_string(), |best| {
                    format!("{:.2}", result.stepwise_chars_s / best)
                });
            println!(
                "sampling (char-LSTM c, batch 1) on {}: step-wise {:.0} chars/s (×PyTorch's best {ratio}); re-reading the prefix {:.1} chars/s",
                choice.name(),
                result.stepwise_chars_s,
                result.naive_chars_s
            );
            sampling.push(json!({
                "device": choice.name(),
                "stepwise_chars_s": result.stepwise_chars_s,
                "naive_chars_s": result.naive_chars_s,
            }));
        }
    }
    if let Some(path) = &args.json {
        let names: Vec<&str> = choices.iter().map(|c| c.name()).collect();
        let mut document =
            json!({ "device": names.join(","), "cpus": available_cpus(), "configs": rows });
        if let Some(first) = sampling.first() {
            document["sampling"] = first.clone();
            document["sampling_by_device"] = json!(sampling);
        }
        write_json_atomic(path, &document)?;
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
