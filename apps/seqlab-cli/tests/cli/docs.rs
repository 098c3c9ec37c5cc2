//! The commands of README.md and docs/ stay true. Every `seqlab` command is run as written,
//! in the order the pages give them and in one working folder (so that a checkpoint one
//! command writes is there for the next), with `--fast-dev-run` added where the command takes
//! it: one epoch on a slice of the data, then everything it prints and writes. A command on a
//! fetched dataset that is not on this machine is only parsed (with `--help`) unless `CI` is
//! set, where `.ci/run` has fetched them all. Every dataset named to `datasets/fetch` is one it
//! fetches, every script exists, and the examples run and print what the guide says.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let mut documented = DocumentedRuns::new();
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
                documented.run(&place, args);
                seqlab += 1;
            }
            // A data-parallel run (docs/distributed.md): its seqlab command is run alone.
            ["mpirun", rest @ ..] => {
                let binary = rest
                    .iter()
                    .position(|word| word.ends_with("/seqlab"))
                    .unwrap_or_else(|| panic!("{place}: mpirun runs no seqlab binary"));
                documented.run(&place, &rest[binary + 1..]);
                seqlab += 1;
            }
            ["cargo", "build", "--release", "-p", "seqlab-cli", ..] => {}
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
    documented.finish();
    let names: Vec<&str> = examples.iter().map(|(_, name, _)| name.as_str()).collect();
    for example in [
        "custom_model",
        "custom_dataset",
        "custom_encoder",
        "pytorch_weights",
    ] {
        assert!(names.contains(&example), "docs do not show {example}");
        assert!(
            workspace().join(format!("examples/{example}.rs")).is_file(),
            "examples/{example}.rs is missing"
        );
    }
}

/// The seqlab commands of the docs, run one after another in one working folder.
struct DocumentedRuns {
    folder: PathBuf,
    /// Folders that a skipped command would have written: commands reading them are skipped.
    not_written: Vec<String>,
    skipped: Vec<String>,
    started: Instant,
}

/// The longest a documented command may take under `--fast-dev-run`.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

