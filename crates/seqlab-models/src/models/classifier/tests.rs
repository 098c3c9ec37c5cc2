//! The notebook's shapes and parameter counts, pooling, padding.

use super::*;
use crate::{CellKind, Nonlinearity};
use burn::module::Module;
use burn::tensor::{Device, Distribution, Int};

#[test]
fn the_notebooks_classifiers_have_its_shapes_and_parameter_counts() {
    let device = Device::flex();
    let ids = Tensor::<2>::random([32, 64], Distribution::Uniform(0.0, 30522.0), &device).int();
    let rnn = RecurrentClassifierConfig::tglcourse(CellKind::Rnn(Nonlinearity::Tanh), 30522)
        .init(&device);
    assert_eq!(rnn.num_params(), 306742);
    assert_eq!(rnn.forward(ids.clone(), None).unwrap().dims(), [32, 2]);
    let lstm = RecurrentClassifierConfig::tglcourse(CellKind::Lstm, 30522).init(&device);
    assert_eq!(lstm.num_params(), 311182);
    assert_eq!(lstm.forward(ids.clone(), None).unwrap().dims(), [32, 2]);
    let mlp = MlpClassifierConfig::tglcourse(30522).init(&device);
    assert_eq!(
        mlp.num_params(),
        30522 * 256 + (256 * 64 * 64 + 64) + (64 * 2 + 2)
    );
    assert_eq!(mlp.forward(ids.clone()).unwrap().dims(), [32, 2]);
    assert_eq!(
        mlp.forward(ids.slice([0..32, 0..10])).unwrap_err(),
        ClassifierError::SequenceLength {
            expected: 64,
            got: 10
        }
    );
}

#[test]
fn concat_pooling_is_last_max_and_mean_over_the_valid_steps() {
    let device = Device::flex();
    // Two sequences of 3 steps, width 2; the second has 2 valid steps and a padded zero.
    let out = Tensor::<3>::from_data(
        [
            [[1.0, -3.0], [4.0, -1.0], [-2.0, -2.0]],
            [[-5.0, -4.0], [-1.0, -6.0], [0.0, 0.0]],
        ],
        &device,
    );
    let pooled = pool(Pooling::Concat, out, &[3, 2]).unwrap();
    let expected = [
        [-2.0, -2.0, 4.0, -1.0, 1.0, -2.0],
        [-1.0, -6.0, -1.0, -4.0, -3.0, -5.0],
    ];
    pooled
        .into_data()
        .assert_approx_eq::<f32>(&TensorData::from(expected), Default::default());
}

#[test]
fn padding_does_not_change_a_prediction() {
    let device = Device::flex();
    device.seed(2);
    for pooling in [Pooling::Mean, Pooling::Last, Pooling::Concat] {
        let net = RecurrentClassifierConfig::new(CellKind::Gru, 50, 8, 12, 2, 3)
            .with_bidirectional(true)
            .with_pooling(pooling)
            .init(&device);
        let short = Tensor::<2, Int>::from_data([[5, 9, 11, 3]], &device);
        let padded = Tensor::<2, Int>::from_data([[5, 9, 11, 3, 0, 0, 0]], &device);
        let alone = net.forward(short, None).unwrap();
        let with_pad = net.forward(padded.clone(), Some(&[4])).unwrap();
        alone
            .into_data()
            .assert_approx_eq::<f32>(&with_pad.into_data(), Default::default());
        assert!(net.forward(padded, Some(&[8])).is_err());
    }
}
