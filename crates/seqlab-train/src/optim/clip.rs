//! Gradient clipping by the global norm, as PyTorch's `clip_grad_norm_` (burn's own clipping
//! works on each tensor alone).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::TrainError;
use crate::error::read_scalar;

/// Scales every gradient of `module` in `grads` by `max_norm / (norm + 1e-6)` when the L2 norm
/// over all of them together exceeds `max_norm`, and returns that norm (before clipping).
/// Fails for a `max_norm` that is not positive and finite, and if the device cannot compute the
/// gradients (see [`TrainError::Device`]).
pub fn clip_grad_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Result<f64, TrainError> {
    TrainError::check_max_norm(max_norm)?;
    let mut squares = SquaredNorm { grads, total: None };
    module.visit(&mut squares);
    let norm = match squares.total {
        Some(total) => (read_scalar(total)? as f64).sqrt(),
        None => 0.0,
    };
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        module.visit(&mut Scale { grads, scale });
    }
    Ok(norm)
}

/// Sums the squares of every gradient, on the device, read once at the end.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let squares = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + squares,
                None => squares,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    scale: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, grad.mul_scalar(self.scale));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, TensorData};

    /// `Linear(2, 1)` on x = [[3, 4]] with loss = sum(output): dW = [[3], [4]], db = [1], so the
    /// global norm is √26.
    #[test]
    fn clips_all_gradients_together_to_the_global_norm() {
        let device = Device::flex().autodiff();
        let layer = LinearConfig::new(2, 1).init(&device);
        let x = Tensor::<2>::from_data(TensorData::from([[3.0f32, 4.0]]), &device);
        let loss = layer.forward(x).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
        let norm = clip_grad_norm(&layer, &mut grads, 1.0).unwrap();
        assert!((norm - 26f64.sqrt()).abs() < 1e-5, "{norm}");
        let scale = (1.0 / (26f64.sqrt() + 1e-6)) as f32;
        let weight = grads.get::<2>(layer.weight.id).unwrap();
        let bias = grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap();
        weight.into_data().assert_approx_eq::<f32>(
            &TensorData::from([[3.0 * scale], [4.0 * scale]]),
            Default::default(),
        );
        bias.into_data()
            .assert_approx_eq::<f32>(&TensorData::from([scale]), Default::default());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                clip_grad_norm(&layer, &mut grads, bad),
                Err(TrainError::BadHyperparameter { .. })
            ));
        }
        // Under the limit nothing changes.
        let norm = clip_grad_norm(&layer, &mut grads, 10.0).unwrap();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        let bias = grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap();
        bias.into_data()
            .assert_approx_eq::<f32>(&TensorData::from([scale]), Default::default());
    }
}
