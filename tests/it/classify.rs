//! Text classification end to end: tokenizers, the classifiers from scratch, a language
//! model's encoder and its freezing.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use seqlab::data::{LabelledText, Tokenizer};
use seqlab::lessons::TrainRun;
use seqlab::lessons::classify::{
    ClassifierArch, ClassifyConfig, Start, TextDataset, train_classifier, training_texts,
};
use seqlab::lessons::text_lm::{LmTexts, TextLm, TextLmConfig, train_text_lm};
use seqlab::models::{CellKind, RecurrentClassifierConfig, RecurrentLmConfig};
use seqlab::train::{AdamConfig, OptimizerConfig, Trainer, flat_cross_entropy};

/// Reviews whose class shows only in a few words among many neutral ones.
fn reviews(count: usize, seed: u64) -> Vec<LabelledText> {
    let neutral = [
        "the", "film", "a", "plot", "actor", "scene", "was", "and", "it", "story", "music", "of",
    ];
    let good = ["wonderful", "great", "superb", "moving"];
    let bad = ["awful", "dull", "boring", "terrible"];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let positive = i % 2 == 0;
            let mut words: Vec<&str> = (0..rng.random_range(8..24))
                .map(|_| neutral[rng.random_range(0..neutral.len())])
                .collect();
            for _ in 0..2 {
                let pool = if positive { &good } else { &bad };
                let at = rng.random_range(0..=words.len());
                words.insert(at, pool[rng.random_range(0..pool.len())]);
            }
            LabelledText {
                text: words.join(" ") + ".",
                label: if positive { "pos" } else { "neg" }.into(),
            }
        })
        .collect()
}

#[test]
fn the_bert_tokenizer_encodes_the_lessons_sentence_as_the_seed_prints() {
    let bert = Tokenizer::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenizers/bert-base-uncased.json"
    ))
    .unwrap();
    assert_eq!(bert.vocab_size(), 30522);
    // Padding to 128 and truncation are switched off: the ids are the sentence's own.
    assert_eq!(
        bert.encode("What a nice flooble!").unwrap(),
        [101, 2054, 1037, 3835, 13109, 9541, 3468, 999, 102]
    );
    let pieces: Vec<String> = bert
        .pieces("What a nice flooble!")
        .unwrap()
        .into_iter()
        .map(|(id, piece)| format!("{id}:{piece}"))
        .collect();
    assert_eq!(
        pieces.join(" "),
        "101: 2054:what 1037:a 3835:nice 13109:fl 9541:##oo 3468:##ble 999:! 102:"
    );
    assert_eq!(bert.special_id("[CLS]"), Some(101));
    assert_eq!(bert.pad_id(), 0);
}

#[test]
fn every_classifier_learns_which_words_carry_the_label() {
    let device = Device::flex();
    let data = TextDataset::new(reviews(400, 1), 10).unwrap();
    for arch in [
        ClassifierArch::Mlp,
        ClassifierArch::Recurrent(CellKind::Lstm),
        ClassifierArch::Recurrent(CellKind::Gru),
    ] {
        let config = ClassifyConfig {
            arch,
            embedding: 16,
            hidden: 32,
            max_len: 32,
            batch_size: 16,
            epochs: 4,
            lr: 1e-2,
            valid_fraction: 0.2,
            ..ClassifyConfig::default()
        };
        let tokenizer = Tokenizer::word(&training_texts(&config, &data, None).unwrap(), 100, 1);
        let report = train_classifier(
            &config,
            &data,
            Start::Scratch(tokenizer),
            &TrainRun::default(),
            &device,
        )
        .unwrap();
        assert_eq!(report.sizes, (320, 80));
        assert_eq!(report.majority_accuracy, 0.5);
        assert_eq!(report.confusion.iter().flatten().sum::<usize>(), 80);
        // The MLP reads each position with its own weights, and the telling words move
        // around: it learns less from 320 texts than the recurrent models, which read every
        // position with the same weights.
        let bar = if arch == ClassifierArch::Mlp {
            0.6
        } else {
            0.9
        };
        assert!(report.accuracy >= bar, "{arch:?}: {}", report.accuracy);
        assert!((report.balanced_accuracy - report.accuracy).abs() < 0.05);
    }
}

