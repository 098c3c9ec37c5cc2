//! Checking that every process was started with rank 0's settings.

use super::ProcessGroup;
use crate::{RunSettings, TrainError};

/// Checks that every process was started with rank 0's `settings`; on every process, the
/// same error naming the first process that differs and how, when one does.
pub(crate) fn agree_on_settings(
    group: &dyn ProcessGroup,
    settings: &RunSettings,
) -> Result<(), TrainError> {
    let own = serde_json::to_vec(settings).expect("settings always serialise");
    let mut first = own.clone();
    group.broadcast(&mut first);
    let differences = match serde_json::from_slice::<RunSettings>(&first) {
        Ok(first) => first.differences(settings).join(", "),
        Err(error) => error.to_string(),
    };
    let rank = group.rank();
    let differs = group.sum(group.size(), &mut |range, bucket| {
        for (slot, process) in bucket.iter_mut().zip(range) {
            *slot = f32::from(process == rank && !differences.is_empty());
        }
    });
    let Some(other) = differs.iter().position(|&d| d > 0.0) else {
        return Ok(());
    };
    // The first process that differs says how, to all: its bytes, summed with zeros.
    let len = group.sum(1, &mut |_, bucket| {
        bucket[0] = if rank == other {
            differences.len() as f32
        } else {
            0.0
        }
    })[0] as usize;
    let bytes = group.sum(len, &mut |range, bucket| {
        for (slot, at) in bucket.iter_mut().zip(range) {
            *slot = if rank == other {
                f32::from(differences.as_bytes()[at])
            } else {
                0.0
            };
        }
    });
    let bytes: Vec<u8> = bytes.iter().map(|&b| b as u8).collect();
    Err(TrainError::GroupSettings(format!(
        "process {other} of {} was started with other settings than process 0: {}",
        group.size(),
        String::from_utf8_lossy(&bytes)
    )))
}
