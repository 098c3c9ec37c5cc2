//! `seqlab export` and `seqlab import`: a trained language model out to ONNX (run by ONNX
//! Runtime), back in as a checkpoint, and fine-tuned into a classifier; the lessons' own
//! models exported and run; bad input refused in one line.

use crate::*;
use std::path::Path;

/// Runs `code` in Python with `sys.argv[1:]` = `args`, returning its standard output.
pub fn python(code: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 runs (pip install onnx onnxruntime; .ci/run does)");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python: {err}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Checks the file and runs it on a batch of two sequences of four steps (ids and lengths 1,
/// states zero, three characters a word), printing the metadata keys and the output shapes.
pub const RUN_IN_ONNX_RUNTIME: &str = r#"
import sys, numpy as np, onnx, onnxruntime as ort
onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
feeds = {}
for i in s.get_inputs():
    shape = [2 if d == "batch" else 4 if d == "time" else 3 if isinstance(d, str) else d
             for d in i.shape]
    ints = i.type == "tensor(int64)"
    feeds[i.name] = np.ones(shape, dtype=np.int64) if ints else np.zeros(shape, dtype=np.float32)
meta = s.get_modelmeta().custom_metadata_map
print(sorted(meta), meta["seqlab.kind"])
print([list(o.shape) for o in s.run(None, feeds)])
"#;

/// Runs `seqlab export` on the checkpoint `checkpoint` into `onnx`, returning what it printed.
pub fn export(checkpoint: &Path, onnx: &Path) -> String {
    let output = seqlab(&[
        "export",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--onnx",
        onnx.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Exports the checkpoint `checkpoint` into `onnx` and runs it in ONNX Runtime
/// ([`RUN_IN_ONNX_RUNTIME`]), returning its report.
pub fn export_and_run(checkpoint: &Path, onnx: &Path) -> String {
    export(checkpoint, onnx);
    python(RUN_IN_ONNX_RUNTIME, &[onnx.to_str().unwrap()])
}

#[test]
fn a_language_model_exports_to_onnx_imports_back_and_starts_a_classifier() {
    let dir = scratch_dir("onnx");
    let tunes = write_tunes(&dir);
    let (lm, onnx, imported) = (dir.join("lm"), dir.join("lm.onnx"), dir.join("imported"));
    let settings = "--tokenizer char --embedding 8 --hidden 16 --layers 2 --seq-len 16 \
                    --batch-size 4 --epochs 1 --max-train-tokens 1000";
    let data = ["--data", tunes.to_str().unwrap()];
    run_on_flex(
        &[
            &["lm", "train", "--out", lm.to_str().unwrap()][..],
            &data,
            &words(settings),
        ]
        .concat(),
    );

    let stdout = export(&lm, &onnx);
    assert!(
        stdout.contains("text-lm model, inputs tokens, state_h, state_c, outputs logits, next_state_h, next_state_c"),
        "{stdout}"
    );
    let report = python(RUN_IN_ONNX_RUNTIME, &[onnx.to_str().unwrap()]);
    let vocab = report.lines().nth(1).unwrap().to_string();
    assert!(
        report.starts_with("['seqlab.config', 'seqlab.kind', 'seqlab.tokenizer'] text-lm"),
        "{report}"
    );
    assert!(
        vocab.starts_with("[[2, 4, ") && vocab.ends_with("[2, 2, 16], [2, 2, 16]]"),
        "{report}"
    );

    let tokenizer = lm.join("tokenizer.json");
    let stdout = run_import(&onnx, tokenizer.to_str().unwrap(), &imported);
    assert!(
        stdout.contains("lstm, 2 layer(s) of 16 (embedding 8)"),
        "{stdout}"
    );
    let stdout = run_on_flex(
        &[
            &[
                "classify",
                "--label-col",
                "type",
                "--pretrained-lm",
                imported.to_str().unwrap(),
            ][..],
            &data,
            &words("--epochs 1 --lr 1e-2 --batch-size 8 --valid-fraction 0.2"),
        ]
        .concat(),
    );
    assert!(
        stdout.contains("pretrained: lstm 2 layer(s) of 16"),
        "{stdout}"
    );

    // The imported weights are the exported ones: exporting the import gives the same file
    // but for the metadata.
    let again = dir.join("again.onnx");
    export(&imported, &again);
    let same = python(
        "import sys, onnx\n\
         a, b = (onnx.load(p).graph for p in sys.argv[1:])\n\
         print(a.SerializeToString() == b.SerializeToString())",
        &[onnx.to_str().unwrap(), again.to_str().unwrap()],
    );
    assert_eq!(same.trim(), "True");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn run_import(onnx: &std::path::Path, tokenizer: &str, out: &std::path::Path) -> String {
    let output = seqlab(&[
        "import",
        "--onnx",
        onnx.to_str().unwrap(),
        "--tokenizer",
        tokenizer,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn export_and_import_refuse_what_they_cannot_read_in_one_line() {
    let dir = scratch_dir("onnx-errors");
    let out = dir.join("x.onnx");
    let out = out.to_str().unwrap();
    let missing = dir.join("nothing");
    assert_one_line_error(
        &[
            "export",
            "--checkpoint",
            missing.to_str().unwrap(),
            "--onnx",
            out,
        ],
        "no such checkpoint directory",
    );
    let text = dir.join("text.onnx");
    std::fs::write(&text, "not a model").unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/onnx/lstm_lm.onnx"
    );
    let five_words = dir.join("tokenizer.json");
    std::fs::write(&five_words, FIVE_WORDS_TOKENIZER).unwrap();
    let import = |onnx: &str| {
        vec![
            "import".to_string(),
            "--onnx".into(),
            onnx.into(),
            "--tokenizer".into(),
            five_words.to_str().unwrap().into(),
            "--out".into(),
            dir.join("imported").to_str().unwrap().into(),
        ]
    };
    let args = import(text.to_str().unwrap());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_one_line_error(&args, "text.onnx: not an ONNX model");
    let args = import(fixture);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_one_line_error(&args, "the model scores 20 tokens, the tokenizer has 5");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A word-level tokenizer of five tokens.
const FIVE_WORDS_TOKENIZER: &str = r#"{"version":"1.0","truncation":null,"padding":null,
"added_tokens":[],"normalizer":null,"pre_tokenizer":{"type":"Whitespace"},
"post_processor":null,"decoder":null,
"model":{"type":"WordLevel","vocab":{"<pad>":0,"<unk>":1,"a":2,"b":3,"c":4},"unk_token":"<unk>"}}"#;

#[test]
fn the_lessons_own_models_export_and_run_in_onnx_runtime() {
    let dir = scratch_dir("onnx-lessons");
    let (addition, copy, sinusoid, lm4) = (
        dir.join("addition"),
        dir.join("copy"),
        dir.join("sinusoid"),
        dir.join("lm4"),
    );
    for (command, out) in [
        ("addition", &addition),
        ("copy", &copy),
        ("sinusoid", &sinusoid),
    ] {
        run_on_flex(&[command, "--fast-dev-run", "--out", out.to_str().unwrap()]);
    }
    let lm4_args = ["human-numbers", "--model", "lm4", "--epochs", "1", "--out"];
    run_on_flex(&[&lm4_args[..], &[lm4.to_str().unwrap()]].concat());

    // The addition model decodes greedily in the graph: one step asked (steps = 1) for each
    // of the two sources.
    let stdout = export(&addition, &dir.join("addition.onnx"));
    assert!(
        stdout.contains("addition model, inputs source, lengths, steps, outputs symbols"),
        "{stdout}"
    );
    let report = python(
        RUN_IN_ONNX_RUNTIME,
        &[dir.join("addition.onnx").to_str().unwrap()],
    );
    assert!(
        report.starts_with("['seqlab.config', 'seqlab.kind'] addition\n[[2, 1]]"),
        "{report}"
    );
    // The notebook's hand-built copy network: two tanh RNN nodes.
    let report = export_and_run(&copy, &dir.join("copy.onnx"));
    assert!(report.contains("copy\n[[2, 4, "), "{report}");
    // The sinusoid's linear RNN, running free (one step asked).
    let report = export_and_run(&sinusoid, &dir.join("sinusoid.onnx"));
    assert!(report.contains("sinusoid\n[[2, 1, 1]]"), "{report}");
    // fastai's LMModel4: one ReLU RNN node, its state in and out.
    let report = export_and_run(&lm4, &dir.join("lm4.onnx"));
    assert!(
        report.contains("human-numbers\n[[2, 4, 30], [1, 2, 64]]"),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
