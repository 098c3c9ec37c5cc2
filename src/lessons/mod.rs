//! The lessons seqlab grew from, as functions that build their data and models and train them
//! with the notebooks' settings. The command line runs them; tests drive them too.

pub mod addition;
pub mod char_lm;
pub mod classify;
pub mod copy_task;
pub mod human_numbers;
pub mod markov;
pub mod pos_tag;
mod resumable;
pub mod seq2seq_task;
pub mod sinusoid;
pub mod text_lm;

pub use resumable::TrainRun;

use crate::data::DataError;
use crate::models::{ClassifierError, MarkovError, RecurrentError, SamplingError};
use crate::models::{NamedTensors, PytorchWeights, WeightReader};
use crate::train::{Checkpoint, CheckpointError, TrainError};
use burn::tensor::Device;
use std::sync::Mutex;
use thiserror::Error;

/// Seeds `device`'s generator and builds a model with it, holding a process-wide lock so that
/// two lessons running side by side do not interleave their draws. The backend's generator is
/// shared by everything on the device: other code drawing from it at the same moment still
/// changes the initial weights, so a test that needs one exact initialisation runs the binary,
/// a process of its own.
pub(crate) fn init_seeded<T>(device: &Device, seed: u64, init: impl FnOnce() -> T) -> T {
    static_lock(|| {
        device.seed(seed);
        init()
    })
}

/// Runs `f` holding the process-wide lock on the devices' generators.
fn static_lock<T>(f: impl FnOnce() -> T) -> T {
    static SEEDING: Mutex<()> = Mutex::new(());
    let _guard = SEEDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f()
}

/// Seeds `device`'s generator from `seed` and a training `step`, under the same lock as
/// [`init_seeded`]: training with dropout draws each step's masks from there, so that a run
/// resumed at any step draws the same masks as one that never stopped.
pub(crate) fn reseed(device: &Device, seed: u64, step: u64) {
    static_lock(|| device.seed(crate::train::seed_for_step(seed, step)));
}

/// Loads the weights in `file` of `checkpoint` (PyTorch's names, safetensors) into `model`,
/// every tensor used and every shape checked; a problem is an error naming the file.
pub(crate) fn read_weights<M: PytorchWeights>(
    checkpoint: &Checkpoint,
    file: &str,
    model: M,
) -> Result<M, LessonError> {
    let error = |e: &dyn std::fmt::Display| checkpoint.contents_error(file, e);
    let named =
        NamedTensors::from_safetensors_bytes(checkpoint.file(file)?, &checkpoint.path_of(file))
            .map_err(|e| error(&e))?;
    let mut reader = WeightReader::new(&named);
    let model = model.load_pytorch("", &mut reader).map_err(|e| error(&e))?;
    reader.finish().map_err(|e| error(&e))?;
    Ok(model)
}

/// What can go wrong in a lesson.
#[derive(Debug, Error)]
pub enum LessonError {
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// Preparing the data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A model was given input it cannot take.
    #[error(transparent)]
    Model(#[from] RecurrentError),
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
    /// Training was stopped (Ctrl-C) at a step boundary; the checkpoint, if one was asked
    /// for, continues it.
    #[error("training stopped at epoch {epoch}, before batch {batch}{}", checkpoint.as_ref().map_or(String::new(), |dir| format!("; the checkpoint in {dir} continues it")))]
    Interrupted {
        /// The epoch.
        epoch: usize,
        /// The next batch.
        batch: usize,
        /// Where the checkpoint was written.
        checkpoint: Option<String>,
    },
    /// A plot could not be drawn or written.
    #[error("could not write the plot {path}: {message}")]
    Plot {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}
