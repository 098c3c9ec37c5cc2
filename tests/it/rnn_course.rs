//! The RNN course's experiments (seed 004) run through the lessons as the command line runs
//! them, with the acceptance bars of issue 5 asserted on held-out data.

use seqlab::Device;
use seqlab::lessons::TrainRun;
use seqlab::lessons::addition::{AdditionConfig, run_addition};
use seqlab::lessons::copy_task::{CopyConfig, run_copy};
use seqlab::lessons::sinusoid::{SinusoidLessonConfig, run_sinusoid};
use seqlab::models::DecoderKind;

fn accuracy_at(by_length: &[(usize, f64)], length: usize) -> f64 {
    by_length
        .iter()
        .find(|(l, _)| *l == length)
        .map(|(_, a)| *a)
        .expect("the table has every length 2..=20")
}

#[test]
fn a_linear_rnn_with_enough_hidden_units_predicts_a_sinusoid() {
    let device = Device::flex();
    let one_unit = run_sinusoid(
        &SinusoidLessonConfig::default(),
        &TrainRun::default(),
        &device,
    )
    .unwrap();
    let config = SinusoidLessonConfig {
        hidden: 4,
        ..SinusoidLessonConfig::default()
    };
    let report = run_sinusoid(&config, &TrainRun::default(), &device).unwrap();
    // After the first two predictions (one value cannot give the phase) the error is tiny
    // (3.8e-4 for seed 0 in a process of its own; up to 1.07e-3 measured when other tests
    // draw from the device's generator while this one initialises its weights)...
    assert!(
        report.test_mse_after_warmup < 2e-3,
        "{}",
        report.test_mse_after_warmup
    );
    // ...and over every step it sits at the floor that first guess sets, far below 1 unit's.
    assert!(report.test_mse < 6e-3, "{}", report.test_mse);
    assert!(one_unit.test_mse > 0.03, "{}", one_unit.test_mse);
    assert_eq!(report.records.len(), 5);
    assert_eq!(report.batch_losses.len(), 5 * 500);
    assert_eq!((report.predicted.len(), report.generated.len()), (99, 99));
}

#[test]
fn the_fixed_length_copy_is_learnt_only_at_its_length() {
    let device = Device::flex();
    let report = run_copy(&CopyConfig::fixed_length(), &TrainRun::default(), &device).unwrap();
    assert!(
        report.test.token_accuracy >= 0.99,
        "{}",
        report.test.token_accuracy
    );
    // The notebook's finding: good only at the trained length.
    assert!(accuracy_at(&report.by_length, 10) >= 0.99);
    for length in [3, 6, 14, 18] {
        let accuracy = accuracy_at(&report.by_length, length);
        assert!(accuracy < 0.6, "length {length}: {accuracy}");
    }
    let reversed = CopyConfig {
        reverse: true,
        ..CopyConfig::fixed_length()
    };
    let report = run_copy(&reversed, &TrainRun::default(), &device).unwrap();
    assert!(
        report.test.token_accuracy >= 0.99,
        "{}",
        report.test.token_accuracy
    );
    let (input, target, output) = &report.examples[0];
    assert_eq!(input.chars().rev().collect::<String>(), *target);
    assert_eq!(output, target);
}

#[test]
fn bad_settings_are_errors_not_panics() {
    let device = Device::flex();
    let empty = CopyConfig {
        alphabet_size: 0,
        ..CopyConfig::fixed_length()
    };
    assert!(run_copy(&empty, &TrainRun::default(), &device).is_err());
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = CopyConfig {
        lengths: 9..=3,
        ..CopyConfig::variable_length()
    };
    let err = run_copy(&backwards, &TrainRun::default(), &device).unwrap_err();
    assert!(
        err.to_string().contains("minimum above its maximum"),
        "{err}"
    );
    let none = AdditionConfig {
        train_examples: 0,
        ..AdditionConfig::new(DecoderKind::Attention)
    };
    assert!(run_addition(&none, &TrainRun::default(), &device).is_err());
    let zero_epochs = SinusoidLessonConfig {
        epochs: 0,
        ..SinusoidLessonConfig::default()
    };
    assert!(run_sinusoid(&zero_epochs, &TrainRun::default(), &device).is_err());
}

#[test]
fn variable_lengths_with_a_stop_symbol_generalise_across_lengths() {
    let device = Device::flex();
    let report = run_copy(
        &CopyConfig::variable_length(),
        &TrainRun::default(),
        &device,
    )
    .unwrap();
    assert!(
        report.test.token_accuracy >= 0.95,
        "{}",
        report.test.token_accuracy
    );
    // Trained on 3..=14, good across that range, unlike the fixed-length model.
    for length in [3, 6, 10, 14] {
        let accuracy = accuracy_at(&report.by_length, length);
        assert!(accuracy >= 0.95, "length {length}: {accuracy}");
    }
}

#[test]
fn addition_runs_end_to_end_on_held_out_sums() {
    let device = Device::flex();
    for reversed in [false, true] {
        let config = AdditionConfig {
            train_examples: 600,
            test_examples: 50,
            epochs: 1,
            reverse_question: reversed,
            reverse_answer: reversed,
            pad_operands: reversed,
            ..AdditionConfig::new(DecoderKind::Attention)
        };
        check_addition_report(&config, &device);
    }
}

fn check_addition_report(config: &AdditionConfig, device: &Device) {
    let report = run_addition(config, &TrainRun::default(), device).unwrap();
    assert_eq!(report.records.len(), 1);
    assert_eq!(report.test.predictions.len(), 50);
    assert!((0.0..=1.0).contains(&report.test.token_accuracy));
    assert!(report.records[0].valid_loss.is_finite());
    for (question, answer, predicted) in &report.examples {
        let (x, y) = question.split_once('+').unwrap();
        let sum = x.parse::<u64>().unwrap() + y.parse::<u64>().unwrap();
        assert_eq!(answer.parse::<u64>().unwrap(), sum);
        assert!(predicted.chars().all(|c| c.is_ascii_digit()), "{predicted}");
    }
}
