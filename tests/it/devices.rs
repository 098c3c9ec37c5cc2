//! The same model code on every device: a few training steps of each human-numbers model on
//! flex, ndarray and wgpu (Mesa's lavapipe where there is no GPU), from the same weights, give
//! the same losses.

use seqlab::Device;
use seqlab::device::DeviceChoice;
use seqlab::lessons::human_numbers::{HumanNumbersConfig, HumanNumbersModel};
use seqlab::models::{
    CellKind, LanguageModel, LmModel1Config, LmModel2Config, LmModel3Config, LmModel4Config,
    Nonlinearity, RecurrentLmConfig,
};
use seqlab::train::{DataLoaders, Learner};

const STEPS: usize = 6;

fn first_batches(model: HumanNumbersModel) -> DataLoaders {
    let (_, data) = HumanNumbersConfig::new(model).data().unwrap();
    DataLoaders::new(
        data.stream_batches()
            .unwrap()
            .iter()
            .take(STEPS)
            .map(|batch| batch.into_owned())
            .collect::<Vec<_>>(),
        data.valid()
            .iter()
            .take(2)
            .map(|batch| batch.into_owned())
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

/// The batch losses and validation loss of one epoch of `STEPS` steps, and how many times the
/// training read values back from the device.
fn losses<M: LanguageModel>(
    model: &M,
    kind: HumanNumbersModel,
    device: &Device,
) -> (Vec<f32>, f64, u64) {
    let mut learner = Learner::new(model.clone(), first_batches(kind), device)
        .with_table(false)
        .with_progress(false);
    let reads = seqlab::train::host_reads();
    learner.fit(1, 3e-3).unwrap();
    (
        learner.batch_losses().to_vec(),
        learner.history()[0].valid_loss,
        seqlab::train::host_reads() - reads,
    )
}

fn compare_devices<M: LanguageModel>(kind: HumanNumbersModel, build: impl Fn(&Device) -> M) {
    let reference_device = Device::flex();
    reference_device.seed(7);
    let model = build(&reference_device.clone().autodiff());
    let (reference, reference_valid, reads) = losses(&model, kind, &reference_device);
    assert_eq!(reference.len(), STEPS);
    // On the CPU the loss (and the clipping norm, where it clips) every step.
    let clips = model.default_grad_clip().is_some();
    assert_eq!(reads as usize, STEPS * (1 + usize::from(clips)), "{kind}");
    assert!(
        reference[0] > 2.0 && reference[0] < 6.0,
        "{kind}: first loss {}",
        reference[0]
    );
    for choice in [DeviceChoice::NdArray, DeviceChoice::Wgpu] {
        let device = choice.device().unwrap_or_else(|e| panic!("{e}"));
        let (other, other_valid, reads) = losses(&model, kind, &device);
        // On a GPU the training steps read nothing back: the losses once, at the epoch's end.
        let want_reads = if choice == DeviceChoice::Wgpu {
            1
        } else {
            STEPS * (1 + usize::from(clips))
        };
        assert_eq!(reads as usize, want_reads, "{kind} on {choice}");
        for (step, (a, b)) in reference.iter().zip(&other).enumerate() {
            assert!(
                (a - b).abs() < 2e-3 * a.abs().max(1.0),
                "{kind} on {choice}, step {step}: {a} vs {b}"
            );
        }
        assert!(
            (reference_valid - other_valid).abs() < 5e-3,
            "{kind} on {choice}: valid {reference_valid} vs {other_valid}"
        );
    }
}

#[test]
fn lm1_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm1, |d| {
        LmModel1Config::new(30, 64).init(d)
    });
}

#[test]
fn lm2_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm2, |d| {
        LmModel2Config::new(30, 128).init(d)
    });
}

#[test]
fn lm3_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm3, |d| {
        LmModel3Config::new(30, 64).init(d)
    });
}

