//! Data-parallel training under `mpirun` (built with `--features mpi`): two processes train
//! as one process does on the same global batch, a killed process ends the run with a
//! checkpoint that resumes, and processes that disagree are refused.

use super::{owned_words, play_and_model, scratch_dir, stderr, table_rows, words, write_reviews};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How far a weight trained by two processes may lie from one trained by one: the two sum
/// the batch's gradients in another order, a few units in the last place per step, and Adam
/// turns such rounding in a gradient near zero into a step of the learning rate's order. So
/// every weight within `WEIGHT_TOLERANCE`, and all but `OUTLIERS` of them within `CLOSE`.
const WEIGHT_TOLERANCE: f32 = 1e-4;
const CLOSE: f32 = 1e-6;
const OUTLIERS: f64 = 0.001;

/// `mpirun -np ranks seqlab args`, one thread per process (OpenMPI allowed to run as root,
/// as CI does).
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["-np", &ranks.to_string(), "--oversubscribe"])
        .args(["-x", "RAYON_NUM_THREADS=1"])
        .arg(env!("CARGO_BIN_EXE_seqlab"))
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    command
}

/// The process ids of `mpirun`'s children: the job's processes, in rank order.
fn children(mpirun: u32) -> Vec<String> {
    let listed = Command::new("pgrep")
        .args(["-P", &mpirun.to_string()])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    pids
}

fn run(mut command: Command) -> Output {
    let output = command.output().expect("mpirun runs");
    assert!(output.status.success(), "{command:?}: {}", stderr(&output));
    output
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The float tensors of a safetensors file, by name.
fn weights(dir: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(dir.join("weights.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(name, info)| {
            assert_eq!(info["dtype"], "F32", "{name}");
            let offsets = &info["data_offsets"];
            let (start, end) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            let values = data[start..end]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name.clone(), values)
        })
        .collect()
}

/// Every epoch's training and held-out loss in a checkpoint's `training.json`.
fn losses(dir: &Path) -> Vec<(f64, f64)> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("training.json")).unwrap()).unwrap();
    json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["train_loss"].as_f64().unwrap(),
                r["valid_loss"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Asserts that two printed tables have the same rows, their words equal and their numbers
/// within one unit of the last printed (6th) decimal.
fn assert_tables_agree(name: &str, one: &[String], two: &[String]) {
    assert_eq!(
        one.len(),
        two.len(),
        "{name}: the tables differ: {one:?} {two:?}"
    );
    for (a, b) in one.iter().zip(two) {
        let (words_a, words_b): (Vec<&str>, Vec<&str>) = (
            a.split_whitespace().collect(),
            b.split_whitespace().collect(),
        );
        assert_eq!(words_a.len(), words_b.len(), "{name}: {a} | {b}");
        for (x, y) in words_a.iter().zip(&words_b) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!((x - y).abs() <= 1.5e-6, "{name}: {a} | {b}"),
                _ => assert_eq!(x, y, "{name}: {a} | {b}"),
            }
        }
    }
}

/// Every training step's loss in a checkpoint's `training.json`.
fn step_losses(dir: &Path) -> Vec<f64> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("training.json")).unwrap()).unwrap();
    json["batch_losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|loss| loss.as_f64().unwrap())
        .collect()
}

/// Trains `command` (which takes `--out DIR`) in one process with two threads and in two
/// processes of one thread, and checks that every step's loss, every epoch's losses and the
/// weights are the same within the rounding of another summation order.
fn assert_two_processes_train_as_one(name: &str, command: &[&str]) {
    assert_two_processes_with_train_as_one(name, command, &[]);
}

