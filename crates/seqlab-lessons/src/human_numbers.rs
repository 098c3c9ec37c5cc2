//! fastai's "human numbers" language models, LMModel1–4 as the lesson runs them, and the
//! book's recurrent LMModel5–7.

use super::{LessonError, TrainRun};
use crate::data::{LmSplit, LmTask, Vocab, batches, human_numbers, split_words};
use crate::models::{
    CellKind, Footprint, LanguageModel, LmModel1Config, LmModel2Config, LmModel3Config,
    LmModel4Config, Nonlinearity, RecurrentLmConfig,
};
use crate::settings::sizes_at_least_one;
use crate::train::TrainError;
use crate::train::{
    AdamConfig, Checkpoint, DataLoaders, EpochRecord, Learner, OneCycle, OptimizerConfig,
    RunSettings, Schedule,
};
use crate::train::{
    MemoryNeed, Phase, RunCheckpoints, config_checkpoint, init_seeded, resume_module,
    with_module_weights,
};
use burn::tensor::Device;

/// The checkpoint kind of a human-numbers model.
pub const HUMAN_NUMBERS_KIND: &str = "human-numbers";
use std::fmt;
use std::str::FromStr;

/// Which of the lesson's models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanNumbersModel {
    /// LMModel1: three tokens written out, predicts the fourth.
    Lm1,
    /// LMModel2: the same as a loop (hidden 128 in the lesson).
    Lm2,
    /// LMModel3: keeps its state across batches (truncated BPTT), one-cycle training.
    Lm3,
    /// LMModel4: predicts after every token of 16.
    Lm4,
    /// LMModel5: a 2-layer RNN (`nn.RNN`), `fit_one_cycle(15, 3e-3)`.
    Lm5,
    /// LMModel6: a 2-layer LSTM, `fit_one_cycle(15, 1e-2)`.
    Lm6,
    /// LMModel7: LMModel6 AWD-LSTM style — output dropout 0.4, tied embeddings, AR α = 2,
    /// TAR β = 1, Adam's weight decay 0.1 — `fit_one_cycle(15, 1e-2)`.
    Lm7,
}

impl HumanNumbersModel {
    /// All of them, in the book's order.
    pub const ALL: [HumanNumbersModel; 7] = [
        HumanNumbersModel::Lm1,
        HumanNumbersModel::Lm2,
        HumanNumbersModel::Lm3,
        HumanNumbersModel::Lm4,
        HumanNumbersModel::Lm5,
        HumanNumbersModel::Lm6,
        HumanNumbersModel::Lm7,
    ];

    /// The name on the command line: `lm1` … `lm7`.
    pub fn name(self) -> &'static str {
        match self {
            HumanNumbersModel::Lm1 => "lm1",
            HumanNumbersModel::Lm2 => "lm2",
            HumanNumbersModel::Lm3 => "lm3",
            HumanNumbersModel::Lm4 => "lm4",
            HumanNumbersModel::Lm5 => "lm5",
            HumanNumbersModel::Lm6 => "lm6",
            HumanNumbersModel::Lm7 => "lm7",
        }
    }

    /// The lesson's hidden size: 64, and 128 for LMModel2.
    pub fn default_hidden(self) -> usize {
        if self == HumanNumbersModel::Lm2 {
            128
        } else {
            64
        }
    }

    /// The lesson's tokens per sample: 3 of context, or sequences of 16 for the models that
    /// predict every token (LMModel4 on).
    pub fn default_seq_len(self) -> usize {
        if self.predicts_every_token() { 16 } else { 3 }
    }

    /// Whether the model scores the next token after every input token.
    pub fn predicts_every_token(self) -> bool {
        !matches!(
            self,
            HumanNumbersModel::Lm1 | HumanNumbersModel::Lm2 | HumanNumbersModel::Lm3
        )
    }

    /// Whether the model keeps state across batches, and so needs `group_chunks` and
    /// `drop_last`.
    pub fn is_stateful(self) -> bool {
        !matches!(self, HumanNumbersModel::Lm1 | HumanNumbersModel::Lm2)
    }
}

impl fmt::Display for HumanNumbersModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HumanNumbersModel {
    type Err = LessonError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|model| model.name() == name)
            .ok_or_else(|| {
                LessonError::Config(format!(
                    "unknown model {name:?}: expected lm1, lm2, lm3, lm4, lm5, lm6 or lm7"
                ))
            })
    }
}

