//! Your own data into seqlab: a text file (this repository's README by default) read as
//! characters, cut into stateful language-model batches, a 1-layer LSTM trained on it with the
//! `Learner`, and a sample generated one character per step.
//!
//! ```sh
//! cargo run --example custom_dataset                   # README.md
//! cargo run --example custom_dataset -- notes.txt      # any UTF-8 text of a few kB or more
//! ```

use burn::module::Module;
use seqlab::data::{CharVocab, LmSplit, LmTask, batches};
use seqlab::device::DeviceChoice;
use seqlab::models::{CellKind, GenerateConfig, RecurrentLmConfig, Sampling, generate_stepwise};
use seqlab::train::{DataLoaders, Learner};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "README.md".into());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;

    // 1. Numericalize: one id per distinct character.
    let vocab = CharVocab::from_text(&text);
    let ids = vocab.encode(&text)?;
    println!(
        "{path}: {} characters, {} distinct",
        ids.len(),
        vocab.classes()
    );

    // 2. Windows of 64 characters predicting the next one at every step; the last 10% held
    //    out; each half grouped into 16 streams so that the LSTM's state carries over.
    let (seq_len, batch_size) = (64, 16);
    let split = LmSplit::new(&ids, LmTask::EveryToken { seq_len }, 0.1, Some(batch_size))?;
    let data = DataLoaders::new(
        batches(&split.train, batch_size, true)?,
        batches(&split.valid, batch_size, true)?,
    )?;

    // 3. A model from seqlab's zoo, on the fastest CPU device built in.
    let device = DeviceChoice::default_cpu()?.device()?;
    let training = device.clone().autodiff();
    let model = RecurrentLmConfig::new(CellKind::Lstm, vocab.classes(), 128, 1).init(&training);
    let mut learner = Learner::new(model, data, &training);
    learner.fit_one_cycle(3, 1e-2)?;

    // 4. Generation runs without autodiff, carrying the state one character at a time.
    let model = learner.into_model().valid();
    let prime = vocab.encode("The ")?;
    let config = GenerateConfig {
        length: 200,
        sampling: Sampling::Random {
            temperature: 0.7,
            top_k: None,
            top_p: None,
        },
        seed: 0,
        banned: Vec::new(),
    };
    let generated = generate_stepwise(&model, &prime, &config, &device)?;
    println!("The {}", vocab.decode(&generated)?);
    Ok(())
}
