//! A PyTorch model's `state_dict` in seqlab: the layers take PyTorch's names and layouts, so a
//! model written as the PyTorch one is loads by name and gives PyTorch's outputs.
//!
//! The PyTorch side (`scripts/pytorch_fixtures.py` wrote the file used by default):
//!
//! ```python
//! class TinyLm(nn.Module):  # embedding 11 -> 4, LSTM 4 -> 6 (2 layers), linear 6 -> 11
//!     ...
//! safetensors.torch.save_file(model.state_dict(), "tiny_lm.safetensors")
//! # or torch.save(model.state_dict(), "tiny_lm.pt")
//! ```
//!
//! ```sh
//! cargo run --example pytorch_weights                      # the fixture, checked against PyTorch
//! cargo run --example pytorch_weights -- my_model.pt       # a .safetensors, .pt or .pth file
//! ```

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use seqlab::models::{
    NamedTensors, PytorchWeights, Recurrent, RecurrentConfig, WeightReader, WeightsError,
};
use std::path::Path;

/// The PyTorch model's three modules, under its attribute names.
#[derive(Module, Debug)]
struct TinyLm {
    embedding: Embedding,
    rnn: Recurrent,
    output: Linear,
}

impl TinyLm {
    /// Reads every parameter by its PyTorch name; a missing, unexpected or mis-shaped tensor
    /// is an error that names it.
    fn load(named: &NamedTensors, device: &Device) -> Result<Self, WeightsError> {
        let mut reader = WeightReader::new(named);
        let model = Self {
            embedding: EmbeddingConfig::new(11, 4)
                .init(device)
                .load_pytorch("embedding.", &mut reader)?,
            rnn: RecurrentConfig::lstm(4, 6)
                .with_num_layers(2)
                .init(device)
                .load_pytorch("rnn.", &mut reader)?,
            output: LinearConfig::new(6, 11)
                .init(device)
                .load_pytorch("output.", &mut reader)?,
        };
        reader.finish()?;
        Ok(model)
    }

    /// Scores `[B, T, 11]` for tokens `[B, T]`.
    fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let (hidden, _) = self
            .rnn
            .forward(self.embedding.forward(tokens), None)
            .expect("the embedding width is the LSTM's input width");
        self.output.forward(hidden)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pytorch");
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| fixtures.join("tiny_lm.safetensors"), Into::into);
    let named = match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => NamedTensors::load_safetensors(&path)?,
        _ => NamedTensors::load_pytorch_checkpoint(&path, None)?,
    };
    let device = Device::flex();
    let model = TinyLm::load(&named, &device)?;
    println!(
        "{}: {} tensors, {} parameters",
        path.display(),
        named.len(),
        model.num_params()
    );

    // The tokens and logits PyTorch printed for this model.
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("tiny_lm.json"))?)?;
    let tokens: Vec<i64> = serde_json::from_value(expected["tokens"].clone())
        .map(|rows: Vec<Vec<i64>>| rows.concat())?;
    let tokens = Tensor::<2, Int>::from_data(TensorData::new(tokens, [2, 7]), &device);
    let logits: Vec<f32> = model
        .forward(tokens)
        .into_data()
        .try_into_vec()
        .expect("f32 logits");
    let pytorch: Vec<f32> = serde_json::from_value(expected["logits"]["data"].clone())?;
    let largest = logits
        .iter()
        .zip(&pytorch)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("first logits: {:?}", &logits[..4]);
    println!("largest difference from PyTorch's logits: {largest:.1e}");
    Ok(())
}
