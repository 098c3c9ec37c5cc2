//! Text commands: `tokenize`, `classify`, `lm train`.

use crate::*;
use std::process::Command;

#[test]
fn tokenize_prints_the_ids_and_pieces_the_seed_prints() {
    let bert = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tokenizers/bert-base-uncased.json"
    );
    let output = seqlab(&["tokenize", "--tokenizer", bert, "What a nice flooble!"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "ids: [101, 2054, 1037, 3835, 13109, 9541, 3468, 999, 102]"
    );
    assert_eq!(
        lines[1..10].join(" "),
        "101: 2054:what 1037:a 3835:nice 13109:fl 9541:##oo 3468:##ble 999:! 102:"
    );
    assert!(lines[10].contains("30522 tokens"), "{stdout}");
}

#[test]
fn classify_trains_on_a_csv_and_prints_the_table_and_confusion_matrix() {
    let dir = scratch_dir("classify");
    let reviews = write_reviews(&dir);
    let metrics = dir.join("metrics.json");
    let output = seqlab(&[
        "classify",
        "--data",
        reviews.to_str().unwrap(),
        "--where",
        "source=imdb",
        "--model",
        "lstm",
        "--embedding",
        "16",
        "--hidden",
        "16",
        "--epochs",
        "3",
        "--lr",
        "1e-2",
        "--valid-fraction",
        "0.25",
        "--device",
        "flex",
        "--metrics-json",
        metrics.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("160 texts, 2 classes: 0 80, 1 80"),
        "{stdout}"
    );
    assert!(
        stdout.contains("epoch") && stdout.contains("accuracy"),
        "{stdout}"
    );
    assert!(
        stdout.contains("majority-class baseline 0.5000"),
        "{stdout}"
    );
    assert!(stdout.contains("predicted"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metrics).unwrap()).unwrap();
    assert!(json["run"]["accuracy"].as_f64().unwrap() >= 0.9, "{json}");
    assert_eq!(json["epochs"].as_array().unwrap().len(), 3);
}

#[test]
fn a_language_model_trained_on_tunes_starts_a_tune_classifier() {
    let dir = scratch_dir("tunes");
    let tunes = write_tunes(&dir);
    let lm = dir.join("lm");
    let paths = [
        "--data",
        tunes.to_str().unwrap(),
        "--out",
        lm.to_str().unwrap(),
    ];
    let settings = "--tokenizer char --embedding 8 --hidden 16 --seq-len 16 --batch-size 4 \
                    --epochs 1 --max-train-tokens 2000";
    let stdout = run_on_flex(&[&["lm", "train"][..], &paths, &words(settings)].concat());
    assert!(stdout.contains("60 texts; tokenizer: char"), "{stdout}");
    assert!(stdout.contains("2000 training / "), "{stdout}");
    assert!(stdout.contains("held-out perplexity"), "{stdout}");
    let stdout = run_on_flex(&[
        "classify",
        "--data",
        tunes.to_str().unwrap(),
        "--label-col",
        "type",
        "--pretrained-lm",
        lm.to_str().unwrap(),
        "--epochs",
        "2",
        "--lr",
        "1e-2",
        "--batch-size",
        "8",
        "--valid-fraction",
        "0.2",
    ]);
    assert!(
        stdout.contains("60 texts, 2 classes: jig 30, reel 30"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pretrained: lstm 1 layer(s) of 16"),
        "{stdout}"
    );
    // One head-only epoch, then two more.
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with("00:00")).count(),
        3,
        "{stdout}"
    );
    let output = seqlab(&[
        "classify",
        "--data",
        tunes.to_str().unwrap(),
        "--label-col",
        "mode",
        "--model",
        "gru",
        "--tokenizer",
        "char",
        "--epochs",
        "1",
        "--min-class-count",
        "5",
        "--device",
        "flex",
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("major 30, minor 30"));
}

#[test]
fn text_commands_refuse_bad_input_in_one_line() {
    let dir = scratch_dir("text-bad");
    let reviews = write_reviews(&dir);
    let reviews = reviews.to_str().unwrap();
    let empty = dir.join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{\"not\": \"a tokenizer\"}").unwrap();
    assert_one_line_error(
        &["classify", "--data", reviews, "--text-col", "review"],
        "no column \"review\"",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--where", "source"],
        "--where takes COLUMN=VALUE",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--where", "source=x"],
        "no rows have source = \"x\"",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--model", "cnn"],
        "unknown model \"cnn\"",
    );
    let lm = ["lm", "train", "--data", reviews, "--out"];
    let lm_out = dir.join("lm");
    let lm = [&lm[..], &[lm_out.to_str().unwrap()]].concat();
    assert_one_line_error(
        &[&lm[..], &["--grad-clip", "-1"]].concat(),
        "--grad-clip must be positive, got -1",
    );
    assert_one_line_error(
        &[&lm[..], &["--decay-after", "2", "--decay", "0"]].concat(),
        "--decay must be in (0, 1], got 0",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--max-len", "0"],
        "'0' for '--max-len",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--dropout", "1"],
        "the dropout must be at least 0 and below 1, got 1",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--transfer", "head"],
        "unknown transfer \"head\" (known: encoder, embedding)",
    );
    assert_one_line_error(
        &["classify", "--data", reviews, "--min-class-count", "1000"],
        "two classes",
    );
    assert_one_line_error(
        &["classify", "--data", empty.to_str().unwrap()],
        "empty.csv",
    );
    assert_one_line_error(&["classify", "--data", "/nonexistent.csv"], "cannot read");
    assert_one_line_error(
        &[
            "classify",
            "--data",
            reviews,
            "--pretrained-lm",
            dir.to_str().unwrap(),
        ],
        "manifest",
    );
    assert_one_line_error(
        &[
            "classify",
            "--data",
            reviews,
            "--tokenizer",
            garbage.to_str().unwrap(),
        ],
        "tokenizer",
    );
    assert_one_line_error(
        &["tokenize", "--tokenizer", "/nonexistent.json", "hi"],
        "/nonexistent.json",
    );
    assert_one_line_error(
        &[
            "lm",
            "train",
            "--data",
            reviews,
            "--out",
            dir.join("lm").to_str().unwrap(),
            "--seq-len",
            "100000",
        ],
        "too short",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args(["classify", "--data", "imdb", "--device", "flex"])
        .env("SEQLAB_DATA", &dir)
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(!output.status.success());
    assert!(
        err.contains("run datasets/fetch movie-reviews first"),
        "{err}"
    );
}

#[test]
fn the_seeds_classifiers_on_the_bert_tokenizer_have_its_parameter_counts() {
    let dir = scratch_dir("seed-classifiers");
    let reviews = write_reviews(&dir);
    let bert = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tokenizers/bert-base-uncased.json"
    );
    // MyRNNClassifier and MyLSTMClassifier: Embedding(30522, 10), two layers of 20, Linear(20, 2);
    // the MLP: Embedding(30522, 256), Flatten, Linear(256 * 64, 64), ReLU, Linear(64, 2).
    for (model, embedding, hidden, layers, parameters) in [
        ("rnn", "10", "20", "2", 306742),
        ("lstm", "10", "20", "2", 311182),
        (
            "mlp",
            "256",
            "64",
            "1",
            30522 * 256 + 256 * 64 * 64 + 64 + 64 * 2 + 2,
        ),
    ] {
        let stdout = run_on_flex(&[
            "classify",
            "--data",
            reviews.to_str().unwrap(),
            "--tokenizer",
            bert,
            "--model",
            model,
            "--embedding",
            embedding,
            "--hidden",
            hidden,
            "--layers",
            layers,
            "--max-len",
            "64",
            "--epochs",
            "1",
        ]);
        assert!(
            stdout.contains("tokenizer: huggingface, 30522 tokens"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(" {parameters} parameters")),
            "{model}: {stdout}"
        );
    }
}

#[test]
fn lm_train_reads_the_penn_treebanks_three_files_and_reports_test_perplexity() {
    // A miniature of `datasets/fetch ptb`: the three files in a fetched folder.
    let data = scratch_dir("ptb-data");
    let ptb = data.join("ptb");
    std::fs::create_dir_all(&ptb).unwrap();
    let sentence = |i: usize| format!(" the company said N shares of <unk> {} fell \n", i % 7);
    for (name, lines) in [("train", 400), ("valid", 60), ("test", 80)] {
        let text: String = (0..lines).map(sentence).collect();
        std::fs::write(ptb.join(format!("{name}.txt")), text).unwrap();
    }
    std::fs::write(ptb.join(".complete"), "").unwrap();
    let out = data.join("lm");
    let output = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args([
            "lm",
            "train",
            "--data",
            "ptb",
            "--tokenizer",
            "whitespace",
            "--min-freq",
            "1",
            "--hidden",
            "16",
            "--embedding",
            "8",
            "--seq-len",
            "10",
            "--batch-size",
            "4",
            "--epochs",
            "2",
            "--lr",
            "1e-2",
            "--out",
            out.to_str().unwrap(),
            "--device",
            "flex",
            "--no-progress",
        ])
        .env("SEQLAB_DATA", &data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", stderr(&output));
    // <pad>, <unk>, the, company, said, N, shares, of, fell, <eos> and "0".."6".
    assert!(
        stdout
            .contains("Penn Treebank: 400, 60 and 80 sentences; tokenizer: whitespace, 17 tokens"),
        "{stdout}"
    );
    // Each part is read whole and in order: 9 tokens and <eos> a line, 400 × 10 training and
    // 60 × 10 held-out tokens.
    assert!(
        stdout.contains("4000 training / 600 held-out tokens"),
        "{stdout}"
    );
    let test: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test perplexity "))
        .and_then(|v| v.parse().ok())
        .expect("the test perplexity is printed");
    // The sentences repeat: far below the 17 of a uniform guess after two epochs.
    assert!(test > 1.0 && test < 6.0, "{stdout}");
}

#[test]
fn lm_train_reads_plain_text_from_disk_as_from_memory() {
    let dir = scratch_dir("lm-disk");
    let corpus = dir.join("corpus.txt");
    let line = "the cat sat on the mat .\nthe dog sat on the log !\n";
    std::fs::write(&corpus, line.repeat(120)).unwrap();
    let cache = dir.join("cache");
    let train = |tokenizer: &str, out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec!["lm", "train", "--data", corpus.to_str().unwrap()];
        args.extend(["--tokenizer", tokenizer, "--out", out.to_str().unwrap()]);
        args.extend(words(
            "--hidden 16 --embedding 8 --seq-len 10 --batch-size 4 --epochs 2",
        ));
        args.extend(extra);
        (run_on_flex(&args), out)
    };
    let from_disk = ["--from-disk", "--cache-dir", cache.to_str().unwrap()];
    for tokenizer in ["word", "bpe"] {
        let (in_memory, memory) = train(tokenizer, &format!("{tokenizer}-memory"), &[]);
        let (first, disk) = train(tokenizer, &format!("{tokenizer}-disk"), &from_disk);
        assert!(first.contains("(encoded now"), "{first}");
        assert!(in_memory.contains("corpus.txt: "), "{in_memory}");
        assert!(!table_rows(&in_memory, 4).is_empty(), "{in_memory}");
        assert_eq!(
            table_rows(&first, 4),
            table_rows(&in_memory, 4),
            "{tokenizer}"
        );
        let weights = |dir: &std::path::Path| std::fs::read(dir.join("weights.safetensors"));
        assert_eq!(
            weights(&disk).unwrap(),
            weights(&memory).unwrap(),
            "{tokenizer}"
        );
        let (again, _) = train(tokenizer, &format!("{tokenizer}-again"), &from_disk);
        assert!(again.contains("(encoded before"), "{again}");
    }
    // A run stopped after an epoch resumes with the tokenizer it saved, to the same weights.
    let (_, parts) = train(
        "bpe",
        "bpe-parts",
        &[&from_disk[..], &["--stop-after", "1"]].concat(),
    );
    let parts_dir = parts.to_str().unwrap().to_string();
    train(
        "bpe",
        "bpe-parts",
        &[&from_disk[..], &["--resume", &parts_dir]].concat(),
    );
    assert_eq!(
        std::fs::read(parts.join("weights.safetensors")).unwrap(),
        std::fs::read(dir.join("bpe-disk/weights.safetensors")).unwrap(),
        "the resumed run ends elsewhere"
    );
    let mut bert = vec!["lm", "train", "--data", corpus.to_str().unwrap()];
    bert.extend(["--tokenizer", "wordpiece", "--out", "unused"]);
    bert.extend(from_disk);
    assert_one_line_error(&bert, "marks the start and end of every text");
}

#[test]
fn a_table_read_from_disk_trains_as_one_read_into_memory() {
    let dir = scratch_dir("table-disk");
    let reviews = write_reviews(&dir);
    let reviews = reviews.to_str().unwrap();
    let cache = dir.join("cache");
    let from_disk = ["--from-disk", "--cache-dir", cache.to_str().unwrap()];
    let weights = |dir: &std::path::Path| std::fs::read(dir.join("weights.safetensors")).unwrap();
    // A classifier (padded batches, a held-out split), with and without a filter.
    let classify = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec![
            "classify",
            "--data",
            reviews,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(words(
            "--model gru --embedding 8 --hidden 8 --epochs 2 --batch-size 16 --max-len 5",
        ));
        args.extend(extra);
        (run_on_flex(&args), out)
    };
    for filter in [&[][..], &["--where", "source=imdb"]] {
        let (in_memory, memory) = classify("classify-memory", filter);
        let (first, disk) = classify("classify-disk", &[filter, &from_disk].concat());
        assert!(first.contains("(encoded now"), "{first}");
        assert!(!table_rows(&in_memory, 4).is_empty(), "{in_memory}");
        assert_eq!(table_rows(&first, 4), table_rows(&in_memory, 4));
        let confusion = |out: &str| {
            let table = &out[out.find("predicted").unwrap()..];
            table[..table.find("wrote").unwrap()].to_string()
        };
        assert_eq!(confusion(&first), confusion(&in_memory));
        assert_eq!(weights(&disk), weights(&memory), "the weights differ");
        let (again, _) = classify("classify-again", &[filter, &from_disk].concat());
        assert!(again.contains("(encoded before"), "{again}");
        assert_eq!(table_rows(&again, 4), table_rows(&in_memory, 4));
    }
    // A language model on the table's texts, shuffled as they are in memory.
    let lm = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec![
            "lm",
            "train",
            "--data",
            reviews,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(words(
            "--hidden 16 --embedding 8 --seq-len 8 --batch-size 4 --epochs 2",
        ));
        args.extend(extra);
        (run_on_flex(&args), out)
    };
    let (in_memory, memory) = lm("lm-memory", &[]);
    let (first, disk) = lm("lm-disk", &from_disk);
    assert!(first.contains("(encoded now"), "{first}");
    assert_eq!(table_rows(&first, 4), table_rows(&in_memory, 4));
    assert_eq!(weights(&disk), weights(&memory), "the weights differ");
    let tunes = write_tunes(&dir);
    let mut args = vec!["classify", "--data", tunes.to_str().unwrap()];
    args.extend(from_disk);
    assert_one_line_error(&args, "ABC tunes are read into memory");
}

#[test]
fn a_table_read_from_disk_is_never_held_whole() {
    let dir = scratch_dir("table-disk-large");
    // 128 MiB of reviews, 1 KiB each: read into memory, the texts alone would take it all.
    let table = dir.join("large.csv");
    let review = "a long review of the film; ".repeat(37);
    let mut csv = String::from("text,label\n");
    for row in 0.. {
        if csv.len() >= 128 << 20 {
            break;
        }
        // In runs of a thousand, so that a spread of rows holds both.
        let label = row / 1000 % 2;
        csv.push_str(&format!("\"{review}{label}\",{label}\n"));
    }
    std::fs::write(&table, &csv).unwrap();
    drop(csv);
    let cache = dir.join("cache");
    let mut args = vec!["classify", "--data", table.to_str().unwrap(), "--from-disk"];
    args.extend(["--cache-dir", cache.to_str().unwrap()]);
    // Every row indexed, a spread of them trained on.
    args.extend(words(
        "--fast-dev-run --embedding 8 --hidden 8 --max-len 16 --device flex --no-progress",
    ));
    let (metrics, stdout) = run_with_metrics(&args, &dir.join("metrics.json"));
    assert!(stdout.contains("(encoded now"), "{stdout}");
    let peak = metrics["run"]["peak_memory_mib"].as_f64().unwrap();
    assert!(
        peak < 128.0,
        "a 128 MiB table read from disk peaked at {peak} MiB resident"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
