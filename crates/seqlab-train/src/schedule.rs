//! Learning-rate and momentum schedules.

/// The learning rate and momentum (Adam's beta1, SGD's momentum) to use at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepHyper {
    /// Learning rate.
    pub lr: f64,
    /// Momentum, or `None` to keep the optimizer's own.
    pub momentum: Option<f64>,
}

/// fastai's `fit_one_cycle`: the learning rate warms up from `max_lr / div` to `max_lr` over the
/// first `pct_start` of training along a cosine, then anneals along a cosine to
/// `max_lr / div / div_final`; momentum goes the other way, `moms.0 → moms.1 → moms.2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycle {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Fraction of the steps spent warming up (fastai: 0.25).
    pub pct_start: f64,
    /// Start learning rate is `max_lr / div` (fastai: 25).
    pub div: f64,
    /// Final learning rate is `max_lr / div / div_final` (fastai: 1e5).
    pub div_final: f64,
    /// Momentum at the start, the peak learning rate, and the end (fastai: 0.95, 0.85, 0.95).
    pub moms: (f64, f64, f64),
}

impl OneCycle {
    /// fastai's defaults for a peak learning rate.
    pub fn new(max_lr: f64) -> Self {
        Self {
            max_lr,
            pct_start: 0.25,
            div: 25.0,
            div_final: 1e5,
            moms: (0.95, 0.85, 0.95),
        }
    }

    /// Learning rate and momentum at `progress` ∈ [0, 1) through training.
    ///
    /// ```
    /// let cycle = seqlab_train::OneCycle::new(3e-3);
    /// let start = cycle.at(0.0);
    /// assert!((start.lr - 3e-3 / 25.0).abs() < 1e-12);
    /// assert_eq!(start.momentum, Some(0.95));
    /// let peak = cycle.at(0.25);
    /// assert!((peak.lr - 3e-3).abs() < 1e-12);
    /// ```
    pub fn at(&self, progress: f64) -> StepHyper {
        let start_lr = self.max_lr / self.div;
        let end_lr = start_lr / self.div_final;
        let cosine = |from: f64, to: f64, pct: f64| {
            to + (from - to) * ((std::f64::consts::PI * pct).cos() + 1.0) / 2.0
        };
        let (lr, momentum) = if progress < self.pct_start {
            let pct = progress / self.pct_start;
            (
                cosine(start_lr, self.max_lr, pct),
                cosine(self.moms.0, self.moms.1, pct),
            )
        } else {
            let pct = (progress - self.pct_start) / (1.0 - self.pct_start);
            (
                cosine(self.max_lr, end_lr, pct),
                cosine(self.moms.1, self.moms.2, pct),
            )
        };
        StepHyper {
            lr,
            momentum: Some(momentum),
        }
    }
}

/// fastai's `fit_flat_cos`: the learning rate stays at `lr` for the first `pct_start` of
/// training, then anneals along a cosine to `lr / div_final`; momentum is left alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlatCos {
    /// The learning rate of the flat part.
    pub lr: f64,
    /// Fraction of the steps at the flat rate (fastai: 0.75).
    pub pct_start: f64,
    /// Final learning rate is `lr / div_final` (fastai: 1e5).
    pub div_final: f64,
}

impl FlatCos {
    /// fastai's defaults for a learning rate.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            pct_start: 0.75,
            div_final: 1e5,
        }
    }

    /// Learning rate at `progress` ∈ [0, 1) through training.
    ///
    /// ```
    /// let schedule = seqlab_train::FlatCos::new(1e-2);
    /// assert_eq!(schedule.at(0.5).lr, 1e-2);
    /// let halfway_down = schedule.at(0.875).lr;
    /// assert!((halfway_down - (1e-2 + 1e-7) / 2.0).abs() < 1e-12);
    /// ```
    pub fn at(&self, progress: f64) -> StepHyper {
        let lr = if progress < self.pct_start {
            self.lr
        } else {
            let end_lr = self.lr / self.div_final;
            let pct = (progress - self.pct_start) / (1.0 - self.pct_start);
            end_lr + (self.lr - end_lr) * ((std::f64::consts::PI * pct).cos() + 1.0) / 2.0
        };
        StepHyper { lr, momentum: None }
    }
}

