//! Classes, transfers and sortish batches.

use super::data::Encoded;
use super::*;
use crate::data::{LabelledText, RowIds};
use crate::models::RecurrentLmConfig;

fn rows(pairs: &[(&str, &str)]) -> Vec<LabelledText> {
    pairs
        .iter()
        .map(|(text, label)| LabelledText {
            text: text.to_string(),
            label: label.to_string(),
        })
        .collect()
}

#[test]
fn rare_classes_are_left_out_and_reported() {
    let data = TextDataset::new(
        rows(&[("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "z")]),
        2,
    )
    .unwrap();
    assert_eq!(data.classes, ["x", "y"]);
    assert_eq!(data.dropped, [("z".to_string(), 1)]);
    assert_eq!(data.class_counts(), [2, 2]);
    let err = TextDataset::new(rows(&[("a", "x"), ("b", "y")]), 2).unwrap_err();
    assert!(err.to_string().contains("two classes"), "{err}");
}

#[test]
fn a_table_on_disk_numbers_and_drops_classes_as_rows_in_memory_do() {
    let pairs = [
        ("a", "x"),
        ("b", "z"),
        ("c", "y"),
        ("d", "x"),
        ("e", "y"),
        ("f", "w"),
    ];
    let dir = std::env::temp_dir().join(format!("seqlab-classify-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.csv");
    let mut csv = String::from("text,label\n");
    for (text, label) in pairs {
        csv.push_str(&format!("{text},{label}\n"));
    }
    std::fs::write(&path, csv).unwrap();
    let table = crate::data::LabelledColumns::new("text", "label")
        .index(&path)
        .unwrap();
    let in_memory = TextDataset::new(rows(&pairs), 2).unwrap();
    let on_disk = TextDataset::from_table(&table, 2, &dir.join("cache")).unwrap();
    assert_eq!(on_disk.classes, in_memory.classes);
    assert_eq!(on_disk.dropped, in_memory.dropped);
    assert_eq!(on_disk.labels, in_memory.labels);
    let texts = |data: &TextDataset| -> Vec<String> {
        (0..data.len())
            .map(|i| data.text(i).unwrap().into_owned())
            .collect()
    };
    assert_eq!(texts(&on_disk), ["a", "c", "d", "e"]);
    assert_eq!(texts(&on_disk), texts(&in_memory));
    let tokenizer = Tokenizer::char(&["abcdef"], 100, 1);
    let cached = on_disk.encode_on_disk(&tokenizer, 4).unwrap().unwrap();
    assert_eq!(cached.cache, crate::data::CacheUse::Written);
    assert!(in_memory.encode_on_disk(&tokenizer, 4).unwrap().is_none());
    let (from_disk, _) = on_disk.encode(&tokenizer, 4).unwrap();
    let (from_memory, _) = in_memory.encode(&tokenizer, 4).unwrap();
    assert_eq!(from_disk.ids().to_vec(), from_memory.ids().to_vec());
    assert_eq!(from_disk.row_len(3), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_transfer_takes_the_encoder_or_the_embedding_alone() {
    let device = Device::flex();
    let config = RecurrentLmConfig::new(CellKind::Lstm, 20, 10, 1).with_embedding_size(Some(6));
    let lm = TextLm {
        model: init_seeded(&device, 7, || config.init(&device)),
        tokenizer: Tokenizer::word(&["a b c"], 20, 1),
        config,
    };
    let (lm_embedding, lm_recurrent) = lm.model.encoder();
    let weights = |classifier: &RecurrentClassifier| {
        (
            classifier.embedding.weight.val().into_data(),
            classifier.encoder.weights[0].weight_hh.val().into_data(),
        )
    };
    let lm_weights = (
        lm_embedding.weight.val().into_data(),
        lm_recurrent.weights[0].weight_hh.val().into_data(),
    );
    let built = |transfer| {
        let config = ClassifyConfig {
            transfer,
            ..ClassifyConfig::default()
        };
        let model_config = classifier_on_lm(&lm, &config, 2).unwrap();
        weights(&pretrained_classifier(&lm, &model_config, &config, &device).unwrap())
    };
    let (embedding, recurrent) = built(Transfer::Encoder);
    embedding.assert_eq(&lm_weights.0, true);
    recurrent.assert_eq(&lm_weights.1, true);
    let (embedding, recurrent) = built(Transfer::Embedding);
    embedding.assert_eq(&lm_weights.0, true);
    assert_ne!(recurrent, lm_weights.1);
    assert_eq!(recurrent, built(Transfer::Embedding).1, "seeded");
    assert_eq!("embedding".parse(), Ok(Transfer::Embedding));
    assert!(
        "head"
            .parse::<Transfer>()
            .unwrap_err()
            .contains("encoder, embedding")
    );
}

#[test]
fn sortish_batches_cover_every_row_once() {
    let all = RowIds::from_rows((0..97).map(|i| vec![1; 1 + i % 13]));
    let encoded = Encoded {
        all: &all,
        rows: (0..97).collect(),
        labels: vec![0; 97],
        pad: 0,
        fixed_len: None,
    };
    for seed in [None, Some(3)] {
        let mut all: Vec<usize> = encoded.batches(8, seed).concat();
        all.sort_unstable();
        assert_eq!(all, (0..97).collect::<Vec<_>>());
    }
    let sorted = encoded.batches(8, None);
    assert!(sorted[0].iter().all(|&r| all.row_len(r) >= 12));
}
