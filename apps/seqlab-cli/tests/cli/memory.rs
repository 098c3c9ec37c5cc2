//! Issue 28: sizes that cannot fit are refused before anything is allocated, in one line naming
//! them, under a memory limit as on a machine without one; an allocation that fails anyway
//! ends the run with one line too. No process is killed by a signal.

use super::{scratch_dir, write_reviews, write_tunes};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

/// The address-space limit (`ulimit -v`, KiB) the runs below start under: the binary starts in
/// about 1.3 GB of address space (thread stacks, allocator arenas), which leaves it about 1.7 GB.
const LIMIT_KIB: u64 = 3_000_000;

/// Runs `seqlab args` under [`LIMIT_KIB`].
fn seqlab_limited(args: &[&str]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_seqlab"))
        .args(args)
        .args(["--device", "flex", "--no-progress"])
        .output()
        .expect("bash runs the binary")
}

/// One line on stderr containing every part of `expected`, exit status 1, no signal.
fn assert_refused(args: &[&str], expected: &[&str]) {
    let output = seqlab_limited(args);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.signal(), None, "{args:?} was killed: {err}");
    assert_eq!(output.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    for part in expected {
        assert!(err.contains(part), "{args:?}: {err}");
    }
}

#[test]
fn every_training_command_refuses_a_size_that_cannot_fit() {
    let dir = scratch_dir("memory");
    let reviews = write_reviews(&dir);
    let tunes = write_tunes(&dir);
    let text = dir.join("text.txt");
    std::fs::write(
        &text,
        "one two three four five six seven eight nine ten. ".repeat(40),
    )
    .unwrap();
    let (text, reviews, tunes) = (
        text.to_str().unwrap(),
        reviews.to_str().unwrap(),
        tunes.to_str().unwrap(),
    );
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    let huge = "100000000000";
    let refusals: [(&[&str], &str); 9] = [
        (
            &["human-numbers", "--model", "lm1", "--hidden", huge],
            "lm1 with hidden size 100000000000, on batches of 64 × 3",
        ),
        (
            &["human-numbers", "--model", "lm6", "--hidden", "200000"],
            "lm6 with hidden size 200000",
        ),
        (
            &[
                "char-lm", "train", "--out", out, "--text", text, "--hidden", "3000",
            ],
            "lstm of 2 × 3000 (embedding 64)",
        ),
        (
            &[
                "char-lm",
                "train",
                "--out",
                out,
                "--text",
                text,
                "--batch-size",
                "10000000",
                "--seq-len",
                "10",
            ],
            "on batches of 10000000 × 10",
        ),
        (
            &[
                "lm",
                "train",
                "--out",
                out,
                "--data",
                tunes,
                "--seq-len",
                "8",
                "--embedding",
                huge,
            ],
            "(embedding 100000000000)",
        ),
        (
            &[
                "classify", "--out", out, "--data", reviews, "--hidden", huge,
            ],
            "a classifier of hidden size 100000000000",
        ),
        (
            &[
                "pos-tag", "train", "--out", out, "--corpus", "toy", "--hidden", huge,
            ],
            "a tagger of hidden size 100000000000",
        ),
        (
            &["addition", "--out", out, "--hidden", huge],
            "lstm of 1 × 100000000000",
        ),
        (
            &["sinusoid", "--out", out, "--hidden", huge],
            "hidden size 100000000000, on batches of",
        ),
    ];
    for (args, names) in refusals {
        assert_refused(
            args,
            &[names, "needs about", "is available: make it smaller"],
        );
    }
    assert_refused(
        &["copy", "--out", out, "--hidden", huge],
        &["hidden size 100000000000 over", "needs about"],
    );
    // Text that passes the size checks but not the allocator under the limit: one megabyte
    // named 900 times, read into one string and then held as ids.
    let megabyte = dir.join("megabyte.txt");
    std::fs::write(&megabyte, "a line of text\n".repeat(1 << 16)).unwrap();
    let mut args = vec!["char-lm", "train", "--out", out, "--text"];
    args.extend(std::iter::repeat_n(megabyte.to_str().unwrap(), 900));
    assert_refused(
        &args,
        &["seqlab: out of memory: an allocation of", "bytes failed"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
