//! Workspace tests: the crates driven together, across devices. One binary, one module per
//! topic, so that burn and wgpu are linked once.

mod char_lm;
mod classify;
mod devices;
mod encoders;
mod human_numbers_data;
mod human_numbers_training;
mod onnx;
mod pos_tag;
mod pytorch_parity;
mod rnn_course;

/// Asserts that `error` is a run stopped (Ctrl-C) before batch `batch` of epoch `epoch`.
fn assert_stopped_at(error: &seqlab::lessons::LessonError, epoch: usize, batch: usize) {
    use seqlab::lessons::LessonError;
    use seqlab::train::TrainError;
    match error {
        LessonError::Train(TrainError::Interrupted {
            epoch: stopped_epoch,
            batch: stopped_batch,
            ..
        }) => assert_eq!((*stopped_epoch, *stopped_batch), (epoch, batch), "{error}"),
        other => panic!("not a stopped run: {other}"),
    }
}
