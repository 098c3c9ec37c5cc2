//! Models on an encoder of one's own: a language model on an encoder that is not seqlab's
//! `Recurrent` trains through `Learner` and generates, with nothing in seqlab changed for it.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use seqlab::Device;
use seqlab::data::{batches, sequence_windows};
use seqlab::models::{
    EncoderError, GenerateConfig, LanguageModel, RecurrentLmConfig, Sampling, SequenceEncoder,
    generate_by_prefix,
};
use seqlab::train::{DataLoaders, Learner};

/// A causal encoder with a window of two tokens: each step's features are a ReLU layer over
/// its own embedding and the one before (zeros before the first).
#[derive(Module, Debug)]
struct TwoTokenWindow {
    linear: Linear,
}

impl SequenceEncoder for TwoTokenWindow {
    fn output_width(&self) -> usize {
        self.linear.weight.dims()[1]
    }

    fn encode(&self, input: Tensor<3>, _: Option<&[usize]>) -> Result<Tensor<3>, EncoderError> {
        let [batch, time, width] = input.dims();
        let before = Tensor::cat(
            vec![
                Tensor::zeros([batch, 1, width], &input.device()),
                input.clone().narrow(1, 0, time - 1),
            ],
            1,
        );
        Ok(relu(
            self.linear.forward(Tensor::cat(vec![before, input], 2)),
        ))
    }
}

#[test]
fn a_language_model_on_an_encoder_of_ones_own_learns_and_generates() {
    let device = Device::flex();
    device.seed(3);
    // A text whose next token follows from the last two: 0 0 1 1 2 2 … 9 9 0 0 …
    let text: Vec<u32> = (0..2000).map(|i| (i / 2 % 10) as u32).collect();
    let samples = sequence_windows(&text, 20).unwrap();
    let (train, valid) = samples.split_at(80);
    let data = DataLoaders::new(
        batches(train, 16, true).unwrap(),
        batches(valid, 16, true).unwrap(),
    )
    .unwrap();
    let config = RecurrentLmConfig::new(seqlab::models::CellKind::Lstm, 10, 32, 1)
        .with_embedding_size(Some(8));
    let autodiff = device.clone().autodiff();
    let encoder = TwoTokenWindow {
        linear: LinearConfig::new(16, 32).init(&autodiff),
    };
    let model = config.init_with_encoder(encoder, &autodiff).unwrap();
    // Embedding 10·8, the window 16·32 + 32, the output layer 32·10 + 10.
    assert_eq!(model.num_params(), 80 + 544 + 330);
    let mut learner = Learner::new(model, data, &device)
        .with_table(false)
        .with_progress(false);
    learner.fit_one_cycle(16, 1e-2).unwrap();
    let history = learner.history();
    let (first, last) = (&history[0], history.last().unwrap());
    // From its own token alone the next is that token or the one after, even odds: ln 2 =
    // 0.69. Below that, the model reads the token before through its encoder.
    assert!(
        last.valid_loss < 0.3 && first.valid_loss > 1.0,
        "held-out loss {} → {}",
        first.valid_loss,
        last.valid_loss
    );
    let model = learner.into_model().valid();
    assert!(
        model
            .forward_lm(Tensor::zeros([1, 4], &device), None)
            .state
            .is_none()
    );
    let generated = generate_by_prefix(
        &model,
        &[3, 3, 4],
        &GenerateConfig {
            length: 6,
            sampling: Sampling::Greedy,
            seed: 0,
            banned: vec![],
        },
        &device,
    )
    .unwrap();
    assert_eq!(generated, [4, 5, 5, 6, 6, 7]);
    // A tied model needs an encoder as wide as its embedding.
    let tied = RecurrentLmConfig::awd_lstm(10, 8, 0.0);
    let wide = TwoTokenWindow {
        linear: LinearConfig::new(16, 32).init(&device),
    };
    let error = tied
        .init_with_encoder(wide, &device)
        .unwrap_err()
        .to_string();
    assert!(error.contains("must be 8"), "{error}");
}
