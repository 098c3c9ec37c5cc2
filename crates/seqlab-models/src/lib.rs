//! Sequence models on Burn: recurrent layers with PyTorch's contract, the fastai language
//! models LMModel1–7, classifiers, the RNN course's linear RNN and encoder–decoders (with
//! zero, feedback and attention decoders), and the traits the training loop drives them
//! through.
//!
//! Library code never names a backend: every constructor takes a `&Device`, and the same
//! model runs on flex, ndarray or wgpu.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor};
//! use seqlab_models::{LanguageModel, LmModel4Config};
//!
//! let device = Device::flex();
//! let model = LmModel4Config::new(30, 64).init(&device);
//! let tokens = Tensor::<2, Int>::zeros([2, 16], &device);
//! let out = model.forward_lm(tokens, None);
//! assert_eq!(out.logits.dims(), [2, 16, 30]);
//! ```

#![warn(missing_docs)]

mod config_check;
mod footprint;
pub mod host;
mod layers;
mod models;
mod weights;

use layers::{cross_entropy, encoder, recurrent};
use models::{
    classifier, language_model, markov, recurrent_lm, sampling, seq2seq, simple_rnn_lm, tagger,
};

pub use classifier::{
    ClassifierError, MlpClassifier, MlpClassifierConfig, Pooling, RecurrentClassifier,
    RecurrentClassifierConfig, SequenceClassifier, SequenceClassifierConfig,
};
pub use config_check::ConfigError;
pub use cross_entropy::{CrossEntropyBackend, FUSED_MIN_CLASSES, cross_entropy_rows};
pub use encoder::{EncoderError, HostStepper, SequenceEncoder};
pub use footprint::Footprint;
pub use language_model::{LanguageModel, LmOutput, TokenStepper};
pub use markov::{MarkovError, MarkovModel};
pub use recurrent::{
    CellKind, DirectionWeights, Nonlinearity, Recurrent, RecurrentConfig, RecurrentError,
    RecurrentState, cube_fused, fused, last_valid_output,
};
pub use recurrent_lm::{EncoderLm, RECURRENT_GRAD_CLIP, RecurrentLm, RecurrentLmConfig};
pub use sampling::{
    GenerateConfig, Sampling, SamplingError, TokenChoice, TokenChoiceBackend, TokenChooser,
    chooses_on_device, generate_by_prefix, generate_stepwise,
};
pub use seq2seq::{
    DecoderKind, Encoded, LinRnn, LinRnnConfig, LuongAttention, LuongAttentionConfig, Seq2Seq,
    Seq2SeqConfig, SeqDecoder, SeqEncoder, SeqEncoderDecoder, SeqEncoderDecoderConfig,
};
pub use simple_rnn_lm::{
    LmModel1, LmModel1Config, LmModel2, LmModel2Config, LmModel3, LmModel3Config, LmModel4,
    LmModel4Config,
};
pub use tagger::{CharFeaturesConfig, SequenceTagger, Tagger, TaggerConfig, WordChars};
pub use weights::{
    NamedTensors, PytorchWeights, WeightReader, WeightsError, load_module_tensors, module_tensors,
};
