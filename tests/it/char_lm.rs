//! The character-level language model and the Markov baseline (issue 7) on a small generated
//! corpus: training, checkpoints, step-wise sampling against the notebook's re-reading.

use seqlab::Device;
use seqlab::data::human_numbers;
use seqlab::lessons::TrainRun;
use seqlab::lessons::char_lm::{CharCorpus, CharLm, CharLmConfig, TrainWindows, train_char_lm};
use seqlab::lessons::markov::run_markov;
use seqlab::models::{CellKind, GenerateConfig, Sampling, generate_by_prefix, generate_stepwise};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqlab-it-char-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The first 60k characters of the human-numbers text, "one \n two \n three …".
fn corpus() -> CharCorpus {
    let text: String = human_numbers().text().chars().take(60_000).collect();
    CharCorpus::split(&text, 0.1).unwrap()
}

fn small_config() -> CharLmConfig {
    CharLmConfig {
        cell: CellKind::Lstm,
        embedding: 16,
        hidden: 64,
        layers: 2,
        seq_len: 50,
        batch_size: 16,
        epochs: 3,
        lr: 1e-2,
        dropout: 0.0,
        max_train_chars: None,
        windows: Some(TrainWindows::Stream),
        seed: 1,
    }
}

/// The first `chars` characters of the human-numbers text, a tenth held out.
fn small_corpus(chars: usize) -> CharCorpus {
    let text: String = human_numbers().text().chars().take(chars).collect();
    CharCorpus::split(&text, 0.1).unwrap()
}

/// Issue 28: a text too small for stateful streams to train (6 batches per epoch here) is cut
/// into shuffled overlapping windows by default, and learns in one epoch what streams do not.
#[test]
fn a_small_text_is_trained_on_overlapping_windows_by_default_and_learns() {
    let corpus = small_corpus(6_000);
    let device = Device::flex();
    let config = CharLmConfig {
        epochs: 1,
        windows: None,
        ..small_config()
    };
    let (_, windows) = train_char_lm(&config, &corpus, &TrainRun::default(), &device).unwrap();
    assert_eq!(windows.windows, TrainWindows::Overlapping);
    // 5,400 training characters: 5,350 windows of 50, 16 to a batch.
    assert_eq!(windows.batches_per_epoch, 335);
    assert_eq!(windows.train_chars, 5_350 * 50);
    let streams = CharLmConfig {
        windows: Some(TrainWindows::Stream),
        ..config
    };
    let (_, streams) = train_char_lm(&streams, &corpus, &TrainRun::default(), &device).unwrap();
    assert_eq!(streams.batches_per_epoch, 6);
    // The same held-out streams score both.
    assert_eq!(windows.valid_chars, streams.valid_chars);
    assert!(
        windows.valid_bits_per_char < 1.5 && streams.valid_bits_per_char > 2.5,
        "windows {} bits, streams {} bits",
        windows.valid_bits_per_char,
        streams.valid_bits_per_char
    );
    assert_eq!(
        TrainWindows::for_text(1_000_000, 100, 32),
        TrainWindows::Stream
    );
}

/// Shuffled windows resume exactly too: each epoch's order comes from the seed and the epoch.
#[test]
fn a_run_on_windows_stopped_inside_an_epoch_resumes_to_the_same_weights() {
    let corpus = small_corpus(2_000);
    let device = Device::flex();
    let config = CharLmConfig {
        epochs: 2,
        hidden: 16,
        embedding: 8,
        windows: Some(TrainWindows::Overlapping),
        ..small_config()
    };
    let whole = scratch("windows-whole");
    let run = |out: &PathBuf, resume: bool, stop: Option<&Arc<AtomicBool>>| {
        let run = TrainRun {
            out: Some(out),
            resume: resume.then_some(out.as_path()),
            stop,
            ..TrainRun::default()
        };
        train_char_lm(&config, &corpus, &run, &device)
    };
    let (_, uninterrupted) = run(&whole, false, None).unwrap();
    assert_eq!(
        uninterrupted.batches_per_epoch,
        (1_800 - 50usize).div_ceil(16)
    );
    let parts = scratch("windows-parts");
    let stop = Arc::new(AtomicBool::new(true));
    crate::assert_stopped_at(&run(&parts, false, Some(&stop)).unwrap_err(), 0, 1);
    let (_, resumed) = run(&parts, true, None).unwrap();
    let weights = |dir: &PathBuf| std::fs::read(dir.join("weights.safetensors")).unwrap();
    assert!(weights(&whole) == weights(&parts), "the weights differ");
    assert_eq!(
        resumed.records.last().unwrap().valid_loss,
        uninterrupted.records.last().unwrap().valid_loss
    );
    // A checkpoint of a run on windows does not continue as streams.
    let streams = CharLmConfig {
        windows: Some(TrainWindows::Stream),
        ..config.clone()
    };
    let again = TrainRun {
        out: Some(&parts),
        resume: Some(&parts),
        ..TrainRun::default()
    };
    let error = train_char_lm(&streams, &corpus, &again, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("windows overlapping (asked stream)"),
        "{error}"
    );
    std::fs::remove_dir_all(&whole).unwrap();
    std::fs::remove_dir_all(&parts).unwrap();
}

