//! Will a training run fit in memory? [`MemoryNeed`] estimates what a model and one batch take
//! before either is allocated, and [`MemoryNeed::check`] refuses in one line what cannot fit
//! in the memory this process may still use ([`available_memory`]).

use crate::TrainError;
use seqlab_models::Footprint;

/// Copies of the parameters a training step holds: the weights, their gradients and Adam's two
/// moments.
pub const TRAINING_COPIES: u128 = 4;

/// Bytes per float.
const FLOAT_BYTES: u128 = 4;

/// What a training run needs, estimated from the model's config and the batch shape.
///
/// ```
/// use seqlab_models::{CellKind, RecurrentLmConfig};
/// use seqlab_train::MemoryNeed;
///
/// let sensible = RecurrentLmConfig::new(CellKind::Lstm, 80, 512, 2);
/// let need = MemoryNeed::training(&sensible, 32, 100, "hidden 512, batches of 32 × 100");
/// assert!(need.bytes() < 200_000_000);
/// assert!(need.check(Some(8 << 30)).is_ok());
///
/// let absurd = RecurrentLmConfig::new(CellKind::Lstm, 80, 100_000_000_000, 2);
/// let need = MemoryNeed::training(&absurd, 32, 100, "hidden 100000000000");
/// let error = need.check(Some(8 << 30)).unwrap_err().to_string();
/// assert!(error.starts_with("hidden 100000000000 needs about"), "{error}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryNeed {
    parameters: u128,
    activations: u128,
    settings: String,
}

impl MemoryNeed {
    /// A training run of `model` on batches of `rows` sequences × `steps` tokens;
    /// `settings` names the settings that set its size, for the refusal ("hidden 4096,
    /// batches of 64 × 400").
    pub fn training(
        model: &(impl Footprint + ?Sized),
        rows: usize,
        steps: usize,
        settings: impl Into<String>,
    ) -> Self {
        let tokens = (rows as u128).saturating_mul(steps as u128);
        Self {
            parameters: model.parameters(),
            activations: tokens.saturating_mul(model.floats_per_token()),
            settings: settings.into(),
        }
    }

    /// The estimate in bytes: [`TRAINING_COPIES`] of the parameters and one batch's
    /// activations, four bytes a float.
    pub fn bytes(&self) -> u128 {
        self.parameters
            .saturating_mul(TRAINING_COPIES)
            .saturating_add(self.activations)
            .saturating_mul(FLOAT_BYTES)
    }

    /// Refuses the run when the estimate exceeds `available` bytes (from
    /// [`available_memory`]; `None`, where it cannot be known, lets every run through).
    pub fn check(&self, available: Option<u64>) -> Result<(), TrainError> {
        match available {
            Some(available) if self.bytes() > available as u128 => Err(TrainError::TooBig {
                settings: self.settings.clone(),
                needed: format_bytes(self.bytes()),
                parameters: format_count(self.parameters),
                activations: format_bytes(self.activations.saturating_mul(FLOAT_BYTES)),
                available: format_bytes(available as u128),
            }),
            _ => Ok(()),
        }
    }

    /// [`check`](Self::check) against this process's [`available_memory`].
    pub fn check_here(&self) -> Result<(), TrainError> {
        self.check(available_memory())
    }
}

/// The memory this process can still allocate, in bytes: the least of the system's available
/// memory (`MemAvailable`), what its cgroup's limit leaves (`memory.max − memory.current`)
/// and what its address-space limit (`ulimit -v`) leaves beyond its current size. `None`
/// where none of these can be read (not Linux).
pub fn available_memory() -> Option<u64> {
    let kib = |text: &str, key: &str| -> Option<u64> {
        let line = text.lines().find(|line| line.starts_with(key))?;
        let value = line[key.len()..].trim().trim_end_matches("kB").trim();
        value.parse::<u64>().ok().map(|k| k.saturating_mul(1024))
    };
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let system = read("/proc/meminfo").and_then(|text| kib(&text, "MemAvailable:"));
    let cgroup = read("/sys/fs/cgroup/memory.max").and_then(|max| {
        let max: u64 = max.trim().parse().ok()?;
        let current: u64 = read("/sys/fs/cgroup/memory.current")?.trim().parse().ok()?;
        Some(max.saturating_sub(current))
    });
    let address_space = read("/proc/self/limits").and_then(|limits| {
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max address space"))?;
        let soft: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
        let size = read("/proc/self/status").and_then(|status| kib(&status, "VmSize:"))?;
        Some(soft.saturating_sub(size))
    });
    [system, cgroup, address_space].into_iter().flatten().min()
}

/// `bytes` for people: "1.2 GB", and powers of ten past petabytes.
fn format_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    for unit in UNITS {
        if value < 1000.0 || unit == "PB" && value < 1e6 {
            return if unit == "bytes" {
                format!("{bytes} bytes")
            } else {
                format!("{value:.1} {unit}")
            };
        }
        value /= 1000.0;
    }
    format!("10^{:.0} bytes", (bytes as f64).log10().floor())
}

/// A count for people: "1,234,567" up to a trillion, a power of ten beyond.
fn format_count(count: u128) -> String {
    if count >= 1_000_000_000_000 {
        return format!("10^{:.0}", (count as f64).log10().floor());
    }
    let digits = count.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqlab_models::{CellKind, LmModel1Config, RecurrentLmConfig};

    #[test]
    fn the_estimate_counts_four_copies_of_the_weights_and_one_batch() {
        let model = LmModel1Config::new(30, 64);
        let need = MemoryNeed::training(&model, 64, 3, "hidden 64");
        let floats = 4 * model.parameters() + 64 * 3 * model.floats_per_token();
        assert_eq!(need.bytes(), 4 * floats);
    }

    #[test]
    fn a_size_past_the_memory_is_refused_in_one_line_naming_it() {
        let model = LmModel1Config::new(30, 100_000_000_000);
        let error = MemoryNeed::training(&model, 64, 3, "hidden 100000000000")
            .check(Some(16_000_000_000))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "hidden 100000000000 needs about 10^23 bytes of memory (about 10^22 parameters, \
             with their gradients and Adam's state, and 230.4 TB of activations for one batch), \
             but 16.0 GB is available: make it smaller"
        );
        let lstm = RecurrentLmConfig::new(CellKind::Lstm, 80, 4096, 4);
        let fits = MemoryNeed::training(&lstm, 64, 200, "hidden 4096");
        assert!(fits.check(Some(64_000_000_000)).is_ok());
        assert!(fits.check(Some(1_000_000_000)).is_err());
        assert!(fits.check(None).is_ok());
    }

    #[test]
    fn this_process_has_some_memory_and_not_unlimited() {
        let available = available_memory().expect("Linux reports its memory");
        assert!(available > 1 << 20 && available < 1 << 50, "{available}");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(format_bytes(999), "999 bytes");
        assert_eq!(format_bytes(1_500_000), "1.5 MB");
        assert_eq!(format_bytes(2_000_000_000_000_000), "2.0 PB");
        assert_eq!(format_bytes(2_000_000_000_000_000_000), "2000.0 PB");
        assert_eq!(format_bytes(2 * 10u128.pow(21)), "10^21 bytes");
        assert_eq!(format_count(1_234_567), "1,234,567");
        assert_eq!(format_count(12), "12");
    }
}
