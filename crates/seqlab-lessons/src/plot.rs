//! PNG line plots of the lessons' results (the notebooks' `plt.plot`), drawn with plotters and
//! a bundled DejaVu Sans Mono font, and written atomically (a temporary file, flushed, then a
//! rename).

use crate::LessonError;
use crate::copy_task::CopyReport;
use crate::data::{commit_atomic, temporary_path};
use crate::sinusoid::SinusoidReport;
use crate::train::EpochRecord;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::{Path, PathBuf};
use std::sync::Once;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 400;
const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");

/// One line of a chart: its legend, its points and its colour.
struct Line<'a> {
    label: &'a str,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

/// Makes `dir` if needed and checks that files can be written in it, so that a long run does
/// not end in an error.
pub fn check_dir(dir: &Path) -> Result<(), LessonError> {
    let fail = |message: String| LessonError::Plot {
        path: dir.display().to_string(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let probe = dir.join(".seqlab-write-check");
    std::fs::write(&probe, b"").map_err(|e| fail(format!("cannot write files there: {e}")))?;
    std::fs::remove_file(&probe).map_err(|e| fail(e.to_string()))
}

/// `{name}_loss.png`: every training batch's loss.
pub fn loss_plot(dir: &Path, name: &str, losses: &[f32]) -> Result<Vec<PathBuf>, LessonError> {
    let path = dir.join(format!("{name}_loss.png"));
    let points = losses
        .iter()
        .enumerate()
        .map(|(i, &loss)| (i as f64, loss as f64))
        .collect();
    let line = Line {
        label: "training loss",
        points,
        color: BLUE,
    };
    draw(
        &path,
        &format!("{name}: loss per batch"),
        "batch",
        "loss",
        &[line],
    )?;
    Ok(vec![path])
}

/// `{name}_losses.png`, fastai's smoothed training loss and the validation loss after every
/// epoch (numbered from 1 across fits), and `{name}_{metric}.png` for each metric of the
/// table; none for a run of no epochs.
pub fn epoch_plots(
    dir: &Path,
    name: &str,
    records: &[EpochRecord],
) -> Result<Vec<PathBuf>, LessonError> {
    let Some(first) = records.first() else {
        return Ok(Vec::new());
    };
    let by_epoch = |value: &dyn Fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        records
            .iter()
            .enumerate()
            .map(|(i, record)| ((i + 1) as f64, value(record)))
            .collect()
    };
    let path = dir.join(format!("{name}_losses.png"));
    let lines = [
        Line {
            label: "training loss (smoothed)",
            points: by_epoch(&|r| r.train_loss),
            color: BLUE,
        },
        Line {
            label: "validation loss",
            points: by_epoch(&|r| r.valid_loss),
            color: RED,
        },
    ];
    draw(
        &path,
        &format!("{name}: loss by epoch"),
        "epoch",
        "loss",
        &lines,
    )?;
    let mut written = vec![path];
    for (metric, _) in &first.metrics {
        let file: String = metric
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = dir.join(format!("{name}_{file}.png"));
        let line = Line {
            label: metric,
            points: by_epoch(&|r| r.metric(metric).unwrap_or(f64::NAN)),
            color: BLUE,
        };
        draw(
            &path,
            &format!("{name}: {metric} by epoch"),
            "epoch",
            metric,
            &[line],
        )?;
        written.push(path);
    }
    Ok(written)
}

/// [`loss_plot`] of every batch, then [`epoch_plots`]: what a training run with both draws.
pub fn training_plots(
    dir: &Path,
    name: &str,
    batch_losses: &[f32],
    records: &[EpochRecord],
) -> Result<Vec<PathBuf>, LessonError> {
    let mut written = loss_plot(dir, name, batch_losses)?;
    written.extend(epoch_plots(dir, name, records)?);
    Ok(written)
}

/// The sinusoid lesson's plots: the loss, next-step predictions against the truth, and the
/// free run against the truth.
pub fn sinusoid_plots(dir: &Path, report: &SinusoidReport) -> Result<Vec<PathBuf>, LessonError> {
    let mut written = loss_plot(dir, "sinusoid", &report.batch_losses)?;
    let truth: Vec<(f64, f64)> = series(&report.truth, 0);
    for (file, title, values, label) in [
        (
            "sinusoid_prediction.png",
            "next-step prediction on a held-out series",
            &report.predicted,
            "prediction",
        ),
        (
            "sinusoid_generated.png",
            "free run from the first value",
            &report.generated,
            "generated",
        ),
    ] {
        let path = dir.join(file);
        let lines = [
            Line {
                label: "truth",
                points: truth.clone(),
                color: BLACK,
            },
            Line {
                label,
                points: series(values, 1),
                color: RED,
            },
        ];
        draw(&path, title, "step", "value", &lines)?;
        written.push(path);
    }
    Ok(written)
}

/// The copy lesson's plots: the loss, and token accuracy by input length.
pub fn copy_plots(dir: &Path, report: &CopyReport) -> Result<Vec<PathBuf>, LessonError> {
    let mut written = loss_plot(dir, "copy", &report.batch_losses)?;
    let path = dir.join("copy_accuracy_by_length.png");
    let line = Line {
        label: "token accuracy",
        points: report
            .by_length
            .iter()
            .map(|&(length, accuracy)| (length as f64, accuracy))
            .collect(),
        color: BLUE,
    };
    draw(
        &path,
        "accuracy by input length",
        "input length",
        "accuracy",
        &[line],
    )?;
    written.push(path);
    let path = dir.join("copy_agreement.png");
    agreement_plot(&path, &report.test.predictions, &report.test_targets)?;
    written.push(path);
    Ok(written)
}

/// The notebook's `imshow(train_output == sequences)`: one row per held-out sequence (the
/// first 100), one cell per position: green where the prediction has the target's symbol, red
/// where it has another, orange where it stopped short, blue where it went on past the target,
/// white past both.
fn agreement_plot(
    path: &Path,
    predictions: &[Vec<u32>],
    targets: &[Vec<u32>],
) -> Result<(), LessonError> {
    if !crate::data::writes_outputs() {
        return Ok(());
    }
    register()?;
    let fail = |message: String| LessonError::Plot {
        path: path.display().to_string(),
        message,
    };
    let rows = predictions.len().min(targets.len()).min(100);
    let columns = (0..rows)
        .map(|row| predictions[row].len().max(targets[row].len()))
        .max()
        .unwrap_or(1)
        .clamp(1, 40);
    let temporary = temporary_path(path, "tmp.png").map_err(|e| fail(e.to_string()))?;
    {
        let root = BitMapBackend::new(&temporary, (WIDTH, WIDTH)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "held-out predictions: right (green), wrong (red), short (orange), long (blue)",
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0..columns, 0..rows.max(1))
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("position")
            .y_desc("sequence")
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        let cells = (0..rows).flat_map(|row| (0..columns).map(move |column| (row, column)));
        let color = |row: usize, column: usize| -> RGBColor {
            match (predictions[row].get(column), targets[row].get(column)) {
                (Some(p), Some(t)) if p == t => RGBColor(60, 170, 80),
                (Some(_), Some(_)) => RGBColor(210, 50, 50),
                (None, Some(_)) => RGBColor(240, 160, 40),
                (Some(_), None) => RGBColor(80, 130, 220),
                (None, None) => WHITE,
            }
        };
        chart
            .draw_series(cells.map(|(row, column)| {
                Rectangle::new(
                    [(column, rows - 1 - row), (column + 1, rows - row)],
                    color(row, column).filled(),
                )
            }))
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    commit_atomic(&temporary, path).map_err(|e| fail(e.to_string()))
}

fn series(values: &[f32], first_step: usize) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i + first_step) as f64, v as f64))
        .collect()
}

