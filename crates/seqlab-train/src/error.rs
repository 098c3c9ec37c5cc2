//! The one error type of the train crate.

use thiserror::Error;

/// What can stop training.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The loss became NaN or infinite; training stops rather than carry on with garbage.
    #[error(
        "the training loss became {value} at epoch {epoch}, batch {batch}: lower the learning rate or check the data"
    )]
    NonFiniteLoss {
        /// Epoch (within the current fit) where it happened.
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
        /// The loss value.
        value: f32,
    },
    /// There is nothing to train or validate on.
    #[error("{0} has no batches: the data is too small for this batch size")]
    NoBatches(&'static str),
    /// A hyperparameter is out of its range.
    #[error("{name} must be {requirement}, got {value}")]
    BadHyperparameter {
        /// The hyperparameter.
        name: &'static str,
        /// What it must be.
        requirement: &'static str,
        /// What it was.
        value: f64,
    },
    /// A file could not be written.
    #[error("could not write {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Training was asked to stop (Ctrl-C) and stopped at a step boundary; the checkpoint, if
    /// the run writes one, continues it.
    #[error("training stopped at epoch {epoch}, before batch {batch}{}", checkpoint.as_ref().map_or(String::new(), |dir| format!("; the checkpoint in {dir} continues it")))]
    Interrupted {
        /// The epoch it stopped in, counted across the run.
        epoch: usize,
        /// The next batch it would have trained on.
        batch: usize,
        /// Where the checkpoint was written.
        checkpoint: Option<String>,
    },
    /// The processes of a data-parallel run cannot train together (started with different
    /// settings, or MPI could not start).
    #[error("data-parallel training: {0}")]
    GroupSettings(String),
    /// Saved optimizer state that does not fit the model.
    #[error("the optimizer state does not fit the model: {0}")]
    OptimizerState(String),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] crate::CheckpointError),
    /// A model and batch that cannot fit in the memory available.
    #[error(
        "{settings} needs about {needed} of memory (about {parameters} parameters, with their \
         gradients and Adam's state, and {activations} of activations for one batch), but \
         {available} is available: make it smaller"
    )]
    TooBig {
        /// The settings that size the run.
        settings: String,
        /// The estimate.
        needed: String,
        /// The parameter count.
        parameters: String,
        /// One batch's activations.
        activations: String,
        /// The memory available.
        available: String,
    },
    /// Data could not be batched.
    #[error(transparent)]
    Data(#[from] seqlab_data::DataError),
    /// The device could not run or read back a step (on a GPU, most often a batch whose
    /// tensors exceed the adapter's buffer limits).
    #[error(
        "the device failed during training: {0}; a smaller batch size or sequence length may fit"
    )]
    Device(String),
}

/// The first non-empty line of a backend's (often multi-line) error.
fn first_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("no details")
        .to_string()
}

impl TrainError {
    /// [`TrainError::Device`] from a backend's (often multi-line) error: its first line.
    pub(crate) fn device(message: &str) -> Self {
        Self::Device(first_line(message))
    }

    /// `Ok` for a learning rate that is positive and finite: the check every step makes, for
    /// a command to make before it reads its data.
    pub fn check_lr(lr: f64) -> Result<(), Self> {
        Self::check_positive("the learning rate", "positive", lr)
    }

    /// `Ok` for a gradient clipping norm that is positive and finite: a negative or NaN limit
    /// would flip or erase every gradient rather than bound it.
    pub fn check_max_norm(max_norm: f64) -> Result<(), Self> {
        Self::check_positive(
            "the gradient clipping norm",
            "positive and finite",
            max_norm,
        )
    }

    fn check_positive(
        name: &'static str,
        requirement: &'static str,
        value: f64,
    ) -> Result<(), Self> {
        if value.is_finite() && value > 0.0 {
            Ok(())
        } else {
            Err(TrainError::BadHyperparameter {
                name,
                requirement,
                value,
            })
        }
    }
}