/// [`assert_two_processes_train_as_one`], the two processes given `extra` arguments too.
fn assert_two_processes_with_train_as_one(name: &str, command: &[&str], extra: &[&str]) {
    let dir = scratch_dir(name);
    let (one, two) = (dir.join("one"), dir.join("two"));
    let with_out = |out: &Path| {
        let mut args = command.to_vec();
        if out == two {
            args.extend(extra);
        }
        args.extend(["--device", "flex", "--no-progress", "--out"]);
        args.push(out.to_str().unwrap());
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let args_one = with_out(&one);
    let alone = run({
        let mut alone = Command::new(env!("CARGO_BIN_EXE_seqlab"));
        alone.args(&args_one).env("RAYON_NUM_THREADS", "2");
        alone
    });
    let args_two = with_out(&two);
    let args_two: Vec<&str> = args_two.iter().map(String::as_str).collect();
    let together = run(mpirun(2, &args_two));
    // Rank 0 alone prints: the same table, its losses within a unit of the 6th decimal (the
    // two summation orders can round a printed digit apart).
    let table = |output: &Output| table_rows(&String::from_utf8_lossy(&output.stdout), 3);
    assert!(!table(&alone).is_empty(), "{}", stderr(&alone));
    assert_tables_agree(name, &table(&alone), &table(&together));
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), b.len());
    for ((train_a, valid_a), (train_b, valid_b)) in a.iter().zip(&b) {
        assert!(
            (train_a - train_b).abs() < 1e-5 * train_a.abs(),
            "{name}: {a:?} {b:?}"
        );
        assert!(
            (valid_a - valid_b).abs() < 1e-5 * valid_a.abs(),
            "{name}: {a:?} {b:?}"
        );
    }
    let (a, b) = (step_losses(&one), step_losses(&two));
    assert!(a.len() > 10, "{name}: {} steps", a.len());
    assert_eq!(a.len(), b.len());
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * x.abs(),
            "{name}: step {step}: {x} against {y}"
        );
    }
    let (a, b) = (weights(&one), weights(&two));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let differences: Vec<f32> = a
        .iter()
        .flat_map(|(name, values)| values.iter().zip(&b[name]).map(|(x, y)| (x - y).abs()))
        .collect();
    let largest = differences.iter().copied().fold(0.0f32, f32::max);
    assert!(
        largest <= WEIGHT_TOLERANCE,
        "{name}: weights differ by {largest}"
    );
    let far = differences.iter().filter(|&&d| d > CLOSE).count();
    assert!(
        far as f64 <= OUTLIERS * differences.len() as f64,
        "{name}: {far} of {} weights differ by more than {CLOSE}",
        differences.len()
    );
}

#[test]
fn two_processes_train_a_stateful_language_model_as_one_process_does() {
    let (_dir, play, _) = play_and_model("dp-lm");
    // 32 streams carried from batch to batch; each process owns 16 of them.
    let play = play.to_str().unwrap();
    assert_two_processes_train_as_one(
        "dp-lm-run",
        &words(&format!(
            "char-lm train --text {play} --windows stream --hidden 32 --layers 2 --seq-len 20 \
             --epochs 2 --sample-length 10"
        )),
    );
}

#[test]
fn two_processes_reading_a_corpus_from_disk_train_as_one_process_reading_it_into_memory() {
    let (dir, play, _) = play_and_model("dp-disk");
    // Each process encodes the text into the cache for itself and reads its own 16 streams.
    let cache = dir.join("cache");
    assert_two_processes_with_train_as_one(
        "dp-disk-run",
        &words(&format!(
            "char-lm train --text {} --windows stream --hidden 32 --layers 1 --seq-len 20 \
             --epochs 2 --sample-length 10",
            play.display()
        )),
        &["--from-disk", "--cache-dir", cache.to_str().unwrap()],
    );
}

#[test]
fn two_processes_train_a_padded_classifier_as_one_process_does() {
    let dir = scratch_dir("dp-classify");
    let reviews = write_reviews(&dir);
    // Batches of 15 padded reviews: the processes hold 8 and 7.
    let reviews = reviews.to_str().unwrap();
    assert_two_processes_train_as_one(
        "dp-classify-run",
        &words(&format!(
            "classify --data {reviews} --model lstm --embedding 16 --hidden 16 --bidirectional \
             --batch-size 15 --epochs 2"
        )),
    );
}

