//! A sentiment classifier whose encoder is not seqlab's: a 1-D convolution over the embedded
//! words, plugged into `SequenceClassifier` through the `SequenceEncoder` trait, and trained
//! on the one training loop through a `TrainTask` — everything in this one file.
//!
//! ```text
//! cargo run --example custom_encoder                 # generated reviews
//! cargo run --example custom_encoder -- reviews.csv  # a `text,label` CSV of yours
//! ```

use burn::module::Module;
use burn::nn::PaddingConfig1d;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use seqlab::data::stratified_split;
use seqlab::data::{LabelledColumns, LabelledText, Tokenizer, batch_rows, pad_with_stop};
use seqlab::models::{EncoderError, RecurrentState, SequenceClassifier, SequenceClassifierConfig};
use seqlab::models::{Pooling, SequenceEncoder};
use seqlab::train::{
    AdamConfig, FitLoop, LossAccuracy, OneCycle, OptimizerConfig, Phase, Schedule, StepLoss,
    TrainTask, flat_cross_entropy, init_seeded,
};

/// Two stacked convolutions of width 3 over time: `[B, T, E]` → `[B, T, W]`.
#[derive(Module, Debug)]
struct ConvEncoder {
    first: Conv1d,
    second: Conv1d,
    #[module(skip)]
    width: usize,
}

impl ConvEncoder {
    fn new(input: usize, width: usize, device: &Device) -> Self {
        let conv = |from| {
            Conv1dConfig::new(from, width, 3)
                .with_padding(PaddingConfig1d::Same)
                .init(device)
        };
        Self {
            first: conv(input),
            second: conv(width),
            width,
        }
    }
}

impl SequenceEncoder for ConvEncoder {
    fn output_width(&self) -> usize {
        self.width
    }

    /// The convolutions see the padding beside a short review's last words; the classifier's
    /// pooling leaves the padded steps themselves out.
    fn encode(&self, input: Tensor<3>, _: Option<&[usize]>) -> Result<Tensor<3>, EncoderError> {
        let channels_first = input.swap_dims(1, 2);
        let hidden = relu(
            self.second
                .forward(relu(self.first.forward(channels_first))),
        );
        Ok(hidden.swap_dims(1, 2))
    }
}

/// A review as token ids, with its class.
type Review = (Vec<u32>, usize);

/// Reviews with their labels, batched in a seeded order per epoch.
struct Reviews {
    train: Vec<Review>,
    valid: Vec<Review>,
    device: Device,
}

/// One batch as tensors: padded ids, lengths, targets.
fn batch(rows: &[&Review], device: &Device) -> (Tensor<2, Int>, Vec<usize>, Tensor<1, Int>) {
    let ids: Vec<&[u32]> = rows.iter().map(|(ids, _)| ids.as_slice()).collect();
    let padded = pad_with_stop(&ids, 0).expect("every review has a token");
    let labels: Vec<i64> = rows.iter().map(|&&(_, label)| label as i64).collect();
    let targets = Tensor::from_data(TensorData::new(labels, [rows.len()]), device);
    (padded.to_ids(device), padded.lengths().to_vec(), targets)
}

/// Mean cross-entropy of `[B, C]` logits against `[B]` classes.
fn class_loss(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, classes] = logits.dims();
    flat_cross_entropy(
        logits.reshape([rows, 1, classes]),
        targets.reshape([rows, 1]),
    )
}