#[test]
fn a_held_out_text_shorter_than_a_batch_is_scored_with_fewer_streams() {
    // 6,000 characters: 600 held out, scored as one stream of 11 sequences of 50 (streams hold
    // at least 8 sequences where the text allows), not the 16 streams of a batch.
    let text: String = human_numbers().text().chars().take(6_000).collect();
    let corpus = CharCorpus::split(&text, 0.1).unwrap();
    let config = CharLmConfig {
        epochs: 1,
        ..small_config()
    };
    let (_, report) =
        train_char_lm(&config, &corpus, &TrainRun::default(), &Device::flex()).unwrap();
    assert_eq!(report.valid_chars, 11 * 50);
    assert!(report.valid_bits_per_char.is_finite() && report.valid_bits_per_char > 0.0);
}

#[test]
fn a_small_char_lstm_learns_checkpoints_and_samples_exactly_as_the_prefix_way() {
    let device = Device::flex();
    let corpus = corpus();
    let out = scratch("train");
    let run = TrainRun {
        out: Some(&out),
        ..TrainRun::default()
    };
    let (trained, report) = train_char_lm(&small_config(), &corpus, &run, &device).unwrap();
    assert_eq!(report.records.len(), 3);
    // Uniform over the text's characters would be log2(classes) ≈ 4.6 bits.
    assert!(
        report.valid_bits_per_char < 1.3,
        "{}",
        report.valid_bits_per_char
    );
    let loaded = CharLm::load(&out, &device).unwrap();
    assert_eq!(loaded.config, trained.config);
    assert_eq!(loaded.vocab, trained.vocab);

    // Greedy and seeded sampling: the checkpoint gives the same text as the trained model,
    // and one step at a time gives exactly what re-reading the whole prefix gives.
    let prime = corpus.vocab.encode("one hundred").unwrap();
    for sampling in [Sampling::Greedy, Sampling::temperature(0.8)] {
        let config = GenerateConfig {
            length: 120,
            sampling,
            seed: 4,
            banned: vec![0],
        };
        let stepwise = generate_stepwise(&trained.model, &prime, &config, &device).unwrap();
        let by_prefix = generate_by_prefix(&trained.model, &prime, &config, &device).unwrap();
        assert_eq!(stepwise, by_prefix, "{sampling:?}");
        let from_checkpoint = generate_stepwise(&loaded.model, &prime, &config, &device).unwrap();
        assert_eq!(stepwise, from_checkpoint, "{sampling:?}");
    }
    let greedy = GenerateConfig {
        length: 60,
        sampling: Sampling::Greedy,
        seed: 0,
        banned: vec![],
    };
    let text = loaded.sample("one hundred and ", &greedy, &device).unwrap();
    // Number words only: the model writes the text's vocabulary.
    assert!(
        text.split_whitespace()
            .all(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '.')),
        "{text:?}"
    );
    let unknown = loaded.sample("one hundred!", &greedy, &device).unwrap_err();
    assert!(
        unknown.to_string().contains("'!' (at position 11)"),
        "{unknown}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_checkpoint_that_does_not_fit_its_config_is_refused() {
    let device = Device::flex();
    let corpus = corpus();
    let config = CharLmConfig {
        epochs: 1,
        hidden: 8,
        embedding: 4,
        layers: 1,
        ..small_config()
    };
    let out = scratch("mismatch");
    let run = TrainRun {
        out: Some(&out),
        ..TrainRun::default()
    };
    train_char_lm(&config, &corpus, &run, &device).unwrap();
    // Claim a bigger model in the config: the manifest's checksum catches the edit first...
    let config_path = out.join("config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();
    assert!(original.contains("\"hidden_size\": 8"), "{original}");
    let edited = original.replace("\"hidden_size\": 8", "\"hidden_size\": 9");
    std::fs::write(&config_path, &edited).unwrap();
    let error = CharLm::load(&out, &device).unwrap_err().to_string();
    assert!(error.contains("config.json is corrupt"), "{error}");
    // ...and a consistent checkpoint whose weights do not fit says which tensor.
    let (model, _) = train_char_lm(&config, &corpus, &TrainRun::default(), &device).unwrap();
    let mut bigger = model;
    bigger.config.hidden_size = 9;
    bigger.save(&out).unwrap();
    let error = CharLm::load(&out, &device).unwrap_err().to_string();
    assert!(
        error.contains("weights.safetensors") && error.contains("shape"),
        "{error}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_markov_baseline_improves_with_order_on_structured_text() {
    let corpus = corpus();
    let report = run_markov(&corpus, 1..=6, 80, 0).unwrap();
    let bits: Vec<f64> = report.orders.iter().map(|(_, b, _)| *b).collect();
    assert!(bits.windows(2).take(3).all(|w| w[1] < w[0]), "{bits:?}");
    assert!(report.best_bits_per_char < 1.0, "{bits:?}");
    assert_eq!(report.sample.chars().count(), 80 + report.best_order);
    let (high, low) = (5, 2);
    assert!(run_markov(&corpus, high..=low, 10, 0).is_err());
}

/// Issue 9's test: two epochs in one run, against one epoch, a stop, and a resumed second
/// epoch from the checkpoint: the same weights bit for bit, the same losses.
#[test]
fn a_stopped_and_resumed_run_ends_exactly_where_an_uninterrupted_one_does() {
    let device = Device::flex();
    let corpus = corpus();
    let config = CharLmConfig {
        epochs: 2,
        hidden: 24,
        embedding: 8,
        max_train_chars: Some(20_000),
        ..small_config()
    };
    let whole = scratch("whole");
    let (_, uninterrupted) = train_char_lm(
        &config,
        &corpus,
        &TrainRun {
            out: Some(&whole),
            ..TrainRun::default()
        },
        &device,
    )
    .unwrap();
    let parts = scratch("parts");
    let first = TrainRun {
        out: Some(&parts),
        stop_after: Some(1),
        ..TrainRun::default()
    };
    let (_, half) = train_char_lm(&config, &corpus, &first, &device).unwrap();
    assert_eq!(half.records.len(), 1);
    let second = TrainRun {
        out: Some(&parts),
        resume: Some(&parts),
        ..TrainRun::default()
    };
    let (_, resumed) = train_char_lm(&config, &corpus, &second, &device).unwrap();
    let weights = |dir: &PathBuf| std::fs::read(dir.join("weights.safetensors")).unwrap();
    assert!(weights(&whole) == weights(&parts), "the weights differ");
    let losses = |report: &seqlab::lessons::char_lm::CharLmReport| {
        report
            .records
            .iter()
            .map(|r| (r.epoch, r.train_loss, r.valid_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&resumed), losses(&uninterrupted));

    // Stopped inside the first epoch (as Ctrl-C stops it), after its first batch: the
    // checkpoint holds the state carried into the second batch, and resuming from it ends
    // in the same place too.
    let inside = scratch("inside");
    let stop = Arc::new(AtomicBool::new(true));
    let stopped = TrainRun {
        out: Some(&inside),
        stop: Some(&stop),
        ..TrainRun::default()
    };
    let error = train_char_lm(&config, &corpus, &stopped, &device).unwrap_err();
    crate::assert_stopped_at(&error, 0, 1);
    assert!(inside.join("state.safetensors").exists());
    let go_on = TrainRun {
        out: Some(&inside),
        resume: Some(&inside),
        ..TrainRun::default()
    };
    let (_, finished) = train_char_lm(&config, &corpus, &go_on, &device).unwrap();
    assert!(weights(&whole) == weights(&inside), "the weights differ");
    assert_eq!(losses(&finished), losses(&uninterrupted));
    std::fs::remove_dir_all(&inside).unwrap();

    // Resuming another run's checkpoint, or with other settings, is refused.
    let other = CharLmConfig {
        lr: 3e-3,
        ..config.clone()
    };
    let error = train_char_lm(&other, &corpus, &second, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the saved run differs: lr 0.01 (asked 0.003)"),
        "{error}"
    );
    let bigger = CharLmConfig {
        hidden: 32,
        ..config
    };
    let error = train_char_lm(&bigger, &corpus, &second, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("config.json: the checkpoint's model is"),
        "{error}"
    );
    std::fs::remove_dir_all(&whole).unwrap();
    std::fs::remove_dir_all(&parts).unwrap();
}
