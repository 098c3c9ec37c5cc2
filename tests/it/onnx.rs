//! ONNX export and import. Every exported model, run by ONNX Runtime (`scripts/onnx-check`,
//! which also runs `onnx.checker`), gives seqlab's outputs within 1e-5 relative — padded
//! batches of mixed lengths, carried states, stacked and bidirectional layers, every pooling,
//! a tagger's character features, encoder–decoders decoding greedily in an ONNX `Loop`, and
//! fastai's LMModel1–4 as ReLU RNN nodes, and the linear RNN running free.
//! Models exported from PyTorch (`scripts/onnx_fixtures.py`) import and give PyTorch's
//! outputs; bad files are refused in one line.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use seqlab::models::{
    CellKind, CharFeaturesConfig, DecoderKind, LanguageModel, LinRnnConfig, LmModel1Config,
    LmModel2Config, LmModel3Config, LmModel4Config, MlpClassifierConfig, NamedTensors,
    Nonlinearity, Pooling, PytorchWeights, RecurrentClassifierConfig, RecurrentLmConfig,
    RecurrentState, Seq2SeqConfig, SeqEncoderDecoderConfig, TaggerConfig, WeightReader, WordChars,
};
use seqlab::onnx::{
    Dim, ElementType, GraphBuilder, ImportedModel, OnnxModel, SimpleLm, import_file,
};
use seqlab::train::{AdamConfig, OptimizerConfig, Trainer, flat_cross_entropy, init_seeded};
use serde_json::{Value, json};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqlab-onnx-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn weights_of<M: PytorchWeights>(model: &M) -> NamedTensors {
    let mut named = NamedTensors::default();
    model.save_pytorch("", &mut named);
    named
}

fn floats<const D: usize>(tensor: Tensor<D>) -> Value {
    let shape = tensor.dims().to_vec();
    json!({ "dtype": "float32", "shape": shape, "data": tensor.into_data().try_to_vec::<f32>().unwrap() })
}

fn ints(shape: &[usize], data: &[i64]) -> Value {
    json!({ "dtype": "int64", "shape": shape, "data": data })
}

fn random_tokens(rng: &mut StdRng, vocab: usize, count: usize) -> Vec<i64> {
    (0..count)
        .map(|_| rng.random_range(0..vocab as i64))
        .collect()
}

fn token_tensor(tokens: &[i64], shape: [usize; 2], device: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(tokens.to_vec(), shape), device)
}

/// Saves `model` and describes the case for `scripts/onnx-check`.
fn case(dir: &Path, name: &str, model: OnnxModel, inputs: Value, outputs: Value) -> Value {
    let path = dir.join(format!("{name}.onnx"));
    model.save(&path).unwrap();
    json!({ "name": name, "model": path, "inputs": inputs, "outputs": outputs })
}

/// The ops of a model's graph, in order.
fn ops(model: &OnnxModel) -> Vec<String> {
    let graph = model.0.graph.as_ref().unwrap();
    graph
        .node
        .iter()
        .filter_map(|node| node.op_type.clone())
        .collect()
}

