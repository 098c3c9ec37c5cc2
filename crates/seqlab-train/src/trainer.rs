//! One optimisation step at a time, for training loops written by hand (the RNN course's
//! `train_epoch`): check the loss, back-propagate, clip, update.

use crate::progress::epoch_bar;
use crate::reads::read_scalar;
use crate::schedule::StepHyper;
use crate::{Optimizer, OptimizerConfig, TrainError, clip_grad_norm};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use indicatif::ProgressBar;
use seqlab_models::NamedTensors;

/// The optimiser, clipping and step counting behind a hand-written training loop: the caller
/// computes a loss on the autodiff device and hands it to [`step`](Self::step).
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::{Device, Tensor};
/// use seqlab_train::{AdamConfig, OptimizerConfig, Trainer, mse};
///
/// let device = Device::flex();
/// let mut trainer = Trainer::new(&device, OptimizerConfig::Adam(AdamConfig::pytorch()));
/// let mut model = LinearConfig::new(1, 1).init(trainer.device());
/// let x = Tensor::<2>::from_floats([[1.0], [2.0]], trainer.device());
/// let y = Tensor::<2>::from_floats([[2.0], [4.0]], trainer.device());
/// for _ in 0..3 {
///     let loss = mse(model.forward(x.clone()), y.clone());
///     let (updated, value) = trainer.step(model, loss, 0.1)?;
///     model = updated;
///     assert!(value.is_finite());
/// }
/// assert_eq!(trainer.steps(), 3);
/// # Ok::<(), seqlab_train::TrainError>(())
/// ```
pub struct Trainer {
    device: Device,
    optimizer: Optimizer,
    grad_clip: Option<f64>,
    epoch: usize,
    batch: usize,
    steps: usize,
    show_progress: bool,
}

impl Trainer {
    /// A trainer on `device` (autodiff is switched on) with a fresh `optimizer`, no clipping.
    pub fn new(device: &Device, optimizer: OptimizerConfig) -> Self {
        Self {
            device: device.clone().autodiff(),
            optimizer: optimizer.init(),
            grad_clip: None,
            epoch: 0,
            batch: 0,
            steps: 0,
            show_progress: true,
        }
    }

    /// Clips the gradients to this global L2 norm before each step, or not (`None`).
    pub fn with_grad_clip(mut self, max_norm: Option<f64>) -> Self {
        self.grad_clip = max_norm;
        self
    }

    /// The global gradient norm each step clips to, if any.
    pub fn grad_clip(&self) -> Option<f64> {
        self.grad_clip
    }

    /// Shows a progress bar per epoch on a terminal (default) or not.
    pub fn with_progress(mut self, show_progress: bool) -> Self {
        self.show_progress = show_progress;
        self
    }

    /// Trains the parameters of `part` at `factor` times the learning rate (see
    /// [`Optimizer::scale_lr`](crate::Optimizer::scale_lr)).
    pub fn scale_lr<M: Module>(&mut self, part: &M, factor: f64) {
        self.optimizer.scale_lr(part, factor);
    }

    /// The optimizer, with its running averages (to save beside the weights).
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// Gives the optimizer back the averages [`Optimizer::state_of`] saved for `model`, a
    /// model of the same structure holding the weights saved with them.
    pub fn restore<M: Module>(
        &mut self,
        model: &M,
        saved: &NamedTensors,
    ) -> Result<(), TrainError> {
        self.optimizer.load_state(model, saved, &self.device)
    }

    /// The autodiff device to build models and batches on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Optimisation steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Starts counting a new epoch of `batches` batches (for error messages) and gives its
    /// progress bar (hidden unless stderr is a terminal and progress is on).
    pub fn start_epoch(&mut self, epoch: usize, batches: usize) -> ProgressBar {
        self.epoch = epoch;
        self.batch = 0;
        epoch_bar(batches, epoch, self.show_progress)
    }

    /// One update of `model` from the scalar `loss` at learning rate `lr`: back-propagates,
    /// clips and steps, and returns the updated model and the loss value. A non-finite loss
    /// is refused with [`TrainError::NonFiniteLoss`], which ends training.
    pub fn step<M: Module>(
        &mut self,
        model: M,
        loss: Tensor<1>,
        lr: f64,
    ) -> Result<(M, f32), TrainError> {
        self.step_with(model, loss, StepHyper { lr, momentum: None })
    }