fn register() -> Result<(), LessonError> {
    static FONT_ONCE: Once = Once::new();
    let mut result = Ok(());
    FONT_ONCE.call_once(|| {
        result =
            register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| LessonError::Plot {
                path: "the bundled font".into(),
                message: "DejaVu Sans Mono could not be loaded".into(),
            });
    });
    result
}

/// Draws `lines` into a temporary PNG next to `path`, then renames it into place.
fn draw(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<(), LessonError> {
    if !crate::data::writes_outputs() {
        return Ok(());
    }
    register()?;
    let fail = |message: String| LessonError::Plot {
        path: path.display().to_string(),
        message,
    };
    // The extension tells plotters the format.
    let temporary = temporary_path(path, "tmp.png").map_err(|e| fail(e.to_string()))?;
    let (x_range, y_range) = bounds(lines);
    {
        let root = BitMapBackend::new(&temporary, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| fail(e.to_string()))?;
        // Every x axis counts something: batches, epochs, steps, lengths.
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        for line in lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), &color))
                .map_err(|e| fail(e.to_string()))?
                .label(line.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    commit_atomic(&temporary, path).map_err(|e| fail(e.to_string()))
}

/// The smallest ranges that hold every finite point, widened where they would be empty.
fn bounds(lines: &[Line]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let points = lines
        .iter()
        .flat_map(|line| line.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        (y0, y1) = (y0 - 0.5, y1 + 0.5);
    }
    let margin = (y1 - y0) * 0.05;
    (x0..x1, y0 - margin..y1 + margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_plot_is_a_png_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("seqlab-plot-{}", std::process::id()));
        check_dir(&dir).unwrap();
        let written = loss_plot(&dir, "test", &[3.0, 2.0, 1.5, f32::NAN, 1.0]).unwrap();
        let bytes = std::fs::read(&written[0]).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["test_loss.png"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn epoch_plots_draw_the_losses_and_each_metric() {
        let dir = std::env::temp_dir().join(format!("seqlab-plot-epochs-{}", std::process::id()));
        check_dir(&dir).unwrap();
        let record = |epoch: usize, loss: f64| EpochRecord {
            fit: 0,
            epoch,
            train_loss: loss,
            valid_loss: loss + 0.1,
            metrics: vec![("accuracy".into(), 1.0 - loss), ("bits/char".into(), loss)],
            time_s: 1.0,
        };
        let written = epoch_plots(&dir, "lm", &[record(0, 0.9), record(1, 0.5)]).unwrap();
        let names: Vec<_> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["lm_losses.png", "lm_accuracy.png", "lm_bits_char.png"]
        );
        for path in &written {
            assert_eq!(&std::fs::read(path).unwrap()[..4], b"\x89PNG");
        }
        assert!(epoch_plots(&dir, "none", &[]).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_agreement_map_is_a_square_png() {
        let dir = std::env::temp_dir().join(format!("seqlab-plot-agree-{}", std::process::id()));
        check_dir(&dir).unwrap();
        let path = dir.join("agreement.png");
        let targets = vec![vec![1, 2, 3], vec![2, 2], vec![3]];
        let predictions = vec![vec![1, 2, 3], vec![2, 1, 3], vec![]];
        agreement_plot(&path, &predictions, &targets).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // Width and height in the IHDR chunk: 900 × 900.
        assert_eq!(&bytes[16..24], &[0, 0, 3, 132, 0, 0, 3, 132]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_an_error() {
        let file = std::env::temp_dir().join(format!("seqlab-plot-file-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let err = check_dir(&file.join("sub")).unwrap_err();
        assert!(
            err.to_string().contains("could not write the plot"),
            "{err}"
        );
        std::fs::remove_file(&file).unwrap();
    }
}