impl TrainTask for Reviews {
    type Model = SequenceClassifier<ConvEncoder>;
    type Batch = Vec<usize>;
    type Scores = LossAccuracy;
    type Error = Box<dyn std::error::Error>;

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy"]
    }

    fn batches(&self, epoch: usize) -> Result<Vec<Vec<usize>>, Self::Error> {
        Ok(batch_rows(self.train.len(), 32, Some(epoch as u64))?)
    }

    fn loss(
        &self,
        model: &Self::Model,
        rows: &Vec<usize>,
        _: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, Self::Error> {
        let rows: Vec<_> = rows.iter().map(|&r| &self.train[r]).collect();
        let (ids, lengths, targets) = batch(&rows, device);
        let logits = model.forward(ids, Some(&lengths))?;
        Ok(StepLoss::new(class_loss(logits, targets)))
    }

    fn evaluate(&self, model: &Self::Model) -> Result<LossAccuracy, Self::Error> {
        let (mut loss, mut right) = (0.0, 0);
        for rows in self.valid.chunks(256) {
            let rows: Vec<_> = rows.iter().collect();
            let (ids, lengths, targets) = batch(&rows, &self.device);
            let logits = model.forward(ids, Some(&lengths))?;
            let guesses = logits.clone().argmax(1).reshape([rows.len()]);
            right += guesses
                .equal(targets.clone())
                .int()
                .sum()
                .into_scalar::<i64>() as usize;
            loss += class_loss(logits, targets).into_scalar::<f32>() as f64 * rows.len() as f64;
        }
        let count = self.valid.len() as f64;
        Ok(LossAccuracy {
            loss: loss / count,
            accuracy: right as f64 / count,
        })
    }
}

/// 1,000 short reviews whose label shows in one word among neutral ones.
fn generated_reviews() -> Vec<LabelledText> {
    let neutral = [
        "the", "film", "was", "a", "story", "with", "actors", "and", "music", "plot",
    ];
    let (good, bad) = (["great", "superb", "moving"], ["dull", "awful", "boring"]);
    (0..1000)
        .map(|i: usize| {
            let positive = i.is_multiple_of(2);
            let mut words: Vec<&str> = (0..4 + i % 9)
                .map(|k| neutral[(i * 7 + k * 3) % 10])
                .collect();
            let cue = if positive { good[i % 3] } else { bad[i % 3] };
            words.insert((i * 5) % words.len(), cue);
            LabelledText {
                text: words.join(" "),
                label: if positive { "pos" } else { "neg" }.into(),
            }
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = match std::env::args().nth(1) {
        Some(path) => LabelledColumns::new("text", "label").read(path)?,
        None => generated_reviews(),
    };
    let mut classes: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    classes.sort();
    classes.dedup();
    let labels: Vec<usize> = rows
        .iter()
        .map(|r| {
            classes
                .binary_search(&r.label)
                .expect("a class of the data")
        })
        .collect();
    let (train_rows, valid_rows) = stratified_split(&labels, 0.2, 0)?;
    let texts: Vec<&str> = train_rows.iter().map(|&r| rows[r].text.as_str()).collect();
    let tokenizer = Tokenizer::word(&texts, 20_000, 1);
    let encode = |picked: &[usize]| -> Result<Vec<Review>, Box<dyn std::error::Error>> {
        picked
            .iter()
            .map(|&r| {
                let mut ids = tokenizer.encode(&rows[r].text)?;
                ids.truncate(400);
                if ids.is_empty() {
                    ids.push(tokenizer.pad_id());
                }
                Ok((ids, labels[r]))
            })
            .collect()
    };

    let device = Device::flex();
    let model = init_seeded(&device, 0, || {
        let training = device.clone().autodiff();
        let encoder = ConvEncoder::new(32, 64, &training);
        SequenceClassifierConfig::new(tokenizer.vocab_size(), 32, classes.len())
            .with_pooling(Pooling::Concat)
            .init(encoder, &training)
    });
    let task = Reviews {
        train: encode(&train_rows)?,
        valid: encode(&valid_rows)?,
        device: device.clone(),
    };
    let adam = OptimizerConfig::Adam(AdamConfig::pytorch());
    let mut fit = FitLoop::new(task, model, &device, adam).with_progress(false);
    let schedule = Schedule::OneCycle(OneCycle::new(3e-3));
    let records = fit.fit(&[Phase::new(4, schedule)])?;
    let accuracy = records.last().and_then(|r| r.metric("accuracy"));
    println!("parameters: {}", fit.model().num_params());
    println!("held-out accuracy: {:.3}", accuracy.unwrap_or(0.0));
    Ok(())
}
