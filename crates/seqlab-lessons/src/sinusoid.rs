//! The RNN course's first experiment: a linear RNN learns next-step prediction on sinusoids,
//! then runs free from one sample.

use super::{LessonError, TrainRun};
use crate::data::{SinusoidConfig, Sinusoids, batch_rows, generate_sinusoids};
use crate::models::{LinRnn, LinRnnConfig, RecurrentState};
use crate::settings::sizes_at_least_one;
use crate::train::{
    AdamConfig, EpochRecord, FitLoop, MemoryNeed, OptimizerConfig, Phase, RunCheckpoints,
    RunSettings, Schedule, Scores, StepLoss, TrainTask, config_checkpoint, init_seeded, mse,
    resume_module, with_module_weights,
};
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// The checkpoint kind of the sinusoid lesson's model.
pub const SINUSOID_KIND: &str = "sinusoid";

/// A run of the sinusoid lesson; the defaults are the notebook's.
#[derive(Debug, Clone, PartialEq)]
pub struct SinusoidLessonConfig {
    /// What the series look like.
    pub data: SinusoidConfig,
    /// Training series (1000).
    pub train_series: usize,
    /// Held-out series (100).
    pub test_series: usize,
    /// Hidden units (the notebook: 1; a sinusoid needs 2).
    pub hidden: usize,
    /// Epochs (5).
    pub epochs: usize,
    /// Series per batch (2).
    pub batch_size: usize,
    /// Adam's learning rate (PyTorch's default 1e-3).
    pub lr: f64,
    /// Seed for data, initialisation and batch order.
    pub seed: u64,
    /// Predictions left out of [`SinusoidReport::test_mse_after_warmup`]: the first
    /// prediction sees one value, which cannot tell a rising sinusoid from a falling one.
    pub warmup: usize,
}

impl Default for SinusoidLessonConfig {
    fn default() -> Self {
        Self {
            data: SinusoidConfig::default(),
            train_series: 1000,
            test_series: 100,
            hidden: 1,
            epochs: 5,
            batch_size: 2,
            lr: 1e-3,
            seed: 0,
            warmup: 2,
        }
    }
}

/// What a sinusoid run found.
#[derive(Debug, Clone)]
pub struct SinusoidReport {
    /// One record per epoch: mean training MSE and held-out MSE.
    pub records: Vec<EpochRecord>,
    /// Every training batch's MSE.
    pub batch_losses: Vec<f32>,
    /// Held-out next-step MSE after training, over every step (the notebook's).
    pub test_mse: f64,
    /// Held-out next-step MSE over the predictions after the first
    /// [`warmup`](SinusoidLessonConfig::warmup) (the first is a guess: one value does not
    /// give the phase, which puts a floor of about 2e-3 under `test_mse` for one frequency).
    pub test_mse_after_warmup: f64,
    /// The first held-out series.
    pub truth: Vec<f32>,
    /// The model's next-step predictions along it (prediction `t` is for step `t + 1`).
    pub predicted: Vec<f32>,
    /// The model run free from the series' first value (value `t` is for step `t + 1`).
    pub generated: Vec<f32>,
    /// MSE of the free run against the series.
    pub generated_mse: f64,
}

