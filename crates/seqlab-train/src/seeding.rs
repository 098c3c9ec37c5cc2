//! Seeding a device's generator: for initial weights, and per training step for dropout
//! masks that a resumed run draws again.

use burn::tensor::Device;
use std::sync::Mutex;

/// Seeds `device`'s generator and builds a model with it, holding a process-wide lock so that
/// two runs side by side (tests, say) do not interleave their draws. The backend's generator
/// is shared by everything on the device: other code drawing from it at the same moment still
/// changes the initial weights, so a test that needs one exact initialisation runs the binary,
/// a process of its own.
pub fn init_seeded<T>(device: &Device, seed: u64, init: impl FnOnce() -> T) -> T {
    with_lock(|| {
        device.seed(seed);
        init()
    })
}

/// Seeds `device`'s generator (its inner device's, for an autodiff device) under the same
/// lock as [`init_seeded`].
pub fn seed_device(device: &Device, seed: u64) {
    with_lock(|| device.clone().inner().seed(seed));
}

/// The generator seed of training step `step` of a run seeded with `seed`: the loop seeds the
/// device with it before the step (see [`TrainTask::step_seed`](crate::TrainTask::step_seed)),
/// so that a resumed run draws the same dropout masks as one that never stopped.
pub fn seed_for_step(seed: u64, step: u64) -> u64 {
    seed.wrapping_add((step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Runs `f` holding the process-wide lock on the devices' generators.
fn with_lock<T>(f: impl FnOnce() -> T) -> T {
    static SEEDING: Mutex<()> = Mutex::new(());
    let _guard = SEEDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f()
}
