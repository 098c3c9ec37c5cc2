//! `seqlab pos-tag`.

use crate::*;

#[test]
fn pos_tag_runs_the_tutorial_and_prints_its_score_matrices() {
    let output = seqlab(&["pos-tag", "train", "--no-progress"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "pos-tag: 2 sentences (0 held out), 9 words, 3 tags; embedding 6, hidden 6",
        "scores before training, \"The dog ate the apple\" (rows: words; columns: V, NN, DET)",
        "scores after training",
        "tags: DET NN V DET NN",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    let rows = stdout.lines().filter(|l| l.starts_with("  [")).count();
    assert_eq!(rows, 10, "{stdout}");
}

#[test]
fn pos_tag_trains_on_a_brown_file_and_tags_from_its_checkpoint() {
    let dir = scratch_dir("pos-tag");
    let corpus = dir.join("tagged.txt");
    let lines = [
        "\tThe/at jury/nn said/vbd it/pps ./.",
        "\tThe/at City/nn-tl Committee/nn-tl met/vbd ./.",
        "\tA/at dog/nn barked/vbd loudly/rb ./.",
    ];
    std::fs::write(&corpus, (lines.join("\n") + "\n").repeat(20)).unwrap();
    let tagger = dir.join("tagger");
    let output = seqlab(&[
        "pos-tag",
        "train",
        "--corpus",
        corpus.to_str().unwrap(),
        "--out",
        tagger.to_str().unwrap(),
        "--epochs",
        "8",
        "--embedding",
        "16",
        "--hidden",
        "16",
        "--char-embedding",
        "8",
        "--char-hidden",
        "8",
        "--lr",
        "0.02",
        "--valid-fraction",
        "0.2",
        "--no-progress",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("most-frequent-tag baseline"), "{stdout}");
    let tagged = seqlab(&[
        "pos-tag",
        "tag",
        "--checkpoint",
        tagger.to_str().unwrap(),
        "The dog said it .",
    ]);
    assert!(tagged.status.success(), "{}", stderr(&tagged));
    assert_eq!(
        String::from_utf8_lossy(&tagged.stdout).trim(),
        "The/at dog/nn said/vbd it/pps ./."
    );
    // Exported to ONNX, with its vocabularies, it runs in ONNX Runtime.
    let onnx = dir.join("tagger.onnx");
    let stdout = crate::onnx::export(&tagger, &onnx);
    assert!(
        stdout.contains(
            "pos-tagger model, inputs words, lengths, chars, char_lengths, outputs scores"
        ),
        "{stdout}"
    );
    let report = crate::onnx::python(crate::onnx::RUN_IN_ONNX_RUNTIME, &[onnx.to_str().unwrap()]);
    assert!(
        report.starts_with(
            "['seqlab.chars', 'seqlab.config', 'seqlab.kind', 'seqlab.tags', 'seqlab.words'] pos-tagger"
        ),
        "{report}"
    );
    assert!(report.contains("[[2, 4, "), "{report}");
    // Bad input, one line each.
    let broken = dir.join("broken.txt");
    std::fs::write(&broken, "\tThe/at jury\n").unwrap();
    assert_one_line_error(
        &["pos-tag", "train", "--corpus", broken.to_str().unwrap()],
        "broken.txt:1: token \"jury\" is not word/tag",
    );
    let conllu = dir.join("bad.conllu");
    std::fs::write(&conllu, "1\tDogs\tdog\n").unwrap();
    assert_one_line_error(
        &["pos-tag", "train", "--corpus", conllu.to_str().unwrap()],
        "bad.conllu:1: expected 10 tab-separated fields, found 3",
    );
    let manifest = tagger.join("manifest.json");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, original.replace("pos-tagger", "char-lm")).unwrap();
    assert_one_line_error(
        &[
            "pos-tag",
            "tag",
            "--checkpoint",
            tagger.to_str().unwrap(),
            "The dog",
        ],
        "holds a char-lm checkpoint, not a pos-tagger one",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