/// Trains the linear RNN and runs it free, checkpointing and resuming as `run` says.
pub fn run_sinusoid(
    config: &SinusoidLessonConfig,
    run: &TrainRun,
    device: &Device,
) -> Result<SinusoidReport, LessonError> {
    if config.warmup + 1 >= config.data.time_steps {
        return Err(LessonError::Config(format!(
            "a warm-up of {} predictions leaves none of the {} steps to score",
            config.warmup, config.data.time_steps
        )));
    }
    sizes_at_least_one(&[
        ("the hidden size", config.hidden),
        ("the batch size", config.batch_size),
        ("the number of epochs", config.epochs),
    ])?;
    let model_config = LinRnnConfig::new(1, config.hidden, 1);
    MemoryNeed::training(
        &model_config,
        config.batch_size,
        config.data.time_steps,
        format!(
            "hidden size {}, on batches of {} × {}",
            config.hidden, config.batch_size, config.data.time_steps
        ),
    )
    .check_here()?;
    let train = generate_sinusoids(config.train_series, &config.data, config.seed)?;
    let test = generate_sinusoids(
        config.test_series,
        &config.data,
        config.seed.wrapping_add(1_000_003),
    )?;
    let model = init_seeded(device, config.seed, || {
        model_config.init(&device.clone().autodiff())
    });
    let model_files = config_checkpoint(SINUSOID_KIND, &model_config);
    let settings = RunSettings::default()
        .with("data", format!("{:?}", config.data))
        .with("train-series", config.train_series)
        .with("epochs", config.epochs)
        .with("batch-size", config.batch_size)
        .with("lr", config.lr)
        .with("seed", config.seed);
    let (model, saved) = resume_module(run.resume, &model_files, &settings, model, device)?;
    let all_test: Vec<usize> = (0..test.len()).collect();
    let (test_inputs, test_targets) = test.next_step_pair(&all_test, device);
    let task = SinusoidTask {
        train: &train,
        batch_size: config.batch_size,
        seed: config.seed,
        test: (test_inputs.clone(), test_targets.clone()),
    };
    let optimizer = OptimizerConfig::Adam(AdamConfig::pytorch());
    let mut fit = FitLoop::new(task, model, device, optimizer);
    let snapshot = move |model: &LinRnn| with_module_weights(model_files.clone(), &model.valid());
    let records = fit.run(
        &[Phase::new(config.epochs, Schedule::Constant(config.lr))],
        run,
        Some(RunCheckpoints::new(snapshot, settings, saved)),
    )?;
    let batch_losses = fit.batch_losses().to_vec();
    let model = fit.into_model();
    let model = model.valid();
    let predictions = model.forward(test_inputs.clone())?;
    let [series, steps, _] = predictions.dims();
    let scored = config.warmup..steps;
    let test_mse_after_warmup = mse(
        predictions.slice([0..series, scored.clone()]),
        test_targets.clone().slice([0..series, scored]),
    )
    .into_scalar::<f32>() as f64;
    let truth = test.series(0).to_vec();
    let (first_inputs, _) = test.next_step_pair(&[0], device);
    let predicted: Vec<f32> = model
        .forward(first_inputs)?
        .into_data()
        .iter::<f32>()
        .collect();
    let start = Tensor::<2>::from_floats([[truth[0]]], device);
    let generated: Vec<f32> = model
        .generate(start, truth.len() - 1)?
        .into_data()
        .iter::<f32>()
        .collect();
    let generated_mse = generated
        .iter()
        .zip(&truth[1..])
        .map(|(g, t)| ((g - t) as f64).powi(2))
        .sum::<f64>()
        / generated.len() as f64;
    Ok(SinusoidReport {
        test_mse: records.last().map_or(f64::NAN, |r| r.valid_loss),
        test_mse_after_warmup,
        records,
        batch_losses,
        truth,
        predicted,
        generated,
        generated_mse,
    })
}

/// Next-step prediction on the training series, scored by the held-out MSE.
struct SinusoidTask<'a> {
    train: &'a Sinusoids,
    batch_size: usize,
    seed: u64,
    /// The held-out inputs and targets.
    test: (Tensor<3>, Tensor<3>),
}

/// The held-out MSE.
struct TestMse(f64);

impl Scores for TestMse {
    fn loss(&self) -> f64 {
        self.0
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

impl TrainTask for SinusoidTask<'_> {
    type Model = LinRnn;
    type Batch = Vec<usize>;
    type Scores = TestMse;
    type Error = LessonError;

    fn metric_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn batches(&self, epoch: usize) -> Result<Vec<Vec<usize>>, LessonError> {
        let seed = self.seed.wrapping_add(epoch as u64);
        Ok(batch_rows(self.train.len(), self.batch_size, Some(seed))?)
    }

    fn loss(
        &self,
        model: &LinRnn,
        rows: &Vec<usize>,
        _carried: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, LessonError> {
        let (inputs, targets) = self.train.next_step_pair(rows, device);
        Ok(StepLoss::new(mse(model.forward(inputs)?, targets)))
    }

    fn evaluate(&self, model: &LinRnn) -> Result<TestMse, LessonError> {
        let (inputs, targets) = self.test.clone();
        let predicted = model.forward(inputs)?;
        Ok(TestMse(mse(predicted, targets).into_scalar::<f32>() as f64))
    }
}
