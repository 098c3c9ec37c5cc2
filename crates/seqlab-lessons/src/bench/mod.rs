//! Training and inference throughput of seqlab's recurrent models in the configurations of
//! PyTorch's reference benchmark (`pytorch_rnn_bench.py`): the same shapes, Adam, cross-entropy,
//! stateful state detached between batches, random tokens, three warm-up steps, then the
//! median of at least `steps` timed steps (more while under `min_time` seconds, at most 500).
//!
//! ```no_run
//! use seqlab_lessons::bench::{BenchConfig, Core, Timing, run};
//!
//! let device = burn::tensor::Device::flex();
//! let result = run(&BenchConfig::named("a_lstm")[0], Core::Fused, &device, Timing::default());
//! println!("{:.0} tokens/s", result.unwrap().train_tok_s);
//! ```

mod model;

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor};
use seqlab_models::{
    CellKind, DecoderKind, GenerateConfig, RecurrentError, RecurrentLmConfig, Sampling,
    Seq2SeqConfig, generate_by_prefix, generate_stepwise,
};
use seqlab_train::parallel::{ProcessGroup, average_gradients, current_group, share_rows};
use seqlab_train::{AdamConfig, Optimizer, OptimizerConfig, StepHyper, flat_cross_entropy};
use serde_json::{Value, json};
use thiserror::Error;

use model::BenchLm;

mod config;
mod onnx;

pub use config::{BenchConfig, BenchTask, CONFIGS};
pub use onnx::onnx_model;

/// Which recurrent layer runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Core {
    /// seqlab's layer with its fused operation (the plain path where the device has none).
    Fused,
    /// seqlab's layer on its plain tensor-operation path.
    Plain,
    /// `burn::nn::Lstm`, one per layer (LSTM configurations only).
    BurnLstm,
}

impl Core {
    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Core::Fused => "seqlab",
            Core::Plain => "seqlab-plain",
            Core::BurnLstm => "burn-nn-lstm",
        }
    }
}

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed steps at least.
    pub steps: usize,
    /// Seconds to keep timing for, up to 500 steps.
    pub min_time: f64,
}

impl Default for Timing {
    /// The reference's protocol: 3 warm-up steps, at least 20 timed steps and 2 seconds.
    fn default() -> Self {
        Self {
            warmup: 3,
            steps: 20,
            min_time: 2.0,
        }
    }
}

/// What one configuration measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// The configuration.
    pub config: BenchConfig,
    /// The core that ran it.
    pub core: Core,
    /// Parameters in the model.
    pub params: usize,
    /// Median training step (forward, loss, backward, Adam), milliseconds.
    pub train_step_ms: f64,
    /// Training tokens per second.
    pub train_tok_s: f64,
    /// Median inference step (forward only, no autodiff), milliseconds.
    pub infer_step_ms: f64,
    /// Inference tokens per second.
    pub infer_tok_s: f64,
    /// Timed training steps.
    pub n_train: usize,
    /// Timed inference steps.
    pub n_infer: usize,
}

impl BenchResult {
    /// The result from the median step times in seconds and the timed step counts.
    fn from_medians(
        config: &BenchConfig,
        core: Core,
        params: usize,
        (train_s, n_train): (f64, usize),
        (infer_s, n_infer): (f64, usize),
    ) -> Self {
        let tokens = config.tokens() as f64;
        Self {
            config: *config,
            core,
            params,
            train_step_ms: train_s * 1e3,
            train_tok_s: tokens / train_s,
            infer_step_ms: infer_s * 1e3,
            infer_tok_s: tokens / infer_s,
            n_train,
            n_infer,
        }
    }

    /// Achieved GFLOP/s in training (forward + backward = 3 × forward, as the reference).
    pub fn train_gflops(&self) -> f64 {
        3.0 * self.config.forward_flops_per_token() * self.train_tok_s / 1e9
    }

    /// Achieved GFLOP/s in inference.
    pub fn infer_gflops(&self) -> f64 {
        self.config.forward_flops_per_token() * self.infer_tok_s / 1e9
    }

