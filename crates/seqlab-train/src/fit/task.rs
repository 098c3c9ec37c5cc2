//! [`TrainTask`]: what differs from one training command to the next.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use seqlab_models::RecurrentState;

use crate::TrainError;
use crate::parallel::Shard;

/// What one training step computed from its batch.
pub struct StepLoss {
    /// The batch's mean loss, a one-element tensor on the autodiff device: reported and
    /// back-propagated.
    pub loss: Tensor<1>,
    /// A regularisation term back-propagated with the loss but not reported (fastai's
    /// activation regularisation, say).
    pub penalty: Option<Tensor<1>>,
    /// The recurrent state to carry into the next batch (stateful language models); the loop
    /// detaches it.
    pub state: Option<RecurrentState>,
    /// How many predictions the loss is the mean of, when that is not the batch's rows (a
    /// masked loss counts the real tokens). Data-parallel training weighs each process's
    /// gradients by it, so that the group's step is the step of the whole batch.
    pub weight: Option<f64>,
}

impl StepLoss {
    /// A loss with no penalty and no state to carry, the mean over the batch's rows.
    pub fn new(loss: Tensor<1>) -> Self {
        Self {
            loss,
            penalty: None,
            state: None,
            weight: None,
        }
    }

    /// The loss as the mean of `count` predictions (see [`StepLoss::weight`]).
    pub fn mean_of(mut self, count: usize) -> Self {
        self.weight = Some(count as f64);
        self
    }
}

/// How a model did on the held-out data after an epoch.
pub trait Scores {
    /// The mean held-out loss.
    fn loss(&self) -> f64;
    /// The epoch's metrics by name, in the order of [`TrainTask::metric_names`].
    fn metrics(&self) -> Vec<(String, f64)>;
}

/// The held-out loss and the share of predictions that were right: what most tasks score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossAccuracy {
    /// Mean loss per scored prediction.
    pub loss: f64,
    /// Share of scored predictions that were right.
    pub accuracy: f64,
}

impl Scores for LossAccuracy {
    fn loss(&self) -> f64 {
        self.loss
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        vec![("accuracy".into(), self.accuracy)]
    }
}

/// Where a training step stands in its run, for seeding its random draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepIndex {
    /// The fit (phase of the run) it belongs to, from 0.
    pub fit: usize,
    /// Its number within the fit, from 0.
    pub in_fit: usize,
    /// Its number within the run, from 0.
    pub in_run: usize,
}

/// What a training command brings to the one training loop ([`FitLoop`](crate::FitLoop)):
/// its batches, how a batch becomes a loss, and how the model is scored. Everything else —
/// epochs and fits, schedules, gradient clipping, the optimizer, carried recurrent state,
/// progress bars, the epoch table, checkpoints, Ctrl-C and exact resumption — is the loop's.
///
/// ```
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Device, Tensor};
/// use seqlab_models::RecurrentState;
/// use seqlab_train::{FitLoop, OptimizerConfig, Phase, Schedule, Scores, StepLoss};
/// use seqlab_train::{TrainError, TrainTask, mse};
///
/// /// Learn y = 2x from one batch.
/// struct Double(Device);
///
/// struct Mse(f64);
/// impl Scores for Mse {
///     fn loss(&self) -> f64 { self.0 }
///     fn metrics(&self) -> Vec<(String, f64)> { vec![] }
/// }
///
/// impl TrainTask for Double {
///     type Model = Linear;
///     type Batch = ();
///     type Scores = Mse;
///     type Error = TrainError;
///     fn metric_names(&self) -> Vec<&'static str> { vec![] }
///     fn batches(&self, _epoch: usize) -> Result<Vec<()>, TrainError> { Ok(vec![(); 4]) }
///     fn loss(&self, model: &Linear, _: &(), _: Option<RecurrentState>, device: &Device)
///         -> Result<StepLoss, TrainError> {
///         let x = Tensor::<2>::from_floats([[1.0], [2.0]], device);
///         Ok(StepLoss::new(mse(model.forward(x.clone()), x * 2.0)))
///     }
///     fn evaluate(&self, model: &Linear) -> Result<Mse, TrainError> {
///         let x = Tensor::<2>::from_floats([[3.0]], &self.0);
///         Ok(Mse(mse(model.forward(x.clone()), x * 2.0).into_scalar::<f32>() as f64))
///     }
/// }
///
/// let device = Device::flex();
/// let model = LinearConfig::new(1, 1).init(&device);
/// let mut fit = FitLoop::new(Double(device.clone()), model, &device, OptimizerConfig::default())
///     .with_table(false)
///     .with_progress(false);
/// let records = fit.fit(&[Phase::new(20, Schedule::Constant(0.1))])?;
/// assert!(records.last().unwrap().valid_loss < records[0].valid_loss);
/// # Ok::<(), TrainError>(())
/// ```
pub trait TrainTask {
    /// The model being trained.
    type Model: Module + Clone;
    /// One training batch as an epoch's order lists it: row indices, or a prepared batch;
    /// data-parallel training gives each process a share of its rows ([`Shard`]).
    type Batch: Shard;
    /// What validation measures; the loop hands back the last epoch's.
    type Scores: Scores;
    /// The task's own error; the loop's errors convert into it.
    type Error: From<TrainError>;

    /// The names of the metrics [`Scores::metrics`] reports, for the table's header.
    fn metric_names(&self) -> Vec<&'static str>;

    /// The batches of `epoch` (counted across the run) in training order, drawn from the
    /// epoch alone so that a resumed epoch sees the same ones. Every epoch has the same
    /// number of batches.
    fn batches(&self, epoch: usize) -> Result<Vec<Self::Batch>, Self::Error>;

    /// The loss of `batch` for `model` on the autodiff `device`, starting from the state the
    /// previous batch of the epoch left (`None` at an epoch's start and for stateless tasks).
    fn loss(
        &self,
        model: &Self::Model,
        batch: &Self::Batch,
        carried: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, Self::Error>;

    /// Scores `model`, in inference mode, on the held-out data.
    fn evaluate(&self, model: &Self::Model) -> Result<Self::Scores, Self::Error>;

    /// Readies `model` for an epoch of fit `fit`: freezes or unfreezes a part, say. The
    /// model as it is by default.
    fn prepare_epoch(&self, model: Self::Model, fit: usize) -> Self::Model {
        let _ = fit;
        model
    }

    /// The seed of `step`'s random draws (dropout masks), so that a resumed run draws the
    /// ones an uninterrupted run drew; `None` (the default) continues the generator.
    fn step_seed(&self, step: StepIndex) -> Option<u64> {
        let _ = step;
        None
    }
}
