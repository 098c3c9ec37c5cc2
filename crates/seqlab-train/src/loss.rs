//! Cross-entropy over every predicted position or over a mask of them, accuracy, and mean
//! squared error.

use burn::tensor::{Bool, Int, Tensor};
use seqlab_models::cross_entropy_rows;

/// Mean cross-entropy of `logits` `[batch, steps, vocab]` against `targets` `[batch, steps]`,
/// flattened over batch and steps: the lesson's
/// `F.cross_entropy(inp.view(-1, vocab), targ.view(-1))`.
pub fn flat_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    let [batch, steps, vocab] = logits.dims();
    cross_entropy_rows(
        logits.reshape([batch * steps, vocab]),
        targets.reshape([batch * steps]),
    )
    .mean()
}

/// The number of positions where the highest score is the target, and the number of positions.
pub fn accuracy_counts(logits: Tensor<3>, targets: Tensor<2, Int>) -> (u64, u64) {
    let [batch, steps, _] = logits.dims();
    let correct: i64 = correct_positions(logits, targets).into_scalar();
    (correct as u64, (batch * steps) as u64)
}

/// [`accuracy_counts`]' number of positions where the highest score is the target, as a
/// one-element tensor left on the device.
pub(crate) fn correct_positions(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1, Int> {
    let [batch, steps, _] = logits.dims();
    let predicted = logits.argmax(2).reshape([batch, steps]);
    predicted.equal(targets).int().sum()
}

/// Mean cross-entropy over the positions where `mask` `[batch, steps]` is true: `logits`
/// `[batch, steps, vocab]`, `targets` `[batch, steps]`. The notebook's
/// `criterion(p[mask], y[mask])`, which counts a loss only up to the first stop symbol.
/// An all-false mask gives 0.
pub fn masked_cross_entropy(
    logits: Tensor<3>,
    targets: Tensor<2, Int>,
    mask: Tensor<2, Bool>,
) -> Tensor<1> {
    let [batch, steps, vocab] = logits.dims();
    let losses = cross_entropy_rows(
        logits.reshape([batch * steps, vocab]),
        targets.reshape([batch * steps]),
    );
    let weights = mask.reshape([batch * steps]).float();
    let count = weights.clone().sum().clamp_min(1.0);
    (losses * weights).sum() / count
}

/// The number of positions where `mask` is true and the highest score is the target, and the
/// number of positions where `mask` is true.
pub fn masked_accuracy_counts(
    logits: Tensor<3>,
    targets: Tensor<2, Int>,
    mask: Tensor<2, Bool>,
) -> (u64, u64) {
    let [batch, steps, _] = logits.dims();
    let predicted = logits.argmax(2).reshape([batch, steps]);
    let hits = predicted.equal(targets).bool_and(mask.clone());
    let correct: i64 = hits.int().sum().into_scalar();
    let count: i64 = mask.int().sum().into_scalar();
    (correct as u64, count as u64)
}

/// Mean squared error over every element (`torch.nn.MSELoss()`).
pub fn mse<const D: usize>(predictions: Tensor<D>, targets: Tensor<D>) -> Tensor<1> {
    (predictions - targets).square().mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn cross_entropy_matches_a_hand_computation() {
        let device = Device::flex();
        let logits = Tensor::<3>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 1.0, 2.0, 0.0, 0.0], [1, 2, 3]),
            &device,
        );
        let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 1], [1, 2]), &device);
        let loss: f32 = flat_cross_entropy(logits.clone(), targets.clone()).into_scalar();
        let e = std::f32::consts::E;
        let first = -(e / (2.0 + e)).ln();
        let second = -(1.0 / (e * e + 2.0)).ln();
        assert!((loss - (first + second) / 2.0).abs() < 1e-5, "{loss}");
        assert_eq!(accuracy_counts(logits, targets), (1, 2));
    }

    #[test]
    fn the_masked_loss_counts_only_masked_positions() {
        let device = Device::flex();
        let logits = Tensor::<3>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 1.0, 2.0, 0.0, 0.0], [1, 2, 3]),
            &device,
        );
        let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 1], [1, 2]), &device);
        let first_only =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![true, false], [1, 2]), &device);
        let loss: f32 =
            masked_cross_entropy(logits.clone(), targets.clone(), first_only.clone()).into_scalar();
        let e = std::f32::consts::E;
        assert!((loss + (e / (2.0 + e)).ln()).abs() < 1e-5, "{loss}");
        assert_eq!(
            masked_accuracy_counts(logits.clone(), targets.clone(), first_only),
            (1, 1)
        );
        let none =
            Tensor::<2, Bool>::from_data(TensorData::new(vec![false, false], [1, 2]), &device);
        let empty: f32 = masked_cross_entropy(logits, targets, none).into_scalar();
        assert_eq!(empty, 0.0);
        let error: f32 = mse(
            Tensor::<1>::from_floats([1.0, 2.0], &device),
            Tensor::<1>::from_floats([0.0, 0.0], &device),
        )
        .into_scalar();
        assert!((error - 2.5).abs() < 1e-6);
    }
}
