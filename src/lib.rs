//! seqlab: sequence models in Rust on Burn — tokenize, numericalize, batch, RNN/LSTM/GRU,
//! train and sample, on the CPU or the GPU with the same code.
//!
//! This crate gathers the workspace's crates under one name and adds the one thing that ties
//! them to a machine: choosing a [`device`] from a name, with the backends its cargo features
//! build in.
//!
//! - [`data`]: tokenize, numericalize, `group_chunks`, language-model batches.
//! - [`models`]: the models and the [`models::LanguageModel`] trait.
//! - [`train`]: the one training loop ([`train::FitLoop`]), the [`train::Learner`],
//!   optimizers, schedules, metrics and checkpoints.
//! - [`lessons`]: the notebooks seqlab grew from, as functions.
//! - [`onnx`]: ONNX export of the models, with real RNN / LSTM / GRU nodes.
//! - [`plot`]: PNG plots of the lessons' results.
//! - [`bench`](mod@bench): training and inference speed in the PyTorch reference benchmark's
//!   configurations.

#![warn(missing_docs)]

pub use seqlab_data as data;
pub use seqlab_lessons as lessons;
pub use seqlab_lessons::{bench, plot};
pub use seqlab_models as models;
pub use seqlab_onnx as onnx;
pub use seqlab_train as train;

pub mod device;

/// The Burn device type every seqlab function takes; see [`device::DeviceChoice`].
pub use burn::tensor::Device;

/// The README's code, compiled as a doctest so that it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The recurrent layers guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/recurrent-layers.md")]
#[cfg(doctest)]
pub struct RecurrentLayersGuideDoctests;

/// The RNN course guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/rnn-course.md")]
#[cfg(doctest)]
pub struct RnnCourseGuideDoctests;

/// The character-level generation guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/char-lm.md")]
#[cfg(doctest)]
pub struct CharLmGuideDoctests;

/// The part-of-speech tagging guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/pos-tagging.md")]
#[cfg(doctest)]
pub struct PosTaggingGuideDoctests;

/// The human-numbers guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/human-numbers.md")]
#[cfg(doctest)]
pub struct HumanNumbersGuideDoctests;

/// The text classification guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/text-classification.md")]
#[cfg(doctest)]
pub struct TextClassificationGuideDoctests;

/// The performance guide's code, compiled as a doctest.
#[doc = include_str!("../docs/performance.md")]
#[cfg(doctest)]
pub struct PerformanceGuideDoctests;

/// The checkpoints guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/checkpoints.md")]
#[cfg(doctest)]
pub struct CheckpointsGuideDoctests;

/// The ONNX guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/onnx.md")]
#[cfg(doctest)]
pub struct OnnxGuideDoctests;

/// The library guide's code, compiled and run as a doctest.
#[doc = include_str!("../docs/library.md")]
#[cfg(doctest)]
pub struct LibraryGuideDoctests;
