//! `seqlab bench`.

use crate::*;

#[test]
fn bench_refuses_bad_options_in_one_line() {
    assert_one_line_error(&["bench", "--config", "z"], "unknown configuration \"z\"");
    assert_one_line_error(&["bench", "--steps", "0"], "--steps must be at least 1");
    assert_one_line_error(
        &["bench", "--reference", "/no/such/pytorch.json"],
        "cannot read reference",
    );
    assert_one_line_error(&["bench", "--device", "tpu"], "unknown device \"tpu\"");
}

/// A short measurement of config b writes the reference's JSON fields and prints its row.
#[test]
fn bench_measures_a_config_and_writes_the_references_json() {
    let dir = std::env::temp_dir().join(format!("seqlab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let output = seqlab(&[
        "bench",
        "--config",
        "b",
        "--device",
        "flex",
        "--impl",
        "seqlab,burn-nn-lstm",
        "--steps",
        "2",
        "--min-time",
        "0",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("b_rnn    seqlab         flex"), "{stdout}");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = document["configs"].as_array().unwrap();
    // burn's own layer is an LSTM only: config b has the seqlab row alone.
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "b_rnn");
    assert_eq!(rows[0]["impl"], "seqlab");
    assert_eq!(rows[0]["params"], 1920 + 2 * 8320 + 1950);
    for field in ["train_tok_s", "infer_tok_s", "train_gflops"] {
        assert!(rows[0][field].as_f64().unwrap() > 0.0, "{field}");
    }
    assert_eq!(document["device"], "flex");
    std::fs::remove_dir_all(&dir).unwrap();
}
