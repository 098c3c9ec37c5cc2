//! The loop on a task small enough to reason about: y = 2x by a one-weight linear layer.

use super::*;
use crate::{OptimizerConfig, Schedule, SgdConfig, TrainError, mse};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use seqlab_models::RecurrentState;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// `batches` batches an epoch of the same two points.
struct Double {
    device: Device,
    batches: usize,
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
        Ok(StepLoss::new(mse(model.forward(x.clone()), x * 2.0)))
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
    let model = LinearConfig::new(1, 1).with_bias(false).init(&device);
    let sgd = OptimizerConfig::Sgd(SgdConfig::default());
    let task = Double {
        device: device.clone(),
        batches,
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