#[test]
fn a_language_models_encoder_starts_a_classifier_and_freezing_keeps_it_fixed() {
    let device = Device::flex();
    let rows = reviews(300, 2);
    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let lm_config = TextLmConfig {
        embedding: 16,
        hidden: 32,
        seq_len: 16,
        batch_size: 8,
        epochs: 2,
        lr: 1e-2,
        ..TextLmConfig::default()
    };
    let tokenizer = Tokenizer::word(&texts, 100, 1);
    let (lm, report) = train_text_lm(
        &lm_config,
        LmTexts::Shuffled(&texts),
        tokenizer,
        &TrainRun::default(),
        &device,
    )
    .unwrap();
    // Words drawn at random: a model that learned nothing scores near the vocabulary's size
    // (23); the words' frequencies alone give 17.3 (16 of 19 words from 12 neutral ones, 2
    // from 8 sentiment words, a full stop), the best any model can do but for the stops.
    assert!(report.perplexity < 19.0, "perplexity {}", report.perplexity);
    let dir = std::env::temp_dir().join(format!("seqlab-it-text-lm-{}", std::process::id()));
    lm.save(&dir).unwrap();
    let loaded = TextLm::load(&dir, &device).unwrap();
    assert_eq!(loaded.config, lm.config);
    assert_eq!(
        loaded.tokenizer.encode("a dull film").unwrap(),
        lm.tokenizer.encode("a dull film").unwrap()
    );
    let (embedding, recurrent) = loaded.model.encoder();
    embedding
        .weight
        .val()
        .into_data()
        .assert_eq(&lm.model.encoder().0.weight.val().into_data(), true);
    // Another kind of checkpoint is refused by name.
    assert!(
        seqlab::lessons::char_lm::CharLm::load(&dir, &device)
            .unwrap_err()
            .to_string()
            .contains("text-lm")
    );

    // One head-only step moves the head and nothing else.
    let vocab_size = loaded.config.vocab_size;
    let classifier = RecurrentClassifierConfig::new(CellKind::Lstm, vocab_size, 16, 32, 1, 2)
        .init(&device)
        .with_encoder(embedding.clone(), recurrent)
        .unwrap();
    let mut trainer =
        Trainer::new(&device, OptimizerConfig::Adam(AdamConfig::pytorch())).with_progress(false);
    let model = classifier
        .clone()
        .freeze_encoder(true)
        .train()
        .fork(trainer.device());
    let tokens = Tensor::<2, Int>::from_data([[2, 3, 4, 5], [5, 4, 3, 2]], trainer.device());
    let targets = Tensor::<2, Int>::from_data([[0], [1]], trainer.device());
    let logits = model.forward(tokens, None).unwrap().reshape([2, 1, 2]);
    let (model, _) = trainer
        .step(model, flat_cross_entropy(logits, targets), 0.1)
        .unwrap();
    let model = model.valid();
    model
        .embedding
        .weight
        .val()
        .into_data()
        .assert_eq(&embedding.weight.val().into_data(), true);
    let moved = (model.output.weight.val() - classifier.output.weight.val())
        .abs()
        .max();
    assert!(moved.into_scalar::<f32>() > 1e-3);
    // A mismatched encoder is refused.
    let other = RecurrentLmConfig::new(CellKind::Gru, vocab_size, 32, 1)
        .with_embedding_size(Some(16))
        .init(&device);
    let (e, r) = other.encoder();
    assert!(classifier.with_encoder(e, r).is_err());

    // Fine-tuning through the lesson: the head epoch, then everything.
    let data = TextDataset::new(rows, 10).unwrap();
    let config = ClassifyConfig {
        epochs: 6,
        head_epochs: 1,
        max_len: 32,
        batch_size: 16,
        lr: 1e-2,
        valid_fraction: 0.2,
        ..ClassifyConfig::default()
    };
    let report = train_classifier(
        &config,
        &data,
        Start::Pretrained(Box::new(loaded)),
        &TrainRun::default(),
        &device,
    )
    .unwrap();
    assert_eq!(report.records.len(), 7);
    assert_eq!(report.records[0].fit, 0);
    assert_eq!(report.records[6].fit, 1);
    assert!(report.accuracy >= 0.85, "{}", report.accuracy);
}