#[test]
fn two_processes_reading_a_table_from_disk_train_as_one_process_reading_it_into_memory() {
    let dir = scratch_dir("dp-classify-disk");
    let reviews = write_reviews(&dir);
    // Each process reads only the rows of its share of each batch from the id file.
    let cache = dir.join("cache");
    assert_two_processes_with_train_as_one(
        "dp-classify-disk-run",
        &words(&format!(
            "classify --data {} --model lstm --embedding 16 --hidden 16 --batch-size 15 \
             --epochs 2",
            reviews.display()
        )),
        &["--from-disk", "--cache-dir", cache.to_str().unwrap()],
    );
}

#[test]
fn two_processes_train_a_masked_encoder_decoder_as_one_process_does() {
    // Variable lengths, the loss masked to each target's real steps: each process's loss is
    // weighted by its real target tokens.
    assert_two_processes_train_as_one(
        "dp-copy",
        &words("copy --variable-length --masked --sequences 300 --epochs 2 --hidden 32"),
    );
}

/// A two-process char-LM run on a small play, trained without a stop into `whole` and again
/// into `parts` with a checkpoint every 3 steps, to be interrupted.
struct InterruptedRun {
    play: PathBuf,
    whole: PathBuf,
    parts: PathBuf,
    epochs: usize,
}

