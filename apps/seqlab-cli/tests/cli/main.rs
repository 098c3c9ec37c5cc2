//! The `seqlab` binary run as a user runs it: real arguments, exit codes, stdout, stderr and
//! files.

mod docs;

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
    assert_one_line_error(
        &["copy", "--grad-clip", "-1"],
        "--grad-clip must be positive (or 0 for none), got -1",
    );
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

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqlab-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `seqlab` with `args` and `--metrics-json PATH`, checks that it succeeded and returns
/// the metrics it wrote, with its standard output.
fn run_with_metrics(args: &[&str], metrics: &std::path::Path) -> (serde_json::Value, String) {
    let mut args = args.to_vec();
    args.extend(["--metrics-json", metrics.to_str().unwrap()]);
    let output = seqlab(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let json = serde_json::from_str(&std::fs::read_to_string(metrics).unwrap()).unwrap();
    (json, String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A small play: speaker names, line breaks, repeated lines a tiny model can learn.
fn write_play(dir: &std::path::Path) -> PathBuf {
    let scene =
        "HAMLET.\nTo be, or not to be, that is the question.\n\nHORATIO.\nMy lord, the king.\n\n";
    let path = dir.join("play.txt");
    std::fs::write(&path, scene.repeat(150)).unwrap();
    path
}

#[test]
fn char_lm_trains_writes_a_checkpoint_and_samples_from_it() {
    let dir = scratch_dir("char-lm");
    let play = write_play(&dir);
    let checkpoint = dir.join("model");
    let output = seqlab(&[
        "char-lm",
        "train",
        "--text",
        play.to_str().unwrap(),
        "--out",
        checkpoint.to_str().unwrap(),
        "--hidden",
        "32",
        "--embedding",
        "8",
        "--layers",
        "1",
        "--seq-len",
        "40",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--lr",
        "0.01",
        "--sample-length",
        "40",
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "char-lm: 1 files, 12150 characters (30 distinct), 1215 held out",
        "held out:",
        "bits per character",
        "--- sample at temperature 0.5:",
        "--- sample at temperature 1:",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    for file in [
        "manifest.json",
        "config.json",
        "vocab.json",
        "weights.safetensors",
    ] {
        assert!(checkpoint.join(file).exists(), "{file}");
    }
    let ck = checkpoint.to_str().unwrap();
    let greedy = |prime: &str| {
        seqlab(&[
            "char-lm",
            "sample",
            "--checkpoint",
            ck,
            "--prime",
            prime,
            "--length",
            "30",
            "--greedy",
        ])
    };
    let first = greedy("HAMLET.\n");
    assert!(first.status.success(), "{}", stderr(&first));
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        text.starts_with("HAMLET.\n") && text.chars().count() >= 38,
        "{text}"
    );
    assert!(
        stderr(&first).contains("characters/s"),
        "{}",
        stderr(&first)
    );
    assert_eq!(
        greedy("HAMLET.\n").stdout,
        first.stdout,
        "greedy is deterministic"
    );
    let nucleus = seqlab(&[
        "char-lm",
        "sample",
        "--checkpoint",
        ck,
        "--top-p",
        "0.9",
        "--top-k",
        "5",
        "--temperature",
        "0.7",
        "--seed",
        "3",
    ]);
    assert!(nucleus.status.success(), "{}", stderr(&nucleus));

    // Bad input, each in one line.
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck, "--prime", "Zounds"],
        "character 'Z' (at position 0) is not in the vocabulary",
    );
    assert_one_line_error(
        &[
            "char-lm",
            "sample",
            "--checkpoint",
            ck,
            "--temperature",
            "0",
        ],
        "temperature must be above 0",
    );
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck, "--top-p", "2"],
        "top-p must be in (0, 1]",
    );
    let manifest = checkpoint.join("manifest.json");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, original.replace("char-lm", "pos-tagger")).unwrap();
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck],
        "holds a pos-tagger checkpoint, not a char-lm one",
    );
    std::fs::write(&manifest, &original).unwrap();
    let weights = checkpoint.join("weights.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&weights, &bytes).unwrap();
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck],
        "weights.safetensors is corrupt: CRC-32",
    );
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", dir.to_str().unwrap()],
        "is not a seqlab checkpoint",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn char_lm_and_markov_refuse_bad_text_in_one_line() {
    let dir = scratch_dir("bad-text");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let empty = write("empty.txt", b"");
    let binary = write("binary.txt", b"\x7fELF\x02\x01\x00\x00");
    let latin1 = write("latin1.txt", b"caf\xe9 au lait\n");
    let short = write("short.txt", b"To be.\n");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    // Larger than the 1 GiB read into memory: sparse files, so nothing is written to disk.
    let huge = |name: &str| {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .set_len((1 << 30) + 1)
            .unwrap();
        path.to_str().unwrap().to_string()
    };
    let (huge_text, huge_table) = (huge("huge.txt"), huge("huge.csv"));
    assert_one_line_error(
        &["char-lm", "train", "--out", out, "--text", &huge_text],
        "more than the 1073741824 a character model reads into memory",
    );
    assert_one_line_error(
        &["classify", "--data", &huge_table],
        "the file has 1073741825 bytes, more than the 1073741824 read into memory",
    );
    for command in [&["char-lm", "train", "--out", out][..], &["markov"][..]] {
        let run = |text: &str, expected: &str| {
            let mut args = command.to_vec();
            args.extend(["--text", text]);
            assert_one_line_error(&args, expected);
        };
        run(&empty, "empty.txt: the file is empty");
        run(
            &binary,
            "binary.txt: the file looks binary (a NUL byte at offset 6)",
        );
        run(
            &latin1,
            "latin1.txt: the file is not UTF-8 text (invalid byte at offset 3)",
        );
        run("/no/such/corpus.txt", "/no/such/corpus.txt: No such file");
        run(dir.join("out-none").to_str().unwrap(), "No such file");
    }
    assert_one_line_error(
        &["char-lm", "train", "--out", out, "--text", &short],
        "too short for one batch",
    );
    assert_one_line_error(
        &[
            "char-lm",
            "train",
            "--out",
            out,
            "--text",
            &short,
            "--valid-fraction",
            "1.5",
        ],
        "strictly between 0 and 1",
    );
    assert_one_line_error(
        &[
            "char-lm", "train", "--out", out, "--text", &short, "--hidden", "0",
        ],
        "at least 1",
    );
    assert_one_line_error(&["char-lm", "train", "--out", out], "--text");
    assert!(
        !std::path::Path::new(out).exists(),
        "a failed run leaves no checkpoint"
    );
    assert_one_line_error(&["markov", "--text", &short, "--order", "6..2"], "is empty");
    assert_one_line_error(&["markov", "--text", &short, "--order", "30"], "too high");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn markov_scores_each_order_and_samples_from_the_best() {
    let dir = scratch_dir("markov");
    let play = write_play(&dir);
    let output = seqlab(&[
        "markov",
        "--text",
        play.to_str().unwrap(),
        "--order",
        "1..4",
        "--length",
        "50",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("order"))
        .skip(1)
        .take(4)
        .collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    assert!(rows[0].trim_start().starts_with('1') && rows[3].trim_start().starts_with('4'));
    assert!(stdout.contains("best: order"), "{stdout}");
    assert!(stdout.contains("--- sample (order"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pos_tag_runs_the_tutorial_and_prints_its_score_matrices() {
    let output = seqlab(&["pos-tag", "train", "--no-progress"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "pos-tag: 2 sentences (0 held out), 9 words, 3 tags; embedding 6, hidden 6",
        "scores before training, \"The dog ate the apple\" (rows: words; columns: V, NN, DET)",
        "scores after training",
        "tags: DET NN V DET NN",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    let rows = stdout.lines().filter(|l| l.starts_with("  [")).count();
    assert_eq!(rows, 10, "{stdout}");
}

#[test]
fn pos_tag_trains_on_a_brown_file_and_tags_from_its_checkpoint() {
    let dir = scratch_dir("pos-tag");
    let corpus = dir.join("tagged.txt");
    let lines = [
        "\tThe/at jury/nn said/vbd it/pps ./.",
        "\tThe/at City/nn-tl Committee/nn-tl met/vbd ./.",
        "\tA/at dog/nn barked/vbd loudly/rb ./.",
    ];
    std::fs::write(&corpus, (lines.join("\n") + "\n").repeat(20)).unwrap();
    let tagger = dir.join("tagger");
    let output = seqlab(&[
        "pos-tag",
        "train",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        tagger.to_str().unwrap(),
        "--epochs",
        "8",
        "--embedding",
        "16",
        "--hidden",
        "16",
        "--char-embedding",
        "8",
        "--char-hidden",
        "8",
        "--lr",
        "0.02",
        "--valid-fraction",
        "0.2",
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("most-frequent-tag baseline"), "{stdout}");
    let tagged = seqlab(&[
        "pos-tag",
        "tag",
        "--checkpoint",
        tagger.to_str().unwrap(),
        "The dog said it .",
    ]);
    assert!(tagged.status.success(), "{}", stderr(&tagged));
    assert_eq!(
        String::from_utf8_lossy(&tagged.stdout).trim(),
        "The/at dog/nn said/vbd it/pps ./."
    );
    // Bad input, one line each.
    let broken = dir.join("broken.txt");
    std::fs::write(&broken, "\tThe/at jury\n").unwrap();
    assert_one_line_error(
        &["pos-tag", "train", "--corpus", broken.to_str().unwrap()],
        "broken.txt:1: token \"jury\" is not word/tag",
    );
    let conllu = dir.join("bad.conllu");
    std::fs::write(&conllu, "1\tDogs\tdog\n").unwrap();
    assert_one_line_error(
        &["pos-tag", "train", "--corpus", conllu.to_str().unwrap()],
        "bad.conllu:1: expected 10 tab-separated fields, found 3",
    );
    let manifest = tagger.join("manifest.json");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, original.replace("pos-tagger", "char-lm")).unwrap();
    assert_one_line_error(
        &[
            "pos-tag",
            "tag",
            "--checkpoint",
            tagger.to_str().unwrap(),
            "The dog",
        ],
        "holds a char-lm checkpoint, not a pos-tagger one",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn char_lm_stops_and_resumes_where_it_stopped() {
    let dir = scratch_dir("char-lm-resume");
    let play = write_play(&dir);
    let checkpoint = dir.join("model");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "char-lm",
            "train",
            "--text",
            play.to_str().unwrap(),
            "--hidden",
            "16",
            "--embedding",
            "4",
            "--layers",
            "1",
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
        args.extend_from_slice(extra);
        seqlab(&args)
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
            "char-lm",
            "train",
            "--text",
            play.to_str().unwrap(),
            "--resume",
            ck,
            "--hidden",
            "16",
            "--embedding",
            "4",
            "--layers",
            "1",
            "--seq-len",
            "40",
            "--batch-size",
            "8",
            "--epochs",
            "3",
        ],
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
    let dir = scratch_dir("char-lm-ctrl-c");
    let play = write_play(&dir);
    let checkpoint = dir.join("model");
    let args = [
        "char-lm",
        "train",
        "--text",
        play.to_str().unwrap(),
        "--out",
        checkpoint.to_str().unwrap(),
        "--hidden",
        "16",
        "--embedding",
        "4",
        "--layers",
        "1",
        "--seq-len",
        "10",
        "--batch-size",
        "2",
        "--epochs",
        "40",
        "--sample-length",
        "0",
        "--no-progress",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(args)
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

/// Runs `command` on flex to the end into `dir/whole`; runs it into `dir/parts` with
/// `--stop-after stop_after`, then resumes it there. The weights must be the same bit for
/// bit. Returns the outputs of the uninterrupted and the resumed runs.
fn assert_stopped_run_resumes_exactly(
    dir: &std::path::Path,
    command: &[&str],
    stop_after: &str,
) -> (Output, Output) {
    let (whole, parts) = (dir.join("whole"), dir.join("parts"));
    let run = |extra: &[&str]| {
        let args = [command, &["--device", "flex", "--no-progress"], extra].concat();
        let output = seqlab(&args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        output
    };
    let uninterrupted = run(&["--out", whole.to_str().unwrap()]);
    run(&["--out", parts.to_str().unwrap(), "--stop-after", stop_after]);
    let resumed = run(&["--resume", parts.to_str().unwrap()]);
    let weights = |dir: &PathBuf| std::fs::read(dir.join("weights.safetensors")).unwrap();
    assert!(
        weights(&whole) == weights(&parts),
        "{command:?}: the weights differ"
    );
    (uninterrupted, resumed)
}

/// Issue 9's kill test: runs `args(out)` to the end into `dir/whole`; runs it again into
/// `dir/parts` with `--save-every 3`, kills it (SIGKILL) once a checkpoint taken between two
/// steps of an epoch is on disk, and resumes it from there. The resumed run must end with the
/// weights of the uninterrupted one, bit for bit, and print the same last epoch row (`last`).
fn assert_killed_run_resumes_exactly(
    dir: &std::path::Path,
    args: &dyn Fn(&PathBuf) -> Vec<String>,
    last: &str,
) {
    fn strs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }
    let (whole, parts) = (dir.join("whole"), dir.join("parts"));
    let uninterrupted = seqlab(&strs(&args(&whole)));
    assert!(uninterrupted.status.success(), "{}", stderr(&uninterrupted));

    let mut killed_args = args(&parts);
    killed_args.extend(["--save-every".into(), "3".into()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(&killed_args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let inside_an_epoch = || {
        std::fs::read_to_string(parts.join("training.json"))
            .is_ok_and(|json| !json.contains("\"next_batch\": null"))
    };
    let started = std::time::Instant::now();
    while !inside_an_epoch() {
        assert!(
            started.elapsed().as_secs() < 120,
            "no checkpoint inside an epoch"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "the run ended before the kill"
    );

    let mut resume_args = args(&parts);
    resume_args.extend(["--resume".into(), parts.to_str().unwrap().into()]);
    let resumed = seqlab(&strs(&resume_args));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let weights = |dir: &PathBuf| std::fs::read(dir.join("weights.safetensors")).unwrap();
    assert!(weights(&whole) == weights(&parts), "the weights differ");
    let last_row = |output: &Output| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find(|l| l.starts_with(&format!("{last} ")))
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
    };
    assert!(
        last_row(&resumed).is_some(),
        "the resumed run reaches the last epoch"
    );
    assert_eq!(last_row(&resumed), last_row(&uninterrupted));
}

#[test]
fn lm_train_killed_inside_an_epoch_resumes_to_the_same_weights() {
    let dir = scratch_dir("lm-kill");
    let tunes = write_tunes(&dir);
    let args = |out: &PathBuf| {
        [
            "lm",
            "train",
            "--data",
            tunes.to_str().unwrap(),
            "--tokenizer",
            "char",
            "--embedding",
            "16",
            "--hidden",
            "64",
            "--seq-len",
            "8",
            "--batch-size",
            "2",
            "--epochs",
            "4",
            "--device",
            "flex",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
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
        [
            "classify",
            "--data",
            reviews.to_str().unwrap(),
            "--tokenizer",
            "word",
            "--embedding",
            "8",
            "--hidden",
            "16",
            "--batch-size",
            "4",
            "--epochs",
            "5",
            "--dropout",
            "0.3",
            "--max-len",
            "16",
            "--device",
            "flex",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
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

/// The attention decoder's recipe (question and answer reversed, Adam at 1e-2, flat then
/// cosine) gets held-out sums right. The default trains 30 epochs (about 3 minutes here) so
/// that initialisations which rest on the carry plateau until epoch ~17 get there too, as
/// seed 0 now does (epoch 15); cut to 12 epochs, four seeds of five stay on the plateau. It
/// runs the binary: a process of its own draws its initial weights from its own generator,
/// whatever other tests do meanwhile.
#[test]
fn addition_learns_to_add_with_the_attention_decoder() {
    let dir = scratch_dir("addition");
    let (json, stdout) =
        run_with_metrics(&["addition", "--no-progress"], &dir.join("metrics.json"));
    let exact = json["run"]["test_exact_match"].as_f64().unwrap();
    assert!(exact >= 0.95, "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
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
fn tokenize_prints_the_ids_and_pieces_the_seed_prints() {
    let bert = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tokenizers/bert-base-uncased.json"
    );
    let output = seqlab(&["tokenize", "--tokenizer", bert, "What a nice flooble!"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "ids: [101, 2054, 1037, 3835, 13109, 9541, 3468, 999, 102]"
    );
    assert_eq!(
        lines[1..10],
        [
            "101:",
            "2054:what",
            "1037:a",
            "3835:nice",
            "13109:fl",
            "9541:##oo",
            "3468:##ble",
            "999:!",
            "102:"
        ]
    );
    assert!(lines[10].contains("30522 tokens"), "{stdout}");
}

/// Labelled reviews in a CSV: the class shows in one word among neutral ones.
fn write_reviews(dir: &std::path::Path) -> PathBuf {
    let mut csv = String::from("text,label,source\n");
    let neutral = [
        "the film",
        "a plot",
        "the actor",
        "music and story",
        "it was",
    ];
    for i in 0..240 {
        let (word, label) = if i % 2 == 0 {
            ("superb", 1)
        } else {
            ("dreadful", 0)
        };
        let filler = neutral[i % neutral.len()];
        let other = neutral[(i / 2) % neutral.len()];
        csv.push_str(&format!(
            "\"{filler}, {word}; {other}.\",{label},{}\n",
            if i % 3 == 0 { "rt" } else { "imdb" }
        ));
    }
    let path = dir.join("reviews.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// ABC tunes of two types: reels in 4/4 runs of eighths, jigs in 6/8 triplets.
fn write_tunes(dir: &std::path::Path) -> PathBuf {
    let mut abc = String::new();
    for i in 0..60 {
        let (rhythm, body) = if i % 2 == 0 {
            ("reel", "GABc dBAG | FGAB cAFD |")
        } else {
            ("jig", "GAB cBA | dBG AFD |")
        };
        let key = if i % 4 < 2 { "G" } else { "Em" };
        abc.push_str(&format!(
            "X: {i}\nT: Tune {i}\nR: {rhythm}\nK:{key}\n{body}\n{body}\n\n"
        ));
    }
    let path = dir.join("tunes.abc");
    std::fs::write(&path, abc).unwrap();
    path
}

#[test]
fn classify_trains_on_a_csv_and_prints_the_table_and_confusion_matrix() {
    let dir = scratch_dir("classify");
    let reviews = write_reviews(&dir);
    let metrics = dir.join("metrics.json");
    let output = seqlab(&[
        "classify",
        "--data",
        reviews.to_str().unwrap(),
        "--where",
        "source=imdb",
        "--model",
        "lstm",
        "--embedding",
        "16",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--lr",
        "1e-2",
        "--valid-fraction",
        "0.25",
        "--device",
        "flex",
        "--metrics-json",
        metrics.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("160 texts, 2 classes: 0 80, 1 80"),
        "{stdout}"
    );
    assert!(
        stdout.contains("epoch") && stdout.contains("accuracy"),
        "{stdout}"
    );
    assert!(
        stdout.contains("majority-class baseline 0.5000"),
        "{stdout}"
    );
    assert!(stdout.contains("predicted"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert!(json["run"]["accuracy"].as_f64().unwrap() >= 0.9, "{json}");
    assert_eq!(json["epochs"].as_array().unwrap().len(), 3);
}

#[test]
fn a_language_model_trained_on_tunes_starts_a_tune_classifier() {
    let dir = scratch_dir("tunes");
    let tunes = write_tunes(&dir);
    let lm = dir.join("lm");
    let output = seqlab(&[
        "lm",
        "train",
        "--data",
        tunes.to_str().unwrap(),
        "--tokenizer",
        "char",
        "--embedding",
        "8",
        "--hidden",
        "16",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--max-train-tokens",
        "2000",
        "--out",
        lm.to_str().unwrap(),
        "--device",
        "flex",
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("60 texts; tokenizer: char"), "{stdout}");
    assert!(stdout.contains("2000 training / "), "{stdout}");
    assert!(stdout.contains("held-out perplexity"), "{stdout}");
    let output = seqlab(&[
        "classify",
        "--data",
        tunes.to_str().unwrap(),
        "--label-col",
        "type",
        "--pretrained-lm",
        lm.to_str().unwrap(),
        "--epochs",
        "2",
        "--lr",
        "1e-2",
        "--batch-size",
        "8",
        "--valid-fraction",
        "0.2",
        "--device",
        "flex",
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("60 texts, 2 classes: jig 30, reel 30"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pretrained: lstm 1 layer(s) of 16"),
        "{stdout}"
    );
    // One head-only epoch, then two more.
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with("00:00")).count(),
        3,
        "{stdout}"
    );
    let output = seqlab(&[
        "classify",
        "--data",
        tunes.to_str().unwrap(),
        "--label-col",
        "mode",
        "--model",
        "gru",
        "--tokenizer",
        "char",
        "--epochs",
        "1",
        "--min-class-count",
        "5",
        "--device",
        "flex",
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("major 30, minor 30"));
}

#[test]
fn text_commands_refuse_bad_input_in_one_line() {
    let dir = scratch_dir("text-bad");
    let reviews = write_reviews(&dir);
    let reviews = reviews.to_str().unwrap();
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"not\": \"a tokenizer\"}").unwrap();
    assert_one_line_error(
        &["classify", "--data", reviews, "--text-col", "review"],
        "no column \"review\"",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--where", "source"],
        "--where takes COLUMN=VALUE",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--where", "source=x"],
        "no rows have source = \"x\"",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--model", "cnn"],
        "unknown model \"cnn\"",
    );
    let lm = ["lm", "train", "--data", reviews, "--out"];
    let lm_out = dir.join("lm");
    let lm = [&lm[..], &[lm_out.to_str().unwrap()]].concat();
    assert_one_line_error(
        &[&lm[..], &["--grad-clip", "-1"]].concat(),
        "--grad-clip must be positive, got -1",
    );
    assert_one_line_error(
        &[&lm[..], &["--decay-after", "2", "--decay", "0"]].concat(),
        "--decay must be in (0, 1], got 0",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--max-len", "0"],
        "must be at least 1",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--dropout", "1"],
        "the dropout must be at least 0 and below 1, got 1",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--transfer", "head"],
        "unknown transfer \"head\" (known: encoder, embedding)",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--min-class-count", "1000"],
        "two classes",
    );
    assert_one_line_error(
        &["classify", "--data", empty.to_str().unwrap()],
        "empty.csv",
    );
    assert_one_line_error(&["classify", "--data", "/nonexistent.csv"], "cannot read");
    assert_one_line_error(
        &[
            "classify",
            "--data",
            reviews,
            "--pretrained-lm",
            dir.to_str().unwrap(),
        ],
        "manifest",
    );
    assert_one_line_error(
        &[
            "classify",
            "--data",
            reviews,
            "--tokenizer",
            garbage.to_str().unwrap(),
        ],
        "tokenizer",
    );
    assert_one_line_error(
        &["tokenize", "--tokenizer", "/nonexistent.json", "hi"],
        "/nonexistent.json",
    );
    assert_one_line_error(
        &[
            "lm",
            "train",
            "--data",
            reviews,
            "--out",
            dir.join("lm").to_str().unwrap(),
            "--seq-len",
            "100000",
        ],
        "too short",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(["classify", "--data", "imdb", "--device", "flex"])
        .env("SEQLAB_DATA", &dir)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("run datasets/fetch movie-reviews first"),
        "{err}"
    );
}

#[test]
fn the_seeds_classifiers_on_the_bert_tokenizer_have_its_parameter_counts() {
    let dir = scratch_dir("seed-classifiers");
    let reviews = write_reviews(&dir);
    let bert = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tokenizers/bert-base-uncased.json"
    );
    // MyRNNClassifier and MyLSTMClassifier: Embedding(30522, 10), two layers of 20, Linear(20, 2);
    // the MLP: Embedding(30522, 256), Flatten, Linear(256 * 64, 64), ReLU, Linear(64, 2).
    for (model, embedding, hidden, layers, parameters) in [
        ("rnn", "10", "20", "2", 306742),
        ("lstm", "10", "20", "2", 311182),
        (
            "mlp",
            "256",
            "64",
            "1",
            30522 * 256 + 256 * 64 * 64 + 64 + 64 * 2 + 2,
        ),
    ] {
        let output = seqlab(&[
            "classify",
            "--data",
            reviews.to_str().unwrap(),
            "--tokenizer",
            bert,
            "--model",
            model,
            "--embedding",
            embedding,
            "--hidden",
            hidden,
            "--layers",
            layers,
            "--max-len",
            "64",
            "--epochs",
            "1",
            "--device",
            "flex",
            "--no-progress",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("tokenizer: huggingface, 30522 tokens"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(" {parameters} parameters")),
            "{model}: {stdout}"
        );
    }
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

#[test]
fn lm_train_reads_the_penn_treebanks_three_files_and_reports_test_perplexity() {
    // A miniature of `datasets/fetch ptb`: the three files in a fetched folder.
    let data = scratch_dir("ptb-data");
    let ptb = data.join("ptb");
    std::fs::create_dir_all(&ptb).unwrap();
    let sentence = |i: usize| format!(" the company said N shares of <unk> {} fell \n", i % 7);
    for (name, lines) in [("train", 400), ("valid", 60), ("test", 80)] {
        let text: String = (0..lines).map(sentence).collect();
        std::fs::write(ptb.join(format!("{name}.txt")), text).unwrap();
    }
    std::fs::write(ptb.join(".complete"), "").unwrap();
    let out = data.join("lm");
    let output = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args([
            "lm",
            "train",
            "--data",
            "ptb",
            "--tokenizer",
            "whitespace",
            "--min-freq",
            "1",
            "--hidden",
            "16",
            "--embedding",
            "8",
            "--seq-len",
            "10",
            "--batch-size",
            "4",
            "--epochs",
            "2",
            "--lr",
            "1e-2",
            "--out",
            out.to_str().unwrap(),
            "--device",
            "flex",
            "--no-progress",
        ])
        .env("SEQLAB_DATA", &data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", stderr(&output));
    // <pad>, <unk>, the, company, said, N, shares, of, fell, <eos> and "0".."6".
    assert!(
        stdout
            .contains("Penn Treebank: 400, 60 and 80 sentences; tokenizer: whitespace, 17 tokens"),
        "{stdout}"
    );
    // Each part is read whole and in order: 9 tokens and <eos> a line, 400 × 10 training and
    // 60 × 10 held-out tokens.
    assert!(
        stdout.contains("4000 training / 600 held-out tokens"),
        "{stdout}"
    );
    let test: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test perplexity "))
        .and_then(|v| v.parse().ok())
        .expect("the test perplexity is printed");
    // The sentences repeat: far below the 17 of a uniform guess after two epochs.
    assert!(test > 1.0 && test < 6.0, "{stdout}");
}
