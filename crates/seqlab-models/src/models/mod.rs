//! Models built on the layers: language models and sampling, classifiers, taggers,
//! encoder–decoders, and the Markov baseline.

pub(crate) mod classifier;
pub(crate) mod language_model;
pub(crate) mod markov;
pub(crate) mod recurrent_lm;
pub(crate) mod sampling;
pub(crate) mod seq2seq;
pub(crate) mod simple_rnn_lm;
pub(crate) mod tagger;
