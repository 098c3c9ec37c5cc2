//! seqlab's recurrent layers against PyTorch's: the fixtures in `tests/fixtures/pytorch/`,
//! written by `scripts/pytorch_fixtures.py` from `nn.RNN`/`nn.LSTM`/`nn.GRU` (1 and 2 layers,
//! one and two directions, zero and given initial state, full and packed sequences), give
//! outputs, final states and gradients of every input and weight. Each value must satisfy
//! `|seqlab − torch| ≤ tol · (|torch| + 1)`, with tol 1e-5 on the CPU devices and 1e-4 on wgpu.

use std::path::Path;

use burn::tensor::{Int, Tensor, TensorData};
use seqlab::Device;
use seqlab::device::DeviceChoice;
use seqlab::models::{
    CellKind, NamedTensors, Nonlinearity, PytorchWeights, Recurrent, RecurrentConfig,
    RecurrentState, WeightReader, WeightsError,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn shape(value: &Value) -> Vec<usize> {
    value["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn data(value: &Value) -> Vec<f32> {
    value["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn tensor<const D: usize>(value: &Value, device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(data(value), shape(value)), device)
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

fn assert_close(what: &str, got: Vec<f32>, expected: &Value, tol: f32) {
    let expected = data(expected);
    assert_eq!(got.len(), expected.len(), "{what}: sizes");
    for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
        assert!(
            (a - b).abs() <= tol * (b.abs() + 1.0),
            "{what}[{i}]: seqlab {a}, torch {b}"
        );
    }
}

fn kind(name: &str) -> CellKind {
    match name {
        "lstm" => CellKind::Lstm,
        "gru" => CellKind::Gru,
        "rnn_tanh" => CellKind::Rnn(Nonlinearity::Tanh),
        "rnn_relu" => CellKind::Rnn(Nonlinearity::Relu),
        other => panic!("unknown kind {other}"),
    }
}

/// Builds the case's layer with PyTorch's weights, loaded by their PyTorch names.
fn layer(case: &Value, device: &Device, fused: bool) -> Recurrent {
    let size = |key: &str| case[key].as_u64().unwrap() as usize;
    let config = RecurrentConfig::new(
        kind(case["kind"].as_str().unwrap()),
        size("input_size"),
        size("hidden_size"),
    )
    .with_num_layers(size("num_layers"))
    .with_bidirectional(case["bidirectional"].as_bool().unwrap())
    .with_fused(fused);
    let mut named = NamedTensors::default();
    for (name, value) in case["params"].as_object().unwrap() {
        named.insert(name.clone(), shape(value), data(value));
    }
    let mut reader = WeightReader::new(&named);
    let layer = config
        .init(device)
        .load_pytorch("", &mut reader)
        .unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
    reader.finish().unwrap();
    layer
}

fn check_case(case: &Value, device: &Device, fused: bool, tol: f32) {
    let name = format!(
        "{} on {device:?}{}",
        case["name"].as_str().unwrap(),
        if fused { "" } else { " (plain)" }
    );
    let device = device.clone().autodiff();
    let layer = layer(case, &device, fused);
    let x = tensor::<3>(&case["x"], &device).require_grad();
    let h0 = (!case["h0"].is_null()).then(|| tensor::<3>(&case["h0"], &device).require_grad());
    let c0 = (!case["c0"].is_null()).then(|| tensor::<3>(&case["c0"], &device).require_grad());
    let state = h0.clone().map(|hidden| RecurrentState {
        hidden,
        cell: c0.clone(),
    });
    let lengths: Option<Vec<usize>> = case["lengths"]
        .as_array()
        .map(|l| l.iter().map(|v| v.as_u64().unwrap() as usize).collect());
    let (out, end) = match &lengths {
        Some(lengths) => layer.forward_padded(x.clone(), state, lengths),
        None => layer.forward(x.clone(), state),
    }
    .unwrap();
    let mut loss = (out.clone() * tensor::<3>(&case["w_out"], &device)).sum()
        + (end.hidden.clone() * tensor::<3>(&case["w_h"], &device)).sum();
    if let Some(cell) = &end.cell {
        loss = loss + (cell.clone() * tensor::<3>(&case["w_c"], &device)).sum();
    }
    let torch_loss = case["loss"].as_f64().unwrap() as f32;
    let seqlab_loss = values(loss.clone())[0];
    assert!(
        (seqlab_loss - torch_loss).abs() <= 10.0 * tol * (torch_loss.abs() + 1.0),
        "{name} loss: seqlab {seqlab_loss}, torch {torch_loss}"
    );
    assert_close(&format!("{name} output"), values(out), &case["out"], tol);
    assert_close(
        &format!("{name} h_n"),
        values(end.hidden),
        &case["h_n"],
        tol,
    );
    if let Some(cell) = end.cell {
        assert_close(&format!("{name} c_n"), values(cell), &case["c_n"], tol);
    }
    let grads = loss.backward();
    let expected = &case["grads"];
    assert_close(
        &format!("{name} d x"),
        values(x.grad(&grads).unwrap()),
        &expected["x"],
        tol,
    );
    if let Some(h0) = h0 {
        assert_close(
            &format!("{name} d h0"),
            values(h0.grad(&grads).unwrap()),
            &expected["h0"],
            tol,
        );
    }
    if let Some(c0) = c0 {
        assert_close(
            &format!("{name} d c0"),
            values(c0.grad(&grads).unwrap()),
            &expected["c0"],
            tol,
        );
    }
    let directions = if case["bidirectional"].as_bool().unwrap() {
        2
    } else {
        1
    };
    for (index, weights) in layer.weights.iter().enumerate() {
        let suffix = format!(
            "l{}{}",
            index / directions,
            if index % directions == 1 {
                "_reverse"
            } else {
                ""
            }
        );
        let check = |what: &str, grad: Option<Tensor<2>>| {
            let key = format!("{what}_{suffix}");
            assert_close(
                &format!("{name} d {key}"),
                values(grad.unwrap()),
                &expected[&key],
                tol,
            );
        };
        check("weight_ih", weights.weight_ih.grad(&grads));
        check("weight_hh", weights.weight_hh.grad(&grads));
        let bias = |b: &Option<burn::module::Param<Tensor<1>>>| {
            b.as_ref().unwrap().grad(&grads).map(|g| g.unsqueeze_dim(0))
        };
        check("bias_ih", bias(&weights.bias_ih));
        check("bias_hh", bias(&weights.bias_hh));
    }
}

/// Checks every `every`-th case (every kind, depth, direction, state and length setting
/// appears among any third of them).
fn check_all(device: &Device, fused: bool, tol: f32, every: usize) {
    let fixtures = fixture("recurrent.json");
    let cases = fixtures["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 64);
    for case in cases.iter().step_by(every) {
        check_case(case, device, fused, tol);
    }
}

#[test]
fn fused_layers_match_pytorch_on_flex() {
    check_all(&Device::flex(), true, 1e-5, 1);
}

#[test]
fn plain_layers_match_pytorch_on_flex() {
    check_all(&Device::flex(), false, 1e-5, 1);
}

#[test]
fn fused_layers_match_pytorch_on_ndarray() {
    check_all(&DeviceChoice::NdArray.device().unwrap(), true, 1e-5, 1);
}

/// The fused GPU operation (`cube_fused`: a product and one kernel a time step each way) on every case.
#[test]
fn fused_layers_match_pytorch_on_wgpu() {
    check_all(&DeviceChoice::Wgpu.device().unwrap(), true, 1e-4, 1);
}

/// The plain path's tensor operations on wgpu: a third of the cases (every kind, depth,
/// direction, state and length setting among them).
#[test]
fn plain_layers_match_pytorch_on_wgpu() {
    check_all(&DeviceChoice::Wgpu.device().unwrap(), false, 1e-4, 3);
}

/// A whole PyTorch model's `state_dict`, saved with `safetensors.torch.save_file`, loaded into
/// seqlab's embedding, LSTM and linear layers by name, gives PyTorch's logits.
#[test]
fn a_pytorch_state_dict_loads_and_gives_pytorchs_logits() {
    let device = Device::flex();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch/tiny_lm.safetensors");
    let named = NamedTensors::load_safetensors(&path).unwrap();
    assert_eq!(named.len(), 1 + 8 + 2);
    let mut reader = WeightReader::new(&named);
    let embedding = burn::nn::EmbeddingConfig::new(11, 4)
        .init(&device)
        .load_pytorch("embedding.", &mut reader)
        .unwrap();
    let lstm = RecurrentConfig::lstm(4, 6)
        .with_num_layers(2)
        .init(&device)
        .load_pytorch("rnn.", &mut reader)
        .unwrap();
    let output = burn::nn::LinearConfig::new(6, 11)
        .init(&device)
        .load_pytorch("output.", &mut reader)
        .unwrap();
    reader.finish().unwrap();
    let expected = fixture("tiny_lm.json");
    let tokens: Vec<i64> = expected["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|t| t.as_i64().unwrap()))
        .collect();
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(tokens, [2, 7]), &device);
    let (hidden, _) = lstm.forward(embedding.forward(tokens), None).unwrap();
    let logits = output.forward(hidden);
    assert_close("tiny LM logits", values(logits), &expected["logits"], 1e-5);

    // And back: seqlab's names are PyTorch's, so saving gives the same tensors.
    let mut saved = NamedTensors::default();
    embedding.save_pytorch("embedding.", &mut saved);
    lstm.save_pytorch("rnn.", &mut saved);
    output.save_pytorch("output.", &mut saved);
    assert_eq!(saved, named);
}

/// The same `state_dict` saved by `torch.save` reads to the same tensors as its safetensors
/// copy; files that are not checkpoints are typed errors, not panics.
#[test]
fn a_torch_save_checkpoint_reads_like_its_safetensors_copy() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch");
    let from_pt = NamedTensors::load_pytorch_checkpoint(&dir.join("tiny_lm.pt"), None).unwrap();
    let from_safetensors =
        NamedTensors::load_safetensors(&dir.join("tiny_lm.safetensors")).unwrap();
    assert_eq!(from_pt, from_safetensors);
    let not_a_checkpoint = NamedTensors::load_pytorch_checkpoint(&dir.join("tiny_lm.json"), None);
    assert!(
        matches!(
            not_a_checkpoint,
            Err(WeightsError::Format { .. } | WeightsError::Io { .. })
        ),
        "{not_a_checkpoint:?}"
    );
    let missing_key = NamedTensors::load_pytorch_checkpoint(&dir.join("tiny_lm.pt"), Some("model"));
    assert!(missing_key.is_err());
    assert!(matches!(
        NamedTensors::load_pytorch_checkpoint(&dir.join("no_such.pt"), None),
        Err(WeightsError::Io { .. })
    ));
}