impl InterruptedRun {
    /// Trains the uninterrupted run, starts the other and returns once it has written a
    /// checkpoint inside an epoch, with its job (stderr piped) and its processes' ids.
    fn start(name: &str, epochs: usize) -> (Self, Child, Vec<String>) {
        let (dir, play, _) = play_and_model(name);
        let run_of = Self {
            play,
            whole: dir.join("whole"),
            parts: dir.join("parts"),
            epochs,
        };
        run(mpirun(2, &strs(&run_of.args(&run_of.whole))));
        let mut args = run_of.args(&run_of.parts);
        args.extend(["--save-every".into(), "3".into()]);
        let job = mpirun(2, &strs(&args))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let inside_an_epoch = || {
            std::fs::read_to_string(run_of.parts.join("training.json"))
                .is_ok_and(|json| !json.contains("\"next_batch\": null"))
        };
        let started = Instant::now();
        while !inside_an_epoch() {
            assert!(
                started.elapsed().as_secs() < 120,
                "no checkpoint inside an epoch"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let processes = children(job.id());
        (run_of, job, processes)
    }

    fn args(&self, out: &Path) -> Vec<String> {
        owned_words(&format!(
            "char-lm train --text {} --windows stream --hidden 32 --seq-len 10 --batch-size 8 \
             --epochs {} --sample-length 10 --device flex --no-progress --out {}",
            self.play.display(),
            self.epochs,
            out.display()
        ))
    }

    /// The arguments that resume the interrupted run.
    fn resume_args(&self) -> Vec<String> {
        let mut args = self.args(&self.parts);
        args.extend(["--resume".into(), self.parts.to_str().unwrap().into()]);
        args
    }

    /// Resumes the interrupted run with two processes: it must end with the uninterrupted
    /// run's weights and every step's loss, bit for bit.
    fn assert_resumes_exactly(&self) {
        run(mpirun(2, &strs(&self.resume_args())));
        assert!(
            weights(&self.whole) == weights(&self.parts),
            "the resumed run's weights differ from the uninterrupted run's"
        );
        assert_eq!(losses(&self.whole), losses(&self.parts));
        assert_eq!(step_losses(&self.whole), step_losses(&self.parts));
    }
}

#[test]
fn a_killed_process_ends_the_run_and_its_checkpoint_resumes_exactly() {
    let (interrupted, mut job, processes) = InterruptedRun::start("dp-kill", 2);
    let killed_at = Instant::now();
    Command::new("kill")
        .args(["-9", &processes[1]])
        .status()
        .unwrap();
    let status = job.wait().unwrap();
    let mut message = String::new();
    std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut message).unwrap();
    assert!(!status.success(), "the run ended before the kill");
    assert!(
        killed_at.elapsed() < Duration::from_secs(10),
        "the others waited"
    );
    assert!(message.contains("signal 9"), "{message}");
    interrupted.assert_resumes_exactly();

    // The checkpoint belongs to two processes: one alone is refused in one line.
    let alone = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(strs(&interrupted.resume_args()))
        .output()
        .unwrap();
    let err = stderr(&alone);
    assert!(!alone.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("trained by 2 process(es) and this one has 1"),
        "{err}"
    );
}

#[test]
fn processes_started_with_other_settings_are_refused_before_training() {
    let (_dir, play, _) = play_and_model("dp-settings");
    let common = format!(
        "char-lm train --text {} --hidden 16 --epochs 1 --device flex --no-progress",
        play.display()
    );
    let common = words(&common);
    // mpirun's multiple-program form: the second process asks for another learning rate.
    let mut command = mpirun(1, &common);
    command
        .args([":", "-np", "1", "-x", "RAYON_NUM_THREADS=1"])
        .arg(env!("CARGO_BIN_EXE_seqlab"))
        .args(&common)
        .args(["--lr", "0.01"]);
    let output = command.output().unwrap();
    let err = stderr(&output);
    assert!(!output.status.success(), "{err}");
    assert!(
        err.contains("seqlab: data-parallel training: process 1 of 2 was started with other settings than process 0: lr 0.002 (asked 0.01)"),
        "{err}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("epoch"),
        "it trained"
    );
    // Every process met it: the first says it, once, and none aborts the job. (When the
    // second exits first, mpirun sends the first SIGTERM as it tears the job down, and seqlab,
    // which takes SIGTERM as a stop, may say so: that notice is the only other line allowed.)
    let said: Vec<&str> = err.lines().filter(|l| l.starts_with("seqlab")).collect();
    let settings = |line: &str| line.contains("was started with other settings");
    assert_eq!(
        said.iter().filter(|line| settings(line)).count(),
        1,
        "{err}"
    );
    assert!(
        said.iter()
            .all(|line| settings(line) || line.starts_with("seqlab: stopping after this step")),
        "{err}"
    );
    assert!(!err.contains("MPI_ABORT"), "{err}");
}

#[test]
fn a_stop_asked_of_one_process_stops_all_at_one_step_with_a_checkpoint_that_resumes() {
    // Ask the second process alone to stop (SIGTERM, which seqlab takes as Ctrl-C, as a batch
    // scheduler's cancel sends it): the first learns of it in the next step's all-reduce, and
    // both stop there.
    let (interrupted, job, processes) = InterruptedRun::start("dp-stop", 3);
    Command::new("kill")
        .args(["-TERM", &processes[1]])
        .status()
        .unwrap();
    let output = job.wait_with_output().unwrap();
    let err = stderr(&output);
    assert!(
        !output.status.success(),
        "the run ended before the stop: {err}"
    );
    // Rank 0 speaks for the job, once.
    assert_eq!(err.matches("training stopped at epoch").count(), 1, "{err}");
    assert!(!err.contains("MPI_ABORT"), "{err}");
    assert!(
        err.contains(&format!(
            "the checkpoint in {} continues it",
            interrupted.parts.display()
        )),
        "{err}"
    );
    interrupted.assert_resumes_exactly();
}

#[test]
fn two_processes_train_a_tagger_on_sentences_of_many_lengths_as_one_process_does() {
    // The tagger's loss is the mean over each share's real words: the shares of a batch of 7
    // (4 and 3 sentences) hold different numbers of words and are weighted by them.
    let dir = scratch_dir("dp-pos-tag");
    let corpus = dir.join("tagged.txt");
    let lines = [
        "\tThe/at jury/nn said/vbd it/pps ./.",
        "\tThe/at City/nn-tl Committee/nn-tl met/vbd in/in the/at old/jj hall/nn ./.",
        "\tDogs/nns barked/vbd ./.",
        "\tA/at dog/nn barked/vbd loudly/rb at/in the/at cat/nn ./.",
        "\tIt/pps rained/vbd ./.",
    ];
    std::fs::write(&corpus, (lines.join("\n") + "\n").repeat(12)).unwrap();
    let corpus = corpus.to_str().unwrap();
    assert_two_processes_train_as_one(
        "dp-pos-tag-run",
        &words(&format!(
            "pos-tag train --corpus {corpus} --epochs 2 --batch-size 7 --embedding 16 \
             --hidden 16 --char-embedding 8 --char-hidden 8 --lr 0.02 --valid-fraction 0.2"
        )),
    );
}