/// A language model's case: a batch of 3 × 7 tokens from a random state.
fn language_model_case(dir: &Path, name: &str, config: RecurrentLmConfig, seed: u64) -> Value {
    let device = Device::flex();
    let model = init_seeded(&device, seed, || config.init(&device));
    let onnx = seqlab::onnx::language_model(&config, &weights_of(&model)).unwrap();
    let cell_op = match config.kind {
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
        CellKind::Rnn(_) => "RNN",
    };
    let recurrent_nodes = ops(&onnx).iter().filter(|op| *op == cell_op).count();
    assert_eq!(
        recurrent_nodes, config.num_layers,
        "{name}: one {cell_op} node a layer"
    );

    let mut rng = StdRng::seed_from_u64(seed);
    let (batch, time) = (3, 7);
    let tokens = random_tokens(&mut rng, config.vocab_size, batch * time);
    let shape = [config.num_layers, batch, config.hidden_size];
    let random_state = |rng: &mut StdRng| {
        let values: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| rng.random_range(-0.5f32..0.5))
            .collect();
        Tensor::<3>::from_data(TensorData::new(values, shape), &device)
    };
    let hidden = random_state(&mut rng);
    let cell = (config.kind == CellKind::Lstm).then(|| random_state(&mut rng));
    let state = RecurrentState {
        hidden: hidden.clone(),
        cell: cell.clone(),
    };
    let out = model.forward_lm(token_tensor(&tokens, [batch, time], &device), Some(state));
    let next = out
        .state
        .expect("a recurrent language model returns its state");
    let mut inputs = json!({ "tokens": ints(&[batch, time], &tokens), "state_h": floats(hidden) });
    let mut outputs = json!({
        "logits": floats(out.logits),
        "next_state_h": floats(next.hidden),
    });
    if let (Some(cell), Some(next_cell)) = (cell, next.cell) {
        inputs["state_c"] = floats(cell);
        outputs["next_state_c"] = floats(next_cell);
    }
    case(dir, name, onnx, inputs, outputs)
}

/// A classifier's case: a padded batch of lengths 9, 4, 6 and 1.
fn classifier_case(dir: &Path, name: &str, config: RecurrentClassifierConfig, seed: u64) -> Value {
    let device = Device::flex();
    let model = init_seeded(&device, seed, || config.init(&device));
    let onnx = seqlab::onnx::classifier(&config, &weights_of(&model)).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let lengths = [9usize, 4, 6, 1];
    let (batch, time) = (lengths.len(), 9);
    let mut tokens = random_tokens(&mut rng, config.classifier.vocab_size, batch * time);
    // Padding is id 0 after each sequence, as the batcher pads.
    for (b, &length) in lengths.iter().enumerate() {
        tokens[b * time + length..(b + 1) * time].fill(0);
    }
    let logits = model
        .forward(
            token_tensor(&tokens, [batch, time], &device),
            Some(&lengths),
        )
        .unwrap();
    let lengths: Vec<i64> = lengths.iter().map(|&l| l as i64).collect();
    let inputs = json!({
        "tokens": ints(&[batch, time], &tokens),
        "lengths": ints(&[batch], &lengths),
    });
    case(dir, name, onnx, inputs, json!({ "logits": floats(logits) }))
}

/// A model built with seed 18 on flex.
fn seeded<M>(init: impl FnOnce(&Device) -> M) -> M {
    let device = Device::flex();
    init_seeded(&device, 18, || init(&device))
}

/// A tagger's case: sentences of 6, 4 and 2 words, each word slot 1 to 7 characters, read in
/// both directions.
fn tagger_case(dir: &Path) -> Value {
    let device = Device::flex();
    let config = TaggerConfig {
        bidirectional: true,
        chars: Some(CharFeaturesConfig::new(12, 4, 5)),
        ..TaggerConfig::new(30, 5, 6, 8)
    };
    let model = init_seeded(&device, 12, || config.init(&device));
    let onnx = seqlab::onnx::tagger(&config, &weights_of(&model)).unwrap();
    let mut rng = StdRng::seed_from_u64(12);
    let lengths = [6usize, 4, 2];
    let (batch, time, width) = (lengths.len(), 6, 7);
    let words = random_tokens(&mut rng, config.words, batch * time);
    let mut chars = random_tokens(&mut rng, 12, batch * time * width);
    let char_lengths: Vec<usize> = (0..batch * time)
        .map(|_| rng.random_range(1..=width))
        .collect();
    for (slot, &length) in char_lengths.iter().enumerate() {
        chars[slot * width + length..(slot + 1) * width].fill(0);
    }
    let word_chars = WordChars {
        ids: token_tensor(&chars, [batch * time, width], &device),
        lengths: &char_lengths,
    };
    let scores = model
        .forward(
            token_tensor(&words, [batch, time], &device),
            Some(&lengths),
            Some(word_chars),
        )
        .unwrap();
    let as_i64 = |values: &[usize]| values.iter().map(|&v| v as i64).collect::<Vec<_>>();
    let inputs = json!({
        "words": ints(&[batch, time], &words),
        "lengths": ints(&[batch], &as_i64(&lengths)),
        "chars": ints(&[batch, time, width], &chars),
        "char_lengths": ints(&[batch, time], &as_i64(&char_lengths)),
    });
    case(
        dir,
        "tagger-bilstm-chars",
        onnx,
        inputs,
        json!({ "scores": floats(scores) }),
    )
}

