//! Classification as the one training loop runs it: [`ClassifyTask`], and how a run trains
//! a model through it.

use super::data::{Batch, Encoded};
use super::*;

/// The two classifier families behind one interface.
pub(super) trait Classify: Module + Clone {
    fn logits(&self, batch: &Batch) -> Result<Tensor<2>, ClassifierError>;
}

impl Classify for RecurrentClassifier {
    fn logits(&self, batch: &Batch) -> Result<Tensor<2>, ClassifierError> {
        self.forward(batch.tokens.clone(), Some(&batch.lengths))
    }
}

impl Classify for MlpClassifier {
    fn logits(&self, batch: &Batch) -> Result<Tensor<2>, ClassifierError> {
        self.forward(batch.tokens.clone())
    }
}

pub(super) struct Run<'a> {
    pub(super) config: &'a ClassifyConfig,
    pub(super) train: &'a Encoded<'a>,
    pub(super) valid: &'a Encoded<'a>,
    pub(super) classes: usize,
    pub(super) device: &'a Device,
    pub(super) run: &'a TrainRun<'a>,
    /// The checkpoint's files but the weights.
    pub(super) base: Checkpoint,
}

type Fitted = (Vec<EpochRecord>, Vec<Vec<usize>>, usize);

impl Run<'_> {
    /// Trains `model` in phases of `(epochs, encoder frozen)`, one cycle each, resuming and
    /// checkpointing as the run says. With dropout, the generator is seeded from the seed and
    /// the step before each step, so that a resumed run draws the same masks.
    pub(super) fn fit<M>(&self, model: M, phases: &[(usize, bool)]) -> Result<Fitted, LessonError>
    where
        M: Classify + FreezeEncoder + PytorchWeights + 'static,
    {
        let settings = self.config.run_settings();
        let (model, saved) = match self.run.resume {
            Some(dir) => {
                let checkpoint = Checkpoint::load(dir, CLASSIFIER_KIND)?;
                check_same_model(&checkpoint, &self.base)?;
                let model = read_pytorch_weights(&checkpoint, model)?;
                let saved = SavedRun::read(&checkpoint, &settings, self.device)?;
                (model, Some(saved))
            }
            None => (model, None),
        };
        let parameters = model.num_params();
        let task = ClassifyTask {
            run: self,
            frozen: phases.iter().map(|&(_, frozen)| frozen).collect(),
            model: PhantomData,
        };
        let adam = OptimizerConfig::Adam(AdamConfig::pytorch());
        let model = model.train().fork(&self.device.clone().autodiff());
        let mut fit =
            FitLoop::new(task, model, self.device, adam).with_grad_clip(self.config.grad_clip);
        if phases.len() > 1 {
            let model = fit.model().clone();
            model.scale_encoder_lr(&mut fit, 1.0 / self.config.lr_decay);
        }
        let base = self.base.clone();
        let snapshot = move |model: &M| with_pytorch_weights(base.clone(), &model.valid());
        let schedule = self.config.schedule.at_lr(self.config.lr);
        let phases: Vec<Phase> = phases
            .iter()
            .map(|&(epochs, _)| Phase::new(epochs, schedule))
            .collect();
        let records = fit.run(
            &phases,
            self.run,
            Some(RunCheckpoints::new(snapshot, settings, saved)),
        )?;
        let confusion = match fit.scores() {
            Some(scores) => scores.confusion.clone(),
            None => self.evaluate(&fit.model().valid())?.1,
        };
        Ok((records, confusion, parameters))
    }

    fn evaluate<M: Classify>(&self, model: &M) -> Result<(f64, Vec<Vec<usize>>), LessonError> {
        let mut matrix = vec![vec![0; self.classes]; self.classes];
        let mut loss_sum = 0.0;
        for rows in self.valid.batches(self.config.batch_size.max(64), None) {
            let batch = self.valid.batch(&rows, self.device);
            let logits = model.logits(&batch)?;
            let n = batch.labels.len();
            let loss: f32 = class_loss(logits.clone(), batch.targets.clone()).into_scalar();
            loss_sum += f64::from(loss) * n as f64;
            let predicted: Vec<i64> = logits.argmax(1).into_data().iter::<i64>().collect();
            for (&actual, &guess) in batch.labels.iter().zip(&predicted) {
                matrix[actual][guess as usize] += 1;
            }
        }
        Ok((loss_sum / self.valid.len() as f64, matrix))
    }
}