#[test]
fn lm4_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm4, |d| {
        LmModel4Config::new(30, 64).init(d)
    });
}

#[test]
fn lm5_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm5, |d| {
        RecurrentLmConfig::new(CellKind::Rnn(Nonlinearity::Tanh), 30, 64, 2).init(d)
    });
}

#[test]
fn lm6_trains_alike_on_every_device() {
    compare_devices(HumanNumbersModel::Lm6, |d| {
        RecurrentLmConfig::new(CellKind::Lstm, 30, 64, 2).init(d)
    });
}

#[test]
fn lm7_trains_alike_on_every_device() {
    // Output dropout off here: the devices draw different random masks.
    compare_devices(HumanNumbersModel::Lm7, |d| {
        RecurrentLmConfig::awd_lstm(30, 64, 0.0).init(d)
    });
}

/// The output, final state and every gradient of `layer` (2 layers, both directions) run on
/// `device` over padded sequences `x` with the given state, all built on flex.
fn recurrent_run(
    layer: &seqlab::models::Recurrent,
    inputs: &[burn::tensor::TensorData; 4],
    device: &Device,
) -> Vec<(String, Vec<f32>)> {
    use burn::module::Module;
    use burn::tensor::Tensor;
    use seqlab::models::RecurrentState;
    let device = device.clone().autodiff();
    let tensor = |data: &burn::tensor::TensorData| {
        Tensor::<3>::from_data(data.clone(), &device).require_grad()
    };
    let [x, h0, c0, weights_out] = inputs.each_ref().map(tensor);
    let is_lstm = layer.weights[0].weight_hh.dims()[0] == 4 * h0.dims()[2];
    let [batch, time, _] = x.dims();
    let layer = layer.clone().fork(&device);
    let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 5) % time).collect();
    let state = RecurrentState {
        hidden: h0.clone(),
        cell: is_lstm.then(|| c0.clone()),
    };
    let (out, end) = layer
        .forward_padded(x.clone(), Some(state), &lengths)
        .unwrap();
    let mut loss = (out.clone() * weights_out).sum() + end.hidden.clone().powi_scalar(2).sum();
    if let Some(cell) = &end.cell {
        loss = loss + cell.clone().sum();
    }
    let grads = loss.backward();
    let values = |name: &str, tensor: Tensor<1>| {
        let values = tensor.into_data().convert::<f32>().try_to_vec::<f32>();
        (name.to_string(), values.unwrap())
    };
    let mut all = vec![
        values("output", out.flatten(0, 2)),
        values("h_n", end.hidden.flatten(0, 2)),
        values("d x", x.grad(&grads).unwrap().flatten(0, 2)),
        values("d h0", h0.grad(&grads).unwrap().flatten(0, 2)),
    ];
    if is_lstm {
        all.push(values("d c0", c0.grad(&grads).unwrap().flatten(0, 2)));
    }
    for (index, weights) in layer.weights.iter().enumerate() {
        let bias = |b: &Option<burn::module::Param<Tensor<1>>>| b.as_ref().unwrap().grad(&grads);
        all.extend([
            values(
                &format!("d weight_ih {index}"),
                weights.weight_ih.grad(&grads).unwrap().flatten(0, 1),
            ),
            values(
                &format!("d weight_hh {index}"),
                weights.weight_hh.grad(&grads).unwrap().flatten(0, 1),
            ),
            values(
                &format!("d bias_ih {index}"),
                bias(&weights.bias_ih).unwrap(),
            ),
            values(
                &format!("d bias_hh {index}"),
                bias(&weights.bias_hh).unwrap(),
            ),
        ]);
    }
    all
}