/// An encoder–decoder's case: greedy decoding of 6 symbols from sources of lengths 5, 2 and 4.
fn seq2seq_case(dir: &Path, name: &str, config: Seq2SeqConfig, seed: u64) -> Value {
    let device = Device::flex();
    // PyTorch's initialisation at these widths decodes one symbol throughout; weights (not
    // biases) four times larger make each step's choice depend on the source and the steps
    // before.
    let initial = weights_of(&init_seeded(&device, seed, || config.init(&device)));
    let mut weights = NamedTensors::default();
    for name in initial.names() {
        let (shape, values) = initial.get(name).unwrap();
        let scale = if name.contains("bias") { 1.0 } else { 4.0 };
        weights.insert(
            name,
            shape.to_vec(),
            values.iter().map(|v| scale * v).collect(),
        );
    }
    let model = load(config.init(&device), &weights);
    let onnx = seqlab::onnx::seq2seq(&config, &weights).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let lengths = [5usize, 2, 4];
    let (batch, time, steps) = (lengths.len(), 5, 6);
    let mut source = random_tokens(&mut rng, config.source_classes, batch * time);
    for (b, &length) in lengths.iter().enumerate() {
        source[b * time + length..(b + 1) * time].fill(0);
    }
    let one_hot = token_tensor(&source, [batch, time], &device)
        .one_hot::<3>(config.source_classes)
        .float();
    let chosen = model.greedy(one_hot, Some(&lengths), steps).unwrap();
    let chosen: Vec<i64> = chosen.into_data().iter::<i64>().collect();
    // Decoding that writes one symbol throughout would check little.
    let distinct: std::collections::BTreeSet<i64> = chosen.iter().copied().collect();
    assert!(distinct.len() > 1, "{name} decodes only {distinct:?}");
    let lengths: Vec<i64> = lengths.iter().map(|&l| l as i64).collect();
    let inputs = json!({
        "source": ints(&[batch, time], &source),
        "lengths": ints(&[batch], &lengths),
        "steps": ints(&[], &[steps as i64]),
    });
    let outputs = json!({ "symbols": { "shape": [batch, steps], "data": chosen } });
    case(dir, name, onnx, inputs, outputs)
}

/// One of fastai's first language models: 2 rows of `time` tokens, from a random state for
/// those that carry one.
fn simple_lm_case<M: LanguageModel + PytorchWeights>(
    dir: &Path,
    which: SimpleLm,
    model: M,
    time: usize,
) -> Value {
    let device = Device::flex();
    let onnx = seqlab::onnx::simple_language_model(which, &weights_of(&model)).unwrap();
    let mut rng = StdRng::seed_from_u64(17);
    let tokens = random_tokens(&mut rng, model.vocab_size(), 2 * time);
    let stateful = matches!(which, SimpleLm::Lm3 | SimpleLm::Lm4);
    let hidden = 16;
    let state = stateful.then(|| {
        let values: Vec<f32> = (0..2 * hidden)
            .map(|_| rng.random_range(0.0f32..0.5))
            .collect();
        Tensor::<3>::from_data(TensorData::new(values, [1, 2, hidden]), &device)
    });
    let out = model.forward_lm(
        token_tensor(&tokens, [2, time], &device),
        state
            .clone()
            .map(|hidden| RecurrentState { hidden, cell: None }),
    );
    let mut inputs = json!({ "tokens": ints(&[2, time], &tokens) });
    let mut outputs = json!({ "logits": floats(out.logits) });
    if let (Some(state), Some(next)) = (state, out.state) {
        inputs["state_h"] = floats(state);
        outputs["next_state_h"] = floats(next.hidden);
    }
    case(dir, &format!("simple-{which:?}"), onnx, inputs, outputs)
}

