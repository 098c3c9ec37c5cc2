//! The benchmark's models: embedding → recurrent core → linear, as the PyTorch reference's
//! `LM` class (a score after every token, stateful across batches) and its `Classifier` (the
//! mean over time, then the head).

use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig, LstmConfig, LstmState};
use burn::tensor::{Device, Int, Tensor};
use seqlab_models::{CellKind, Recurrent, RecurrentConfig, RecurrentError, RecurrentState};

use super::{BenchConfig, BenchTask, Core};

/// The recurrent core under test.
#[derive(Module, Debug)]
pub(super) enum RecurrentCore {
    /// seqlab's [`Recurrent`], fused or plain.
    Seqlab(Recurrent),
    /// One `burn::nn::Lstm` per layer.
    Burn(Vec<burn::nn::Lstm>),
}

/// The carried state of either core.
#[derive(Debug, Clone)]
pub(super) enum CoreState {
    Seqlab(Box<RecurrentState>),
    Burn(Vec<LstmState<2>>),
}

impl CoreState {
    fn detach(self) -> Self {
        match self {
            CoreState::Seqlab(state) => CoreState::Seqlab(Box::new(state.detach())),
            CoreState::Burn(states) => CoreState::Burn(
                states
                    .into_iter()
                    .map(|s| LstmState::new(s.cell.detach(), s.hidden.detach()))
                    .collect(),
            ),
        }
    }
}

/// Embedding → core → (mean over time) → linear.
#[derive(Module, Debug)]
pub(super) struct BenchLm {
    embedding: Embedding,
    core: RecurrentCore,
    output: Linear,
    #[module(skip)]
    mean_pooled: bool,
}

impl BenchLm {
    /// The model of `config` with `core`, or `None` where the core cannot run it (burn's own
    /// layer has only the LSTM).
    pub fn new(config: &BenchConfig, core: Core, device: &Device) -> Option<Self> {
        let recurrent = match core {
            Core::Fused | Core::Plain => RecurrentCore::Seqlab(
                RecurrentConfig::new(config.kind, config.embedding, config.hidden)
                    .with_num_layers(config.layers)
                    .with_fused(core == Core::Fused)
                    .init(device),
            ),
            Core::BurnLstm if config.kind == CellKind::Lstm => RecurrentCore::Burn(
                (0..config.layers)
                    .map(|layer| {
                        let input = if layer == 0 {
                            config.embedding
                        } else {
                            config.hidden
                        };
                        LstmConfig::new(input, config.hidden, true).init(device)
                    })
                    .collect(),
            ),
            Core::BurnLstm => return None,
        };
        Some(Self {
            embedding: EmbeddingConfig::new(config.vocab, config.embedding).init(device),
            core: recurrent,
            output: LinearConfig::new(config.hidden, config.outputs()).init(device),
            mean_pooled: matches!(config.task, BenchTask::Classifier { .. }),
        })
    }

    /// Logits `[B, T, V]` for `tokens` `[B, T]` (`[B, 1, classes]` for a classifier), and the
    /// state to carry on from (detached).
    pub fn forward(
        &self,
        tokens: Tensor<2, Int>,
        state: Option<CoreState>,
    ) -> Result<(Tensor<3>, CoreState), RecurrentError> {
        let (hidden, state) = match (&self.core, state) {
            (RecurrentCore::Seqlab(layer), state) => {
                let state = match state {
                    Some(CoreState::Seqlab(state)) => Some(*state),
                    _ => None,
                };
                let (out, state) = layer.forward_tokens(&self.embedding, tokens, state)?;
                (out, CoreState::Seqlab(Box::new(state)))
            }
            (RecurrentCore::Burn(layers), state) => {
                let mut states = match state {
                    Some(CoreState::Burn(states)) => states.into_iter().map(Some).collect(),
                    _ => vec![None; layers.len()],
                };
                let mut x = self.embedding.forward(tokens);
                let mut next = Vec::with_capacity(layers.len());
                for (layer, state) in layers.iter().zip(states.drain(..)) {
                    let (out, state) = layer.forward(x, state);
                    x = out;
                    next.push(state);
                }
                (x, CoreState::Burn(next))
            }
        };
        let hidden = if self.mean_pooled {
            hidden.mean_dim(1)
        } else {
            hidden
        };
        Ok((self.output.forward(hidden), state.detach()))
    }
}
