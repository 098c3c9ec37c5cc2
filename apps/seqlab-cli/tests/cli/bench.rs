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
    #[cfg(not(feature = "cuda"))]
    assert_one_line_error(
        &["bench", "--device", "cuda"],
        "device cuda is not built into this binary: rebuild with the cargo feature \"cuda\"",
    );
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

/// What one training step and one inference step of config a (LSTM, 2 layers, 16 steps)
/// enqueue on wgpu, from CubeCL's own log of the kernels it runs (`cubecl.toml` in the
/// working folder): per time step, layer and direction, one matrix product and one cell
/// kernel each way; the products outside the time loops (input projections, output layer,
/// weight gradients) do not grow with the steps.
#[test]
fn an_lstm_step_on_wgpu_is_two_launches_a_time_step_each_way() {
    let dir = std::env::temp_dir().join(format!("seqlab-launches-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("launches.log");
    std::fs::write(
        dir.join("cubecl.toml"),
        format!(
            "[profiling.logger]\nlevel = \"minimal\"\nfile = {:?}\nappend = false\n",
            log.to_str().unwrap()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_seqlab"))
        .args([
            "bench", "--config", "a", "--device", "wgpu", "--impl", "seqlab",
        ])
        .arg("--fast-dev-run")
        .current_dir(&dir)
        .env("XDG_CACHE_HOME", scratch_cache())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let log = std::fs::read_to_string(&log).unwrap();
    let launches = |kernel: &str| {
        log.lines()
            .filter(|line| line.starts_with(&format!("Executing {kernel}")))
            .count()
    };
    // 2 layers × 16 steps, in the training step and the inference step.
    let steps = 2 * 16;
    assert_eq!(launches("LstmForward"), 2 * steps, "{log}");
    assert_eq!(launches("LstmBackward"), steps, "{log}");
    let products = launches("MatmulEntry");
    assert!(
        (3 * steps..=3 * steps + 16).contains(&products),
        "{products} matrix products for {steps} steps"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
