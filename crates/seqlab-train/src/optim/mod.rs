//! Optimizers whose momentum can change at every step, as fastai's one-cycle policy needs.
//!
//! Each parameter is updated on its plain (non-autodiff) tensor; the optimizer's state is kept
//! per parameter id, flattened to one dimension.

mod adam;
mod clip;
mod sgd;

pub use adam::AdamConfig;
pub use clip::clip_grad_norm;
pub use sgd::SgdConfig;

use crate::schedule::StepHyper;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use std::collections::HashMap;

/// Which optimizer to use, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// Adam (fastai's defaults by [`AdamConfig::fastai`], PyTorch's by [`AdamConfig::pytorch`]).
    Adam(AdamConfig),
    /// Stochastic gradient descent, with optional momentum.
    Sgd(SgdConfig),
}

impl Default for OptimizerConfig {
    /// fastai's Adam, which is what the lessons ran.
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::fastai())
    }
}

impl OptimizerConfig {
    /// A fresh optimizer with no state.
    pub fn init(&self) -> Optimizer {
        Optimizer {
            config: *self,
            states: HashMap::new(),
        }
    }
}

/// Per-parameter state: the running averages, flattened.
#[derive(Debug, Clone)]
struct ParamState {
    first: Tensor<1>,
    second: Option<Tensor<1>>,
    steps: i32,
}

/// An optimizer with its per-parameter state. Made by [`OptimizerConfig::init`].
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    states: HashMap<ParamId, ParamState>,
}

impl Optimizer {
    /// The settings this optimizer runs with.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Applies one update to every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, hyper: StepHyper, module: M, grads: GradientsParams) -> M {
        let mut mapper = UpdateMapper {
            optimizer: self,
            hyper,
            grads,
        };
        module.map(&mut mapper)
    }

    fn update(
        &mut self,
        id: ParamId,
        hyper: StepHyper,
        param: Tensor<1>,
        grad: Tensor<1>,
    ) -> Tensor<1> {
        let state = self.states.remove(&id);
        let (param, state) = match &self.config {
            OptimizerConfig::Adam(adam) => adam.update(hyper, param, grad, state),
            OptimizerConfig::Sgd(sgd) => sgd.update(hyper, param, grad, state),
        };
        self.states.insert(id, state);
        param
    }
}

struct UpdateMapper<'a> {
    optimizer: &'a mut Optimizer,
    hyper: StepHyper,
    grads: GradientsParams,
}

impl ModuleMapper for UpdateMapper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let dims = tensor.dims();
        let numel: usize = dims.iter().product();
        let require_grad = tensor.is_require_grad();
        let flat = tensor.inner().reshape([numel]);
        let updated = self
            .optimizer
            .update(id, self.hyper, flat, grad.reshape([numel]))
            .reshape(dims);
        let mut tensor = Tensor::from_inner(updated);
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}
