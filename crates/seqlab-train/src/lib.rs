//! Training for seqlab models: the one training loop ([`FitLoop`], driven by a [`TrainTask`])
//! with checkpoints and exact resumption, a fastai-style [`Learner`] for language models on
//! it, fastai's and PyTorch's Adam and SGD, schedules, flat cross-entropy, accuracy,
//! per-epoch tables and JSON metrics. The loop is written here rather than taken from
//! burn-train, because it carries the hidden state of stateful models from batch to batch.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use seqlab_data::{LmSplit, LmTask, batches, human_numbers, split_words, Vocab};
//! use seqlab_models::LmModel4Config;
//! use seqlab_train::{DataLoaders, Learner};
//!
//! let tokens = split_words(&human_numbers().text());
//! let vocab = Vocab::builder().build(&tokens);
//! let ids = vocab.encode(&tokens)?;
//! let split = LmSplit::new(&ids, LmTask::EveryToken { seq_len: 16 }, 0.2, Some(64))?;
//! let data = DataLoaders::new(batches(&split.train, 64, true)?, batches(&split.valid, 64, true)?)?;
//! let device = Device::flex();
//! let model = LmModel4Config::new(vocab.len(), 64).init(&device.clone().autodiff());
//! let mut learner = Learner::new(model, data, &device);
//! learner.fit(30, 1e-3)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod checkpoint;
mod error;
mod fit;
mod learner;
mod loss;
mod memory;
mod metrics_file;
mod model_files;
mod optim;
pub mod parallel;
mod progress;
mod reads;
mod record;
mod resume;
mod schedule;
mod seeding;
mod trainer;

pub use checkpoint::{CHECKPOINT_VERSION, Checkpoint, CheckpointError};
pub use error::TrainError;
pub use fit::{
    FitLoop, GPU_LOSS_READ_EVERY, LossAccuracy, Phase, Position, RunCheckpoints, Scores,
    SmoothLoss, Snapshot, StepIndex, StepLoss, TrainRun, TrainTask,
};
pub use learner::{DataLoaders, Learner, LmTask, evaluate_lm};
pub use loss::{
    accuracy_counts, flat_cross_entropy, masked_accuracy_counts, masked_cross_entropy, mse,
};
pub use memory::{MemoryNeed, TRAINING_COPIES, available_memory};
pub use metrics_file::{write_json_atomic, write_metrics_json};
pub use model_files::{
    CONFIG_FILE, WEIGHTS_FILE, check_same_model, config_checkpoint, read_config,
    read_module_weights, read_pytorch_weights, resume_module, with_module_weights,
    with_pytorch_weights,
};
pub use optim::{AdamConfig, Optimizer, OptimizerConfig, SgdConfig, clip_grad_norm};
pub use reads::host_reads;
pub use record::{EpochRecord, format_table_header, format_table_row};
pub use resume::{OPTIMIZER_FILE, RunProgress, RunSettings, STATE_FILE, SavedRun, TRAINING_FILE};
pub use schedule::{FlatCos, OneCycle, Schedule, SchedulePolicy, StepDecay, StepHyper};
pub use seeding::{init_seeded, seed_device, seed_for_step};
pub use trainer::Trainer;
