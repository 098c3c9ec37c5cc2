//! Choosing a Burn device by name: the one place where seqlab names backends.

use burn::tensor::Device;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// The devices seqlab can run on, by the names the command line uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceChoice {
    /// burn-flex, the pure-Rust CPU backend (the default: the fastest CPU backend measured).
    Flex,
    /// burn-ndarray, the older CPU backend (deprecated by Burn in 0.22).
    NdArray,
    /// wgpu: a GPU through Vulkan, Metal or DX12 (or Mesa's software Vulkan, lavapipe).
    Wgpu,
    /// CUDA: an NVIDIA GPU through Burn's CUDA backend (the cargo feature `cuda`, off by
    /// default), the first one.
    Cuda,
}

/// A device that cannot be used.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// The name is not a device seqlab knows.
    #[error(
        "unknown device {0:?}: expected one of flex, ndarray, wgpu, cuda (or cpu for the default CPU device)"
    )]
    Unknown(String),
    /// The device's backend was left out of this build by its cargo feature.
    #[error("device {0} is not built into this binary: rebuild with the cargo feature \"{0}\"")]
    NotBuilt(DeviceChoice),
    /// The backend is built in but could not start (e.g. no GPU adapter for wgpu).
    #[error("device {choice} could not start: {reason}")]
    Unavailable {
        /// The device.
        choice: DeviceChoice,
        /// What went wrong.
        reason: String,
    },
}

impl DeviceChoice {
    /// Every device, in order of preference for the CPU default.
    pub const ALL: [DeviceChoice; 4] = [
        DeviceChoice::Flex,
        DeviceChoice::NdArray,
        DeviceChoice::Wgpu,
        DeviceChoice::Cuda,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Flex => "flex",
            DeviceChoice::NdArray => "ndarray",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::Cuda => "cuda",
        }
    }

    /// Whether this build includes the device's backend.
    pub fn is_built(self) -> bool {
        match self {
            DeviceChoice::Flex => cfg!(feature = "flex"),
            DeviceChoice::NdArray => cfg!(feature = "ndarray"),
            DeviceChoice::Wgpu => cfg!(feature = "wgpu"),
            DeviceChoice::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The fastest CPU device built in: flex, else ndarray.
    pub fn default_cpu() -> Result<DeviceChoice, DeviceError> {
        [DeviceChoice::Flex, DeviceChoice::NdArray]
            .into_iter()
            .find(|choice| choice.is_built())
            .ok_or(DeviceError::NotBuilt(DeviceChoice::Flex))
    }

    /// The device, checked to work by running one small operation on it.
    pub fn device(self) -> Result<Device, DeviceError> {
        let device = self.unchecked_device()?;
        probe(self, &device)?;
        Ok(device)
    }

    #[allow(deprecated)] // burn-ndarray is deprecated, and still supported here on purpose.
    fn unchecked_device(self) -> Result<Device, DeviceError> {
        match self {
            #[cfg(feature = "flex")]
            DeviceChoice::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            DeviceChoice::NdArray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)] // reached when a backend's feature is off
            other => Err(DeviceError::NotBuilt(other)),
        }
    }
}

/// Runs one tiny computation so that a device that cannot start fails here, with a message,
/// rather than in the middle of training. Backends report start-up failures by panicking, so
/// the panic is caught (and its default report silenced) for the duration of the probe.
fn probe(choice: DeviceChoice, device: &Device) -> Result<(), DeviceError> {
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let device = device.clone();
    let result = std::panic::catch_unwind(move || {
        let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
        x.sum().into_scalar::<f32>()
    });
    std::panic::set_hook(previous_hook);
    match result {
        Ok(3.0) => Ok(()),
        Ok(sum) => Err(DeviceError::Unavailable {
            choice,
            reason: format!("1 + 2 gave {sum}"),
        }),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the backend panicked".into());
            let first_line = reason.lines().next().unwrap_or_default().to_string();
            Err(DeviceError::Unavailable {
                choice,
                reason: first_line,
            })
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    /// Parses `flex`, `ndarray`, `wgpu`, `cuda`, or `cpu` (the fastest CPU device built in).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "flex" => Ok(DeviceChoice::Flex),
            "ndarray" => Ok(DeviceChoice::NdArray),
            "wgpu" | "gpu" => Ok(DeviceChoice::Wgpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            "cpu" => DeviceChoice::default_cpu(),
            _ => Err(DeviceError::Unknown(name.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for choice in DeviceChoice::ALL {
            assert_eq!(choice.name().parse::<DeviceChoice>(), Ok(choice));
        }
        assert_eq!(
            "tpu".parse::<DeviceChoice>(),
            Err(DeviceError::Unknown("tpu".into()))
        );
    }

    #[test]
    fn a_device_left_out_of_the_build_says_so() {
        let message = DeviceError::NotBuilt(DeviceChoice::Wgpu).to_string();
        assert_eq!(
            message,
            "device wgpu is not built into this binary: rebuild with the cargo feature \"wgpu\""
        );
        for choice in DeviceChoice::ALL {
            assert_eq!(
                choice.is_built(),
                choice.unchecked_device().is_ok(),
                "{choice}"
            );
        }
    }
}