    /// The reference's JSON fields, plus the core.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.config.name,
            "desc": self.config.description,
            "impl": self.core.name(),
            "params": self.params,
            "train_step_ms": self.train_step_ms,
            "train_tok_s": self.train_tok_s,
            "train_seq_s": self.config.batch as f64 * self.train_tok_s / self.config.tokens() as f64,
            "infer_step_ms": self.infer_step_ms,
            "infer_tok_s": self.infer_tok_s,
            "n_train": self.n_train,
            "n_infer": self.n_infer,
            "fwd_mflop_tok": self.config.forward_flops_per_token() / 1e6,
            "train_gflops": self.train_gflops(),
            "infer_gflops": self.infer_gflops(),
        })
    }
}

/// Why a benchmark could not run.
#[derive(Debug, Error)]
pub enum BenchError {
    /// The core has no layer of this kind (burn's own layers are LSTM only here).
    #[error("{core} cannot run {config}")]
    Unsupported {
        /// The core's name.
        core: &'static str,
        /// The configuration's name.
        config: &'static str,
    },
    /// The model rejected its input.
    #[error(transparent)]
    Recurrent(#[from] RecurrentError),
    /// The device failed to finish its work.
    #[error("the device failed: {0}")]
    Device(String),
}

/// Characters per second of the reference's sampling benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingResult {
    /// One character per step with the state carried (1000 characters).
    pub stepwise_chars_s: f64,
    /// Re-reading the whole text for every character, as the RNN course does (300).
    pub naive_chars_s: f64,
}

/// The reference's `sampling()`: config c's character model (vocabulary 100, embedding 64,
/// 2 × 512 LSTM) in evaluation mode, batch 1, multinomial sampling; after a warm-up run,
/// `stepwise` characters one step at a time, then `naive` characters by re-reading.
pub fn run_sampling(
    device: &Device,
    stepwise: usize,
    naive: usize,
) -> Result<SamplingResult, BenchError> {
    device.seed(0);
    let model = RecurrentLmConfig::new(CellKind::Lstm, 100, 512, 2)
        .with_embedding_size(Some(64))
        .init(device);
    let config = |length| GenerateConfig {
        length,
        sampling: Sampling::temperature(1.0),
        seed: 0,
        banned: Vec::new(),
    };
    let failed = |e: seqlab_models::SamplingError| BenchError::Device(e.to_string());
    let mut stepwise_chars_s = 0.0;
    for _ in 0..2 {
        let start = Instant::now();
        generate_stepwise(&model, &[1], &config(stepwise), device).map_err(failed)?;
        stepwise_chars_s = stepwise as f64 / start.elapsed().as_secs_f64();
    }
    let start = Instant::now();
    generate_by_prefix(&model, &[1], &config(naive), device).map_err(failed)?;
    Ok(SamplingResult {
        stepwise_chars_s,
        naive_chars_s: naive as f64 / start.elapsed().as_secs_f64(),
    })
}

/// The rows of a batch of `config` this process trains on: all of them, or its share in
/// data-parallel training (the speeds reported are the whole batch's).
fn rows_here(config: &BenchConfig) -> usize {
    match current_group() {
        Some(group) => share_rows(config.batch, group.rank(), group.size()).len(),
        None => config.batch,
    }
}

/// The time one all-reduce of a gradient of `bytes` bytes took across a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AllReduceTime {
    /// Size of the summed buffer, in bytes.
    pub bytes: usize,
    /// Median seconds per all-reduce, over `repeats`.
    pub seconds: f64,
    /// How many were timed.
    pub repeats: usize,
}

impl AllReduceTime {
    /// The "bus bandwidth" of a ring all-reduce over `processes`, in bytes per second: the
    /// bytes each process sends, 2(N−1)/N of the buffer, per second.
    pub fn bus_bytes_per_s(&self, processes: usize) -> f64 {
        let n = processes as f64;
        self.bytes as f64 * 2.0 * (n - 1.0) / n / self.seconds
    }
}