/// How to schedule training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HumanNumbersSchedule {
    /// As the lesson: `fit(10, 1e-3)` for lm1/lm2, `fit_one_cycle(10, 3e-3)` for lm3,
    /// `fit(30, 1e-3)` then `fit(50, 1e-4)` for lm4.
    #[default]
    Lesson,
    /// One `fit(epochs, lr)` at a constant rate.
    Fit,
    /// One `fit_one_cycle(epochs, lr)`; for lm4 the book's `fit_one_cycle(15, 3e-3)`.
    OneCycle,
}

/// A run of one of the lesson's models. `None` fields take the lesson's values.
#[derive(Debug, Clone, PartialEq)]
pub struct HumanNumbersConfig {
    /// The model.
    pub model: HumanNumbersModel,
    /// How training is scheduled.
    pub schedule: HumanNumbersSchedule,
    /// Epochs (replaces the lesson's phases with one fit).
    pub epochs: Option<usize>,
    /// Learning rate, or peak learning rate for one-cycle.
    pub lr: Option<f64>,
    /// Samples per batch (the lesson: 64).
    pub batch_size: usize,
    /// Tokens per sample (context for lm1–lm3, sequence length for lm4).
    pub seq_len: Option<usize>,
    /// Width of the hidden state.
    pub hidden: Option<usize>,
    /// Seed for the weights' initialisation.
    pub seed: u64,
    /// The optimizer (fastai's Adam by default).
    pub optimizer: OptimizerConfig,
}

impl HumanNumbersConfig {
    /// The lesson's settings for `model`.
    pub fn new(model: HumanNumbersModel) -> Self {
        Self {
            model,
            schedule: HumanNumbersSchedule::Lesson,
            epochs: None,
            lr: None,
            batch_size: 64,
            seq_len: None,
            hidden: None,
            seed: 0,
            optimizer: OptimizerConfig::default(),
        }
    }

    /// The fits to run, in order, as `(epochs, schedule)`.
    pub fn phases(&self) -> Vec<(usize, Schedule)> {
        use HumanNumbersModel::*;
        let one_cycle = |epochs, lr| (epochs, Schedule::OneCycle(OneCycle::new(lr)));
        let lesson = match (self.schedule, self.model) {
            (HumanNumbersSchedule::Lesson, Lm1 | Lm2) => vec![(10, Schedule::Constant(1e-3))],
            (HumanNumbersSchedule::Lesson, Lm3) => vec![one_cycle(10, 3e-3)],
            (HumanNumbersSchedule::Lesson, Lm4) => {
                vec![
                    (30, Schedule::Constant(1e-3)),
                    (50, Schedule::Constant(1e-4)),
                ]
            }
            (HumanNumbersSchedule::Fit, _) => vec![(10, Schedule::Constant(1e-3))],
            (HumanNumbersSchedule::Lesson | HumanNumbersSchedule::OneCycle, Lm5) => {
                vec![one_cycle(15, 3e-3)]
            }
            (HumanNumbersSchedule::Lesson | HumanNumbersSchedule::OneCycle, Lm6 | Lm7) => {
                vec![one_cycle(15, 1e-2)]
            }
            (HumanNumbersSchedule::OneCycle, Lm4) => vec![one_cycle(15, 3e-3)],
            (HumanNumbersSchedule::OneCycle, _) => vec![one_cycle(10, 3e-3)],
        };
        if self.epochs.is_none() && self.lr.is_none() {
            return lesson;
        }
        let (epochs, schedule) = lesson[0];
        let epochs = self.epochs.unwrap_or(epochs);
        let schedule = match self.lr {
            Some(lr) => schedule.with_max_lr(lr),
            None => schedule,
        };
        vec![(epochs, schedule)]
    }

    fn validate(&self) -> Result<(), LessonError> {
        sizes_at_least_one(&[
            ("the batch size", self.batch_size),
            ("the sequence length", self.seq_len.unwrap_or(1)),
            ("the hidden size", self.hidden.unwrap_or(1)),
            ("the number of epochs", self.epochs.unwrap_or(1)),
        ])?;
        if let Some(lr) = self.lr {
            TrainError::check_lr(lr)?;
        }
        if self.model == HumanNumbersModel::Lm1 && self.seq_len.is_some_and(|s| s != 3) {
            return Err(LessonError::Config(
                "lm1 reads exactly 3 tokens: leave --seq-len at 3".into(),
            ));
        }
        Ok(())
    }

