//! The configurations of the PyTorch reference benchmark, by name.

use super::Core;
use seqlab_models::{CellKind, Nonlinearity};

/// What a configuration's model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchTask {
    /// The next token after every token, with the state carried across batches.
    LanguageModel,
    /// One of `classes` per sequence from the mean output over time, statelessly (the seed
    /// notebook's classifiers).
    Classifier {
        /// Output classes.
        classes: usize,
    },
    /// The RNN course's addition model (`SumLSTM`): a one-hot source of `vocab` classes read
    /// by the encoder, a zero-input decoder of `seq_len` steps, `classes` scores per step.
    Seq2Seq {
        /// Output classes.
        classes: usize,
    },
}

/// One configuration of the reference benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchConfig {
    /// The reference's name for it (`a_lstm`, `b_rnn`, `c_lstm`).
    pub name: &'static str,
    /// What it is, as the reference describes it.
    pub description: &'static str,
    /// The recurrence.
    pub kind: CellKind,
    /// Vocabulary size `V`.
    pub vocab: usize,
    /// Embedding width `E`.
    pub embedding: usize,
    /// Hidden width `H`.
    pub hidden: usize,
    /// Stacked layers `L`.
    pub layers: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Steps per sequence.
    pub seq_len: usize,
    /// What the model predicts.
    pub task: BenchTask,
}

/// The configurations, in the reference's order.
pub const CONFIGS: [BenchConfig; 6] = [
    BenchConfig {
        name: "a_lstm",
        description: "human-numbers LSTM (LMModel6) V30 H64 L2 bs64 sl16",
        kind: CellKind::Lstm,
        vocab: 30,
        embedding: 64,
        hidden: 64,
        layers: 2,
        batch: 64,
        seq_len: 16,
        task: BenchTask::LanguageModel,
    },
    BenchConfig {
        name: "b_rnn",
        description: "human-numbers RNN (LMModel5) V30 H64 L2 bs64 sl16",
        kind: CellKind::Rnn(Nonlinearity::Tanh),
        vocab: 30,
        embedding: 64,
        hidden: 64,
        layers: 2,
        batch: 64,
        seq_len: 16,
        task: BenchTask::LanguageModel,
    },
    BenchConfig {
        name: "c_lstm",
        description: "char-LSTM V100 E64 H512 L2 bs32 sl100",
        kind: CellKind::Lstm,
        vocab: 100,
        embedding: 64,
        hidden: 512,
        layers: 2,
        batch: 32,
        seq_len: 100,
        task: BenchTask::LanguageModel,
    },
    BenchConfig {
        name: "d_seq2seq",
        description: "seq2seq add LSTM 13->200x5 | 1->200x5 ->Lin(200,11) bs32 9->9 (tok=out pos)",
        kind: CellKind::Lstm,
        vocab: 13,
        embedding: 13,
        hidden: 200,
        layers: 5,
        batch: 32,
        seq_len: 9,
        task: BenchTask::Seq2Seq { classes: 11 },
    },
    BenchConfig {
        name: "e_rnn",
        description: "Emb(30522,10)->RNN(10,20,2)->mean->Lin(20,2) bs32 sl64",
        kind: CellKind::Rnn(Nonlinearity::Tanh),
        vocab: 30522,
        embedding: 10,
        hidden: 20,
        layers: 2,
        batch: 32,
        seq_len: 64,
        task: BenchTask::Classifier { classes: 2 },
    },
    BenchConfig {
        name: "e_lstm",
        description: "Emb(30522,10)->LSTM(10,20,2)->mean->Lin(20,2) bs32 sl64",
        kind: CellKind::Lstm,
        vocab: 30522,
        embedding: 10,
        hidden: 20,
        layers: 2,
        batch: 32,
        seq_len: 64,
        task: BenchTask::Classifier { classes: 2 },
    },
];

impl BenchConfig {
    /// The configurations called `name`: `a_lstm` or just `a`; `e` is both of `e_rnn` and
    /// `e_lstm`.
    pub fn named(name: &str) -> Vec<Self> {
        CONFIGS
            .into_iter()
            .filter(|c| c.name == name || c.name.split('_').next() == Some(name))
            .collect()
    }

    /// Whether `core` can run this configuration: burn's own layer is an LSTM only, and the
    /// encoder–decoder runs on seqlab's fused layers only.
    pub fn supports(&self, core: Core) -> bool {
        match (self.task, core) {
            (BenchTask::Seq2Seq { .. }, core) => core == Core::Fused,
            (_, Core::BurnLstm) => self.kind == CellKind::Lstm,
            _ => true,
        }
    }

    /// Scores the model puts out per prediction: the vocabulary or the classes.
    pub fn outputs(&self) -> usize {
        match self.task {
            BenchTask::LanguageModel => self.vocab,
            BenchTask::Classifier { classes } | BenchTask::Seq2Seq { classes } => classes,
        }
    }

    /// Tokens per batch.
    pub fn tokens(&self) -> usize {
        self.batch * self.seq_len
    }

    /// Forward FLOPs per token, the reference's formula (a multiply-add is 2; a classifier's
    /// head is left out, as the reference leaves it; a seq2seq counts its encoder and its
    /// decoder per output position).
    pub fn forward_flops_per_token(&self) -> f64 {
        let stack = |first_input: usize| -> usize {
            (0..self.layers)
                .map(|layer| {
                    let input = if layer == 0 { first_input } else { self.hidden };
                    2 * self.kind.gates() * self.hidden * (input + self.hidden)
                })
                .sum()
        };
        let total = match self.task {
            BenchTask::LanguageModel => stack(self.embedding) + 2 * self.hidden * self.vocab,
            BenchTask::Classifier { .. } => stack(self.embedding),
            BenchTask::Seq2Seq { classes } => {
                stack(self.embedding) + stack(1) + 2 * self.hidden * classes
            }
        };
        total as f64
    }
}
