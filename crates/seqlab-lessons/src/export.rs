//! ONNX files in and out of checkpoints: [`export_checkpoint`] reads a checkpoint that a
//! seqlab command wrote and builds its ONNX graph, with what turns text into ids (the
//! vocabulary or the tokenizer) and the class names carried in the file's metadata;
//! [`import_language_model`] reads a language model from an ONNX file (one exported from
//! PyTorch, say) as a text language model that a classifier can start from.

use std::path::Path;

use burn::tensor::Device;
use serde::Deserialize;

use crate::addition::ADDITION_KIND;
use crate::char_lm::{CHAR_LM_KIND, CharLm};
use crate::classify::{CLASSIFIER_KIND, ClassifierModelConfig};
use crate::copy_task::COPY_KIND;
use crate::data::Tokenizer;
use crate::human_numbers::HUMAN_NUMBERS_KIND;
use crate::models::{
    LinRnnConfig, LmModel1Config, LmModel2Config, LmModel3Config, LmModel4Config, NamedTensors,
    PytorchWeights, RecurrentLmConfig, Seq2SeqConfig, SeqEncoderDecoderConfig, WeightReader,
};
use crate::pos_tag::{POS_TAGGER_KIND, PosTagger};
use crate::sinusoid::SINUSOID_KIND;
use crate::text_lm::{TEXT_LM_KIND, TextLm};
use crate::train::{
    CONFIG_FILE, Checkpoint, read_config, read_module_weights, read_pytorch_weights,
};
use crate::{LessonError, TOKENIZER_FILE};
use seqlab_onnx::{ImportedModel, OnnxModel, SimpleLm};

/// The metadata key of the checkpoint kind a model was exported from (`char-lm`, …).
pub const KIND_KEY: &str = "seqlab.kind";
/// The metadata key of the model's config, the checkpoint's `config.json`.
pub const CONFIG_KEY: &str = "seqlab.config";
/// The metadata key of a character model's vocabulary, its checkpoint's `vocab.json`.
pub const VOCAB_KEY: &str = "seqlab.vocab";
/// The metadata key of a text model's tokenizer (a Hugging Face `tokenizer.json`).
pub const TOKENIZER_KEY: &str = "seqlab.tokenizer";
/// The metadata key of a classifier's class names, a JSON list in the order of its logits.
pub const CLASSES_KEY: &str = "seqlab.classes";
/// The metadata key of a tagger's word vocabulary, its checkpoint's `words.json`.
pub const WORDS_KEY: &str = "seqlab.words";
/// The metadata key of a tagger's tags, its checkpoint's `tags.json`, in the order of its scores.
pub const TAGS_KEY: &str = "seqlab.tags";
/// The metadata key of a tagger's characters, its checkpoint's `chars.json`.
pub const CHARS_KEY: &str = "seqlab.chars";

/// The kinds of checkpoint [`export_checkpoint`] turns into ONNX.
pub const EXPORTED_KINDS: &str = "char-lm, text-lm, classifier, pos-tagger, human-numbers, addition and copy (on recurrent layers)";

/// A classifier checkpoint's `config.json`.
#[derive(Deserialize)]
struct SavedClassifier {
    model: ClassifierModelConfig,
}