    /// The lesson's data, cut and batched for this model.
    pub fn data(&self) -> Result<(Vocab, DataLoaders), LessonError> {
        self.validate()?;
        let tokens = split_words(&human_numbers().text());
        let vocab = Vocab::builder().build(&tokens);
        let ids = vocab.encode(&tokens)?;
        let seq_len = self.seq_len.unwrap_or(self.model.default_seq_len());
        let task = if self.model.predicts_every_token() {
            LmTask::EveryToken { seq_len }
        } else {
            LmTask::NextToken { context: seq_len }
        };
        let stateful = self.model.is_stateful();
        let split = LmSplit::new(&ids, task, 0.2, stateful.then_some(self.batch_size))?;
        // The lesson's stateless models use a plain DataLoader (short last batch kept); the
        // stateful ones drop the last batch so that every batch continues the same streams.
        let loaders = DataLoaders::new(
            batches(&split.train, self.batch_size, stateful)?,
            batches(&split.valid, self.batch_size, stateful)?,
        )?;
        Ok((vocab, loaders))
    }

    /// Prepares the data, then trains as [`run_on`](Self::run_on) does, printing the table
    /// when `table` is set and progress bars when `progress` is.
    pub fn run(
        &self,
        device: &Device,
        table: bool,
        progress: bool,
    ) -> Result<Vec<EpochRecord>, LessonError> {
        let (vocab, data) = self.data()?;
        let run = TrainRun {
            print_table: table,
            show_progress: progress,
            ..TrainRun::default()
        };
        self.run_on(vocab.len(), data, &run, device)
    }

    /// Seeds `device`, builds the model for a vocabulary of `vocab_size` and trains it on `data`
    /// through every phase as `run` says (checkpoints after every epoch, resuming a saved
    /// run). Returns every epoch's numbers since the run began.
    pub fn run_on(
        &self,
        vocab_size: usize,
        data: DataLoaders,
        run: &TrainRun,
        device: &Device,
    ) -> Result<Vec<EpochRecord>, LessonError> {
        let hidden = self.hidden.unwrap_or(self.model.default_hidden());
        let ad = device.clone().autodiff();
        let (v, tanh) = (vocab_size, CellKind::Rnn(Nonlinearity::Tanh));
        // Each model's config has its own type: the same call for each.
        macro_rules! train {
            ($config:expr) => {
                self.train_new($config, |config| config.init(&ad), data, run, device)
            };
        }
        match self.model {
            HumanNumbersModel::Lm1 => train!(LmModel1Config::new(v, hidden)),
            HumanNumbersModel::Lm2 => train!(LmModel2Config::new(v, hidden)),
            HumanNumbersModel::Lm3 => train!(LmModel3Config::new(v, hidden)),
            HumanNumbersModel::Lm4 => train!(LmModel4Config::new(v, hidden)),
            HumanNumbersModel::Lm5 => train!(RecurrentLmConfig::new(tanh, v, hidden, 2)),
            HumanNumbersModel::Lm6 => train!(RecurrentLmConfig::new(CellKind::Lstm, v, hidden, 2)),
            HumanNumbersModel::Lm7 => train!(RecurrentLmConfig::awd_lstm(v, hidden, 0.4)),
        }
    }