/// Classification as the one training loop runs it: sortish batches in a seeded order per
/// epoch, the encoder frozen in the phases that say so, dropout masks seeded per step.
struct ClassifyTask<'a, M> {
    pub(super) run: &'a Run<'a>,
    /// Whether each phase trains with the encoder frozen.
    frozen: Vec<bool>,
    model: PhantomData<fn() -> M>,
}

/// A classifier's held-out loss and confusion matrix.
struct ClassScores {
    loss: f64,
    /// `confusion[actual][predicted]`.
    confusion: Vec<Vec<usize>>,
}

impl Scores for ClassScores {
    fn loss(&self) -> f64 {
        self.loss
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        let correct: usize = (0..self.confusion.len())
            .map(|c| self.confusion[c][c])
            .sum();
        let total: usize = self.confusion.iter().flatten().sum();
        vec![("accuracy".into(), correct as f64 / total.max(1) as f64)]
    }
}

impl<M: Classify + FreezeEncoder + 'static> TrainTask for ClassifyTask<'_, M> {
    type Model = M;
    type Batch = Vec<usize>;
    type Scores = ClassScores;
    type Error = LessonError;

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy"]
    }

    fn batches(&self, epoch: usize) -> Result<Vec<Vec<usize>>, LessonError> {
        let config = self.run.config;
        let seed = config.seed.wrapping_add(epoch as u64 + 1);
        Ok(self.run.train.batches(config.batch_size, Some(seed)))
    }

    fn loss(
        &self,
        model: &M,
        rows: &Vec<usize>,
        _carried: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, LessonError> {
        let batch = self.run.train.batch(rows, device);
        let loss = class_loss(model.logits(&batch)?, batch.targets.clone());
        Ok(StepLoss::new(loss))
    }

    fn evaluate(&self, model: &M) -> Result<ClassScores, LessonError> {
        let (loss, confusion) = self.run.evaluate(model)?;
        Ok(ClassScores { loss, confusion })
    }

    fn prepare_epoch(&self, model: M, fit: usize) -> M {
        model.with_encoder_frozen(self.frozen[fit])
    }

    fn step_seed(&self, step: StepIndex) -> Option<u64> {
        let config = self.run.config;
        (config.dropout > 0.0).then(|| seed_for_step(config.seed, step.in_run as u64))
    }
}

/// Mean cross-entropy of class `logits` `[B, C]` against `targets` `[B]`.
fn class_loss(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, classes] = logits.dims();
    flat_cross_entropy(
        logits.reshape([rows, 1, classes]),
        targets.reshape([rows, 1]),
    )
}

/// Freezing the encoder and its learning rates: no-ops for the MLP, which never has a
/// pretrained one.
pub(super) trait FreezeEncoder: Sized {
    fn with_encoder_frozen(self, frozen: bool) -> Self;

    /// Trains the top encoder layer group at `factor` times the learning rate, the next
    /// below at `factor²`.
    fn scale_encoder_lr<T: TrainTask>(&self, fit: &mut FitLoop<T>, factor: f64);
}

impl FreezeEncoder for RecurrentClassifier {
    fn with_encoder_frozen(self, frozen: bool) -> Self {
        self.freeze_encoder(frozen)
    }

    fn scale_encoder_lr<T: TrainTask>(&self, fit: &mut FitLoop<T>, factor: f64) {
        fit.scale_lr(&self.encoder, factor);
        fit.scale_lr(&self.embedding, factor * factor);
    }
}

impl FreezeEncoder for MlpClassifier {
    fn with_encoder_frozen(self, _frozen: bool) -> Self {
        self
    }

    fn scale_encoder_lr<T: TrainTask>(&self, _fit: &mut FitLoop<T>, _factor: f64) {}
}
