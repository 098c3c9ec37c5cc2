//! The lessons seqlab grew from, as functions that build their data and models and train them
//! with the notebooks' settings on the one training loop (`seqlab_train::FitLoop`); their
//! plots; and the speed benchmark in the PyTorch reference's configurations. The command line
//! runs them; tests drive them too.

#![warn(missing_docs)]

use seqlab_data as data;
use seqlab_models as models;
use seqlab_train as train;

pub mod addition;
pub mod bench;
pub mod char_lm;
pub mod classify;
pub mod copy_task;
pub mod export;
pub mod human_numbers;
pub mod markov;
pub mod plot;
pub mod pos_tag;
pub mod seq2seq_task;
pub mod settings;
pub mod sinusoid;
mod streams;
pub mod text_lm;

pub use crate::train::TrainRun;

use crate::data::{DataError, Tokenizer};
use crate::models::{
    ClassifierError, ConfigError, EncoderError, MarkovError, RecurrentError, SamplingError,
};
use crate::train::{Checkpoint, CheckpointError, TrainError};
use settings::SettingError;
use std::path::Path;
use thiserror::Error;

/// The file of a checkpoint that holds a text model's tokenizer.
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";

/// The tokenizer of the run saved in `dir`, a checkpoint of `kind` with a `tokenizer.json`:
/// a resumed run reads its data with it rather than with one built again, since a WordPiece
/// tokenizer trained twice on the same texts can number its pieces differently.
pub(crate) fn saved_tokenizer(dir: &Path, kind: &str) -> Result<Tokenizer, LessonError> {
    let checkpoint = Checkpoint::load(dir, kind)?;
    Tokenizer::from_json(checkpoint.file(TOKENIZER_FILE)?)
        .map_err(|e| checkpoint.contents_error(TOKENIZER_FILE, e).into())
}

/// What can go wrong in a lesson.
#[derive(Debug, Error)]
pub enum LessonError {
    /// A setting is out of its range.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// Settings that do not go together, or data the lesson cannot use.
    #[error("{0}")]
    Config(String),
    /// Preparing the data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A model was given input it cannot take.
    #[error(transparent)]
    Model(#[from] RecurrentError),
    /// A model config cannot build a model.
    #[error(transparent)]
    ModelConfig(#[from] ConfigError),
    /// An encoder was given input it cannot take.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// A classifier was given input it cannot take.
    #[error(transparent)]
    Classifier(#[from] ClassifierError),
    /// Training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A checkpoint could not be written, read or used.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Generation was asked for something it cannot do.
    #[error(transparent)]
    Sampling(#[from] SamplingError),
    /// The Markov baseline was asked for something it cannot do.
    #[error(transparent)]
    Markov(#[from] MarkovError),
    /// A model could not be exported to ONNX.
    #[error(transparent)]
    Onnx(#[from] seqlab_onnx::OnnxError),
    /// A plot could not be drawn or written.
    #[error("could not write the plot {path}: {message}")]
    Plot {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}