/// The ONNX model of the checkpoint in `dir` (read onto `device` to check its weights): the
/// language models (`char-lm`, `text-lm`, human-numbers' lm1–lm7), the classifiers (RNN,
/// LSTM and GRU with any pooling, and the MLP), the part-of-speech tagger, and the RNN
/// course's encoder–decoders (`addition` and `copy`; those on recurrent layers decode greedily
/// in the graph) and its linear RNN (`sinusoid`), which runs free. Its metadata holds the checkpoint's kind,
/// config, vocabulary or tokenizer, and class names, under [`KIND_KEY`] and the others. Another
/// kind of checkpoint is an error naming the kinds that export.
pub fn export_checkpoint(dir: &Path, device: &Device) -> Result<OnnxModel, LessonError> {
    let checkpoint = Checkpoint::load_any(dir)?;
    let text = |name: &str| -> Result<String, LessonError> {
        String::from_utf8(checkpoint.file(name)?.to_vec())
            .map_err(|e| checkpoint.contents_error(name, e).into())
    };
    let kind = checkpoint.kind().to_string();
    let model = match kind.as_str() {
        CHAR_LM_KIND => {
            let lm = CharLm::load(dir, device)?;
            seqlab_onnx::language_model(&lm.config, &pytorch_names(&lm.model))?
                .with_metadata(VOCAB_KEY, &text("vocab.json")?)
        }
        TEXT_LM_KIND => {
            let lm = TextLm::load(dir, device)?;
            seqlab_onnx::language_model(&lm.config, &pytorch_names(&lm.model))?
                .with_metadata(TOKENIZER_KEY, &text(TOKENIZER_FILE)?)
        }
        CLASSIFIER_KIND => {
            let saved: SavedClassifier = read_config(&checkpoint, Ok::<_, String>)?;
            let model = match saved.model {
                ClassifierModelConfig::Recurrent(config) => {
                    let config = config.check()?;
                    let model = read_pytorch_weights(&checkpoint, config.init(device))?;
                    seqlab_onnx::classifier(&config, &pytorch_names(&model))?
                }
                ClassifierModelConfig::Mlp(config) => {
                    let config = config.check()?;
                    let model = read_pytorch_weights(&checkpoint, config.init(device))?;
                    seqlab_onnx::mlp_classifier(&config, &pytorch_names(&model))?
                }
            };
            model
                .with_metadata(TOKENIZER_KEY, &text(TOKENIZER_FILE)?)
                .with_metadata(CLASSES_KEY, &text("classes.json")?)
        }
        POS_TAGGER_KIND => {
            let tagger = PosTagger::load(dir, device)?;
            let model = seqlab_onnx::tagger(&tagger.config, &pytorch_names(&tagger.model))?
                .with_metadata(WORDS_KEY, &text("words.json")?)
                .with_metadata(TAGS_KEY, &text("tags.json")?);
            match tagger.chars {
                Some(_) => model.with_metadata(CHARS_KEY, &text("chars.json")?),
                None => model,
            }
        }
        ADDITION_KIND => {
            let config: Seq2SeqConfig = read_config(&checkpoint, Ok::<_, String>)?;
            let model = read_module_weights(&checkpoint, config.init(device))?;
            seqlab_onnx::seq2seq(&config, &pytorch_names(&model))?
        }
        COPY_KIND => copy_model(&checkpoint, device)?,
        HUMAN_NUMBERS_KIND => human_numbers_model(&checkpoint, device)?,
        SINUSOID_KIND => {
            let config: LinRnnConfig = read_config(&checkpoint, Ok::<_, String>)?;
            let model = read_module_weights(&checkpoint, config.init(device))?;
            seqlab_onnx::lin_rnn(&config, &pytorch_names(&model))?
        }
        other => {
            return Err(LessonError::Config(format!(
                "{}: ONNX export covers {EXPORTED_KINDS} checkpoints, not {other} ones",
                dir.display()
            )));
        }
    };
    Ok(model
        .with_metadata(KIND_KEY, &kind)
        .with_metadata(CONFIG_KEY, &text(CONFIG_FILE)?))
}

