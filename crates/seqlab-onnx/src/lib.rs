//! ONNX export of seqlab's models, with real ONNX `RNN`, `LSTM` and `GRU` nodes: gates
//! reordered to ONNX's layout, stacked and bidirectional layers, `sequence_lens` for padded
//! batches, initial and final states as graph inputs and outputs (so that a caller can
//! stream), and free `batch` and `time` axes. ONNX Runtime runs the files on servers, phones
//! and in browsers.
//!
//! A graph is built from a model's config and its weights under PyTorch's names
//! ([`NamedTensors`](seqlab_models::NamedTensors), as
//! [`PytorchWeights::save_pytorch`](seqlab_models::PytorchWeights::save_pytorch) writes
//! them and seqlab's checkpoints store them): whole models with [`language_model`],
//! [`classifier`], [`mlp_classifier`], [`tagger`], [`seq2seq`] (greedy decoding in an ONNX
//! `Loop`), [`hand_built_seq2seq`], [`simple_language_model`] and [`lin_rnn`] (running
//! free), or any model built on
//! seqlab's layers with a
//! [`GraphBuilder`] and [`embedding`], [`linear`] and [`recurrent`]. [`import`] reads such a
//! graph back — and the language models and classifiers that `torch.onnx.export` writes —
//! into a config and weights.
//!
//! ```
//! use burn::tensor::Device;
//! use seqlab_models::{CellKind, NamedTensors, PytorchWeights, RecurrentClassifierConfig};
//!
//! let config = RecurrentClassifierConfig::new(CellKind::Gru, 100, 8, 16, 2, 3)
//!     .with_bidirectional(true);
//! let model = config.init(&Device::flex());
//! let mut weights = NamedTensors::default();
//! model.save_pytorch("", &mut weights);
//! let onnx = seqlab_onnx::classifier(&config, &weights)?
//!     .with_metadata("classes", r#"["neg", "pos", "neutral"]"#);
//! let path = std::env::temp_dir().join(format!("seqlab-onnx-doc-{}.onnx", std::process::id()));
//! onnx.save(&path)?;
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), seqlab_onnx::OnnxError>(())
//! ```

#![warn(missing_docs)]

mod graph;
mod import;
mod layers;
mod lin_rnn;
mod models;
pub mod proto;
mod seq2seq;
mod simple_rnn_lm;

pub use graph::{
    Attribute, Dim, ElementType, GraphBuilder, IR_VERSION, OPSET_VERSION, OnnxModel, Value,
};
pub use import::{ImportedModel, import, import_file};
pub use layers::{InitialState, RecurrentOutputs, embedding, linear, recurrent};
pub use lin_rnn::lin_rnn;
pub use models::{classifier, language_model, mlp_classifier, tagger};
pub use seq2seq::{hand_built_seq2seq, seq2seq};
pub use simple_rnn_lm::{SimpleLm, simple_language_model};

use thiserror::Error;

/// Why a model could not be exported.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum OnnxError {
    /// The weights lack a tensor the model's graph needs.
    #[error("the weights have no tensor {0:?}")]
    MissingWeight(String),
    /// A weight's shape is not the one the config gives.
    #[error("weight {name:?} has shape {got:?}, the config needs {expected:?}")]
    WeightShape {
        /// The tensor's name.
        name: String,
        /// The shape the config gives.
        expected: Vec<usize>,
        /// The weights'.
        got: Vec<usize>,
    },
    /// The bytes are not an ONNX model.
    #[error("{path}: not an ONNX model: {message}")]
    NotOnnx {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// A tensor kept in a file beside the model.
    #[error(
        "tensor {0:?} is stored outside the model file: save it as one file (onnx.save(onnx.load(path), path))"
    )]
    ExternalData(String),
    /// A node that import does not read.
    #[error("{path}: node {node:?} ({op_type}) is not supported: {why}")]
    UnsupportedNode {
        /// The file.
        path: String,
        /// The node's name.
        node: String,
        /// Its op type.
        op_type: String,
        /// What import reads instead.
        why: String,
    },
    /// A graph whose parts do not make one of seqlab's models.
    #[error("{path}: not a model seqlab imports: {message}")]
    NotImportable {
        /// The file.
        path: String,
        /// What is missing or does not fit.
        message: String,
    },
    /// Writing the file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        message: String,
    },
}
