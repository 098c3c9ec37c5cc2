//! The loop on a task small enough to reason about: y = 2x by a one-weight linear layer.

use super::*;
use crate::{OptimizerConfig, Schedule, SgdConfig, TrainError, mse};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use seqlab_models::RecurrentState;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// `batches` batches an epoch of the same two points; the loss of the `nan_at`-th step (from
/// 0) is NaN.
struct Double {
    device: Device,
    batches: usize,
    nan_at: Option<usize>,
    steps: Cell<usize>,
}

impl TrainTask for Double {
    type Model = Linear;
    type Batch = ();
    type Scores = LossAccuracy;
    type Error = TrainError;

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy"]
    }

    fn batches(&self, _epoch: usize) -> Result<Vec<()>, TrainError> {
        Ok(vec![(); self.batches])
    }

    fn loss(
        &self,
        model: &Linear,
        _: &(),
        _: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, TrainError> {
        let x = Tensor::<2>::from_floats([[1.0], [2.0]], device);
        let loss = mse(model.forward(x.clone()), x * 2.0);
        let step = self.steps.replace(self.steps.get() + 1);
        Ok(StepLoss::new(if self.nan_at == Some(step) {
            loss * f32::NAN
        } else {
            loss
        }))
    }

    fn evaluate(&self, model: &Linear) -> Result<LossAccuracy, TrainError> {
        let x = Tensor::<2>::from_floats([[3.0]], &self.device);
        let loss = mse(model.forward(x.clone()), x * 2.0).into_scalar::<f32>() as f64;
        Ok(LossAccuracy {
            loss,
            accuracy: 0.0,
        })
    }
}

fn fit_loop(batches: usize) -> FitLoop<Double> {
    let device = Device::flex();
    // Built on the plain device: the loop moves it to the autodiff one.
    let model = LinearConfig::new(1, 1)
        .with_bias(false)
        .with_initializer(Initializer::Constant { value: 0.5 })
        .init(&device);
    let sgd = OptimizerConfig::Sgd(SgdConfig::default());
    let task = Double {
        device: device.clone(),
        batches,
        nan_at: None,
        steps: Cell::new(0),
    };
    FitLoop::new(task, model, &device, sgd)
        .with_table(false)
        .with_progress(false)
}

#[test]
fn a_model_built_on_the_plain_device_trains() {
    let mut fit = fit_loop(4);
    let records = fit.fit(&[Phase::new(5, Schedule::Constant(0.05))]).unwrap();
    assert_eq!(records.len(), 5);
    assert!(records[4].valid_loss < 1e-3, "{records:?}");
    assert_eq!(fit.batch_losses().len(), 20);
    // Fits are numbered on, epochs counted within each fit.
    let more = fit.fit(&[Phase::new(1, Schedule::Constant(0.05))]).unwrap();
    assert_eq!((more[0].fit, more[0].epoch), (1, 0));
}

#[test]
fn a_stop_asked_for_ends_the_run_after_the_step_under_way() {
    let stop = Arc::new(AtomicBool::new(true));
    let mut fit = fit_loop(4).with_stop_flag(stop);
    let error = fit
        .fit(&[Phase::new(2, Schedule::Constant(0.05))])
        .unwrap_err();
    assert!(
        matches!(
            error,
            TrainError::Interrupted {
                epoch: 0,
                batch: 1,
                checkpoint: None
            }
        ),
        "{error}"
    );
    assert_eq!(fit.batch_losses().len(), 1);
}

#[test]
fn bad_settings_and_empty_epochs_are_errors() {
    let mut fit = fit_loop(0);
    let error = fit
        .fit(&[Phase::new(1, Schedule::Constant(0.05))])
        .unwrap_err();
    assert!(matches!(error, TrainError::NoBatches(_)), "{error}");
    let mut fit = fit_loop(2);
    let error = fit
        .fit(&[Phase::new(1, Schedule::Constant(0.0))])
        .unwrap_err();
    assert!(
        matches!(error, TrainError::BadHyperparameter { .. }),
        "{error}"
    );
    let mut fit = fit_loop(2).with_grad_clip(Some(f64::NAN));
    let error = fit
        .fit(&[Phase::new(1, Schedule::Constant(0.1))])
        .unwrap_err();
    assert!(
        matches!(error, TrainError::BadHyperparameter { .. }),
        "{error}"
    );
    // The model is still there after an error.
    assert_eq!(fit.model().weight.dims(), [1, 1]);
}

#[test]
fn losses_read_in_blocks_are_those_read_every_step_with_fewer_reads() {
    let phases = [Phase::new(2, Schedule::Constant(0.05))];
    let run = |fit: FitLoop<Double>| {
        let mut fit = fit.with_grad_clip(Some(100.0));
        let before = crate::host_reads();
        let records = fit.fit(&phases).unwrap();
        let reads = crate::host_reads() - before;
        (fit.batch_losses().to_vec(), records, reads)
    };
    // On the CPU: the loss and the clipping norm every step.
    let (every_step, records, reads) = run(fit_loop(7));
    assert_eq!(every_step.len(), 14);
    assert_eq!(reads, 14 + 14);
    // In blocks of 3: at steps 3 and 6 and at the end of each epoch.
    let (in_blocks, blocked_records, reads) = run(fit_loop(7).with_loss_read_every(3));
    assert_eq!(in_blocks, every_step);
    assert_eq!(blocked_records[1].train_loss, records[1].train_loss);
    assert_eq!(reads, 2 * 3 + 14);
}

#[test]
fn a_non_finite_loss_read_in_a_block_names_its_batch() {
    for read_every in [1, 4] {
        let mut fit = fit_loop(6).with_loss_read_every(read_every);
        fit.task_mut().nan_at = Some(8);
        let error = fit
            .fit(&[Phase::new(2, Schedule::Constant(0.05))])
            .unwrap_err();
        assert!(
            matches!(error, TrainError::NonFiniteLoss { epoch: 1, batch: 2, value } if value.is_nan()),
            "{read_every}: {error}"
        );
        // The losses before it are recorded.
        assert_eq!(fit.batch_losses().len(), 8, "{read_every}");
    }
}
