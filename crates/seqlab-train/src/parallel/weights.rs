//! Copying rank 0's weights to every process before training.

use super::ProcessGroup;
use super::gradients::float_values;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// Gives every process rank 0's weights (one broadcast of all of them), keeping each
/// parameter's id and whether it is trained.
pub(crate) fn broadcast_model<M: Module>(group: &dyn ProcessGroup, model: M) -> M {
    struct Collect(Vec<u8>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            for value in float_values(param.val().into_data()) {
                self.0.extend_from_slice(&value.to_le_bytes());
            }
        }
    }
    struct Assign {
        bytes: Vec<u8>,
        at: usize,
    }
    impl ModuleMapper for Assign {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|tensor| {
                let shape = tensor.shape();
                let count = shape.num_elements();
                let values: Vec<f32> = self.bytes[self.at..self.at + 4 * count]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                self.at += 4 * count;
                let copy = Tensor::<D>::from_data(TensorData::new(values, shape), &tensor.device());
                copy.set_require_grad(tensor.is_require_grad())
            })
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    let mut bytes = collect.0;
    group.broadcast(&mut bytes);
    model.map(&mut Assign { bytes, at: 0 })
}
