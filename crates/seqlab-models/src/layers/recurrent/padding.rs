//! Sequences of different lengths in one batch: checking lengths, masks, the last valid
//! output, and reversing each sequence within its length.

use super::RecurrentError;
use burn::tensor::{Device, Int, Tensor, TensorData};

pub(super) fn check_lengths(
    lengths: &[usize],
    batch: usize,
    time: usize,
) -> Result<(), RecurrentError> {
    if lengths.len() != batch || lengths.iter().any(|&len| len == 0 || len > time) {
        return Err(RecurrentError::Lengths {
            lengths: lengths.to_vec(),
            batch,
            time,
        });
    }
    Ok(())
}

/// `[B, T]`: 1 at the steps of each sequence, 0 at its padding.
pub(crate) fn step_mask(lengths: &[usize], time: usize, device: &Device) -> Tensor<2> {
    let values = lengths
        .iter()
        .flat_map(|&len| (0..time).map(move |t| if t < len { 1.0f32 } else { 0.0 }))
        .collect::<Vec<_>>();
    Tensor::from_data(TensorData::new(values, [lengths.len(), time]), device)
}

/// The output at each sequence's last valid step: `output` `[B, T, F]`, `lengths` one per
/// sequence in `1..=T`; returns `[B, F]`.
pub fn last_valid_output(
    output: Tensor<3>,
    lengths: &[usize],
) -> Result<Tensor<2>, RecurrentError> {
    let [batch, time, features] = output.dims();
    check_lengths(lengths, batch, time)?;
    let last = lengths
        .iter()
        .map(|&len| (len - 1) as i64)
        .collect::<Vec<_>>();
    let indices =
        Tensor::<3, Int>::from_data(TensorData::new(last, [batch, 1, 1]), &output.device())
            .expand([batch, 1, features]);
    Ok(output.gather(1, indices).reshape([batch, features]))
}

/// Reverses every sequence of a batch within its length (an involution: applying it twice
/// restores the order). Without lengths it is a flip of the time axis.
pub(super) struct Reversal {
    indices: Option<Tensor<3, Int>>,
}

impl Reversal {
    pub(super) fn new(
        lengths: Option<&[usize]>,
        batch: usize,
        time: usize,
        device: &Device,
    ) -> Self {
        let indices = lengths.map(|lengths| {
            let order = lengths
                .iter()
                .flat_map(|&len| {
                    (0..time).map(move |t| {
                        if t < len {
                            (len - 1 - t) as i64
                        } else {
                            t as i64
                        }
                    })
                })
                .collect::<Vec<_>>();
            Tensor::from_data(TensorData::new(order, [batch, time, 1]), device)
        });
        Self { indices }
    }

    pub(super) fn apply(&self, tensor: Tensor<3>) -> Tensor<3> {
        match &self.indices {
            Some(indices) => {
                let dims = tensor.dims();
                tensor.gather(1, indices.clone().expand(dims))
            }
            None => tensor.flip([1]),
        }
    }
}
