//! What a checkpoint holds beyond the model to continue a training run exactly where it
//! stopped: the run's settings, how far it got, the optimizer's running averages and, inside
//! an epoch, the recurrent state carried into the next batch.

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::fit::{Position, SmoothLoss};
use crate::record::EpochRecord;
use burn::tensor::{Device, Tensor, TensorData};
use seqlab_models::{NamedTensors, RecurrentState};
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
    /// Every training step's loss so far, in order (fastai's `recorder.losses`).
    #[serde(default)]
    pub batch_losses: Vec<f32>,
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
            batch_losses: Vec::new(),
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
        state: Option<&RecurrentState>,
    ) {
        checkpoint.insert(
            TRAINING_FILE,
            serde_json::to_vec_pretty(progress).expect("progress always serialises"),
        );
        checkpoint.insert(OPTIMIZER_FILE, optimizer.to_safetensors_bytes());
        if let Some(state) = state {
            let mut named = NamedTensors::default();
            named.insert_tensor(STATE_HIDDEN, state.hidden.clone());
            if let Some(cell) = &state.cell {
                named.insert_tensor(STATE_CELL, cell.clone());
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
        let asked = crate::parallel::with_group_size(asked);
        let processes = |settings: &RunSettings| {
            settings
                .0
                .get(crate::parallel::RANKS_SETTING)
                .map_or(1, |n| n.parse().unwrap_or(0))
        };
        let (saved_n, asked_n) = (processes(&progress.settings), processes(&asked));
        if saved_n != asked_n {
            return Err(checkpoint.contents_error(
                TRAINING_FILE,
                format!(
                    "the saved run was trained by {saved_n} process(es) and this one has \
                     {asked_n}: resume it with the same number (mpirun -np {saved_n})"
                ),
            ));
        }
        let differences = progress.settings.differences(&asked);
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

/// The carried state in `checkpoint`'s `state.safetensors`: `hidden` and, for an LSTM,
/// `cell`, each `[layers × directions, batch, hidden]`. The first format (2-D tensors named
/// `0`, `1`, … in an order each model chose) is refused in one line: which model wrote it, and
/// so what its tensors were, is not in the file.
fn read_state(checkpoint: &Checkpoint, device: &Device) -> Result<RecurrentState, CheckpointError> {
    let named = NamedTensors::from_safetensors_bytes(
        checkpoint.file(STATE_FILE)?,
        &checkpoint.path_of(STATE_FILE),
    )
    .map_err(|e| checkpoint.contents_error(STATE_FILE, e))?;
    if named.get(STATE_HIDDEN).is_none() && named.get("0").is_some() {
        return Err(checkpoint.contents_error(
            STATE_FILE,
            "holds the carried state in seqlab's first format (tensors by position), which this \
             version does not read: resume that run with the seqlab that wrote it, or start it again",
        ));
    }
    let autodiff = device.clone().autodiff();
    let tensor = |name: &str| -> Result<Option<Tensor<3>>, CheckpointError> {
        let Some((shape, values)) = named.get(name) else {
            return Ok(None);
        };
        let shape = <[usize; 3]>::try_from(shape)
            .map_err(|_| checkpoint.contents_error(STATE_FILE, format!("`{name}` is not 3-D")))?;
        Ok(Some(Tensor::from_data(
            TensorData::new(values.to_vec(), shape),
            &autodiff,
        )))
    };
    let hidden = tensor(STATE_HIDDEN)?
        .ok_or_else(|| checkpoint.contents_error(STATE_FILE, format!("no `{STATE_HIDDEN}`")))?;
    let cell = tensor(STATE_CELL)?;
    if cell.as_ref().is_some_and(|c| c.dims() != hidden.dims()) {
        return Err(checkpoint.contents_error(STATE_FILE, "`cell` and `hidden` differ in shape"));
    }
    Ok(RecurrentState { hidden, cell })
}

/// The names of the carried state's tensors in `state.safetensors`.
const STATE_HIDDEN: &str = "hidden";
const STATE_CELL: &str = "cell";

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
        let state = RecurrentState {
            hidden: Tensor::from_floats([[[1.0, 2.0], [3.0, 4.0]]], &device),
            cell: None,
        };
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
        let values: Vec<f32> = position
            .state
            .unwrap()
            .hidden
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

    #[test]
    fn a_carried_state_in_the_first_format_is_refused_in_one_line() {
        let device = Device::flex();
        let settings = RunSettings::default();
        let mut progress = RunProgress::new(settings.clone());
        progress.next_batch = Some(1);
        let mut checkpoint = Checkpoint::new("test");
        SavedRun::insert_into(&mut checkpoint, &progress, NamedTensors::default(), None);
        let mut old = NamedTensors::default();
        old.insert_tensor("0", Tensor::<2>::from_floats([[1.0, 2.0]], &device));
        checkpoint.insert(STATE_FILE, old.to_safetensors_bytes());
        let error = SavedRun::read(&checkpoint, &settings, &device)
            .unwrap_err()
            .to_string();
        assert!(error.contains("first format"), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
}
