//! Adam, with decoupled (AdamW) or L2 weight decay.

use super::{ParamState, ParamStep, Updated};
use burn::tensor::{Tensor, TensorData};
use seqlab_models::host::{host_values, is_host_device};

/// Adam's settings.
///
/// ```
/// let fastai = seqlab_train::AdamConfig::fastai();
/// assert_eq!((fastai.beta1, fastai.beta2, fastai.eps, fastai.weight_decay), (0.9, 0.99, 1e-5, 0.01));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Decay of the running mean of gradients (replaced by the schedule's momentum when it
    /// gives one).
    pub beta1: f64,
    /// Decay of the running mean of squared gradients.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// `true`: decay the weights directly, `p -= lr * wd * p` (fastai's `true_wd`, PyTorch's
    /// AdamW); `false`: add `wd * p` to the gradient (PyTorch's Adam).
    pub decoupled_weight_decay: bool,
}

impl AdamConfig {
    /// fastai's `Adam` defaults, as the lessons ran it: betas (0.9, 0.99), eps 1e-5, decoupled
    /// weight decay 0.01.
    pub fn fastai() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-5,
            weight_decay: 0.01,
            decoupled_weight_decay: true,
        }
    }

    /// `torch.optim.Adam`'s defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn pytorch() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }

    pub(super) fn update(&self, (hyper, param, grad, state): ParamStep) -> Updated {
        if is_host_device(&param.device()) {
            return self.update_on_host((hyper, param, grad, state));
        }
        self.update_by_tensor_ops((hyper, param, grad, state))
    }

    /// [`AdamConfig::update_by_tensor_ops`] in one pass over the values on the host, for the
    /// CPU devices: the same `f32` operations in the same order, so the same numbers, where
    /// the tensor operations made a dozen passes and as many buffers.
    fn update_on_host(&self, (hyper, param, grad, state): ParamStep) -> Updated {
        let device = param.device();
        let beta1 = hyper.momentum.unwrap_or(self.beta1);
        let (lr, beta2, wd) = (hyper.lr, self.beta2, self.weight_decay);
        let (mut first, mut second, steps, fresh) = match state {
            Some(ParamState {
                first,
                second: Some(second),
                steps,
            }) => (host_values(first), host_values(second), steps + 1, false),
            _ => (Vec::new(), Vec::new(), 1, true),
        };
        let mut param = host_values(param);
        let grad = host_values(grad);
        if fresh {
            first = vec![0.0; param.len()];
            second = vec![0.0; param.len()];
        }
        // Each scalar as the tensor operations take it: computed in f64, applied in f32.
        let coupled_wd = (wd != 0.0 && !self.decoupled_weight_decay).then_some(wd as f32);
        let decay = (wd != 0.0 && self.decoupled_weight_decay).then_some((1.0 - lr * wd) as f32);
        let (b1, one_minus_b1) = (beta1 as f32, (1.0 - beta1) as f32);
        let (b2, one_minus_b2) = (beta2 as f32, (1.0 - beta2) as f32);
        let debias2 = (1.0 - beta2.powi(steps)) as f32;
        let step_size = (lr / (1.0 - beta1.powi(steps))) as f32;
        let eps = self.eps as f32;
        let update = |(((p, g), m), v): (((&mut f32, &f32), &mut f32), &mut f32)| {
            let g = match coupled_wd {
                Some(wd) => g + *p * wd,
                None => *g,
            };
            if fresh {
                *m = g * one_minus_b1;
                *v = (g * g) * one_minus_b2;
            } else {
                *m = *m * b1 + g * one_minus_b1;
                *v = *v * b2 + (g * g) * one_minus_b2;
            }
            if let Some(decay) = decay {
                *p *= decay;
            }
            let denominator = (*v / debias2).sqrt() + eps;
            *p -= (*m / denominator) * step_size;
        };
        param
            .iter_mut()
            .zip(&grad)
            .zip(&mut first)
            .zip(&mut second)
            .for_each(update);
        let tensor = |values: Vec<f32>| {
            let len = values.len();
            Tensor::from_data(TensorData::new(values, [len]), &device)
        };
        (
            tensor(param),
            ParamState {
                first: tensor(first),
                second: Some(tensor(second)),
                steps,
            },
        )
    }

    /// The update as tensor operations, for every device.
    fn update_by_tensor_ops(&self, (hyper, param, grad, state): ParamStep) -> Updated {
        let beta1 = hyper.momentum.unwrap_or(self.beta1);
        let (lr, beta2, wd) = (hyper.lr, self.beta2, self.weight_decay);
        let grad = if wd != 0.0 && !self.decoupled_weight_decay {
            grad + param.clone().mul_scalar(wd)
        } else {
            grad
        };
        let (first, second, steps) = match state {
            Some(ParamState {
                first,
                second: Some(second),
                steps,
            }) => (
                first.mul_scalar(beta1) + grad.clone().mul_scalar(1.0 - beta1),
                second.mul_scalar(beta2) + grad.square().mul_scalar(1.0 - beta2),
                steps + 1,
            ),
            _ => (
                grad.clone().mul_scalar(1.0 - beta1),
                grad.square().mul_scalar(1.0 - beta2),
                1,
            ),
        };
        let debias1 = 1.0 - beta1.powi(steps);
        let debias2 = 1.0 - beta2.powi(steps);
        let param = if wd != 0.0 && self.decoupled_weight_decay {
            param.mul_scalar(1.0 - lr * wd)
        } else {
            param
        };
        let denominator = second
            .clone()
            .div_scalar(debias2)
            .sqrt()
            .add_scalar(self.eps);
        let param = param - first.clone().div(denominator).mul_scalar(lr / debias1);
        (
            param,
            ParamState {
                first,
                second: Some(second),
                steps,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::StepHyper;
    use burn::tensor::Device;

    /// The host update gives the tensor operations' numbers exactly, for both kinds of weight
    /// decay, with and without a schedule's momentum, over several steps.
    #[test]
    fn the_host_update_matches_the_tensor_operations_exactly() {
        let device = Device::flex();
        let values = |seed: usize| -> Tensor<1> {
            let v: Vec<f32> = (0..257)
                .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 250.0 - 2.0)
                .collect();
            Tensor::from_data(TensorData::new(v, [257]), &device)
        };
        for (adam, momentum) in [
            (AdamConfig::fastai(), None),
            (AdamConfig::fastai(), Some(0.85)),
            (
                AdamConfig {
                    weight_decay: 0.1,
                    ..AdamConfig::pytorch()
                },
                None,
            ),
        ] {
            let hyper = StepHyper { lr: 0.01, momentum };
            let (mut host, mut ops) = ((values(0), None), (values(0), None));
            for step in 1..=3 {
                let grad = values(step);
                let (p, s) = adam.update_on_host((hyper, host.0, grad.clone(), host.1));
                host = (p, Some(s));
                let (p, s) = adam.update_by_tensor_ops((hyper, ops.0, grad, ops.1));
                ops = (p, Some(s));
                let (h, o) = (host.1.as_ref().unwrap(), ops.1.as_ref().unwrap());
                assert_eq!(h.steps, o.steps);
                for (got, want) in [
                    (&host.0, &ops.0),
                    (&h.first, &o.first),
                    (h.second.as_ref().unwrap(), o.second.as_ref().unwrap()),
                ] {
                    assert_eq!(
                        got.clone().into_data().try_to_vec::<f32>().unwrap(),
                        want.clone().into_data().try_to_vec::<f32>().unwrap(),
                        "{adam:?} {momentum:?} step {step}"
                    );
                }
            }
        }
    }

    /// Two steps of PyTorch's AdamW(lr=0.1, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    /// on p = [1, -2] with gradients [0.5, 0.25] then [-1, 0.5], worked by hand.
    #[test]
    fn two_steps_match_adamw() {
        let device = Device::flex();
        let adam = AdamConfig::fastai();
        let hyper = StepHyper {
            lr: 0.1,
            momentum: None,
        };
        let t = |v: [f32; 2]| Tensor::<1>::from_data(TensorData::from(v), &device);
        let (p, s) = adam.update((hyper, t([1.0, -2.0]), t([0.5, 0.25]), None));
        let (p, _) = adam.update((hyper, p, t([-1.0, 0.5]), Some(s)));
        // Step 1: p*(1-0.001) - 0.1*sign(g) (m̂/√v̂ = ±1 up to eps).
        let p1 = [
            1.0f64 * 0.999 - 0.1 * 0.5 / (0.5 + 1e-5),
            -2.0 * 0.999 - 0.1 * 0.25 / (0.25 + 1e-5),
        ];
        // Step 2, by the formulas.
        let step2 = |p: f64, g1: f64, g2: f64| {
            let m = 0.9 * (0.1 * g1) + 0.1 * g2;
            let v = 0.99 * (0.01 * g1 * g1) + 0.01 * g2 * g2;
            let (mh, vh) = (m / (1.0 - 0.81), v / (1.0 - 0.9801));
            p * 0.999 - 0.1 * mh / (vh.sqrt() + 1e-5)
        };
        let expected = [
            step2(p1[0], 0.5, -1.0) as f32,
            step2(p1[1], 0.25, 0.5) as f32,
        ];
        p.into_data()
            .assert_approx_eq::<f32>(&TensorData::from(expected), Default::default());
    }
}