impl DocumentedRuns {
    fn new() -> Self {
        let folder = std::env::temp_dir().join(format!("seqlab-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        // "Your own text" in the char-LM guide.
        std::fs::copy(workspace().join("README.md"), folder.join("corpus.txt")).unwrap();
        Self {
            folder,
            not_written: Vec::new(),
            skipped: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Parses `args` with `--help`, then runs them for real (quickly where they can be).
    fn run(&mut self, place: &str, args: &[&str]) {
        let home = std::env::var("HOME").unwrap_or_default();
        let args: Vec<String> = args
            .iter()
            .map(|arg| match arg.strip_prefix("~/") {
                Some(rest) => format!("{home}/{rest}"),
                None => arg.to_string(),
            })
            .collect();
        let help = self
            .seqlab(&args, &["--help"])
            .output()
            .expect("the binary runs");
        let usage = String::from_utf8_lossy(&help.stdout).into_owned();
        assert!(
            help.status.success() && usage.contains("Usage: seqlab"),
            "{place}: `seqlab {}` does not parse: {}",
            args.join(" "),
            String::from_utf8_lossy(&help.stderr)
        );
        let out = option(&args, "--out");
        let reads = ["--checkpoint", "--pretrained-lm", "--resume"]
            .iter()
            .filter_map(|name| option(&args, name))
            .find(|dir| self.not_written.contains(dir));
        if let Some(dir) = reads {
            self.skip(place, &args, out, &format!("{dir} was not written"));
            return;
        }
        let cache = format!("{home}/.cache/seqlab/datasets/");
        let unfetched = args.iter().find_map(|arg| {
            let name = arg.strip_prefix(&cache)?.split('/').next()?;
            let fetched = Path::new(&cache).join(name).join(".complete").is_file();
            (!fetched).then_some(name)
        });
        if let Some(name) = unfetched
            && std::env::var("CI").is_err()
        {
            self.skip(place, &args, out, &format!("{name} is not fetched"));
            return;
        }
        let quick: &[&str] = if usage.contains("--fast-dev-run") {
            &["--fast-dev-run"]
        } else {
            &[]
        };
        let (success, stdout, stderr) = self.finish_within(place, &args, quick);
        if !success
            && let Some(missing) = missing_dataset(&stderr)
            && std::env::var("CI").is_err()
        {
            self.skip(place, &args, out, &format!("{missing} is not fetched"));
            return;
        }
        assert!(
            success && !stdout.is_empty(),
            "{place}: `seqlab {} {}` failed:\n{stdout}{stderr}",
            args.join(" "),
            quick.join(" ")
        );
        if let Some(dir) = out {
            self.not_written.retain(|skipped| *skipped != dir);
            assert!(
                self.folder.join(&dir).is_dir(),
                "{place}: `seqlab {}` wrote no {dir}/",
                args.join(" ")
            );
        }
    }

    fn seqlab(&self, args: &[String], extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_seqlab"));
        command
            .args(args)
            .args(extra)
            .current_dir(&self.folder)
            .env("XDG_CACHE_HOME", self.folder.join("cache"))
            .stdin(Stdio::null());
        command
    }

    /// Runs the command to its end, or fails the test after [`COMMAND_TIMEOUT`]; its exit
    /// status, stdout and stderr.
    fn finish_within(
        &self,
        place: &str,
        args: &[String],
        extra: &[&str],
    ) -> (bool, String, String) {
        let start = Instant::now();
        let mut child = self
            .seqlab(args, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary runs");
        // Read both pipes while waiting, so that a full pipe cannot stall the command.
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).map(|_| text)
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).map(|_| text)
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("the command can be waited for") {
                break status;
            }
            if start.elapsed() > COMMAND_TIMEOUT {
                let _ = child.kill();
                panic!(
                    "{place}: `seqlab {} {}` ran past {COMMAND_TIMEOUT:?}",
                    args.join(" "),
                    extra.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = |handle: std::thread::JoinHandle<std::io::Result<String>>| {
            handle.join().unwrap().unwrap_or_default()
        };
        eprintln!(
            "{place}: seqlab {} {} ({:.1} s)",
            args.join(" "),
            extra.join(" "),
            start.elapsed().as_secs_f64()
        );
        (status.success(), text(out), text(err))
    }

    fn skip(&mut self, place: &str, args: &[String], out: Option<String>, why: &str) {
        self.skipped
            .push(format!("{place}: seqlab {} ({why})", args.join(" ")));
        self.not_written.extend(out);
    }

    fn finish(self) {
        eprintln!(
            "ran the documented commands in {:.0} s; only parsed, as their data is not here:",
            self.started.elapsed().as_secs_f64()
        );
        for line in &self.skipped {
            eprintln!("  {line}");
        }
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// The value of `--name VALUE` in `args`.
fn option(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1).cloned())
}

/// The dataset a command's error says to fetch.
fn missing_dataset(stderr: &str) -> Option<&str> {
    stderr
        .split("run datasets/fetch ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
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
    // Seeded: 0.510 on flex, as the guide prints (other backends sum in other orders).
    assert!(accuracy > 0.45, "{model}");

    // An encoder that is not seqlab's (a convolution), trained as a review classifier through
    // the library: seeded, and the cue words are easy, so it learns them.
    let encoder = example("custom_encoder", &[]);
    let accuracy: f64 = encoder
        .lines()
        .find_map(|l| l.strip_prefix("held-out accuracy: "))
        .and_then(|v| v.parse().ok())
        .expect("the accuracy is printed");
    assert!(accuracy > 0.9, "{encoder}");

    let dataset = example("custom_dataset", &["README.md"]);
    assert!(
        dataset.contains("README.md: ") && dataset.contains("\nThe "),
        "{dataset}"
    );
}
