//! Stochastic gradient descent with momentum.

use super::{ParamState, ParamStep, Updated};

/// SGD's settings, as `torch.optim.SGD` (no dampening, no Nesterov).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SgdConfig {
    /// Momentum (0 for plain SGD; replaced by the schedule's momentum when it gives one).
    pub momentum: f64,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
}

impl SgdConfig {
    pub(super) fn update(&self, (hyper, param, grad, state): ParamStep) -> Updated {
        let momentum = hyper.momentum.unwrap_or(self.momentum);
        let grad = if self.weight_decay != 0.0 {
            grad + param.clone().mul_scalar(self.weight_decay)
        } else {
            grad
        };
        let (velocity, steps) = match state {
            Some(ParamState { first, steps, .. }) if momentum != 0.0 => {
                (first.mul_scalar(momentum) + grad, steps + 1)
            }
            Some(ParamState { steps, .. }) => (grad, steps + 1),
            None => (grad, 1),
        };
        let param = param - velocity.clone().mul_scalar(hyper.lr);
        (
            param,
            ParamState {
                first: velocity,
                second: None,
                steps,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::StepHyper;
    use burn::tensor::Tensor;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn momentum_accumulates_like_pytorch() {
        let device = Device::flex();
        let sgd = SgdConfig {
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let hyper = StepHyper {
            lr: 0.1,
            momentum: None,
        };
        let t = |v: [f32; 1]| Tensor::<1>::from_data(TensorData::from(v), &device);
        let (p, s) = sgd.update((hyper, t([1.0]), t([1.0]), None));
        let (p, _) = sgd.update((hyper, p, t([1.0]), Some(s)));
        // p = 1 - 0.1*1 - 0.1*(0.9*1 + 1) = 0.71
        p.into_data()
            .assert_approx_eq::<f32>(&TensorData::from([0.71f32]), Default::default());
    }
}
