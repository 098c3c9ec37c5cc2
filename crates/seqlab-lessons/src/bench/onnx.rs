//! The benchmark's language models and classifiers as ONNX files, for timing them in ONNX
//! Runtime (`scripts/bench-onnx`) against seqlab's own inference on the same shapes.

use burn::tensor::Device;
use seqlab_models::{NamedTensors, PytorchWeights, RecurrentClassifierConfig, RecurrentLmConfig};
use seqlab_onnx::{OnnxError, OnnxModel};
use seqlab_train::init_seeded;

use super::{BenchConfig, BenchTask};

/// `config`'s model as seqlab builds it (a [`RecurrentLm`](seqlab_models::RecurrentLm), or a
/// [`RecurrentClassifier`](seqlab_models::RecurrentClassifier) with mean pooling), seeded, as
/// an ONNX model with the batch shape in its metadata (`bench.task`, `bench.vocab`,
/// `bench.batch`, `bench.seq_len`); `None` for the encoder–decoder, which has no ONNX export.
pub fn onnx_model(config: &BenchConfig, device: &Device) -> Option<Result<OnnxModel, OnnxError>> {
    let mut weights = NamedTensors::default();
    let (task, model) = match config.task {
        BenchTask::LanguageModel => {
            let lm =
                RecurrentLmConfig::new(config.kind, config.vocab, config.hidden, config.layers)
                    .with_embedding_size(Some(config.embedding));
            init_seeded(device, 0, || lm.init(device)).save_pytorch("", &mut weights);
            ("lm", seqlab_onnx::language_model(&lm, &weights))
        }
        BenchTask::Classifier { classes } => {
            let classifier = RecurrentClassifierConfig::new(
                config.kind,
                config.vocab,
                config.embedding,
                config.hidden,
                config.layers,
                classes,
            );
            init_seeded(device, 0, || classifier.init(device)).save_pytorch("", &mut weights);
            ("classifier", seqlab_onnx::classifier(&classifier, &weights))
        }
        BenchTask::Seq2Seq { .. } => return None,
    };
    Some(model.map(|model| {
        model
            .with_metadata("bench.task", task)
            .with_metadata("bench.vocab", &config.vocab.to_string())
            .with_metadata("bench.batch", &config.batch.to_string())
            .with_metadata("bench.seq_len", &config.seq_len.to_string())
    }))
}
