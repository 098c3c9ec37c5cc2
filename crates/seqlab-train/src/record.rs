//! One epoch's numbers, and the fastai-style table they are printed in.

use serde::{Deserialize, Serialize};

/// The numbers of one epoch, as a row of fastai's table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Which `fit` call this epoch belongs to (0 for the first).
    pub fit: usize,
    /// The epoch within its fit, from 0, as fastai numbers them.
    pub epoch: usize,
    /// fastai's smoothed training loss at the end of the epoch (an exponential moving average of
    /// the batch losses, β = 0.98, debiased; reset at the start of each fit).
    pub train_loss: f64,
    /// Mean validation loss over every predicted token.
    pub valid_loss: f64,
    /// Metrics by name, in column order (e.g. `accuracy`).
    pub metrics: Vec<(String, f64)>,
    /// Wall-clock seconds for training and validation.
    pub time_s: f64,
}

impl EpochRecord {
    /// The value of a metric by name.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// The header of the table, e.g. `epoch  train_loss  valid_loss  accuracy  time`.
pub fn format_table_header(metric_names: &[&str]) -> String {
    let mut header = format!("{:<6}{:>12}{:>12}", "epoch", "train_loss", "valid_loss");
    for name in metric_names {
        header.push_str(&format!("{:>12}", name));
    }
    header.push_str(&format!("{:>8}", "time"));
    header
}

/// One row of the table, under [`format_table_header`]'s columns.
pub fn format_table_row(record: &EpochRecord) -> String {
    let mut row = format!(
        "{:<6}{:>12.6}{:>12.6}",
        record.epoch, record.train_loss, record.valid_loss
    );
    for (_, value) in &record.metrics {
        row.push_str(&format!("{:>12.6}", value));
    }
    let seconds = record.time_s.round() as u64;
    row.push_str(&format!(
        "{:>8}",
        format!("{:02}:{:02}", seconds / 60, seconds % 60)
    ));
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_with_the_header() {
        let record = EpochRecord {
            fit: 0,
            epoch: 3,
            train_loss: 1.278312,
            valid_loss: 1.731577,
            metrics: vec![("accuracy".into(), 0.490611)],
            time_s: 61.4,
        };
        let header = format_table_header(&["accuracy"]);
        let row = format_table_row(&record);
        assert_eq!(header, "epoch   train_loss  valid_loss    accuracy    time");
        assert_eq!(row, "3         1.278312    1.731577    0.490611   01:01");
        assert_eq!(record.metric("accuracy"), Some(0.490611));
    }
}