/// Zaremba et al.'s step decay (2014): `lr` for the first `flat_epochs` epochs, then the rate
/// multiplied by `factor` at the start of each later epoch; momentum is left alone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDecay {
    /// The learning rate of the first epochs.
    pub lr: f64,
    /// Epochs at `lr` before the decay starts (Zaremba's small model: 4).
    pub flat_epochs: usize,
    /// The factor per epoch after them (Zaremba's small model: 0.5).
    pub factor: f64,
    /// The epochs of the whole fit, to tell the epoch from the progress.
    pub epochs: usize,
}

impl StepDecay {
    /// Learning rate at `progress` ∈ [0, 1) through a fit of `epochs` epochs.
    ///
    /// ```
    /// let schedule = seqlab_train::StepDecay { lr: 1.0, flat_epochs: 4, factor: 0.5, epochs: 13 };
    /// let epoch = |e: f64| schedule.at((e + 0.5) / 13.0).lr;
    /// assert_eq!([epoch(0.0), epoch(3.0), epoch(4.0), epoch(5.0), epoch(12.0)],
    ///            [1.0, 1.0, 0.5, 0.25, 0.5f64.powi(9)]);
    /// ```
    pub fn at(&self, progress: f64) -> StepHyper {
        let epoch = (progress * self.epochs as f64 + 1e-9).floor() as usize;
        let decays = (epoch + 1).saturating_sub(self.flat_epochs);
        StepHyper {
            lr: self.lr * self.factor.powi(decays as i32),
            momentum: None,
        }
    }
}

/// A schedule's shape without its learning rate, for settings that pick the shape and the
/// rate separately (a command line's `--schedule` and `--lr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulePolicy {
    /// [`Schedule::Constant`].
    Constant,
    /// [`Schedule::OneCycle`] with fastai's defaults.
    OneCycle,
    /// [`Schedule::FlatCos`] with fastai's defaults.
    FlatCos,
}

impl SchedulePolicy {
    /// This shape at (peak) learning rate `lr`.
    ///
    /// ```
    /// use seqlab_train::{FlatCos, Schedule, SchedulePolicy};
    /// assert_eq!(SchedulePolicy::FlatCos.at_lr(1e-2), Schedule::FlatCos(FlatCos::new(1e-2)));
    /// ```
    pub fn at_lr(self, lr: f64) -> Schedule {
        match self {
            SchedulePolicy::Constant => Schedule::Constant(lr),
            SchedulePolicy::OneCycle => Schedule::OneCycle(OneCycle::new(lr)),
            SchedulePolicy::FlatCos => Schedule::FlatCos(FlatCos::new(lr)),
        }
    }

    /// Its name on a command line: `constant`, `one-cycle` or `flat-cos`.
    pub fn name(self) -> &'static str {
        match self {
            SchedulePolicy::Constant => "constant",
            SchedulePolicy::OneCycle => "one-cycle",
            SchedulePolicy::FlatCos => "flat-cos",
        }
    }
}

impl std::str::FromStr for SchedulePolicy {
    type Err = String;

    /// ```
    /// use seqlab_train::SchedulePolicy;
    /// assert_eq!("one-cycle".parse(), Ok(SchedulePolicy::OneCycle));
    /// assert!("linear".parse::<SchedulePolicy>().is_err());
    /// ```
    fn from_str(name: &str) -> Result<Self, String> {
        [
            SchedulePolicy::Constant,
            SchedulePolicy::OneCycle,
            SchedulePolicy::FlatCos,
        ]
        .into_iter()
        .find(|policy| policy.name() == name)
        .ok_or_else(|| {
            format!("unknown schedule {name:?}: expected constant, one-cycle or flat-cos")
        })
    }
}