/// The fused GPU operation at sizes that span several of its kernels' cubes (40 hidden units,
/// 20 sequences of lengths 1 to 7, two layers, both directions, a given state) gives flex's
/// fused operation's outputs and gradients, for every kind of cell.
#[test]
fn the_fused_gpu_layers_match_the_cpu_over_several_cubes() {
    use burn::tensor::{Distribution, Tensor};
    use seqlab::models::RecurrentConfig;
    let (batch, time, input, hidden) = (20, 7, 9, 40);
    let wgpu = DeviceChoice::Wgpu.device().unwrap();
    let flex = Device::flex();
    flex.seed(11);
    let random = |dims: [usize; 3]| {
        Tensor::<3>::random(dims, Distribution::Normal(0.0, 1.0), &flex).into_data()
    };
    let inputs = [
        random([batch, time, input]),
        random([4, batch, hidden]),
        random([4, batch, hidden]),
        random([batch, time, 2 * hidden]),
    ];
    for name in ["rnn", "rnn-relu", "rnn-identity", "lstm", "gru"] {
        let kind: CellKind = name.parse().unwrap();
        let layer = RecurrentConfig::new(kind, input, hidden)
            .with_num_layers(2)
            .with_bidirectional(true)
            .init(&flex.clone().autodiff());
        let expected = recurrent_run(&layer, &inputs, &flex);
        let got = recurrent_run(&layer, &inputs, &wgpu);
        assert_eq!(expected.len(), got.len());
        for ((name, expected), (_, got)) in expected.iter().zip(&got) {
            assert_eq!(expected.len(), got.len(), "{kind:?} {name}");
            for (i, (e, g)) in expected.iter().zip(got).enumerate() {
                assert!(
                    (e - g).abs() <= 1e-4 * (e.abs() + 1.0),
                    "{kind:?} {name}[{i}]: flex {e}, wgpu {g}"
                );
            }
        }
    }
}

/// The id the GPU's [`TokenChooser`] picks from scores whose probabilities are 1/6, 2/6, 3/6
/// at temperature 1, with the uniform draw `draw`.
fn chosen_on_the_gpu(sampling: seqlab::models::Sampling, banned: &[u32], draw: f64) -> u32 {
    use burn::tensor::Tensor;
    use seqlab::models::TokenChooser;
    let wgpu = DeviceChoice::Wgpu.device().unwrap();
    let scores = Tensor::<2>::from_floats([[0.0, 2f32.ln(), 3f32.ln()]], &wgpu);
    let id = TokenChooser::new(sampling, banned, 3, &wgpu).choose(scores, draw);
    id.into_data().convert::<i64>().try_to_vec::<i64>().unwrap()[0] as u32
}