/// The linear RNN running free for 12 steps from two starting values.
fn lin_rnn_case(dir: &Path) -> Value {
    let device = Device::flex();
    let config = LinRnnConfig::new(1, 3, 1);
    let model = init_seeded(&device, 19, || config.init(&device));
    let onnx = seqlab::onnx::lin_rnn(&config, &weights_of(&model)).unwrap();
    let start = Tensor::<2>::from_data(TensorData::new(vec![0.5f32, -0.25], [2, 1]), &device);
    let generated = model.generate(start.clone(), 12).unwrap();
    let inputs = json!({ "start": floats(start), "steps": ints(&[], &[12]) });
    case(
        dir,
        "lin-rnn",
        onnx,
        inputs,
        json!({ "generated": floats(generated) }),
    )
}

/// The notebook's hand-built copy network on a batch of 3 sequences of 7 symbols.
fn hand_built_case(dir: &Path) -> Value {
    let device = Device::flex();
    let config = SeqEncoderDecoderConfig::new(4, 10);
    let model = init_seeded(&device, 20, || config.init(&device));
    let onnx = seqlab::onnx::hand_built_seq2seq(&config, &weights_of(&model)).unwrap();
    let mut rng = StdRng::seed_from_u64(20);
    let source = random_tokens(&mut rng, 4, 3 * 7);
    let one_hot = token_tensor(&source, [3, 7], &device)
        .one_hot::<3>(4)
        .float();
    let logits = model.forward(one_hot);
    let inputs = json!({ "source": ints(&[3, 7], &source) });
    case(
        dir,
        "hand-built-copy",
        onnx,
        inputs,
        json!({ "logits": floats(logits) }),
    )
}

fn mlp_case(dir: &Path) -> Value {
    let device = Device::flex();
    let config = MlpClassifierConfig {
        vocab_size: 50,
        embedding_size: 6,
        seq_len: 8,
        hidden_size: 10,
        classes: 3,
    };
    let model = init_seeded(&device, 5, || config.init(&device));
    let onnx = seqlab::onnx::mlp_classifier(&config, &weights_of(&model)).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let tokens = random_tokens(&mut rng, config.vocab_size, 4 * config.seq_len);
    let logits = model
        .forward(token_tensor(&tokens, [4, config.seq_len], &device))
        .unwrap();
    let inputs = json!({ "tokens": ints(&[4, config.seq_len], &tokens) });
    case(
        dir,
        "mlp",
        onnx,
        inputs,
        json!({ "logits": floats(logits) }),
    )
}

/// Runs `scripts/onnx-check` on `cases`, failing with its report unless every case passes.
pub fn onnx_runtime_agrees(dir: &Path, cases: Vec<Value>) {
    let file = dir.join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/onnx-check");
    let out = Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3 runs scripts/onnx-check (pip install onnx onnxruntime; .ci/run does)");
    let report = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    assert!(
        out.status.success(),
        "ONNX Runtime disagrees:\n{report}{errors}"
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok")).count(),
        cases.len()
    );
}

