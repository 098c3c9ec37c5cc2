//! The character-level language model and the Markov baseline (issue 7) on a small generated
//! corpus: training, checkpoints, step-wise sampling against the notebook's re-reading.

use seqlab::Device;
use seqlab::data::human_numbers;
use seqlab::lessons::char_lm::{CharCorpus, CharLm, CharLmConfig, train_char_lm};
use seqlab::lessons::markov::run_markov;
use seqlab::models::{CellKind, GenerateConfig, Sampling, generate_by_prefix, generate_stepwise};
use std::path::PathBuf;

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
        max_train_chars: None,
        seed: 1,
    }
}

#[test]
fn a_small_char_lstm_learns_checkpoints_and_samples_exactly_as_the_prefix_way() {
    let device = Device::flex();
    let corpus = corpus();
    let out = scratch("train");
    let (trained, report) =
        train_char_lm(&small_config(), &corpus, Some(&out), &device, false, false).unwrap();
    assert_eq!(report.records.len(), 3);
    // Uniform over the text's characters would be log2(classes) ≈ 4.6 bits.
    assert!(
        report.valid_bits_per_char < 1.3,
        "{}",
        report.valid_bits_per_char
    );
    let loaded = CharLm::load(&out, &device).unwrap();
    assert_eq!(loaded.shape, trained.shape);
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
    train_char_lm(&config, &corpus, Some(&out), &device, false, false).unwrap();
    // Claim a bigger model in the config: the manifest's checksum catches the edit first...
    let config_path = out.join("config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let edited = original.replace("\"hidden\": 8", "\"hidden\": 9");
    std::fs::write(&config_path, &edited).unwrap();
    let error = CharLm::load(&out, &device).unwrap_err().to_string();
    assert!(error.contains("config.json is corrupt"), "{error}");
    // ...and a consistent checkpoint whose weights do not fit says which tensor.
    let (model, _) = train_char_lm(&config, &corpus, None, &device, false, false).unwrap();
    let mut bigger = model;
    bigger.shape.hidden = 9;
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
