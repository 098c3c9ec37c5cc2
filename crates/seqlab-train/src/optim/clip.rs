//! Gradient clipping by the global norm, as PyTorch's `clip_grad_norm_` (burn's own clipping
//! works on each tensor alone).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use seqlab_models::host::is_host_device;

use crate::TrainError;
use crate::reads::read_scalar;

/// Scales every gradient of `module` in `grads` by `max_norm / (norm + 1e-6)` when the L2 norm
/// over all of them together exceeds `max_norm`, and returns that norm (before clipping) as a
/// one-element tensor on the gradients' device, as PyTorch's `clip_grad_norm_` does (`None`
/// where `grads` holds no gradient of `module`).
///
/// On a GPU nothing is read back: the scale is computed and applied on the device, clamped
/// to 1 (a multiplication by 1 changes no gradient). On the CPU backends, where a read costs
/// nothing, the norm is read and the scale computed in `f64` on the host, and gradients under
/// the limit are left untouched.
///
/// Fails for a `max_norm` that is not positive and finite, and if the device cannot compute the
/// gradients (see [`TrainError::Device`]).
pub fn clip_grad_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Result<Option<Tensor<1>>, TrainError> {
    TrainError::check_max_norm(max_norm)?;
    let Some(total) = squared_norm(module, grads) else {
        return Ok(None);
    };
    if is_host_device(&total.device()) {
        clip_on_host(module, grads, max_norm, total).map(Some)
    } else {
        Ok(Some(clip_on_device(module, grads, max_norm, total)))
    }
}

/// [`clip_grad_norm`] deciding on the host, from the sum of squares `total`.
fn clip_on_host<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
    total: Tensor<1>,
) -> Result<Tensor<1>, TrainError> {
    let norm = (read_scalar(total.clone())? as f64).sqrt();
    let scale = max_norm / (norm + 1e-6);
    if scale < 1.0 {
        module.visit(&mut Scale {
            grads,
            factor: Factor::Host(scale),
        });
    }
    Ok(total.sqrt())
}

/// [`clip_grad_norm`] without leaving the device: PyTorch's
/// `(max_norm / (norm + 1e-6)).clamp(max=1)` as a tensor, multiplied into every gradient.
fn clip_on_device<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
    total: Tensor<1>,
) -> Tensor<1> {
    let norm = total.sqrt();
    let scale = Tensor::<1>::full([1], max_norm, &norm.device())
        .div(norm.clone().add_scalar(1e-6))
        .clamp_max(1.0);
    module.visit(&mut Scale {
        grads,
        factor: Factor::Device(Box::new(scale)),
    });
    norm
}

/// The sum of the squares of every gradient of `module` in `grads`, on the device.
fn squared_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    let mut squares = SquaredNorm { grads, total: None };
    module.visit(&mut squares);
    squares.total
}

/// Sums the squares of every gradient, on the device.
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

/// What [`Scale`] multiplies every gradient by.
enum Factor {
    /// A scale decided on the host.
    Host(f64),
    /// A one-element tensor on the gradients' device (boxed: a tensor handle is large).
    Device(Box<Tensor<1>>),
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: Factor,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let scaled = match &self.factor {
                Factor::Host(scale) => grad.mul_scalar(*scale),
                Factor::Device(scale) => grad.mul((**scale).clone().reshape([1; D])),
            };
            self.grads.register(param.id, scaled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData};

    type Clip = fn(&Linear, &mut GradientsParams, f64) -> Result<Option<Tensor<1>>, TrainError>;

    /// [`clip_on_device`] as a GPU runs it, here on the CPU.
    fn clip_as_on_a_gpu(
        layer: &Linear,
        grads: &mut GradientsParams,
        max_norm: f64,
    ) -> Result<Option<Tensor<1>>, TrainError> {
        let total = squared_norm(layer, grads).expect("gradients");
        Ok(Some(clip_on_device(layer, grads, max_norm, total)))
    }

    /// `Linear(2, 1)` on x = [[3, 4]] with loss = sum(output): dW = [[3], [4]], db = [1], so the
    /// global norm is √26.
    #[test]
    fn clips_all_gradients_together_to_the_global_norm() {
        for clip in [clip_grad_norm as Clip, clip_as_on_a_gpu] {
            let device = Device::flex().autodiff();
            let layer = LinearConfig::new(2, 1).init(&device);
            let x = Tensor::<2>::from_data(TensorData::from([[3.0f32, 4.0]]), &device);
            let loss = layer.forward(x).sum();
            let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
            let norm: f32 = clip(&layer, &mut grads, 1.0)
                .unwrap()
                .unwrap()
                .into_scalar();
            assert!((norm - 26f32.sqrt()).abs() < 1e-5, "{norm}");
            let scale = (1.0 / (26f64.sqrt() + 1e-6)) as f32;
            let weight = grads.get::<2>(layer.weight.id).unwrap();
            let bias = grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap();
            weight.into_data().assert_approx_eq::<f32>(
                &TensorData::from([[3.0 * scale], [4.0 * scale]]),
                Default::default(),
            );
            let clipped = bias.into_data();
            clipped.assert_approx_eq::<f32>(&TensorData::from([scale]), Default::default());
            // Under the limit nothing changes.
            let norm: f32 = clip(&layer, &mut grads, 10.0)
                .unwrap()
                .unwrap()
                .into_scalar();
            assert!((norm - 1.0).abs() < 1e-4, "{norm}");
            let bias = grads.get::<1>(layer.bias.as_ref().unwrap().id).unwrap();
            assert_eq!(bias.into_data(), clipped);
        }
    }

    #[test]
    fn refuses_a_limit_that_is_not_positive_and_finite() {
        let device = Device::flex().autodiff();
        let layer = LinearConfig::new(2, 1).init(&device);
        let loss = layer.forward(Tensor::<2>::ones([1, 2], &device)).sum();
        let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                clip_grad_norm(&layer, &mut grads, bad),
                Err(TrainError::BadHyperparameter { .. })
            ));
        }
        let empty = &mut GradientsParams::new();
        assert!(clip_grad_norm(&layer, empty, 1.0).unwrap().is_none());
    }
}
