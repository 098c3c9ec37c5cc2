//! What a checkpoint holds beyond the model to continue a training run exactly where it
//! stopped: the run's settings, how far it got, the optimizer's running averages and, inside
//! an epoch, the recurrent state carried into the next batch.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::fit::{Position, SmoothLoss};
use crate::record::EpochRecord;
use burn::tensor::{Device, Tensor, TensorData};
use seqlab_models::{NamedTensors, RnnState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Display;

/// The file of a checkpoint that holds [`RunProgress`].
pub const TRAINING_FILE: &str = "training.json";
/// The file of a checkpoint that holds the optimizer's state.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The file of a checkpoint that holds the state carried into the next batch, when the run
/// stopped inside an epoch.
pub const STATE_FILE: &str = "state.safetensors";

/// The settings that make a run the run it is (learning rate, epochs, batch size, seed, …),
/// by name: a run resumes only with the same ones.
///
/// ```
/// use seqlab_train::RunSettings;
/// let saved = RunSettings::default().with("lr", 0.01).with("epochs", 2);
/// let asked = RunSettings::default().with("lr", 0.003).with("epochs", 2);
/// assert_eq!(saved.differences(&asked), ["lr 0.01 (asked 0.003)"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunSettings(BTreeMap<String, String>);

impl RunSettings {
    /// Adds a setting, written as `value` displays.
    pub fn with(mut self, name: &str, value: impl Display) -> Self {
        self.0.insert(name.to_string(), value.to_string());
        self
    }

    /// Each setting whose saved value (`self`) differs from the one asked for, as
    /// `"name saved (asked asked)"`; `-` stands for a setting one side lacks.
    pub fn differences(&self, asked: &RunSettings) -> Vec<String> {
        let mut names: Vec<&String> = self.0.keys().chain(asked.0.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                let saved = self.0.get(name).map_or("-", String::as_str);
                let wanted = asked.0.get(name).map_or("-", String::as_str);
                (saved != wanted).then(|| format!("{name} {saved} (asked {wanted})"))
            })
            .collect()
    }
}

/// Where a training run stands, as a checkpoint's `training.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    /// The run's settings.
    pub settings: RunSettings,
    /// Epochs finished.
    pub epochs_done: usize,
    /// The next batch of epoch `epochs_done`, when the run stopped inside it.
    pub next_batch: Option<usize>,
    /// fastai's smoothed training loss, to report the same numbers after resuming.
    pub smooth_loss: SmoothLoss,
    /// The sum of the batch losses of epoch `epochs_done` so far, when the run stopped inside
    /// it (hand-written loops report each epoch's mean loss).
    #[serde(default)]
    pub epoch_loss_sum: f64,
    /// Every finished epoch's numbers.
    pub records: Vec<EpochRecord>,
}

impl RunProgress {
    /// A run with these settings that has not started.
    pub fn new(settings: RunSettings) -> Self {
        Self {
            settings,
            epochs_done: 0,
            next_batch: None,
            smooth_loss: SmoothLoss::default(),
            epoch_loss_sum: 0.0,
            records: Vec::new(),
        }
    }
}

/// A run read back from a checkpoint: its progress, the optimizer's state and, when it
/// stopped inside an epoch, the state carried into the next batch.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// How far it got.
    pub progress: RunProgress,
    /// The optimizer's state ([`crate::Optimizer::state_of`]).
    pub optimizer: NamedTensors,
    /// Where inside an epoch it stopped, with the carried state (on the autodiff device).
    pub position: Option<Position>,
}

impl SavedRun {
    /// Adds the files of a run that stands at `progress` to `checkpoint`: `training.json`,
    /// the optimizer's state and, inside an epoch, the carried `state`.
    pub fn insert_into(
        checkpoint: &mut Checkpoint,
        progress: &RunProgress,
        optimizer: NamedTensors,
        state: Option<&RnnState>,
    ) {
        checkpoint.insert(
            TRAINING_FILE,
            serde_json::to_vec_pretty(progress).expect("progress always serialises"),
        );
        checkpoint.insert(OPTIMIZER_FILE, optimizer.to_safetensors_bytes());
        if let Some(state) = state {
            let mut named = NamedTensors::default();
            for (index, tensor) in state.tensors.iter().enumerate() {
                named.insert_tensor(index.to_string(), tensor.clone());
            }
            checkpoint.insert(STATE_FILE, named.to_safetensors_bytes());
        }
    }

