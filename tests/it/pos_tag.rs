//! Part-of-speech tagging (issue 7): the tutorial's LSTMTag on its two sentences, and the
//! character features that let a tagger tag words it never saw, against the
//! most-frequent-tag baseline.

use burn::module::Module;
use seqlab::Device;
use seqlab::data::{TaggedSentence, toy_tagged_sentences};
use seqlab::lessons::TrainRun;
use seqlab::lessons::pos_tag::{
    PosTagger, TaggingConfig, most_frequent_tag_accuracy, new_tagger, split_sentences, train_tagger,
};

#[test]
fn the_tutorials_tagger_learns_its_two_sentences() {
    let device = Device::flex();
    let sentences = toy_tagged_sentences();
    let config = TaggingConfig::tutorial();
    let tagger = new_tagger(
        &config,
        &sentences,
        &sentences,
        Some(&["V", "NN", "DET"]),
        &device,
    )
    .unwrap();
    assert_eq!(tagger.model.num_params(), 411); // LSTMTag(6, 6, 9 words, 3 tags)
    let (tagger, report) = train_tagger(
        tagger,
        &config,
        &sentences,
        &sentences,
        &TrainRun::default(),
        &device,
    )
    .unwrap();
    let words = &sentences[0].words;
    assert_eq!(
        tagger.tag(words, &device).unwrap(),
        ["DET", "NN", "V", "DET", "NN"]
    );
    assert_eq!(report.accuracy, 1.0);
    // Log-probabilities, one row per word, each summing to one.
    for row in tagger.scores(words, &device).unwrap() {
        let total: f32 = row.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-4, "{row:?}");
    }
    assert!(tagger.tag(&["cat".to_string()], &device).is_err()); // no unknown word
}

/// Sentences whose tags follow the words' endings: "-ly" adverbs, "-ed" verbs, "-s" plural
/// nouns, and a few function words. Word stems are numbered, so held-out sentences use stems
/// the training never saw.
fn suffix_corpus(sentences: usize, first_stem: usize) -> Vec<TaggedSentence> {
    let syllables = ["ka", "lo", "mi", "ne", "pu", "ri", "so", "tu"];
    let stem = |n: usize| -> String {
        let mut n = n;
        let mut word = String::new();
        for _ in 0..3 {
            word.push_str(syllables[n % syllables.len()]);
            n /= syllables.len();
        }
        word
    };
    (0..sentences)
        .map(|i| {
            let a = first_stem + (i * 7) % 97;
            let b = first_stem + (i * 13) % 89;
            let c = first_stem + (i * 5) % 83;
            let words = vec![
                "the".to_string(),
                format!("{}s", stem(a)),
                format!("{}ed", stem(b)),
                format!("{}ly", stem(c)),
                ".".to_string(),
            ];
            let tags = ["at", "nns", "vbd", "rb", "."].map(str::to_string).to_vec();
            TaggedSentence::new(words, tags).unwrap()
        })
        .collect()
}