/// Times the sum of float buffers of each of `sizes` bytes across `group`, as data-parallel
/// training exchanges its gradients (in buckets, from host memory): a warm-up, then repeats
/// for `min_time` seconds (at least 5, at most 1000). Every process must call it with the same
/// sizes; every process gets the same numbers (the slowest process's time, as the sum ends
/// when all have joined it).
pub fn run_all_reduce(
    group: &dyn ProcessGroup,
    sizes: &[usize],
    min_time: f64,
) -> Vec<AllReduceTime> {
    sizes
        .iter()
        .map(|&bytes| {
            let len = (bytes / 4).max(1);
            let mut fill = |_: std::ops::Range<usize>, bucket: &mut [f32]| bucket.fill(1.0);
            group.sum(len, &mut fill);
            let mut times = Vec::new();
            let start = Instant::now();
            loop {
                let t0 = Instant::now();
                group.sum(len, &mut fill);
                times.push(t0.elapsed().as_secs_f64());
                let more = times.len() < 5
                    || (start.elapsed().as_secs_f64() < min_time && times.len() < 1000);
                if !group_goes_on(Some(group), more) {
                    break;
                }
            }
            let repeats = times.len();
            AllReduceTime {
                bytes: len * 4,
                seconds: median(times),
                repeats,
            }
        })
        .collect()
}

/// Uniformly random ids in `0..high`, as the reference's `torch.randint`.
fn random_ids(shape: [usize; 2], high: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::<2>::random(shape, Distribution::Uniform(0.0, high as f64), device)
        .int()
        .clamp(0, high as i64 - 1)
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    }
}

/// Runs `step` as the reference does; returns the median seconds and the timed count.
fn measure(
    timing: Timing,
    device: &Device,
    mut step: impl FnMut() -> Result<(), BenchError>,
) -> Result<(f64, usize), BenchError> {
    let mut sync_step = || -> Result<(), BenchError> {
        step()?;
        device
            .sync()
            .map_err(|error| BenchError::Device(format!("{error:?}")))
    };
    for _ in 0..timing.warmup {
        sync_step()?;
    }
    let group = current_group();
    let start = Instant::now();
    let mut times = Vec::new();
    loop {
        let t0 = Instant::now();
        sync_step()?;
        times.push(t0.elapsed().as_secs_f64());
        let more = times.len() < timing.steps
            || (start.elapsed().as_secs_f64() < timing.min_time && times.len() < 500);
        if !group_goes_on(group.as_deref(), more) {
            break;
        }
    }
    let n = times.len();
    Ok((median(times), n))
}

/// Whether to time another repeat: `more` alone, or in a data-parallel run rank 0's `more`
/// on every process, so that all run the same number of steps (a step's all-reduce waits for
/// every process).
fn group_goes_on(group: Option<&dyn ProcessGroup>, more: bool) -> bool {
    match group {
        Some(group) => {
            let mine = if group.rank() == 0 {
                f32::from(more)
            } else {
                0.0
            };
            group.sum(1, &mut |_, bucket| bucket[0] = mine)[0] > 0.0
        }
        None => more,
    }
}

/// Measures `config` with `core` on `device` (plain, without autodiff: training runs on its
/// autodiff version).
pub fn run(
    config: &BenchConfig,
    core: Core,
    device: &Device,
    timing: Timing,
) -> Result<BenchResult, BenchError> {
    if let BenchTask::Seq2Seq { .. } = config.task {
        return run_seq2seq(config, core, device, timing);
    }
    let train_device = device.clone().autodiff();
    train_device.seed(0);
    let unsupported = || BenchError::Unsupported {
        core: core.name(),
        config: config.name,
    };
    let mut model = BenchLm::new(config, core, &train_device).ok_or_else(unsupported)?;
    let params = model.num_params();
    // Language models predict after every token; classifiers once per sequence.
    let target_len = match config.task {
        BenchTask::LanguageModel => config.seq_len,
        BenchTask::Classifier { .. } | BenchTask::Seq2Seq { .. } => 1,
    };
    let stateful = config.task == BenchTask::LanguageModel;
    let rows = rows_here(config);
    let batches = |device: &Device| -> Vec<(Tensor<2, Int>, Tensor<2, Int>)> {
        let ids = |len: usize, high: usize| random_ids([rows, len], high, device);
        (0..8)
            .map(|_| {
                (
                    ids(config.seq_len, config.vocab),
                    ids(target_len, config.outputs()),
                )
            })
            .collect()
    };
    let train_batches = batches(&train_device);
    let mut optimizer = reference_adam();
    let mut state = None;
    let mut next_batch = train_batches.iter().cycle();
    let train = measure(timing, &train_device, || {
        let (x, y) = next_batch.next().expect("a cycle never ends").clone();
        let (logits, next) = model.forward(x, state.take())?;
        state = stateful.then_some(next);
        model = optimizer.step(&model, flat_cross_entropy(logits, y))?;
        Ok(())
    })?;
    let model = model.valid();
    let infer_batches = batches(device);
    let mut state = None;
    let mut next_batch = infer_batches.iter().cycle();
    let infer = measure(timing, device, || {
        let (x, _) = next_batch.next().expect("a cycle never ends").clone();
        let (logits, next) = model.forward(x, state.take())?;
        state = stateful.then_some(next);
        drop(logits);
        Ok(())
    })?;
    Ok(BenchResult::from_medians(
        config, core, params, train, infer,
    ))
}