    /// [`step`](Self::step) with a schedule's learning rate and momentum.
    pub fn step_with<M: Module>(
        &mut self,
        model: M,
        loss: Tensor<1>,
        hyper: StepHyper,
    ) -> Result<(M, f32), TrainError> {
        TrainError::check_lr(hyper.lr)?;
        let value = read_scalar(loss.clone())?;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch: self.epoch,
                batch: self.batch,
                value,
            });
        }
        let model = self.update(model, loss, hyper)?;
        self.batch += 1;
        Ok((model, value))
    }

    /// The update behind [`step_with`](Self::step_with), for a loss already checked:
    /// back-propagates, clips and steps.
    pub(crate) fn update<M: Module>(
        &mut self,
        model: M,
        loss: Tensor<1>,
        hyper: StepHyper,
    ) -> Result<M, TrainError> {
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.apply(model, grads, hyper)
    }

    /// Clips `grads` and steps `model` with them: the end of [`update`](Self::update), for
    /// gradients that came from elsewhere (averaged across a data-parallel group).
    pub(crate) fn apply<M: Module>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        hyper: StepHyper,
    ) -> Result<M, TrainError> {
        if let Some(max_norm) = self.grad_clip {
            clip_grad_norm(&model, &mut grads, max_norm)?;
        }
        self.steps += 1;
        Ok(self.optimizer.step(hyper, model, grads))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SgdConfig, mse};
    use burn::nn::LinearConfig;

    #[test]
    fn a_nan_loss_names_the_epoch_and_batch() {
        let device = Device::flex();
        let mut trainer =
            Trainer::new(&device, OptimizerConfig::Sgd(SgdConfig::default())).with_progress(false);
        let model = LinearConfig::new(1, 1).init(trainer.device());
        let x = Tensor::<2>::from_floats([[1.0]], trainer.device());
        let _bar = trainer.start_epoch(2, 5);
        let (model, _) = trainer
            .step(
                model.clone(),
                mse(model.forward(x.clone()), x.clone() * 2.0),
                0.1,
            )
            .unwrap();
        let nan = mse(model.forward(x.clone()), x.clone()) * f32::NAN;
        let err = trainer.step(model.clone(), nan, 0.1).unwrap_err();
        assert!(
            matches!(
                err,
                TrainError::NonFiniteLoss {
                    epoch: 2,
                    batch: 1,
                    ..
                }
            ),
            "{err}"
        );
        let loss = mse(model.forward(x.clone()), x);
        assert!(matches!(
            trainer.step(model, loss, 0.0),
            Err(TrainError::BadHyperparameter { .. })
        ));
    }

    #[test]
    fn a_scaled_part_steps_at_its_share_of_the_learning_rate() {
        let device = Device::flex();
        let sgd = OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.0,
            weight_decay: 0.0,
        });
        let mut trainer = Trainer::new(&device, sgd).with_progress(false);
        let first = LinearConfig::new(1, 1)
            .with_bias(false)
            .init(trainer.device());
        let second = LinearConfig::new(1, 1)
            .with_bias(false)
            .init(trainer.device());
        trainer.scale_lr(&second, 0.25);
        let x = Tensor::<2>::from_floats([[1.0]], trainer.device());
        let before = [first.weight.val(), second.weight.val()].map(|w| w.into_scalar::<f32>());
        // Both weights get the same gradient, d(w1 + w2)/dw = 1; SGD steps by lr · grad.
        let pair = (first, second);
        let loss = (pair.0.forward(x.clone()) + pair.1.forward(x)).sum();
        let (pair, _) = trainer.step(pair, loss, 0.1).unwrap();
        let after = [pair.0.weight.val(), pair.1.weight.val()].map(|w| w.into_scalar::<f32>());
        assert!(
            (before[0] - after[0] - 0.1).abs() < 1e-6,
            "{before:?} {after:?}"
        );
        assert!(
            (before[1] - after[1] - 0.025).abs() < 1e-6,
            "{before:?} {after:?}"
        );
    }
}
