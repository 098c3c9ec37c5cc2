//! The `seqlab` binary run as a user runs it: real arguments, exit codes, stdout, stderr and
//! files.

use std::path::PathBuf;
use std::process::{Command, Output};

fn seqlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A failure is one line on stderr starting with `seqlab:`, a non-zero exit, and no panic.
fn assert_one_line_error(args: &[&str], expected: &str) {
    let output = seqlab(args);
    let err = stderr(&output);
    assert!(!output.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?} printed more than one line: {err}"
    );
    assert!(
        err.starts_with("seqlab: ") && err.contains(expected),
        "{args:?}: {err}"
    );
}

#[test]
fn bad_input_gives_one_line_and_a_non_zero_exit() {
    assert_one_line_error(
        &["human-numbers", "--model", "lm9"],
        "unknown model \"lm9\"",
    );
    assert_one_line_error(
        &["human-numbers", "--batch-size", "0"],
        "batch size must be at least 1",
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

#[test]
fn bench_refuses_bad_options_in_one_line() {
    assert_one_line_error(&["bench", "--config", "z"], "unknown configuration \"z\"");
    assert_one_line_error(&["bench", "--steps", "0"], "--steps must be at least 1");
    assert_one_line_error(
        &["bench", "--reference", "/no/such/pytorch.json"],
        "cannot read reference",
    );
    assert_one_line_error(&["bench", "--device", "tpu"], "unknown device \"tpu\"");
}

/// A short measurement of config b writes the reference's JSON fields and prints its row.
#[test]
fn bench_measures_a_config_and_writes_the_references_json() {
    let dir = std::env::temp_dir().join(format!("seqlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let output = seqlab(&[
        "bench",
        "--config",
        "b",
        "--device",
        "flex",
        "--impl",
        "seqlab,burn-nn-lstm",
        "--steps",
        "2",
        "--min-time",
        "0",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("b_rnn    seqlab         flex"), "{stdout}");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = document["configs"].as_array().unwrap();
    // burn's own layer is an LSTM only: config b has the seqlab row alone.
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "b_rnn");
    assert_eq!(rows[0]["impl"], "seqlab");
    assert_eq!(rows[0]["params"], 1920 + 2 * 8320 + 1950);
    for field in ["train_tok_s", "infer_tok_s", "train_gflops"] {
        assert!(rows[0][field].as_f64().unwrap() > 0.0, "{field}");
    }
    assert_eq!(document["device"], "flex");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rnn_course_commands_refuse_bad_input_in_one_line() {
    assert_one_line_error(&["copy", "--alphabet", "0"], "the alphabet size must be");
    assert_one_line_error(
        &["copy", "--variable-length", "--lengths", "9..3"],
        "minimum above its maximum",
    );
    assert_one_line_error(&["copy", "--lengths", "ten"], "is not a range like 3..14");
    assert_one_line_error(&["copy", "--sequences", "0"], "at least 1");
    assert_one_line_error(&["copy", "--decoder", "magic"], "invalid value 'magic'");
    assert_one_line_error(&["addition", "--examples", "0"], "at least 1");
    assert_one_line_error(
        &["addition", "--digits", "4..2"],
        "minimum above its maximum",
    );
    assert_one_line_error(&["sinusoid", "--frequencies", "1,x"], "invalid value");
    assert_one_line_error(
        &["sinusoid", "--noise", "-1"],
        "noise level must be 0 or more",
    );
    assert_one_line_error(&["sinusoid", "--hidden", "0"], "at least 1");
    // A plot directory that cannot be made: a file stands where it should be.
    let file = std::env::temp_dir().join(format!("seqlab-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, b"x").unwrap();
    let below = file.join("plots");
    assert_one_line_error(
        &["sinusoid", "--plot", below.to_str().unwrap()],
        "could not write the plot",
    );
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn sinusoid_trains_prints_and_plots() {
    let dir = std::env::temp_dir().join(format!("seqlab-sinusoid-{}", std::process::id()));
    let metrics = dir.join("metrics.json");
    let output = seqlab(&[
        "sinusoid",
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--plot",
        dir.to_str().unwrap(),
        "--metrics-json",
        metrics.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("final: train_mse"), "{stdout}");
    for png in [
        "sinusoid_loss.png",
        "sinusoid_prediction.png",
        "sinusoid_generated.png",
    ] {
        let bytes = std::fs::read(dir.join(png)).unwrap();
        assert_eq!(&bytes[..4], b"\x89PNG", "{png}");
        assert!(stdout.contains(png), "{stdout}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert!(json["run"]["test_mse_after_warmup"].as_f64().unwrap() < 0.05);
    assert_eq!(json["epochs"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn copy_prints_the_length_table_and_examples() {
    let output = seqlab(&["copy", "--epochs", "3", "--sequences", "200"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("accuracy by input length:"), "{stdout}");
    for length in 2..=20 {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{length:>4} 0."))
                    || l.starts_with(&format!("{length:>4} 1."))),
            "length {length} missing: {stdout}"
        );
    }
    // Five examples "input - output", inputs of 10 symbols.
    let examples: Vec<&str> = stdout.lines().filter(|l| l.contains(" - ")).collect();
    assert_eq!(examples.len(), 5, "{stdout}");
    assert!(
        examples
            .iter()
            .all(|l| l.split(" - ").next().unwrap().len() == 10)
    );
}
