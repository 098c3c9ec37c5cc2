//! The commands of README.md and docs/ stay true: every `seqlab` command parses with the
//! binary's own options (run with `--help` appended, so that a renamed subcommand or option,
//! or a value of the wrong type, fails here), every dataset named to `datasets/fetch` is one it
//! fetches, every script exists, and the examples run and print what the guide says.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md and every page of docs/.
fn documents() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(workspace().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.expect("a readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages.insert(0, workspace().join("README.md"));
    pages
}

/// Splits a shell line into words: single and double quotes, a `#` starting a comment, and
/// `~` left as written (no command here reads the path it names).
fn words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// Every command line of the `sh` blocks, as words, with where it is written.
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path).expect("the page reads");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut in_shell = false;
        let mut pending = String::new();
        for (number, line) in text.lines().enumerate() {
            if let Some(fence) = line.trim_start().strip_prefix("```") {
                in_shell = !in_shell && fence.trim() == "sh";
                continue;
            }
            if !in_shell {
                continue;
            }
            pending.push_str(line.trim_end_matches('\\'));
            pending.push(' ');
            if !line.ends_with('\\') {
                let command = words(&std::mem::take(&mut pending));
                if !command.is_empty() {
                    commands.push((format!("{name}:{}", number + 1), command));
                }
            }
        }
    }
    commands
}

/// How the docs run the binary.
const RUN_SEQLAB: [&str; 5] = ["cargo", "run", "-p", "seqlab-cli", "--"];

#[test]
fn every_documented_command_is_one_the_project_runs() {
    let fetchable = std::fs::read_to_string(workspace().join("datasets/fetch")).unwrap();
    let (mut seqlab, mut examples) = (0, Vec::new());
    for (place, command) in documented_commands() {
        let words: Vec<&str> = command.iter().map(String::as_str).collect();
        // A loop (`for s in 0 1 2; do cargo run … --seed $s | tail -1; done`): its command,
        // up to the pipe, with the loop variable set.
        let start = words.windows(5).position(|w| w == RUN_SEQLAB);
        let words: Vec<&str> = match (words.first(), start) {
            (Some(&"for"), Some(start)) => words[start..]
                .iter()
                .take_while(|w| **w != "|" && !w.ends_with(';'))
                .map(|w| if w.starts_with('$') { "0" } else { w })
                .collect(),
            _ => words,
        };
        match words.as_slice() {
            ["cargo", "run", "-p", "seqlab-cli", "--", args @ ..] => {
                let output = Command::new(env!("CARGO_BIN_EXE_seqlab"))
                    .args(args)
                    .arg("--help")
                    .output()
                    .expect("the binary runs");
                assert!(
                    output.status.success()
                        && String::from_utf8_lossy(&output.stdout).contains("Usage: seqlab"),
                    "{place}: `seqlab {}` does not parse: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr)
                );
                seqlab += 1;
            }
            ["cargo", "run", "--example", name, rest @ ..] => {
                let args = rest.strip_prefix(&["--"]).unwrap_or(rest);
                examples.push((place, name.to_string(), args.len()));
            }
            ["datasets/fetch", names @ ..] => {
                assert!(!names.is_empty(), "{place}: datasets/fetch with no name");
                for name in names {
                    assert!(
                        fetchable.contains(&format!("        {name}) fetch_")),
                        "{place}: datasets/fetch does not know {name}"
                    );
                }
            }
            ["bash", script] | [script, ..] if script.contains('/') => {
                assert!(
                    workspace().join(script).is_file(),
                    "{place}: {script} does not exist"
                );
            }
            _ => panic!("{place}: a command this test does not know how to check: {command:?}"),
        }
    }
    assert!(seqlab >= 50, "only {seqlab} seqlab commands found");
    let names: Vec<&str> = examples.iter().map(|(_, name, _)| name.as_str()).collect();
    for example in ["custom_model", "custom_dataset", "pytorch_weights"] {
        assert!(names.contains(&example), "docs do not show {example}");
        assert!(
            workspace().join(format!("examples/{example}.rs")).is_file(),
            "examples/{example}.rs is missing"
        );
    }
}

/// An example binary, built by `cargo test` beside the `seqlab` binary.
fn example(name: &str, args: &[&str]) -> String {
    let binary = Path::new(env!("CARGO_BIN_EXE_seqlab"))
        .with_file_name("examples")
        .join(name);
    let output = Command::new(&binary)
        .args(args)
        .current_dir(workspace())
        .output()
        .unwrap_or_else(|e| panic!("{} does not run: {e}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_examples_run_as_the_library_guide_says() {
    let weights = example("pytorch_weights", &[]);
    assert!(weights.contains("11 tensors, 745 parameters"), "{weights}");
    let largest: f64 = weights
        .lines()
        .find_map(|l| l.strip_prefix("largest difference from PyTorch's logits: "))
        .and_then(|v| v.parse().ok())
        .expect("the difference is printed");
    assert!(largest < 1e-5, "{weights}");

    let model = example("custom_model", &[]);
    let accuracy: f64 = model
        .lines()
        .find_map(|l| l.strip_prefix("held-out accuracy after 5 epochs: "))
        .and_then(|v| v.parse().ok())
        .expect("the accuracy is printed");
    assert!(accuracy > 0.4, "{model}");

    let dataset = example("custom_dataset", &["README.md"]);
    assert!(
        dataset.contains("README.md: ") && dataset.contains("\nThe "),
        "{dataset}"
    );
}