    /// Reads the run saved in `checkpoint`, refusing one whose settings differ from `asked`
    /// (the error lists each difference). The carried state is put on `device`'s autodiff
    /// device, where training runs.
    pub fn read(
        checkpoint: &Checkpoint,
        asked: &RunSettings,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        let progress: RunProgress = serde_json::from_slice(checkpoint.file(TRAINING_FILE)?)
            .map_err(|e| checkpoint.contents_error(TRAINING_FILE, e))?;
        let differences = progress.settings.differences(asked);
        if !differences.is_empty() {
            return Err(checkpoint.contents_error(
                TRAINING_FILE,
                format!("the saved run differs: {}", differences.join(", ")),
            ));
        }
        let optimizer = NamedTensors::from_safetensors_bytes(
            checkpoint.file(OPTIMIZER_FILE)?,
            &checkpoint.path_of(OPTIMIZER_FILE),
        )
        .map_err(|e| checkpoint.contents_error(OPTIMIZER_FILE, e))?;
        let position = match progress.next_batch {
            Some(next_batch) => Some(Position {
                epoch: progress.epochs_done,
                next_batch,
                state: match checkpoint.file(STATE_FILE) {
                    Ok(_) => Some(read_state(checkpoint, device)?),
                    Err(_) => None,
                },
            }),
            None => None,
        };
        Ok(Self {
            progress,
            optimizer,
            position,
        })
    }
}

/// The carried state in `checkpoint`'s `state.safetensors`: 2-D tensors named 0, 1, ….
fn read_state(checkpoint: &Checkpoint, device: &Device) -> Result<RnnState, CheckpointError> {
    let named = NamedTensors::from_safetensors_bytes(
        checkpoint.file(STATE_FILE)?,
        &checkpoint.path_of(STATE_FILE),
    )
    .map_err(|e| checkpoint.contents_error(STATE_FILE, e))?;
    let autodiff = device.clone().autodiff();
    let tensors = (0..named.len())
        .map(|index| {
            let (shape, values) = named.get(&index.to_string()).ok_or_else(|| {
                checkpoint.contents_error(STATE_FILE, format!("no tensor {index}"))
            })?;
            let [rows, width] = <[usize; 2]>::try_from(shape).map_err(|_| {
                checkpoint.contents_error(STATE_FILE, format!("tensor {index} is not 2-D"))
            })?;
            Ok(Tensor::from_data(
                TensorData::new(values.to_vec(), [rows, width]),
                &autodiff,
            ))
        })
        .collect::<Result<Vec<Tensor<2>>, CheckpointError>>()?;
    Ok(RnnState::new(tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_list_every_difference_both_ways() {
        let saved = RunSettings::default().with("lr", 0.01).with("seed", 0);
        let asked = RunSettings::default()
            .with("lr", 0.01)
            .with("seed", 1)
            .with("epochs", 3);
        assert_eq!(
            saved.differences(&asked),
            ["epochs - (asked 3)", "seed 0 (asked 1)"]
        );
        assert!(saved.differences(&saved).is_empty());
    }

    #[test]
    fn progress_and_state_round_trip_through_a_checkpoint() {
        let device = Device::flex();
        let settings = RunSettings::default().with("lr", 0.5);
        let mut progress = RunProgress::new(settings.clone());
        progress.epochs_done = 1;
        progress.next_batch = Some(3);
        let state = RnnState::new(vec![Tensor::from_floats([[1.0, 2.0], [3.0, 4.0]], &device)]);
        let mut checkpoint = Checkpoint::new("test");
        SavedRun::insert_into(
            &mut checkpoint,
            &progress,
            NamedTensors::default(),
            Some(&state),
        );
        let saved = SavedRun::read(&checkpoint, &settings, &device).unwrap();
        assert_eq!(saved.progress, progress);
        let position = saved.position.unwrap();
        assert_eq!((position.epoch, position.next_batch), (1, 3));
        let values: Vec<f32> = position.state.unwrap().tensors[0]
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0]);
        let other = RunSettings::default().with("lr", 0.25);
        let error = SavedRun::read(&checkpoint, &other, &device)
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("training.json: the saved run differs: lr 0.5 (asked 0.25)"),
            "{error}"
        );
    }
}
