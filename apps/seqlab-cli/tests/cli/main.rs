//! The `seqlab` binary run as a user runs it: real arguments, exit codes, stdout, stderr and
//! files.

mod bench;
mod char_lm;
#[cfg(feature = "mpi")]
mod distributed;
mod docs;
mod human_numbers;
mod memory;
mod onnx;
mod pos_tag;
mod resume;
mod rnn_course;
mod text;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `seqlab` with `args`, its cache (the id files of corpora read from disk) in a scratch
/// folder of this test run, not the user's.
fn seqlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(args)
        .env("XDG_CACHE_HOME", scratch_cache())
        .output()
        .expect("the binary runs")
}

/// The cache folder of this test run's `seqlab` commands.
fn scratch_cache() -> PathBuf {
    std::env::temp_dir().join(format!("seqlab-cli-cache-{}", std::process::id()))
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

/// Runs `seqlab` with `args` on flex without the progress bar, checks that it succeeded and
/// returns its standard output.
fn run_on_flex(args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend(["--device", "flex", "--no-progress"]);
    let output = seqlab(&args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
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

/// The rows of the epoch table a training command printed, each cut to its first `columns`
/// columns (the epoch and the losses, say: not the time).
fn table_rows(stdout: &str, columns: usize) -> Vec<String> {
    stdout
        .lines()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_digit()))
        .map(|line| {
            line.split_whitespace()
                .take(columns)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// `text`'s words: a command line's arguments written as one string.
fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

/// [`words`], owned.
fn owned_words(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

/// The sizes of a character model small enough to train in seconds (with `--hidden 16`).
const TINY_CHAR_LM: [&str; 6] = ["--hidden", "16", "--embedding", "4", "--layers", "1"];

/// A scratch folder named `name` with [`write_play`]'s play in it, and where a model goes.
fn play_and_model(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch_dir(name);
    let play = write_play(&dir);
    let model = dir.join("model");
    (dir, play, model)
}

/// `char-lm train` on `text`, writing its checkpoint to `out`.
fn char_lm_train<'a>(text: &'a std::path::Path, out: &'a std::path::Path) -> Vec<&'a str> {
    let (text, out) = (text.to_str().unwrap(), out.to_str().unwrap());
    vec!["char-lm", "train", "--text", text, "--out", out]
}

/// A small play: speaker names, line breaks, repeated lines a tiny model can learn.
fn write_play(dir: &std::path::Path) -> PathBuf {
    let scene =
        "HAMLET.\nTo be, or not to be, that is the question.\n\nHORATIO.\nMy lord, the king.\n\n";
    let path = dir.join("play.txt");
    std::fs::write(&path, scene.repeat(150)).unwrap();
    path
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
