//! Checkpoints: --stop-after, --save-every, Ctrl-C and kill, resumed runs ending with the weights of uninterrupted ones, and outputs refused before training.

use crate::*;
use std::path::PathBuf;
use std::process::Command;
use std::process::Output;

#[test]
fn char_lm_stops_and_resumes_where_it_stopped() {
    let (dir, play, checkpoint) = play_and_model("char-lm-resume");
    let train = |extra: &[&str]| {
        let head = ["char-lm", "train", "--text", play.to_str().unwrap()];
        let rest = [
            "--seq-len",
            "40",
            "--batch-size",
            "8",
            "--epochs",
            "2",
            "--sample-length",
            "0",
            "--no-progress",
        ];
        seqlab(&[&head[..], &TINY_CHAR_LM, &rest, extra].concat())
    };
    let ck = checkpoint.to_str().unwrap();
    let first = train(&["--out", ck, "--stop-after", "1"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let rows = |output: &Output| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.starts_with("0 ") || l.starts_with("1 "))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&first), ["0"]);
    let second = train(&["--resume", ck]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(rows(&second), ["1"], "only the second epoch runs");
    let manifest = std::fs::read_to_string(checkpoint.join("manifest.json")).unwrap();
    assert!(manifest.contains("optimizer.safetensors"), "{manifest}");
    assert_one_line_error(
        &[
            &["char-lm", "train", "--text", play.to_str().unwrap()][..],
            &TINY_CHAR_LM,
            &["--resume", ck, "--seq-len", "40", "--batch-size", "8"],
            &["--epochs", "3"],
        ]
        .concat(),
        "the saved run differs: epochs 2 (asked 3)",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Ctrl-C (SIGINT) during training: the run stops at the next step, writes a checkpoint, exits
/// non-zero with one line saying how to go on, and the resumed run finishes.
#[test]
fn ctrl_c_stops_training_with_a_checkpoint_that_resumes() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let (dir, play, checkpoint) = play_and_model("char-lm-ctrl-c");
    let paths = char_lm_train(&play, &checkpoint);
    let run = "--seq-len 10 --batch-size 2 --epochs 40 --sample-length 0 --no-progress";
    let args = [&paths[..], &TINY_CHAR_LM, &words(run)].concat();
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first epoch's row, then interrupt.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 && !line.starts_with("0 ") {
        line.clear();
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("seqlab: stopping after this step"), "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("seqlab: training stopped at epoch")
            && last.ends_with(&format!(
                "run the same command with --resume {} to go on",
                checkpoint.display()
            )),
        "{err}"
    );
    let resumed = seqlab(&[&args[..], &["--resume", checkpoint.to_str().unwrap()]].concat());
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let rows = String::from_utf8_lossy(&resumed.stdout)
        .lines()
        .filter(|l| l.starts_with("39 "))
        .count();
    assert_eq!(rows, 1, "the resumed run reaches the last epoch");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lm_train_killed_inside_an_epoch_resumes_to_the_same_weights() {
    let dir = scratch_dir("lm-kill");
    let tunes = write_tunes(&dir);
    let args = |out: &PathBuf| {
        owned_words(&format!(
            "lm train --data {} --out {} --tokenizer char --embedding 16 --hidden 64 --seq-len 8 \
             --batch-size 2 --epochs 4 --device flex --no-progress",
            tunes.display(),
            out.display()
        ))
    };
    assert_killed_run_resumes_exactly(&dir, &args, "3");
    let mut other = args(&dir.join("parts"));
    other.extend([
        "--resume".into(),
        dir.join("parts").to_str().unwrap().into(),
    ]);
    let epochs = other.iter().position(|a| a == "4").unwrap();
    other[epochs] = "5".into();
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    assert_one_line_error(&other, "the saved run differs: epochs 4 (asked 5)");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same for a classifier with dropout: its masks are drawn from a generator seeded by the
/// step, so the resumed run draws the ones the uninterrupted run drew.
#[test]
fn classify_killed_inside_an_epoch_resumes_to_the_same_weights() {
    let dir = scratch_dir("classify-kill");
    let reviews = write_reviews(&dir);
    let args = |out: &PathBuf| {
        owned_words(&format!(
            "classify --data {} --out {} --tokenizer word --embedding 8 --hidden 16 \
             --batch-size 4 --epochs 5 --dropout 0.3 --max-len 16 --device flex --no-progress",
            reviews.display(),
            out.display()
        ))
    };
    assert_killed_run_resumes_exactly(&dir, &args, "4");
    let manifest = std::fs::read_to_string(dir.join("parts/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"classifier\"") && manifest.contains("classes.json"),
        "{manifest}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The lesson's lm4 runs two fits (30 epochs at 1e-3, 50 at 1e-4): stopped after epoch 31, in
/// the second fit, and resumed, it ends with the weights of the run that never stopped. lm7
/// (output dropout) killed inside an epoch resumes exactly too: its masks are seeded per step.
#[test]
fn human_numbers_resumes_inside_its_second_fit_and_with_dropout() {
    let dir = scratch_dir("human-numbers-resume");
    let lm4 = ["human-numbers", "--model", "lm4", "--hidden", "16"];
    let (uninterrupted, resumed) = assert_stopped_run_resumes_exactly(&dir, &lm4, "31");
    let final_line = |output: &Output| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find(|l| l.starts_with("final:"))
            .map(str::to_string)
    };
    assert!(final_line(&resumed).is_some());
    assert_eq!(final_line(&resumed), final_line(&uninterrupted));
    std::fs::remove_dir_all(dir.join("whole")).unwrap();
    std::fs::remove_dir_all(dir.join("parts")).unwrap();

    let lm7 = |out: &PathBuf| {
        [
            "human-numbers",
            "--model",
            "lm7",
            "--hidden",
            "32",
            "--epochs",
            "3",
            "--device",
            "flex",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    assert_killed_run_resumes_exactly(&dir, &lm7, "2");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The hand-written loops of the RNN course resume too: copy killed inside an epoch, and the
/// sinusoid stopped after two of its five epochs, end where uninterrupted runs end.
#[test]
fn copy_and_sinusoid_resume_to_the_same_weights() {
    let dir = scratch_dir("course-resume");
    let copy = |out: &PathBuf| {
        [
            "copy",
            "--hidden",
            "16",
            "--epochs",
            "4",
            "--sequences",
            "600",
            "--device",
            "flex",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    assert_killed_run_resumes_exactly(&dir, &copy, "3");
    std::fs::remove_dir_all(dir.join("whole")).unwrap();
    std::fs::remove_dir_all(dir.join("parts")).unwrap();

    assert_stopped_run_resumes_exactly(&dir, &["sinusoid"], "2");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run resumes with the tokenizer it saved, not one trained again: Hugging Face's WordPiece
/// trainer can number the same pieces differently from run to run.
#[test]
fn a_run_resumes_with_the_tokenizer_it_saved() {
    let dir = scratch_dir("resume-tokenizer");
    let tunes = write_tunes(&dir);
    let reviews = write_reviews(&dir);
    let out = dir.join("model");
    let commands: [&[&str]; 2] = [
        &[
            "lm",
            "train",
            "--data",
            tunes.to_str().unwrap(),
            "--seq-len",
            "8",
        ],
        &["classify", "--data", reviews.to_str().unwrap()],
    ];
    for command in commands {
        let _ = std::fs::remove_dir_all(&out);
        let run = |extra: &[&str]| {
            let settings = [
                "--tokenizer",
                "wordpiece",
                "--vocab-size",
                "80",
                "--epochs",
                "2",
            ];
            let args = [
                command,
                &settings,
                &["--no-progress", "--device", "flex"],
                extra,
            ]
            .concat();
            let output = seqlab(&args);
            assert!(output.status.success(), "{args:?}: {}", stderr(&output));
            output
        };
        run(&["--out", out.to_str().unwrap(), "--stop-after", "1"]);
        let saved = std::fs::read(out.join("tokenizer.json")).unwrap();
        let resumed = run(&["--resume", out.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&resumed.stdout);
        assert!(
            stdout.lines().any(|l| l.starts_with("1 ")),
            "{command:?}: {stdout}"
        );
        assert!(
            std::fs::read(out.join("tokenizer.json")).unwrap() == saved,
            "{command:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Outputs that cannot be written (a folder where nothing can be made, even by root; a path
/// through a file) are refused before training starts, in one line, leaving nothing behind.
#[test]
fn unwritable_outputs_are_refused_before_training() {
    let dir = scratch_dir("unwritable");
    let play = write_play(&dir);
    let reviews = write_reviews(&dir);
    let a_file = dir.join("a-file");
    std::fs::write(&a_file, "not a folder").unwrap();
    let unwritable = "/proc/seqlab-unwritable/model";
    let through_a_file = a_file.join("model");
    let through_a_file = through_a_file.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["sinusoid", "--epochs", "1"],
        &["copy", "--epochs", "1", "--sequences", "64"],
        &["human-numbers", "--model", "lm1", "--epochs", "1"],
        &["pos-tag", "train", "--epochs", "1"],
        &[
            "classify",
            "--data",
            reviews.to_str().unwrap(),
            "--tokenizer",
            "word",
            "--epochs",
            "1",
        ],
    ];
    for command in commands {
        for (out, expected) in [
            (
                unwritable,
                "cannot write the checkpoint in /proc/seqlab-unwritable",
            ),
            (through_a_file, "cannot write the checkpoint in"),
        ] {
            let args = [
                command,
                &["--out", out, "--device", "flex", "--no-progress"],
            ]
            .concat();
            assert_one_line_error(&args, expected);
            let stdout = String::from_utf8_lossy(&seqlab(&args).stdout).into_owned();
            assert!(!stdout.contains("train_loss"), "{args:?} trained: {stdout}");
        }
        let metrics = [
            command,
            &["--metrics-json", "/proc/seqlab-unwritable/m.json"],
        ]
        .concat();
        assert_one_line_error(
            &metrics,
            "cannot write the metrics file in /proc/seqlab-unwritable",
        );
    }
    let char_lm = [
        "char-lm",
        "train",
        "--text",
        play.to_str().unwrap(),
        "--out",
        unwritable,
        "--epochs",
        "1",
    ];
    assert_one_line_error(&char_lm, "cannot write the checkpoint");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        3,
        "only the inputs are left: {:?}",
        std::fs::read_dir(&dir).unwrap().collect::<Vec<_>>()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