#[test]
fn exported_models_run_in_onnx_runtime_as_in_seqlab() {
    let dir = scratch();
    let tanh = CellKind::Rnn(Nonlinearity::Tanh);
    let relu = CellKind::Rnn(Nonlinearity::Relu);
    let lstm_lm = RecurrentLmConfig {
        embedding_size: Some(8),
        ..RecurrentLmConfig::new(CellKind::Lstm, 20, 12, 2)
    };
    let cases = vec![
        language_model_case(&dir, "lm-lstm-2-layers", lstm_lm, 1),
        language_model_case(
            &dir,
            "lm-lstm-tied",
            RecurrentLmConfig::awd_lstm(20, 10, 0.4),
            2,
        ),
        language_model_case(
            &dir,
            "lm-gru",
            RecurrentLmConfig::new(CellKind::Gru, 15, 9, 2),
            3,
        ),
        language_model_case(
            &dir,
            "lm-rnn-tanh",
            RecurrentLmConfig::new(tanh, 15, 9, 1),
            4,
        ),
        language_model_case(
            &dir,
            "lm-rnn-relu",
            RecurrentLmConfig::new(relu, 15, 9, 2),
            5,
        ),
        classifier_case(
            &dir,
            "classifier-bilstm-concat",
            RecurrentClassifierConfig::new(CellKind::Lstm, 40, 6, 8, 2, 3)
                .with_bidirectional(true)
                .with_pooling(Pooling::Concat),
            6,
        ),
        classifier_case(
            &dir,
            "classifier-gru-last",
            RecurrentClassifierConfig::new(CellKind::Gru, 40, 6, 8, 1, 2)
                .with_pooling(Pooling::Last),
            7,
        ),
        classifier_case(
            &dir,
            "classifier-bigru-mean",
            RecurrentClassifierConfig::new(CellKind::Gru, 40, 6, 8, 2, 4).with_bidirectional(true),
            8,
        ),
        classifier_case(
            &dir,
            "classifier-rnn-mean",
            RecurrentClassifierConfig::new(tanh, 40, 6, 8, 2, 2),
            9,
        ),
        mlp_case(&dir),
        tagger_case(&dir),
        lin_rnn_case(&dir),
        hand_built_case(&dir),
        simple_lm_case(
            &dir,
            SimpleLm::Lm1,
            seeded(|d| LmModel1Config::new(30, 16).init(d)),
            3,
        ),
        simple_lm_case(
            &dir,
            SimpleLm::Lm2,
            seeded(|d| LmModel2Config::new(30, 16).init(d)),
            5,
        ),
        simple_lm_case(
            &dir,
            SimpleLm::Lm3,
            seeded(|d| LmModel3Config::new(30, 16).init(d)),
            5,
        ),
        simple_lm_case(
            &dir,
            SimpleLm::Lm4,
            seeded(|d| LmModel4Config::new(30, 16).init(d)),
            5,
        ),
        seq2seq_case(
            &dir,
            "seq2seq-gru-zero",
            Seq2SeqConfig::new(CellKind::Gru, 6, 5, 12, DecoderKind::Zero).with_num_layers(2),
            13,
        ),
        seq2seq_case(
            &dir,
            "seq2seq-lstm-feedback",
            Seq2SeqConfig::new(CellKind::Lstm, 6, 5, 12, DecoderKind::Feedback).with_num_layers(2),
            14,
        ),
        seq2seq_case(
            &dir,
            "seq2seq-lstm-attention",
            Seq2SeqConfig::new(CellKind::Lstm, 6, 5, 12, DecoderKind::Attention),
            15,
        ),
        seq2seq_case(
            &dir,
            "seq2seq-rnn-attention",
            Seq2SeqConfig::new(
                CellKind::Rnn(Nonlinearity::Tanh),
                6,
                5,
                12,
                DecoderKind::Attention,
            )
            .with_num_layers(2),
            16,
        ),
    ];
    onnx_runtime_agrees(&dir, cases);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fixture of `scripts/onnx_fixtures.py`: the ONNX file and its inputs and PyTorch outputs.
fn pytorch_fixture(name: &str) -> (PathBuf, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx");
    let case = std::fs::read(dir.join(format!("{name}.json"))).unwrap();
    (
        dir.join(format!("{name}.onnx")),
        serde_json::from_slice(&case).unwrap(),
    )
}

fn values(tensor: &Value) -> (Vec<usize>, Vec<f64>) {
    let shape = serde_json::from_value(tensor["shape"].clone()).unwrap();
    let data = serde_json::from_value(tensor["data"].clone()).unwrap();
    (shape, data)
}

fn float_tensor<const D: usize>(tensor: &Value, device: &Device) -> Tensor<D> {
    let (shape, data) = values(tensor);
    let data: Vec<f32> = data.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

fn int_values(tensor: &Value) -> (Vec<usize>, Vec<i64>) {
    let (shape, data) = values(tensor);
    (shape, data.iter().map(|&v| v as i64).collect())
}

/// Asserts `got` is PyTorch's `want` within 1e-5 relative (and 1e-6 absolute, for values near
/// zero).
fn assert_matches_pytorch<const D: usize>(what: &str, got: Tensor<D>, want: &Value) {
    let (shape, want) = values(want);
    assert_eq!(got.dims().to_vec(), shape, "{what}: shape");
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        let diff = (f64::from(g) - w).abs();
        assert!(
            diff <= 1e-5 * w.abs() + 1e-6,
            "{what}[{i}]: seqlab {g}, PyTorch {w}"
        );
    }
}

fn load<M: PytorchWeights>(model: M, weights: &NamedTensors) -> M {
    let mut reader = WeightReader::new(weights);
    let model = model.load_pytorch("", &mut reader).unwrap();
    reader.finish().unwrap();
    model
}

#[test]
fn language_models_exported_from_pytorch_import_and_give_its_outputs() {
    let device = Device::flex();
    for name in ["lstm_lm", "lstm_lm_legacy"] {
        let (path, case) = pytorch_fixture(name);
        let ImportedModel::LanguageModel { config, weights } = import_file(&path).unwrap() else {
            panic!("{name}: not read as a language model");
        };
        let expected =
            RecurrentLmConfig::new(CellKind::Lstm, 20, 12, 2).with_embedding_size(Some(8));
        assert_eq!(config, expected, "{name}");
        let model = load(config.init(&device), &weights);
        let (shape, tokens) = int_values(&case["inputs"]["tokens"]);
        let state = RecurrentState {
            hidden: float_tensor(&case["inputs"]["h0"], &device),
            cell: Some(float_tensor(&case["inputs"]["c0"], &device)),
        };
        let out = model.forward_lm(
            token_tensor(&tokens, [shape[0], shape[1]], &device),
            Some(state),
        );
        let next = out.state.unwrap();
        let outputs = &case["outputs"];
        assert_matches_pytorch(&format!("{name} logits"), out.logits, &outputs["logits"]);
        assert_matches_pytorch(&format!("{name} h_n"), next.hidden, &outputs["h_n"]);
        assert_matches_pytorch(&format!("{name} c_n"), next.cell.unwrap(), &outputs["c_n"]);
    }
}

#[test]
fn a_packed_bidirectional_gru_classifier_from_pytorch_imports_gives_its_outputs_and_fine_tunes() {
    let device = Device::flex();
    let (path, case) = pytorch_fixture("bigru_classifier");
    let ImportedModel::Classifier { config, weights } = import_file(&path).unwrap() else {
        panic!("not read as a classifier");
    };
    let expected = RecurrentClassifierConfig::new(CellKind::Gru, 30, 6, 8, 1, 3)
        .with_bidirectional(true)
        .with_pooling(Pooling::Mean);
    assert_eq!(config, expected);
    let model = load(config.init(&device), &weights);
    let (shape, tokens) = int_values(&case["inputs"]["tokens"]);
    let (_, lengths) = int_values(&case["inputs"]["lengths"]);
    let lengths: Vec<usize> = lengths.iter().map(|&l| l as usize).collect();
    let batch = [shape[0], shape[1]];
    let logits = model
        .forward(token_tensor(&tokens, batch, &device), Some(&lengths))
        .unwrap();
    assert_matches_pytorch("logits", logits, &case["outputs"]["logits"]);

    // A few steps of fine-tuning on the imported model lower its loss.
    let mut trainer =
        Trainer::new(&device, OptimizerConfig::Adam(AdamConfig::pytorch())).with_progress(false);
    let mut model = model.train().fork(trainer.device());
    let targets = Tensor::<2, Int>::from_data([[0], [1], [2], [1]], trainer.device());
    let mut losses = Vec::new();
    for _ in 0..5 {
        let tokens = token_tensor(&tokens, batch, trainer.device());
        let logits = model.forward(tokens, Some(&lengths)).unwrap();
        let loss = flat_cross_entropy(logits.reshape([4, 1, 3]), targets.clone());
        let (stepped, loss) = trainer.step(model, loss, 0.01).unwrap();
        model = stepped;
        losses.push(loss);
    }
    assert!(
        losses[4] < losses[0] - 0.05,
        "fine-tuning losses {losses:?}"
    );
}

#[test]
fn exported_models_import_back_to_the_same_weights() {
    let device = Device::flex();
    let config = RecurrentClassifierConfig::new(CellKind::Lstm, 40, 6, 8, 2, 3)
        .with_bidirectional(true)
        .with_pooling(Pooling::Mean);
    let model = init_seeded(&device, 11, || config.init(&device));
    let weights = weights_of(&model);
    let bytes = seqlab::onnx::classifier(&config, &weights)
        .unwrap()
        .to_bytes();
    let ImportedModel::Classifier {
        config: read,
        weights: read_weights,
    } = seqlab::onnx::import(&bytes, "classifier.onnx").unwrap()
    else {
        panic!("not read as a classifier");
    };
    assert_eq!(read, config);
    for name in weights.names() {
        assert_eq!(read_weights.get(name), weights.get(name), "{name}");
    }
}

#[test]
fn bad_onnx_files_are_refused_in_one_line() {
    let (path, _) = pytorch_fixture("lstm_lm_legacy");
    let bytes = std::fs::read(&path).unwrap();
    let error = |bytes: &[u8]| {
        seqlab::onnx::import(bytes, "m.onnx")
            .unwrap_err()
            .to_string()
    };
    let truncated = error(&bytes[..bytes.len() / 2]);
    assert!(
        truncated.starts_with("m.onnx: not an ONNX model: "),
        "{truncated}"
    );
    let text = error(b"this is a text file, not a model\n");
    assert!(text.starts_with("m.onnx: not an ONNX model"), "{text}");
    assert!(error(b"").contains("it holds no graph"), "{}", error(b""));

    // An op import does not read, named with its node.
    let mut graph = GraphBuilder::new("odd");
    let tokens = graph.input(
        "tokens",
        ElementType::Int64,
        &[Dim::Named("b"), Dim::Named("t")],
    );
    let table = graph.weight("emb.weight", &[5, 2], &[0.5; 10]);
    let embedded = graph.op("Gather", &[&table, &tokens], vec![]);
    let squashed = graph.op("Sigmoid", &[&embedded], vec![]);
    graph.output(
        squashed,
        "y",
        ElementType::Float,
        &[Dim::Named("b"), Dim::Named("t"), Dim::Fixed(2)],
    );
    let odd = error(&graph.into_model("odd").to_bytes());
    assert!(odd.contains("(Sigmoid) is not supported"), "{odd}");

    // An LSTM that reads another width than the embedding gives.
    let config = RecurrentLmConfig::new(CellKind::Lstm, 20, 12, 1).with_embedding_size(Some(8));
    let device = Device::flex();
    let mut weights = weights_of(&config.init(&device));
    weights.insert("i_h.weight", vec![20, 5], vec![0.0; 100]);
    // Export checks each layer's weights against the config, not the embedding's width.
    let bytes = seqlab::onnx::language_model(&config, &weights)
        .unwrap()
        .to_bytes();
    let shapes = error(&bytes);
    assert!(
        shapes.contains("reads 8 features, its embedding gives 5"),
        "{shapes}"
    );
    assert_eq!(shapes.lines().count(), 1);
}
