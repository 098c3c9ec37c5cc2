//! A new language model on seqlab's layers, trained with seqlab's `Learner` on any device: a
//! GRU whose output is added back to its input (a residual connection), on human numbers.
//!
//! ```sh
//! cargo run --example custom_model            # the fastest CPU backend built in
//! cargo run --example custom_model -- wgpu    # or flex, ndarray
//! ```

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use seqlab::data::{LmSplit, LmTask, Vocab, batches, human_numbers, split_words};
use seqlab::device::DeviceChoice;
use seqlab::models::{
    CellKind, LanguageModel, LmOutput, Recurrent, RecurrentConfig, RecurrentState,
};
use seqlab::train::{DataLoaders, Learner};

/// Embedding `[B, T, W]` → GRU `[B, T, W]` (+ the embedding) → scores `[B, T, V]`.
#[derive(Module, Debug)]
struct ResidualGru {
    embedding: Embedding,
    gru: Recurrent,
    output: Linear,
}

impl ResidualGru {
    fn new(vocab: usize, width: usize, device: &Device) -> Self {
        Self {
            embedding: EmbeddingConfig::new(vocab, width).init(device),
            gru: RecurrentConfig::new(CellKind::Gru, width, width).init(device),
            output: LinearConfig::new(width, vocab).init(device),
        }
    }
}

impl LanguageModel for ResidualGru {
    fn forward_lm(&self, tokens: Tensor<2, Int>, state: Option<RecurrentState>) -> LmOutput {
        let embedded = self.embedding.forward(tokens);
        // The Learner carries the layer's own state from batch to batch.
        let (hidden, end) = self
            .gru
            .forward(embedded.clone(), state)
            .expect("the embedding width is the GRU's input width");
        LmOutput {
            logits: self.output.forward(hidden + embedded),
            state: Some(end),
            penalty: None,
        }
    }

    fn vocab_size(&self) -> usize {
        self.output.weight.dims()[1]
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let choice = match std::env::args().nth(1) {
        Some(name) => name.parse()?,
        None => DeviceChoice::default_cpu()?,
    };
    let device = choice.device()?.autodiff();
    let tokens = split_words(&human_numbers().text());
    let vocab = Vocab::builder().build(&tokens);
    let ids = vocab.encode(&tokens)?;
    let split = LmSplit::new(&ids, LmTask::EveryToken { seq_len: 16 }, 0.2, Some(64))?;
    let data = DataLoaders::new(
        batches(&split.train, 64, true)?,
        batches(&split.valid, 64, true)?,
    )?;
    // The same initial weights on every run.
    device.seed(0);
    let model = ResidualGru::new(vocab.len(), 64, &device);
    println!("{} parameters on {choice}", model.num_params());
    let mut learner = Learner::new(model, data, &device);
    let records = learner.fit_one_cycle(5, 3e-3)?;
    let accuracy = records
        .last()
        .and_then(|r| r.metric("accuracy"))
        .unwrap_or(0.0);
    println!("held-out accuracy after 5 epochs: {accuracy:.3}");
    Ok(())
}