#[test]
fn spelling_features_tag_unseen_words_and_beat_the_baseline() {
    let device = Device::flex();
    let train = suffix_corpus(300, 0);
    let valid = suffix_corpus(60, 200);
    let baseline = most_frequent_tag_accuracy(&train, &valid);
    // Unseen stems: the baseline knows "the" and "." only (2 of 5 words) and guesses the
    // commonest tag for the rest.
    assert!((0.39..0.61).contains(&baseline), "{baseline}");
    let config = TaggingConfig {
        embedding: 16,
        hidden: 16,
        char_embedding: 8,
        char_hidden: 16,
        epochs: 4,
        batch_size: 16,
        lr: 1e-2,
        ..TaggingConfig::default()
    };
    let tagger = new_tagger(&config, &train, &valid, None, &device).unwrap();
    let (tagger, report) = train_tagger(
        tagger,
        &config,
        &train,
        &valid,
        &TrainRun::default(),
        &device,
    )
    .unwrap();
    assert!(report.accuracy > 0.97, "{report:?}");
    assert_eq!(report.baseline_accuracy, baseline);

    // The checkpoint gives the same tags back.
    let dir = std::env::temp_dir().join(format!("seqlab-it-tagger-{}", std::process::id()));
    tagger.save(&dir).unwrap();
    let loaded = PosTagger::load(&dir, &device).unwrap();
    let words: Vec<String> = "the sokamis nerilued kapuly ."
        .split(' ')
        .map(String::from)
        .collect();
    let tags = loaded.tag(&words, &device).unwrap();
    assert_eq!(tags, tagger.tag(&words, &device).unwrap());
    assert_eq!(tags, ["at", "nns", "vbd", "rb", "."]);
    assert!(loaded.tag(&[], &device).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn splits_are_seeded_and_disjoint() {
    let sentences = suffix_corpus(50, 0);
    let (train, valid) = split_sentences(&sentences, 0.2, 3).unwrap();
    assert_eq!((train.len(), valid.len()), (40, 10));
    assert_eq!(split_sentences(&sentences, 0.2, 3).unwrap().1, valid);
    assert_ne!(split_sentences(&sentences, 0.2, 4).unwrap().1, valid);
    assert!(split_sentences(&sentences, 1.0, 3).is_err());
    assert!(split_sentences(&sentences[..2], 0.1, 3).is_err());
}

/// Issue 9 for a hand-written loop: a tagger stopped after an epoch, or inside one (as Ctrl-C
/// stops it), and resumed from its checkpoint ends with the weights of a run that never
/// stopped, bit for bit, and reports the same epochs.
#[test]
fn a_tagger_stopped_and_resumed_ends_where_an_uninterrupted_run_does() {
    let device = Device::flex();
    let (train, valid) = (suffix_corpus(120, 0), suffix_corpus(30, 200));
    let config = TaggingConfig {
        embedding: 8,
        hidden: 8,
        char_embedding: 4,
        char_hidden: 8,
        epochs: 3,
        batch_size: 16,
        lr: 1e-2,
        ..TaggingConfig::default()
    };
    let tagger = new_tagger(&config, &train, &valid, None, &device).unwrap();
    let dir = std::env::temp_dir().join(format!("seqlab-it-tagger-resume-{}", std::process::id()));
    let (whole, parts) = (dir.join("whole"), dir.join("parts"));
    let go = |run: &TrainRun| train_tagger(tagger.clone(), &config, &train, &valid, run, &device);
    let (_, uninterrupted) = go(&TrainRun {
        out: Some(&whole),
        ..TrainRun::default()
    })
    .unwrap();
    let weights = |dir: &std::path::Path| std::fs::read(dir.join("weights.safetensors")).unwrap();
    let epochs = |records: &[seqlab::train::EpochRecord]| {
        records
            .iter()
            .map(|r| (r.epoch, r.train_loss, r.valid_loss))
            .collect::<Vec<_>>()
    };

    let (_, first) = go(&TrainRun {
        out: Some(&parts),
        stop_after: Some(1),
        ..TrainRun::default()
    })
    .unwrap();
    assert_eq!(first.records.len(), 1);
    let resume = TrainRun {
        out: Some(&parts),
        resume: Some(&parts),
        ..TrainRun::default()
    };
    let (_, resumed) = go(&resume).unwrap();
    assert!(weights(&whole) == weights(&parts), "the weights differ");
    assert_eq!(epochs(&resumed.records), epochs(&uninterrupted.records));

    // Stopped after the first step, inside the first epoch.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let error = go(&TrainRun {
        out: Some(&parts),
        stop: Some(&stop),
        ..TrainRun::default()
    })
    .unwrap_err();
    crate::assert_stopped_at(&error, 0, 1);
    let (_, resumed) = go(&resume).unwrap();
    assert!(weights(&whole) == weights(&parts), "the weights differ");
    assert_eq!(epochs(&resumed.records), epochs(&uninterrupted.records));

    // Another run's settings are refused, naming the difference.
    let other = TaggingConfig {
        lr: 0.02,
        ..config.clone()
    };
    let error = train_tagger(tagger.clone(), &other, &train, &valid, &resume, &device)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the saved run differs: lr 0.01 (asked 0.02)"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
