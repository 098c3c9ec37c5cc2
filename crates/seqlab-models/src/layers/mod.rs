//! Layers: the recurrent layer with its CPU and GPU kernels, the sequence-encoder trait the
//! models take, and the fused cross-entropy.

pub(crate) mod cross_entropy;
pub(crate) mod encoder;
pub(crate) mod recurrent;
