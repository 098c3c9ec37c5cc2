//! The benchmark's configurations and a short measurement.

use super::*;

#[test]
fn the_models_have_the_references_parameter_counts() {
    let device = Device::flex();
    let count = |name: &str, core: Core| {
        BenchLm::new(&BenchConfig::named(name)[0], core, &device).map(|model| model.num_params())
    };
    // The notebook's classifiers, as the reference builds them.
    assert_eq!(count("e_rnn", Core::Fused), Some(306742));
    assert_eq!(count("e_lstm", Core::Fused), Some(311182));
    assert_eq!(count("e_lstm", Core::BurnLstm), Some(311182));
    assert_eq!(count("e_rnn", Core::BurnLstm), None);
    // LMModel6: Embedding(30, 64), LSTM(64, 64, 2), Linear(64, 30).
    assert_eq!(count("a", Core::Plain), Some(1920 + 2 * 4 * 8320 + 1950));
}

#[test]
fn flop_counts_are_the_references() {
    // rnn_fwd_flops("lstm", 64, 64, 2) + 2 * 64 * 30 in the reference.
    let a = BenchConfig::named("a")[0];
    assert_eq!(
        a.forward_flops_per_token(),
        2.0 * 4.0 * 64.0 * 128.0 * 2.0 + 3840.0
    );
    let c = BenchConfig::named("c_lstm")[0];
    assert_eq!(
        c.forward_flops_per_token(),
        (2 * 4 * 512 * (64 + 512) + 2 * 4 * 512 * 1024 + 2 * 512 * 100) as f64
    );
    assert!(BenchConfig::named("z").is_empty());
    // rnn_fwd_flops("lstm", 13, 200, 5) + rnn_fwd_flops("lstm", 1, 200, 5) + 2 * 200 * 11.
    let d = BenchConfig::named("d")[0];
    let upper = 4 * 2 * 4 * 200 * 400;
    assert_eq!(
        d.forward_flops_per_token(),
        (2 * 4 * 200 * 213 + upper + 2 * 4 * 200 * 201 + upper + 2 * 200 * 11) as f64
    );
    // rnn_fwd_flops("lstm", 10, 20, 2): the classifier's head is not counted.
    let e = BenchConfig::named("e");
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[1].forward_flops_per_token(),
        (2 * 4 * 20 * (10 + 20) + 2 * 4 * 20 * 40) as f64
    );
}