/// How the learning rate moves during a fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The same learning rate throughout, the optimizer's own momentum (fastai's `fit`).
    Constant(f64),
    /// fastai's one-cycle policy (`fit_one_cycle`).
    OneCycle(OneCycle),
    /// fastai's flat-then-cosine policy (`fit_flat_cos`).
    FlatCos(FlatCos),
    /// A constant rate, then a fixed factor per epoch (Zaremba et al.'s language models).
    StepDecay(StepDecay),
}

impl Schedule {
    /// Learning rate and momentum at `progress` ∈ [0, 1) through training.
    pub fn at(&self, progress: f64) -> StepHyper {
        match self {
            Schedule::Constant(lr) => StepHyper {
                lr: *lr,
                momentum: None,
            },
            Schedule::OneCycle(cycle) => cycle.at(progress),
            Schedule::FlatCos(flat_cos) => flat_cos.at(progress),
            Schedule::StepDecay(decay) => decay.at(progress),
        }
    }

    /// The same policy at another peak learning rate.
    ///
    /// ```
    /// use seqlab_train::{OneCycle, Schedule};
    /// let schedule = Schedule::OneCycle(OneCycle::new(1e-2)).with_max_lr(3e-3);
    /// assert_eq!(schedule, Schedule::OneCycle(OneCycle::new(3e-3)));
    /// ```
    pub fn with_max_lr(self, lr: f64) -> Self {
        match self {
            Schedule::Constant(_) => Schedule::Constant(lr),
            Schedule::OneCycle(cycle) => Schedule::OneCycle(OneCycle {
                max_lr: lr,
                ..cycle
            }),
            Schedule::FlatCos(flat_cos) => Schedule::FlatCos(FlatCos { lr, ..flat_cos }),
            Schedule::StepDecay(decay) => Schedule::StepDecay(StepDecay { lr, ..decay }),
        }
    }

    /// The peak learning rate.
    pub fn max_lr(&self) -> f64 {
        match self {
            Schedule::Constant(lr) => *lr,
            Schedule::OneCycle(cycle) => cycle.max_lr,
            Schedule::FlatCos(flat_cos) => flat_cos.lr,
            Schedule::StepDecay(decay) => decay.lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PyTorch reference's `one_cycle(lr, pct)`, transcribed.
    fn reference(lr: f64, pct: f64) -> (f64, f64) {
        use std::f64::consts::PI;
        if pct < 0.25 {
            let p = (1.0 - (PI * pct / 0.25).cos()) / 2.0;
            return (lr / 25.0 + (lr - lr / 25.0) * p, 0.95 - 0.10 * p);
        }
        let p = (1.0 - (PI * (pct - 0.25) / 0.75).cos()) / 2.0;
        (lr + (lr / 25.0 / 1e5 - lr) * p, 0.85 + 0.10 * p)
    }

    #[test]
    fn matches_the_reference_schedule() {
        let cycle = OneCycle::new(3e-3);
        for i in 0..1000 {
            let pct = i as f64 / 1000.0;
            let got = cycle.at(pct);
            let (lr, mom) = reference(3e-3, pct);
            assert!(
                (got.lr - lr).abs() < 1e-12,
                "lr at {pct}: {} vs {lr}",
                got.lr
            );
            assert!(
                (got.momentum.unwrap() - mom).abs() < 1e-12,
                "momentum at {pct}"
            );
        }
        let end = cycle.at(0.999_999);
        assert!(end.lr < 3e-3 / 25.0 / 1e4);
    }

    #[test]
    fn flat_cos_is_flat_then_falls_to_the_final_rate() {
        let schedule = FlatCos::new(1e-2);
        for i in 0..750 {
            let step = schedule.at(i as f64 / 1000.0);
            assert_eq!(
                step,
                StepHyper {
                    lr: 1e-2,
                    momentum: None
                }
            );
        }
        let rates: Vec<f64> = (750..1000)
            .map(|i| schedule.at(i as f64 / 1000.0).lr)
            .collect();
        assert!(rates.windows(2).all(|pair| pair[1] < pair[0]));
        assert!(schedule.at(0.999_999).lr < 1e-2 / 1e5 * 1.01);
    }
}