/// Config d: seqlab's [`Seq2Seq`](seqlab_models::Seq2Seq) with a zero-input decoder, fused
/// LSTM layers (the only core it runs), random one-hot sources and targets as the reference.
fn run_seq2seq(
    config: &BenchConfig,
    core: Core,
    device: &Device,
    timing: Timing,
) -> Result<BenchResult, BenchError> {
    let BenchTask::Seq2Seq { classes } = config.task else {
        unreachable!("run_seq2seq is called for seq2seq configurations only");
    };
    if core != Core::Fused {
        return Err(BenchError::Unsupported {
            core: core.name(),
            config: config.name,
        });
    }
    let train_device = device.clone().autodiff();
    train_device.seed(0);
    let mut model = Seq2SeqConfig::new(
        config.kind,
        config.vocab,
        classes,
        config.hidden,
        DecoderKind::Zero,
    )
    .with_num_layers(config.layers)
    .init(&train_device);
    let params = model.num_params();
    let [batch, steps] = [rows_here(config), config.seq_len];
    let batches = |device: &Device| -> Vec<(Tensor<3>, Tensor<2, Int>)> {
        let ids = |high: usize| random_ids([batch, steps], high, device);
        (0..8)
            .map(|_| {
                (
                    ids(config.vocab).one_hot::<3>(config.vocab).float(),
                    ids(classes),
                )
            })
            .collect()
    };
    let train_batches = batches(&train_device);
    let mut optimizer = reference_adam();
    let mut next_batch = train_batches.iter().cycle();
    let train = measure(timing, &train_device, || {
        let (x, y) = next_batch.next().expect("a cycle never ends").clone();
        let logits = model.forward(x, None, y.clone())?;
        model = optimizer.step(&model, flat_cross_entropy(logits, y))?;
        Ok(())
    })?;
    let model = model.valid();
    let infer_batches = batches(device);
    let mut next_batch = infer_batches.iter().cycle();
    let infer = measure(timing, device, || {
        let (x, y) = next_batch.next().expect("a cycle never ends").clone();
        drop(model.forward(x, None, y)?);
        Ok(())
    })?;
    Ok(BenchResult::from_medians(
        config, core, params, train, infer,
    ))
}

/// The reference's optimiser: PyTorch's Adam at a learning rate of 1e-3.
fn reference_adam() -> ReferenceAdam {
    ReferenceAdam(OptimizerConfig::Adam(AdamConfig::pytorch()).init())
}

/// [`reference_adam`]: the optimizer and its one step.
struct ReferenceAdam(Optimizer);

impl ReferenceAdam {
    /// `model` after one step on the gradients of `loss` (averaged with the group's, in
    /// data-parallel training).
    fn step<M: Module>(&mut self, model: &M, loss: Tensor<1>) -> Result<M, BenchError> {
        let device = loss.device();
        let mut grads = GradientsParams::from_grads(loss.backward(), model);
        if let Some(group) = current_group() {
            grads = average_gradients(group.as_ref(), model, grads, 1.0, &device)
                .map_err(|e| BenchError::Device(e.to_string()))?;
        }
        let hyper = StepHyper {
            lr: 1e-3,
            momentum: None,
        };
        Ok(self.0.step(hyper, model.clone(), grads))
    }
}

#[cfg(test)]
mod tests;
