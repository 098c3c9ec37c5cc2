//! Training runs that checkpoint as they go and continue where they stopped: what the
//! training commands share behind `--out`, `--resume`, `--stop-after`, `--save-every` and
//! Ctrl-C.

mod fit;
mod loop_checkpoints;

pub(crate) use fit::fit_resumable;
pub(crate) use loop_checkpoints::LoopCheckpoints;

use super::LessonError;
use crate::data::Tokenizer;
use crate::models::{NamedTensors, PytorchWeights, load_module_tensors, module_tensors};
use crate::train::{Checkpoint, RunSettings, SavedRun};
use burn::module::Module;
use burn::tensor::Device;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Where a training run writes checkpoints, what it continues from and when it stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainRun<'a> {
    /// Write a checkpoint here after every epoch (and every `save_every` steps).
    pub out: Option<&'a Path>,
    /// Continue the run saved in this checkpoint (same data and settings).
    pub resume: Option<&'a Path>,
    /// Stop after this many epochs of the run (the schedule still spans all of them).
    pub stop_after: Option<usize>,
    /// Also write the checkpoint every this many optimisation steps, inside epochs.
    pub save_every: Option<usize>,
    /// Stop at the next step boundary once this is set (a Ctrl-C handler sets it), writing a
    /// checkpoint that continues the run from that step.
    pub stop: Option<&'a Arc<AtomicBool>>,
    /// Print fastai's table.
    pub print_table: bool,
    /// Show progress bars.
    pub show_progress: bool,
}

/// The file of a checkpoint that holds a text model's tokenizer.
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";

/// The file of a checkpoint that holds a model's weights: under PyTorch's names where the
/// model has them, by their paths in the model otherwise.
const PARAM_FILE: &str = "weights.safetensors";

/// What a training run checkpoints and resumes: where it writes and what it continues from
/// (`run`), the checkpoint's files beside the weights (its kind and the model's config), and
/// the settings a resumed run must share with the saved one.
pub(crate) struct Resumable<'a> {
    /// Where and when.
    pub(crate) run: &'a TrainRun<'a>,
    /// The checkpoint's kind and files but the weights.
    pub(crate) model_files: Checkpoint,
    /// The run's settings.
    pub(crate) settings: RunSettings,
}

/// A checkpoint of `kind` holding the model's shape as `config.json` (its weights come with
/// each save).
pub(crate) fn config_checkpoint(kind: &str, config: &serde_json::Value) -> Checkpoint {
    let mut checkpoint = Checkpoint::new(kind);
    checkpoint.insert(
        "config.json",
        serde_json::to_vec_pretty(config).expect("JSON values always serialise"),
    );
    checkpoint
}

impl Resumable<'_> {
    /// `model` as it is, or with the weights of the run saved in `run.resume` (with
    /// [`with_param_file`]) and that run's progress, after checking that the checkpoint is of
    /// this kind, holds this model and was written by a run with these settings.
    pub(crate) fn start_from<M: Module>(
        &self,
        model: M,
        device: &Device,
    ) -> Result<(M, Option<SavedRun>), LessonError> {
        let Some(dir) = self.run.resume else {
            return Ok((model, None));
        };
        let checkpoint = Checkpoint::load(dir, self.model_files.kind())?;
        check_same_model(&checkpoint, &self.model_files)?;
        let model = read_param_file(&checkpoint, model)?;
        let saved = SavedRun::read(&checkpoint, &self.settings, device)?;
        Ok((model, Some(saved)))
    }
}

/// The tokenizer of the run saved in `dir`, a checkpoint of `kind` with a `tokenizer.json`:
/// a resumed run reads its data with it rather than with one built again, since a WordPiece
/// tokenizer trained twice on the same texts can number its pieces differently.
pub(crate) fn saved_tokenizer(dir: &Path, kind: &str) -> Result<Tokenizer, LessonError> {
    let checkpoint = Checkpoint::load(dir, kind)?;
    Tokenizer::from_json(checkpoint.file(TOKENIZER_FILE)?)
        .map_err(|e| checkpoint.contents_error(TOKENIZER_FILE, e).into())
}

/// The model's files of a checkpoint (config, vocabulary, weights) for the model as it stands.
pub(crate) type Snapshot<M> = Rc<dyn Fn(&M) -> Checkpoint>;

/// Checks that the checkpoint a run resumes from holds this run's model: every file of
/// `this_run` (its config, vocabulary or tokenizer) byte for byte.
pub(crate) fn check_same_model(
    saved: &Checkpoint,
    this_run: &Checkpoint,
) -> Result<(), LessonError> {
    for name in this_run.names() {
        let ours = this_run.file(name)?;
        let theirs = saved.file(name)?;
        if ours == theirs {
            continue;
        }
        let message = if name == "config.json" {
            let compact = |bytes: &[u8]| {
                serde_json::from_slice::<serde_json::Value>(bytes).map_or_else(
                    |_| String::from_utf8_lossy(bytes).into_owned(),
                    |v| v.to_string(),
                )
            };
            format!(
                "the checkpoint's model is {}, this run asks for {}",
                compact(theirs),
                compact(ours)
            )
        } else {
            "differs from this run's: resume on the same data with the same settings".to_string()
        };
        return Err(saved.contents_error(name, message).into());
    }
    Ok(())
}

/// `checkpoint` with `model`'s weights added under PyTorch's names.
pub(crate) fn with_pytorch_weights<M: PytorchWeights>(
    mut checkpoint: Checkpoint,
    model: &M,
) -> Checkpoint {
    let mut named = NamedTensors::default();
    model.save_pytorch("", &mut named);
    checkpoint.insert(PARAM_FILE, named.to_safetensors_bytes());
    checkpoint
}

/// `checkpoint` with `model`'s parameters added by their paths in the model
/// ([`module_tensors`]), for models that have no PyTorch names.
pub(crate) fn with_param_file<M: Module>(mut checkpoint: Checkpoint, model: &M) -> Checkpoint {
    checkpoint.insert(PARAM_FILE, module_tensors(model).to_safetensors_bytes());
    checkpoint
}

/// Loads the parameters that [`with_param_file`] wrote into `model`, every tensor checked.
pub(crate) fn read_param_file<M: Module>(
    checkpoint: &Checkpoint,
    model: M,
) -> Result<M, LessonError> {
    let error = |e: &dyn std::fmt::Display| checkpoint.contents_error(PARAM_FILE, e);
    let named = NamedTensors::from_safetensors_bytes(
        checkpoint.file(PARAM_FILE)?,
        &checkpoint.path_of(PARAM_FILE),
    )
    .map_err(|e| error(&e))?;
    load_module_tensors(model, &named).map_err(|e| error(&e).into())
}