    /// Builds the model of `config` with this run's seed and trains it, the config saved as
    /// it is in the checkpoints beside the lesson's name of the model.
    fn train_new<C: serde::Serialize + Footprint, M: LanguageModel + Clone + 'static>(
        &self,
        config: C,
        init: impl FnOnce(&C) -> M,
        data: DataLoaders,
        run: &TrainRun,
        device: &Device,
    ) -> Result<Vec<EpochRecord>, LessonError> {
        let base = config_checkpoint(
            HUMAN_NUMBERS_KIND,
            &serde_json::json!({ "model": self.model.name(), "config": config }),
        );
        let seq_len = self.seq_len.unwrap_or(self.model.default_seq_len());
        MemoryNeed::training(
            &config,
            self.batch_size,
            seq_len,
            format!(
                "{} with hidden size {}, on batches of {} × {seq_len}",
                self.model.name(),
                self.hidden.unwrap_or(self.model.default_hidden()),
                self.batch_size
            ),
        )
        .check_here()?;
        let model = init_seeded(device, self.seed, || init(&config));
        self.train(model, data, base, run, device)
    }

    /// The settings a resumed run must share with the saved one.
    fn run_settings(&self) -> RunSettings {
        RunSettings::default()
            .with("phases", format!("{:?}", self.phases()))
            .with("batch-size", self.batch_size)
            .with("seq-len", format!("{:?}", self.seq_len))
            .with("optimizer", format!("{:?}", self.optimizer))
            .with("seed", self.seed)
    }

    fn train<M: LanguageModel + Clone + 'static>(
        &self,
        model: M,
        data: DataLoaders,
        base: Checkpoint,
        run: &TrainRun,
        device: &Device,
    ) -> Result<Vec<EpochRecord>, LessonError> {
        let optimizer = match (self.model, self.optimizer) {
            // The book trains LMModel7 with weight decay 0.1.
            (HumanNumbersModel::Lm7, OptimizerConfig::Adam(adam)) => {
                OptimizerConfig::Adam(AdamConfig {
                    weight_decay: 0.1,
                    ..adam
                })
            }
            (_, optimizer) => optimizer,
        };
        let settings = self.run_settings();
        let (model, saved) = resume_module(run.resume, &base, &settings, model, device)?;
        let learner = Learner::new(model, data, device).with_optimizer(optimizer);
        // Only LMModel7 draws during training (its dropout masks): reseeding the device's
        // generator at every step of the other models would disturb, for nothing, whatever
        // else in the process draws from it.
        let mut learner = if self.model == HumanNumbersModel::Lm7 {
            learner.with_step_seed(self.seed)
        } else {
            learner
        };
        let phases: Vec<Phase> = self
            .phases()
            .into_iter()
            .map(|(epochs, schedule)| Phase::new(epochs, schedule))
            .collect();
        let snapshot = move |model: &M| with_module_weights(base.clone(), &model.valid());
        let checkpoints = RunCheckpoints::new(snapshot, settings, saved);
        Ok(learner.run(&phases, run, Some(checkpoints))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lesson_phases() {
        let lm4 = HumanNumbersConfig::new(HumanNumbersModel::Lm4);
        assert_eq!(
            lm4.phases(),
            vec![
                (30, Schedule::Constant(1e-3)),
                (50, Schedule::Constant(1e-4))
            ]
        );
        let book = HumanNumbersConfig {
            schedule: HumanNumbersSchedule::OneCycle,
            ..lm4.clone()
        };
        assert_eq!(
            book.phases(),
            vec![(15, Schedule::OneCycle(OneCycle::new(3e-3)))]
        );
        let lm6 = HumanNumbersConfig::new(HumanNumbersModel::Lm6);
        assert_eq!(
            lm6.phases(),
            vec![(15, Schedule::OneCycle(OneCycle::new(1e-2)))]
        );
        let lm7 = HumanNumbersConfig::new(HumanNumbersModel::Lm7);
        assert_eq!(
            lm7.phases(),
            vec![(15, Schedule::OneCycle(OneCycle::new(1e-2)))]
        );
        let lm5 = HumanNumbersConfig::new(HumanNumbersModel::Lm5);
        assert_eq!(
            lm5.phases(),
            vec![(15, Schedule::OneCycle(OneCycle::new(3e-3)))]
        );
        let short = HumanNumbersConfig {
            epochs: Some(2),
            ..lm4
        };
        assert_eq!(short.phases(), vec![(2, Schedule::Constant(1e-3))]);
    }

    #[test]
    fn the_lesson_data_shapes() {
        let (vocab, lm1) = HumanNumbersConfig::new(HumanNumbersModel::Lm1)
            .data()
            .unwrap();
        assert_eq!(vocab.len(), 30);
        // 16824 training windows in 263 batches (the last of 56), 4207 validation windows.
        assert_eq!(lm1.stream_batches().unwrap().len(), 263);
        assert_eq!(
            lm1.stream_batches().unwrap().iter().last().unwrap().rows(),
            16824 % 64
        );
        assert_eq!(lm1.valid().iter().map(|b| b.rows()).sum::<usize>(), 4207);
        let (_, lm3) = HumanNumbersConfig::new(HumanNumbersModel::Lm3)
            .data()
            .unwrap();
        assert_eq!(lm3.stream_batches().unwrap().len(), 16824 / 64);
        assert!(lm3.stream_batches().unwrap().iter().all(|b| b.rows() == 64));
        let (_, lm4) = HumanNumbersConfig::new(HumanNumbersModel::Lm4)
            .data()
            .unwrap();
        // 3942 sequences of 16: 3153 train → 49 batches, 789 valid → 12 batches.
        assert_eq!(
            (lm4.stream_batches().unwrap().len(), lm4.valid().len()),
            (49, 12)
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let bad = |config: HumanNumbersConfig| config.data().unwrap_err().to_string();
        let lm4 = HumanNumbersConfig::new(HumanNumbersModel::Lm4);
        assert_eq!(
            bad(HumanNumbersConfig {
                batch_size: 0,
                ..lm4.clone()
            }),
            "the batch size must be at least 1, got 0"
        );
        assert!(
            bad(HumanNumbersConfig {
                seq_len: Some(100_000),
                ..lm4.clone()
            })
            .contains("sequence length 100000")
        );
        assert!(
            bad(HumanNumbersConfig {
                batch_size: 100_000,
                ..lm4
            })
            .contains("is empty")
        );
        assert!("lm9".parse::<HumanNumbersModel>().is_err());
    }
}
