//! `seqlab char-lm` and `seqlab markov`.

use crate::*;

#[test]
fn char_lm_trains_writes_a_checkpoint_and_samples_from_it() {
    let (dir, play, checkpoint) = play_and_model("char-lm");
    let paths = char_lm_train(&play, &checkpoint);
    let sizes = "--hidden 32 --embedding 8 --layers 1 --seq-len 40 --batch-size 8";
    let run = "--epochs 2 --lr 0.01 --sample-length 40 --no-progress";
    let output = seqlab(&[&paths[..], &words(sizes), &words(run)].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "char-lm: 1 files, 12150 characters (30 distinct), 1215 held out",
        "held out:",
        "bits per character",
        "--- sample at temperature 0.5:",
        "--- sample at temperature 1:",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    for file in [
        "manifest.json",
        "config.json",
        "vocab.json",
        "weights.safetensors",
    ] {
        assert!(checkpoint.join(file).exists(), "{file}");
    }
    let ck = checkpoint.to_str().unwrap();
    let sample = |chosen: &[&str], device: &[&str]| {
        seqlab(
            &[
                &["char-lm", "sample", "--checkpoint", ck][..],
                chosen,
                device,
            ]
            .concat(),
        )
    };
    let greedy_args = ["--prime", "HAMLET.\n", "--length", "30", "--greedy"];
    let nucleus_args = [
        "--top-p",
        "0.9",
        "--top-k",
        "5",
        "--temperature",
        "0.7",
        "--seed",
        "3",
    ];
    let first = sample(&greedy_args, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        text.starts_with("HAMLET.\n") && text.chars().count() >= 38,
        "{text}"
    );
    assert!(
        stderr(&first).contains("characters/s"),
        "{}",
        stderr(&first)
    );
    assert_eq!(
        sample(&greedy_args, &[]).stdout,
        first.stdout,
        "greedy is deterministic"
    );
    let nucleus = sample(&nucleus_args, &[]);
    assert!(nucleus.status.success(), "{}", stderr(&nucleus));
    // On wgpu every character is chosen on the device; the draws are the CPU's, so the text is.
    for (on_cpu, chosen) in [(&first, &greedy_args[..]), (&nucleus, &nucleus_args[..])] {
        let on_wgpu = sample(chosen, &["--device", "wgpu"]);
        assert!(on_wgpu.status.success(), "{}", stderr(&on_wgpu));
        assert_eq!(
            String::from_utf8_lossy(&on_wgpu.stdout),
            String::from_utf8_lossy(&on_cpu.stdout),
            "{chosen:?}"
        );
    }

    // Bad input, each in one line.
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck, "--prime", "Zounds"],
        "character 'Z' (at position 0) is not in the vocabulary",
    );
    assert_one_line_error(
        &[
            "char-lm",
            "sample",
            "--checkpoint",
            ck,
            "--temperature",
            "0",
        ],
        "temperature must be above 0",
    );
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck, "--top-p", "2"],
        "top-p must be in (0, 1]",
    );
    let manifest = checkpoint.join("manifest.json");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, original.replace("char-lm", "pos-tagger")).unwrap();
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck],
        "holds a pos-tagger checkpoint, not a char-lm one",
    );
    std::fs::write(&manifest, &original).unwrap();
    let weights = checkpoint.join("weights.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&weights, &bytes).unwrap();
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", ck],
        "weights.safetensors is corrupt: CRC-32",
    );
    assert_one_line_error(
        &["char-lm", "sample", "--checkpoint", dir.to_str().unwrap()],
        "is not a seqlab checkpoint",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn char_lm_and_markov_refuse_bad_text_in_one_line() {
    let dir = scratch_dir("bad-text");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    };
    let empty = write("empty.txt", b"");
    let binary = write("binary.txt", b"\x7fELF\x02\x01\x00\x00");
    let latin1 = write("latin1.txt", b"caf\xe9 au lait\n");
    let short = write("short.txt", b"To be.\n");
    let out = dir.join("out");
    let out = out.to_str().unwrap();
    // Larger than the 1 GiB read into memory: sparse files, so nothing is written to disk.
    let huge = |name: &str| {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .set_len((1 << 30) + 1)
            .unwrap();
        path.to_str().unwrap().to_string()
    };
    let (huge_text, huge_table) = (huge("huge.txt"), huge("huge.csv"));
    assert_one_line_error(
        &["char-lm", "train", "--out", out, "--text", &huge_text],
        // Over 1 GiB, the corpus is read from disk, a piece at a time: the first piece of
        // the sparse file is all NUL bytes.
        "huge.txt: the file looks binary (a NUL byte at offset 0)",
    );
    assert_one_line_error(
        &["classify", "--data", &huge_table],
        // So is a table, indexed a piece at a time.
        "huge.csv: the file looks binary (a NUL byte at offset 0), not text",
    );
    for command in [&["char-lm", "train", "--out", out][..], &["markov"][..]] {
        let run = |text: &str, expected: &str| {
            let mut args = command.to_vec();
            args.extend(["--text", text]);
            assert_one_line_error(&args, expected);
        };
        run(&empty, "empty.txt: the file is empty");
        run(
            &binary,
            "binary.txt: the file looks binary (a NUL byte at offset 6)",
        );
        run(
            &latin1,
            "latin1.txt: the file is not UTF-8 text (invalid byte at offset 3)",
        );
        run("/no/such/corpus.txt", "/no/such/corpus.txt: No such file");
        run(dir.join("out-none").to_str().unwrap(), "No such file");
    }
    assert_one_line_error(
        &["char-lm", "train", "--out", out, "--text", &short],
        "too short for one batch",
    );
    assert_one_line_error(
        &[
            "char-lm",
            "train",
            "--out",
            out,
            "--text",
            &short,
            "--valid-fraction",
            "1.5",
        ],
        "strictly between 0 and 1",
    );
    assert_one_line_error(
        &[
            "char-lm", "train", "--out", out, "--text", &short, "--hidden", "0",
        ],
        "'0' for '--hidden",
    );
    assert_one_line_error(&["char-lm", "train", "--out", out], "--text");
    assert!(
        !std::path::Path::new(out).exists(),
        "a failed run leaves no checkpoint"
    );
    assert_one_line_error(&["markov", "--text", &short, "--order", "6..2"], "is empty");
    assert_one_line_error(&["markov", "--text", &short, "--order", "30"], "too high");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn markov_scores_each_order_and_samples_from_the_best() {
    let dir = scratch_dir("markov");
    let play = write_play(&dir);
    let output = seqlab(&[
        "markov",
        "--text",
        play.to_str().unwrap(),
        "--order",
        "1..4",
        "--length",
        "50",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("order"))
        .skip(1)
        .take(4)
        .collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    assert!(rows[0].trim_start().starts_with('1') && rows[3].trim_start().starts_with('4'));
    assert!(stdout.contains("best: order"), "{stdout}");
    assert!(stdout.contains("--- sample (order"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corpus_read_from_disk_trains_as_one_read_into_memory() {
    let (dir, play, _) = play_and_model("char-lm-disk");
    let cache = dir.join("cache");
    let (memory, disk) = (dir.join("memory"), dir.join("disk"));
    let train = |out: &std::path::Path, extra: &[&str]| {
        let mut args = char_lm_train(&play, out);
        args.extend(TINY_CHAR_LM);
        args.extend(words(
            "--windows stream --seq-len 20 --batch-size 8 --epochs 2 --sample-length 0",
        ));
        args.extend(extra);
        run_on_flex(&args)
    };
    let from_disk = ["--from-disk", "--cache-dir", cache.to_str().unwrap()];
    let in_memory = train(&memory, &[]);
    let first = train(&disk, &from_disk);
    assert!(first.contains("(encoded now"), "{first}");
    assert!(!table_rows(&in_memory, 4).is_empty(), "{in_memory}");
    assert_eq!(table_rows(&first, 4), table_rows(&in_memory, 4));
    let weights = |dir: &std::path::Path| std::fs::read(dir.join("weights.safetensors")).unwrap();
    assert_eq!(weights(&disk), weights(&memory), "the weights differ");
    // The second run reads the id file the first wrote; the same run again.
    let again = train(&disk, &from_disk);
    assert!(again.contains("(encoded before"), "{again}");
    assert_eq!(table_rows(&again, 4), table_rows(&in_memory, 4));
    // A damaged id file is written anew, not read.
    for entry in std::fs::read_dir(cache.join("ids")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    }
    let repaired = train(&disk, &from_disk);
    assert!(repaired.contains("(encoded now"), "{repaired}");
    assert_eq!(table_rows(&repaired, 4), table_rows(&in_memory, 4));
}

#[test]
fn a_corpus_read_from_disk_is_never_held_whole() {
    let dir = scratch_dir("char-lm-disk-large");
    // 128 MiB of text: read into memory, its ids alone would take 512 MiB.
    let corpus = dir.join("corpus.txt");
    let scene = "HAMLET.\nTo be, or not to be, that is the question.\n\n";
    let text = scene.repeat((128 << 20) / scene.len());
    std::fs::write(&corpus, &text).unwrap();
    drop(text);
    let out = dir.join("out");
    let mut args = vec!["char-lm", "train", "--text", corpus.to_str().unwrap()];
    let cache = dir.join("cache");
    args.extend(["--out", out.to_str().unwrap(), "--from-disk"]);
    args.extend(["--cache-dir", cache.to_str().unwrap()]);
    args.extend(TINY_CHAR_LM);
    args.extend(words(
        "--windows stream --max-chars 20000 --valid-fraction 0.0005 --sample-length 0 \
         --device flex --no-progress",
    ));
    let (metrics, _) = run_with_metrics(&args, &dir.join("metrics.json"));
    assert!(out.join("weights.safetensors").exists());
    // The binary's own footprint (about 50 MiB) and a piece of the text: less than the text.
    let peak = metrics["run"]["peak_memory_mib"].as_f64().unwrap();
    assert!(
        peak < 128.0,
        "a 128 MiB corpus read from disk peaked at {peak} MiB resident"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
