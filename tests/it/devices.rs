//! The same model code on every device: a few training steps of each human-numbers model on
//! flex, ndarray and wgpu (Mesa's lavapipe where there is no GPU), from the same weights, give
//! the same losses.

use seqlab::Device;
use seqlab::device::DeviceChoice;
use seqlab::lessons::human_numbers::{HumanNumbersConfig, HumanNumbersModel};
use seqlab::models::{
    CellKind, LanguageModel, LmModel1Config, LmModel2Config, LmModel3Config, LmModel4Config,
    Nonlinearity, RecurrentLmConfig,
};
use seqlab::train::{DataLoaders, Learner};

const STEPS: usize = 6;

fn first_batches(model: HumanNumbersModel) -> DataLoaders {
    let (_, data) = HumanNumbersConfig::new(model).data().unwrap();
    DataLoaders::new(
        data.stream_batches()
            .unwrap()
            .iter()
            .take(STEPS)
            .map(|batch| batch.into_owned())
            .collect::<Vec<_>>(),
        data.valid()
            .iter()
            .take(2)
            .map(|batch| batch.into_owned())
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

fn losses<M: LanguageModel>(
    model: &M,
    kind: HumanNumbersModel,
    device: &Device,
) -> (Vec<f32>, f64) {
    let mut learner = Learner::new(model.clone(), first_batches(kind), device)
        .with_table(false)
        .with_progress(false);
    learner.fit(1, 3e-3).unwrap();
    (
        learner.batch_losses().to_vec(),
        learner.history()[0].valid_loss,
    )
}

fn compare_devices<M: LanguageModel>(kind: HumanNumbersModel, build: impl Fn(&Device) -> M) {
    let reference_device = Device::flex();
    reference_device.seed(7);
    let model = build(&reference_device.clone().autodiff());
    let (reference, reference_valid) = losses(&model, kind, &reference_device);
    assert_eq!(reference.len(), STEPS);
    assert!(
        reference[0] > 2.0 && reference[0] < 6.0,
        "{kind}: first loss {}",
        reference[0]
    );
    for choice in [DeviceChoice::NdArray, DeviceChoice::Wgpu] {
        let device = choice.device().unwrap_or_else(|e| panic!("{e}"));
        let (other, other_valid) = losses(&model, kind, &device);
        for (step, (a, b)) in reference.iter().zip(&other).enumerate() {
            assert!(
                (a - b).abs() < 2e-3 * a.abs().max(1.0),
                "{kind} on {choice}, step {step}: {a} vs {b}"
            );
        }
        assert!(
            (reference_valid - other_valid).abs() < 5e-3,
            "{kind} on {choice}: valid {reference_valid} vs {other_valid}"
        );
    }
}

#[test]
fn lm1_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm1, |d| {
        LmModel1Config::new(30, 64).init(d)
    });
}

#[test]
fn lm2_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm2, |d| {
        LmModel2Config::new(30, 128).init(d)
    });
}

#[test]
fn lm3_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm3, |d| {
        LmModel3Config::new(30, 64).init(d)
    });
}

#[test]
fn lm4_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm4, |d| {
        LmModel4Config::new(30, 64).init(d)
    });
}

#[test]
fn lm5_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm5, |d| {
        RecurrentLmConfig::new(CellKind::Rnn(Nonlinearity::Tanh), 30, 64, 2).init(d)
    });
}

#[test]
fn lm6_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm6, |d| {
        RecurrentLmConfig::new(CellKind::Lstm, 30, 64, 2).init(d)
    });
}

#[test]
fn lm7_trains_alike_on_every_device() {
    // Output dropout off here: the devices draw different random masks.
    compare_devices(HumanNumbersModel::Lm7, |d| {
        RecurrentLmConfig::awd_lstm(30, 64, 0.0).init(d)
    });
}
