//! `nn.RNN`/`nn.LSTM`/`nn.GRU`'s parameter names for [`Recurrent`].

use super::Recurrent;
use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};

impl Recurrent {
    /// PyTorch's suffix for the weights at `index` (`layer * directions + direction`):
    /// `l0`, `l0_reverse`, `l1`, …
    fn pytorch_suffix(&self, index: usize) -> String {
        let (layer, direction) = (index / self.directions, index % self.directions);
        if direction == 1 {
            format!("l{layer}_reverse")
        } else {
            format!("l{layer}")
        }
    }
}

impl PytorchWeights for Recurrent {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        for (index, weights) in self.weights.iter().enumerate() {
            let suffix = self.pytorch_suffix(index);
            out.insert_tensor(
                format!("{prefix}weight_ih_{suffix}"),
                weights.weight_ih.val(),
            );
            out.insert_tensor(
                format!("{prefix}weight_hh_{suffix}"),
                weights.weight_hh.val(),
            );
            if let Some(bias) = &weights.bias_ih {
                out.insert_tensor(format!("{prefix}bias_ih_{suffix}"), bias.val());
            }
            if let Some(bias) = &weights.bias_hh {
                out.insert_tensor(format!("{prefix}bias_hh_{suffix}"), bias.val());
            }
        }
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        let suffixes: Vec<String> = (0..self.weights.len())
            .map(|index| self.pytorch_suffix(index))
            .collect();
        for (weights, suffix) in self.weights.iter_mut().zip(suffixes) {
            let name = |what: &str| format!("{prefix}{what}_{suffix}");
            weights.weight_ih =
                reader.param(&name("weight_ih"), weights.weight_ih.clone(), false)?;
            weights.weight_hh =
                reader.param(&name("weight_hh"), weights.weight_hh.clone(), false)?;
            if let Some(bias) = weights.bias_ih.take() {
                weights.bias_ih = Some(reader.param(&name("bias_ih"), bias, false)?);
            }
            if let Some(bias) = weights.bias_hh.take() {
                weights.bias_hh = Some(reader.param(&name("bias_hh"), bias, false)?);
            }
        }
        Ok(self)
    }
}