/// A human-numbers checkpoint's model as an ONNX graph: LMModel1–4 as one ReLU RNN node,
/// LMModel5–7 as a language model on recurrent layers.
fn human_numbers_model(checkpoint: &Checkpoint, device: &Device) -> Result<OnnxModel, LessonError> {
    #[derive(Deserialize)]
    struct Saved {
        model: String,
        config: serde_json::Value,
    }
    let saved: Saved = read_config(checkpoint, Ok::<_, String>)?;
    fn parse<C: serde::de::DeserializeOwned>(
        checkpoint: &Checkpoint,
        value: serde_json::Value,
    ) -> Result<C, LessonError> {
        Ok(serde_json::from_value(value).map_err(|e| checkpoint.contents_error(CONFIG_FILE, e))?)
    }
    // Each model's config has its own type: the same steps for each.
    macro_rules! simple {
        ($config:ty, $which:expr) => {{
            let config: $config = parse(checkpoint, saved.config)?;
            let model = read_module_weights(checkpoint, config.init(device))?;
            Ok(seqlab_onnx::simple_language_model(
                $which,
                &pytorch_names(&model),
            )?)
        }};
    }
    match saved.model.as_str() {
        "lm1" => simple!(LmModel1Config, SimpleLm::Lm1),
        "lm2" => simple!(LmModel2Config, SimpleLm::Lm2),
        "lm3" => simple!(LmModel3Config, SimpleLm::Lm3),
        "lm4" => simple!(LmModel4Config, SimpleLm::Lm4),
        _ => {
            let config: RecurrentLmConfig = parse(checkpoint, saved.config)?;
            let config = config
                .check()
                .map_err(|e| checkpoint.contents_error(CONFIG_FILE, e))?;
            let model = read_module_weights(checkpoint, config.init(device))?;
            Ok(seqlab_onnx::language_model(
                &config,
                &pytorch_names(&model),
            )?)
        }
    }
}

/// A copy checkpoint's model as an ONNX graph: an encoder–decoder on recurrent layers, or the
/// notebook's hand-built one.
fn copy_model(checkpoint: &Checkpoint, device: &Device) -> Result<OnnxModel, LessonError> {
    // `{"layers": Seq2SeqConfig}` or `{"hand_built": SeqEncoderDecoderConfig}`.
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Saved {
        HandBuilt(SeqEncoderDecoderConfig),
        Layers(Seq2SeqConfig),
    }
    Ok(match read_config(checkpoint, Ok::<_, String>)? {
        Saved::Layers(config) => {
            let model = read_module_weights(checkpoint, config.init(device))?;
            seqlab_onnx::seq2seq(&config, &pytorch_names(&model))?
        }
        Saved::HandBuilt(config) => {
            let model = read_module_weights(checkpoint, config.init(device))?;
            seqlab_onnx::hand_built_seq2seq(&config, &pytorch_names(&model))?
        }
    })
}

/// `model`'s weights under PyTorch's names.
fn pytorch_names<M: PytorchWeights>(model: &M) -> NamedTensors {
    let mut named = NamedTensors::default();
    model.save_pytorch("", &mut named);
    named
}

/// The language model in the ONNX file at `path` (an embedding, RNN/LSTM/GRU nodes and a
/// linear head, as `torch.onnx.export` writes one; see [`seqlab_onnx::import`]) with
/// `tokenizer`, the tokenizer its ids come from, built on `device`: a text language model
/// that [`TextLm::save`] writes as a checkpoint and a classifier can start from. A tokenizer
/// of another vocabulary size than the model's, or a file that holds a classifier, is an
/// error.
pub fn import_language_model(
    path: &Path,
    tokenizer: Tokenizer,
    device: &Device,
) -> Result<TextLm, LessonError> {
    let file = path.display();
    let (config, weights) = match seqlab_onnx::import_file(path)? {
        ImportedModel::LanguageModel { config, weights } => (config, weights),
        ImportedModel::Classifier { .. } => {
            return Err(LessonError::Config(format!(
                "{file}: holds a classifier, not a language model (classifiers import through \
                 the library: seqlab::onnx::import)"
            )));
        }
    };
    if tokenizer.vocab_size() != config.vocab_size {
        return Err(LessonError::Config(format!(
            "{file}: the model scores {} tokens, the tokenizer has {}: give the tokenizer the \
             model was trained with",
            config.vocab_size,
            tokenizer.vocab_size()
        )));
    }
    let mut reader = WeightReader::new(&weights);
    let model = config
        .init(device)
        .load_pytorch("", &mut reader)
        .and_then(|model| reader.finish().map(|()| model))
        .map_err(|e| LessonError::Config(format!("{file}: {e}")))?;
    Ok(TextLm {
        config,
        tokenizer,
        model,
    })
}
