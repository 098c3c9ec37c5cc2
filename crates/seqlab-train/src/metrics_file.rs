//! The metrics JSON file every subcommand writes with `--metrics-json`.

use crate::{EpochRecord, TrainError};
use serde_json::{Map, Value, json};
use std::path::Path;

/// Writes `{"run": run, "epochs": [...]}` to `path` atomically (a temporary file beside it,
/// then a rename). Each epoch is one object with the table's columns as keys: `fit`, `epoch`,
/// `train_loss`, `valid_loss`, each metric by name, and `time_s`.
pub fn write_metrics_json(
    path: &Path,
    run: Value,
    epochs: &[EpochRecord],
) -> Result<(), TrainError> {
    let epochs: Vec<Value> = epochs
        .iter()
        .map(|record| {
            let mut row = Map::new();
            row.insert("fit".into(), json!(record.fit));
            row.insert("epoch".into(), json!(record.epoch));
            row.insert("train_loss".into(), json!(record.train_loss));
            row.insert("valid_loss".into(), json!(record.valid_loss));
            for (name, value) in &record.metrics {
                row.insert(name.clone(), json!(value));
            }
            row.insert("time_s".into(), json!(record.time_s));
            Value::Object(row)
        })
        .collect();
    write_json_atomic(path, &json!({ "run": run, "epochs": epochs }))
}

/// Writes `document` as pretty JSON to `path` atomically: a temporary file beside it, then a
/// rename, so that a reader sees the old file or the new one, never half of one.
pub fn write_json_atomic(path: &Path, document: &Value) -> Result<(), TrainError> {
    let error = |message: String| TrainError::Write {
        path: path.display().to_string(),
        message,
    };
    let text = serde_json::to_string_pretty(document).map_err(|e| error(e.to_string()))?;
    seqlab_data::write_atomic(path, (text + "\n").as_bytes()).map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_object_per_epoch_with_the_table_columns() {
        let dir = std::env::temp_dir().join(format!("seqlab-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.json");
        let record = EpochRecord {
            fit: 0,
            epoch: 0,
            train_loss: 1.5,
            valid_loss: 1.75,
            metrics: vec![("accuracy".into(), 0.5)],
            time_s: 0.25,
        };
        write_metrics_json(&path, json!({"model": "lm1"}), &[record]).unwrap();
        let read: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(read["epochs"][0]["accuracy"], json!(0.5));
        assert_eq!(read["epochs"][0]["valid_loss"], json!(1.75));
        assert_eq!(read["run"]["model"], json!("lm1"));
        let missing_dir = dir.join("no/such/dir/m.json");
        assert!(matches!(
            write_metrics_json(&missing_dir, json!({}), &[]),
            Err(TrainError::Write { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
