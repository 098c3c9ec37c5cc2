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

use crate::TrainError;
use crate::schedule::StepHyper;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use seqlab_models::NamedTensors;
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
            lr_scales: HashMap::new(),
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

/// One parameter's step: the schedule's hyperparameters, its values, its gradient and its
/// state so far.
type ParamStep = (StepHyper, Tensor<1>, Tensor<1>, Option<ParamState>);

/// A parameter's values and state after a step.
type Updated = (Tensor<1>, ParamState);

/// An optimizer with its per-parameter state. Made by [`OptimizerConfig::init`].
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    states: HashMap<ParamId, ParamState>,
    lr_scales: HashMap<ParamId, f64>,
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

    /// The running averages of `module`'s parameters, named by the order in which the module
    /// visits them (`3.first`, `3.second`, `3.steps` for its fourth parameter), so that they can
    /// be saved beside the weights and given back to the same model rebuilt elsewhere.
    pub fn state_of<M: Module>(&self, module: &M) -> NamedTensors {
        let mut named = NamedTensors::default();
        for (index, id) in param_ids(module).into_iter().enumerate() {
            let Some(state) = self.states.get(&id) else {
                continue;
            };
            named.insert_tensor(format!("{index}.first"), state.first.clone());
            if let Some(second) = &state.second {
                named.insert_tensor(format!("{index}.second"), second.clone());
            }
            named.insert(format!("{index}.steps"), vec![1], vec![state.steps as f32]);
        }
        named
    }

    /// Restores averages saved by [`Optimizer::state_of`] for `module`, a model of the same
    /// structure, on `device`. A tensor whose size is not its parameter's is an error.
    pub fn load_state<M: Module>(
        &mut self,
        module: &M,
        saved: &NamedTensors,
        device: &Device,
    ) -> Result<(), TrainError> {
        let device = device.clone().inner();
        let sizes = param_sizes(module);
        let tensor = |name: &str, size: usize| -> Result<Option<Tensor<1>>, TrainError> {
            let Some((shape, values)) = saved.get(name) else {
                return Ok(None);
            };
            if shape != [size] {
                return Err(TrainError::OptimizerState(format!(
                    "{name} has shape {shape:?}, its parameter has {size} values"
                )));
            }
            Ok(Some(Tensor::from_data(
                TensorData::new(values.to_vec(), [size]),
                &device,
            )))
        };
        self.states.clear();
        for (index, (id, size)) in param_ids(module).into_iter().zip(sizes).enumerate() {
            let Some(first) = tensor(&format!("{index}.first"), size)? else {
                continue;
            };
            let steps = saved
                .get(&format!("{index}.steps"))
                .and_then(|(_, values)| values.first())
                .map_or(0, |&steps| steps as i32);
            let second = tensor(&format!("{index}.second"), size)?;
            self.states.insert(
                id,
                ParamState {
                    first,
                    second,
                    steps,
                },
            );
        }
        Ok(())
    }

    /// Steps every parameter of `part` (a sub-module of the model being trained) at `factor`
    /// times the learning rate from now on: discriminative learning rates, as ULMFiT
    /// fine-tunes a pretrained encoder more gently than its new head.
    pub fn scale_lr<M: Module>(&mut self, part: &M, factor: f64) {
        for id in param_ids(part) {
            self.lr_scales.insert(id, factor);
        }
    }

    fn update(
        &mut self,
        id: ParamId,
        mut hyper: StepHyper,
        param: Tensor<1>,
        grad: Tensor<1>,
    ) -> Tensor<1> {
        if let Some(factor) = self.lr_scales.get(&id) {
            hyper.lr *= factor;
        }
        let state = self.states.remove(&id);
        let (param, state) = match &self.config {
            OptimizerConfig::Adam(adam) => adam.update((hyper, param, grad, state)),
            OptimizerConfig::Sgd(sgd) => sgd.update((hyper, param, grad, state)),
        };
        self.states.insert(id, state);
        param
    }
}

/// The ids of `module`'s parameters in visiting order.
fn param_ids<M: Module>(module: &M) -> Vec<ParamId> {
    params(module).into_iter().map(|(id, _)| id).collect()
}

/// The number of values of each of `module`'s parameters in visiting order.
fn param_sizes<M: Module>(module: &M) -> Vec<usize> {
    params(module).into_iter().map(|(_, size)| size).collect()
}

fn params<M: Module>(module: &M) -> Vec<(ParamId, usize)> {
    struct Collect(Vec<(ParamId, usize)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push((param.id, param.shape().num_elements()));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
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