/// The chooser walks a draw through the probabilities in id order as the host's `pick` does,
/// and keeps what the host keeps for top-k and top-p.
#[test]
fn the_gpu_token_chooser_walks_a_draw_as_the_host_does() {
    use seqlab::models::Sampling;
    let plain = Sampling::temperature(1.0);
    let probabilities = plain.probabilities(&[0.0, 2f32.ln(), 3f32.ln()], &[]);
    for draw in [0.0, 0.1, 0.17, 0.3, 0.49, 0.51, 0.9, 0.999_999_999] {
        let mut left = draw;
        let mut host = 0;
        while host < 2 && left >= probabilities[host] {
            left -= probabilities[host];
            host += 1;
        }
        assert_eq!(
            chosen_on_the_gpu(plain, &[], draw),
            host as u32,
            "draw {draw}"
        );
    }
    assert_eq!(chosen_on_the_gpu(Sampling::Greedy, &[], 0.0), 2);
    assert_eq!(chosen_on_the_gpu(Sampling::Greedy, &[2], 0.0), 1);
    // Banned: 1/3 and 2/3 over ids 0 and 1.
    assert_eq!(chosen_on_the_gpu(plain, &[2], 0.3), 0);
    assert_eq!(chosen_on_the_gpu(plain, &[2], 0.4), 1);
    assert_eq!(chosen_on_the_gpu(plain, &[2], 0.999), 1);
    // Top-2: 2/5 and 3/5 over ids 1 and 2.
    let top2 = Sampling::Random {
        temperature: 1.0,
        top_k: Some(2),
        top_p: None,
    };
    assert_eq!(chosen_on_the_gpu(top2, &[], 0.0), 1);
    assert_eq!(chosen_on_the_gpu(top2, &[], 0.39), 1);
    assert_eq!(chosen_on_the_gpu(top2, &[], 0.41), 2);
    let nucleus = |top_p| Sampling::Random {
        temperature: 1.0,
        top_k: None,
        top_p: Some(top_p),
    };
    // 3/6 reaches 0.45 alone; 0.6 needs 2/6 more; 0.9 all three.
    for draw in [0.0, 0.5, 0.99] {
        assert_eq!(chosen_on_the_gpu(nucleus(0.45), &[], draw), 2);
    }
    assert_eq!(chosen_on_the_gpu(nucleus(0.6), &[], 0.39), 1);
    assert_eq!(chosen_on_the_gpu(nucleus(0.6), &[], 0.41), 2);
    assert_eq!(chosen_on_the_gpu(nucleus(0.9), &[], 0.1), 0);
    // Top-p applies to top-k's shares: 3/5 alone reaches 0.55.
    let both = Sampling::Random {
        temperature: 1.0,
        top_k: Some(2),
        top_p: Some(0.55),
    };
    assert_eq!(chosen_on_the_gpu(both, &[], 0.0), 2);
    // A low temperature sharpens: at 0.1 the weights are 1, 2¹⁰, 3¹⁰ (id 1 holds 1.7%).
    let cold = Sampling::temperature(0.1);
    assert_eq!(chosen_on_the_gpu(cold, &[], 0.9), 2);
    assert_eq!(chosen_on_the_gpu(cold, &[], 0.01), 1);
    assert_eq!(chosen_on_the_gpu(cold, &[], 0.0), 0);
}

/// Generation on wgpu chooses every token on the device and reads the ids back in blocks; it
/// gives the tokens flex's host stepper gives, greedy and sampled (the same uniform draws walk
/// the same probabilities; only `f32` rounding could part them), and never a banned id.
#[test]
fn generation_on_the_gpu_gives_the_cpus_tokens() {
    use burn::module::Module;
    use seqlab::models::{GenerateConfig, Sampling, generate_stepwise};
    let flex = Device::flex();
    flex.seed(11);
    let model = RecurrentLmConfig::new(CellKind::Lstm, 20, 32, 2)
        .with_embedding_size(Some(8))
        .init(&flex);
    let wgpu = DeviceChoice::Wgpu.device().unwrap();
    // Chosen on the device on wgpu only: not on the CPU, not under autodiff.
    assert!(seqlab::models::chooses_on_device(&wgpu));
    assert!(!seqlab::models::chooses_on_device(&flex));
    assert!(!seqlab::models::chooses_on_device(&wgpu.clone().autodiff()));
    let on_gpu = model.clone().fork(&wgpu);
    let prime = [3, 1, 4, 1, 5, 9, 2, 6];
    for sampling in [
        Sampling::Greedy,
        Sampling::temperature(1.0),
        Sampling::Random {
            temperature: 0.8,
            top_k: Some(5),
            top_p: None,
        },
        Sampling::Random {
            temperature: 1.2,
            top_k: None,
            top_p: Some(0.9),
        },
    ] {
        // Over 256 tokens: the ids come back in two blocks.
        let config = GenerateConfig {
            length: 300,
            sampling,
            seed: 4,
            banned: vec![0, 7],
        };
        let on_cpu = generate_stepwise(&model, &prime, &config, &flex).unwrap();
        let generated = generate_stepwise(&on_gpu, &prime, &config, &wgpu).unwrap();
        assert_eq!(generated.len(), 300);
        assert!(generated.iter().all(|id| *id < 20 && ![0, 7].contains(id)));
        assert_eq!(generated, on_cpu, "{sampling:?}");
    }
}
