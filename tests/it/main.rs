//! Workspace tests: the crates driven together, across devices. One binary, one module per
//! topic, so that burn and wgpu are linked once.

mod char_lm;
mod classify;
mod devices;
mod encoders;
mod human_numbers_data;
mod human_numbers_training;
mod pos_tag;
mod pytorch_parity;
mod rnn_course;
