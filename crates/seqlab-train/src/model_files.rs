//! A model's files in a checkpoint: its config, its weights (under PyTorch's names or by
//! their paths in the model), and the check that a resumed run holds the same model.

use crate::{Checkpoint, CheckpointError, RunSettings, SavedRun};
use burn::module::Module;
use burn::tensor::Device;
use seqlab_models::{
    NamedTensors, PytorchWeights, WeightReader, load_module_tensors, module_tensors,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The file of a checkpoint that holds a model's weights.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// The file of a checkpoint that holds a model's config.
pub const CONFIG_FILE: &str = "config.json";

/// A checkpoint of `kind` holding `config` (a model's config as it is, or the settings that
/// build it) as `config.json`; the weights come with each save.
pub fn config_checkpoint<C: Serialize + ?Sized>(kind: &str, config: &C) -> Checkpoint {
    let mut checkpoint = Checkpoint::new(kind);
    checkpoint.insert(
        CONFIG_FILE,
        serde_json::to_vec_pretty(config).expect("a config always serialises"),
    );
    checkpoint
}

/// The config in `checkpoint`'s `config.json`, as `check` accepts it: one that does not parse
/// or that `check` refuses is an error naming the file.
pub fn read_config<C: DeserializeOwned, E: std::fmt::Display>(
    checkpoint: &Checkpoint,
    check: impl FnOnce(C) -> Result<C, E>,
) -> Result<C, CheckpointError> {
    let config = serde_json::from_slice(checkpoint.file(CONFIG_FILE)?)
        .map_err(|e| checkpoint.contents_error(CONFIG_FILE, e))?;
    check(config).map_err(|e| checkpoint.contents_error(CONFIG_FILE, e))
}

/// Checks that the checkpoint a run resumes from holds this run's model: every file of
/// `this_run` (its config, vocabulary or tokenizer) byte for byte.
pub fn check_same_model(saved: &Checkpoint, this_run: &Checkpoint) -> Result<(), CheckpointError> {
    for name in this_run.names() {
        let ours = this_run.file(name)?;
        let theirs = saved.file(name)?;
        if ours == theirs {
            continue;
        }
        let message = if name == CONFIG_FILE {
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
        return Err(saved.contents_error(name, message));
    }
    Ok(())
}

/// `checkpoint` with `model`'s weights added under PyTorch's names.
pub fn with_pytorch_weights<M: PytorchWeights>(
    mut checkpoint: Checkpoint,
    model: &M,
) -> Checkpoint {
    let mut named = NamedTensors::default();
    model.save_pytorch("", &mut named);
    checkpoint.insert(WEIGHTS_FILE, named.to_safetensors_bytes());
    checkpoint
}

/// Loads the weights [`with_pytorch_weights`] wrote into `model`, every tensor used and
/// every shape checked; a problem is an error naming the file.
pub fn read_pytorch_weights<M: PytorchWeights>(
    checkpoint: &Checkpoint,
    model: M,
) -> Result<M, CheckpointError> {
    let error = |e: &dyn std::fmt::Display| checkpoint.contents_error(WEIGHTS_FILE, e);
    let named = weights_of(checkpoint)?;
    let mut reader = WeightReader::new(&named);
    let model = model.load_pytorch("", &mut reader).map_err(|e| error(&e))?;
    reader.finish().map_err(|e| error(&e))?;
    Ok(model)
}

/// `checkpoint` with `model`'s parameters added by their paths in the model
/// ([`module_tensors`]), for models that have no PyTorch names.
pub fn with_module_weights<M: Module>(mut checkpoint: Checkpoint, model: &M) -> Checkpoint {
    checkpoint.insert(WEIGHTS_FILE, module_tensors(model).to_safetensors_bytes());
    checkpoint
}

/// Loads the parameters that [`with_module_weights`] wrote into `model`, every tensor
/// checked.
pub fn read_module_weights<M: Module>(
    checkpoint: &Checkpoint,
    model: M,
) -> Result<M, CheckpointError> {
    let named = weights_of(checkpoint)?;
    load_module_tensors(model, &named).map_err(|e| checkpoint.contents_error(WEIGHTS_FILE, e))
}

/// The tensors of `checkpoint`'s weights file.
fn weights_of(checkpoint: &Checkpoint) -> Result<NamedTensors, CheckpointError> {
    NamedTensors::from_safetensors_bytes(
        checkpoint.file(WEIGHTS_FILE)?,
        &checkpoint.path_of(WEIGHTS_FILE),
    )
    .map_err(|e| checkpoint.contents_error(WEIGHTS_FILE, e))
}

/// `model` as it is, or, when `resume` names a checkpoint, with the weights [`with_module_weights`]
/// saved there and that run's progress, after checking that the checkpoint is of
/// `model_files`' kind, holds the same model files and was written by a run with `settings`.
pub fn resume_module<M: Module>(
    resume: Option<&std::path::Path>,
    model_files: &Checkpoint,
    settings: &RunSettings,
    model: M,
    device: &Device,
) -> Result<(M, Option<SavedRun>), CheckpointError> {
    let Some(dir) = resume else {
        return Ok((model, None));
    };
    let checkpoint = Checkpoint::load(dir, model_files.kind())?;
    check_same_model(&checkpoint, model_files)?;
    let model = read_module_weights(&checkpoint, model)?;
    let saved = SavedRun::read(&checkpoint, settings, device)?;
    Ok((model, Some(saved)))
}
