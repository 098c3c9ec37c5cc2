//! Luong's "general" attention: a decoder state scores every encoder output through one
//! matrix, the softmax of the scores weighs the outputs into a context, and the context and
//! the state are combined into the attentional state the read-out sees.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{softmax, tanh};
use burn::tensor::{Bool, Device, Tensor};

/// Settings of a [`LuongAttention`].
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub struct LuongAttentionConfig {
    /// Width of decoder states and encoder outputs.
    pub hidden_size: usize,
}

impl LuongAttentionConfig {
    /// Builds it on `device`.
    pub fn init(&self, device: &Device) -> LuongAttention {
        let h = self.hidden_size;
        LuongAttention {
            score: LinearConfig::new(h, h).with_bias(false).init(device),
            combine: LinearConfig::new(2 * h, h).with_bias(false).init(device),
        }
    }
}

/// `score(q, k) = q · W_a k`, `a = softmax(score)` over the unmasked source steps,
/// `c = Σ a k`, output `tanh(W_c [c; q])` (Luong, Pham & Manning 2015, eq. 5 and 8).
///
/// ```
/// use burn::tensor::{Bool, Device, Tensor, TensorData};
/// use seqlab_models::LuongAttentionConfig;
///
/// let device = Device::flex();
/// let attention = LuongAttentionConfig::new(8).init(&device);
/// let queries = Tensor::<3>::ones([2, 3, 8], &device);
/// let memory = Tensor::<3>::ones([2, 5, 8], &device);
/// let mask = Tensor::<2, Bool>::from_data(
///     TensorData::new(vec![true, true, true, false, false, true, true, true, true, true], [2, 5]),
///     &device,
/// );
/// let (states, weights) = attention.forward(queries, memory, Some(mask));
/// assert_eq!(states.dims(), [2, 3, 8]);
/// // Masked steps get no weight.
/// let first: Vec<f32> = weights.slice([0..1, 0..1]).into_data().try_to_vec().unwrap();
/// assert!(first[3] == 0.0 && first[4] == 0.0 && (first[0] - 1.0 / 3.0).abs() < 1e-6);
/// ```
#[derive(Module, Debug)]
pub struct LuongAttention {
    /// `W_a`.
    pub score: Linear,
    /// `W_c`.
    pub combine: Linear,
}

impl LuongAttention {
    /// Attends from `queries` `[B, Tq, H]` over `memory` `[B, Ts, H]`, where `mask` `[B, Ts]`
    /// (true = a real step) hides padding. Returns the attentional states `[B, Tq, H]` and the
    /// weights `[B, Tq, Ts]`.
    pub fn forward(
        &self,
        queries: Tensor<3>,
        memory: Tensor<3>,
        mask: Option<Tensor<2, Bool>>,
    ) -> (Tensor<3>, Tensor<3>) {
        let [batch, query_steps, _] = queries.dims();
        let [_, source_steps, _] = memory.dims();
        let keys = self.score.forward(memory.clone());
        let mut scores = queries.clone().matmul(keys.swap_dims(1, 2));
        if let Some(mask) = mask {
            let hidden =
                mask.bool_not()
                    .unsqueeze_dim::<3>(1)
                    .expand([batch, query_steps, source_steps]);
            scores = scores.mask_fill(hidden, -1.0e9);
        }
        let weights = softmax(scores, 2);
        let context = weights.clone().matmul(memory);
        let states = tanh(self.combine.forward(Tensor::cat(vec![context, queries], 2)));
        (states, weights)
    }
}
