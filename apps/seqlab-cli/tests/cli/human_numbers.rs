//! `seqlab human-numbers`, and what every command shares: one-line errors, --help, --fast-dev-run.

use crate::*;
use std::path::PathBuf;

#[test]
fn bad_input_gives_one_line_and_a_non_zero_exit() {
    assert_one_line_error(
        &["human-numbers", "--model", "lm9"],
        "unknown model \"lm9\"",
    );
    assert_one_line_error(
        &["human-numbers", "--batch-size", "0"],
        "invalid value '0' for '--batch-size",
    );
    assert_one_line_error(
        &["human-numbers", "--seq-len", "70000"],
        "sequence length 70000 needs",
    );
    assert_one_line_error(&["human-numbers", "--batch-size", "5000"], "is empty");
    assert_one_line_error(
        &["human-numbers", "--model", "lm1", "--seq-len", "5"],
        "lm1 reads exactly 3 tokens",
    );
    assert_one_line_error(
        &["human-numbers", "--device", "tpu"],
        "unknown device \"tpu\"",
    );
    assert_one_line_error(
        &["human-numbers", "--lr", "-1"],
        "learning rate must be positive",
    );
    assert_one_line_error(&["human-numbers", "--epochs", "abc"], "invalid value 'abc'");
    assert_one_line_error(&["no-such-command"], "unrecognized subcommand");
}

#[test]
fn trains_lm4_for_an_epoch_and_writes_metrics() {
    let dir = std::env::temp_dir().join(format!("seqlab-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let metrics: PathBuf = dir.join("metrics.json");
    let output = seqlab(&[
        "human-numbers",
        "--model",
        "lm4",
        "--epochs",
        "2",
        "--device",
        "flex",
        "--metrics-json",
        metrics.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout.contains("epoch   train_loss  valid_loss    accuracy    time"),
        "{stdout}"
    );
    assert!(stdout.contains("final: valid_loss"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    let epochs = json["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    for key in ["epoch", "train_loss", "valid_loss", "accuracy", "time_s"] {
        assert!(epochs[1][key].is_number(), "{key} missing in {}", epochs[1]);
    }
    assert!(epochs[1]["accuracy"].as_f64().unwrap() > 0.3);
    assert_eq!(json["run"]["model"], "lm4");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn help_lists_the_lesson_options() {
    let output = seqlab(&["human-numbers", "--help"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for option in [
        "--model",
        "--epochs",
        "--lr",
        "--batch-size",
        "--seq-len",
        "--hidden",
        "--seed",
        "--device",
        "--metrics-json",
        "--schedule",
    ] {
        assert!(stdout.contains(option), "{option} missing from help");
    }
}

/// LMModel7 reaches the book's accuracy: the bar 0.84 on the mean of seeds 0–4 (PyTorch
/// over 8 seeds: 0.873), every run between 0.70 and 0.97. Each seed runs in a process of its
/// own: the dropout masks come from the device's generator, reseeded at every step, which in
/// the test process would change other tests' initial weights.
#[test]
fn human_numbers_lm7_reaches_the_books_accuracy() {
    let dir = scratch_dir("lm7");
    let accuracies: Vec<f64> = (0..5)
        .map(|seed| {
            let seed = seed.to_string();
            let (json, _) = run_with_metrics(
                &[
                    "human-numbers",
                    "--model",
                    "lm7",
                    "--seed",
                    &seed,
                    "--no-progress",
                ],
                &dir.join(format!("seed{seed}.json")),
            );
            let epochs = json["epochs"].as_array().unwrap();
            epochs.last().unwrap()["accuracy"].as_f64().unwrap()
        })
        .collect();
    let mean = accuracies.iter().sum::<f64>() / accuracies.len() as f64;
    assert!(mean >= 0.84, "mean {mean:.4} ({accuracies:?})");
    assert!(
        accuracies.iter().all(|&a| a > 0.70 && a < 0.97),
        "{accuracies:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same seed gives the same numbers, another seed other numbers. It runs the binary: in
/// one process, another test's draws from the device's generator (dropout masks) between a
/// run's seeding and its initial weights would change them (measured: a second run of seed 3
/// in the test process once gave 1.3656 for 1.3529).
#[test]
fn human_numbers_repeats_a_run_for_the_same_seed() {
    let dir = scratch_dir("human-numbers-seed");
    let run = |seed: &str, name: &str| {
        let args = [
            "human-numbers",
            "--model",
            "lm3",
            "--epochs",
            "1",
            "--seed",
            seed,
            "--no-progress",
        ];
        let (json, _) = run_with_metrics(&args, &dir.join(name));
        let epoch = &json["epochs"][0];
        ["train_loss", "valid_loss", "accuracy"].map(|field| epoch[field].as_f64().unwrap())
    };
    let first = run("3", "first.json");
    assert_eq!(first, run("3", "again.json"));
    assert_ne!(first[0], run("4", "other.json")[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fast_dev_run_trains_one_epoch_on_a_slice_and_says_so() {
    let output = seqlab(&[
        "addition",
        "--fast-dev-run",
        "--epochs",
        "30",
        "--no-progress",
    ]);
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains(", 256 problems,"), "{out}");
    assert!(out.contains("on 256 held-out sums"), "{out}");
    let epochs = out
        .lines()
        .skip_while(|line| !line.starts_with("epoch"))
        .skip(1)
        .take_while(|line| line.starts_with(char::is_numeric))
        .count();
    assert_eq!(epochs, 1, "{out}");
    assert!(
        stderr(&output).contains("--fast-dev-run: one epoch"),
        "{}",
        stderr(&output)
    );
}
