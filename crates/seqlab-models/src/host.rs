//! Tensors on the host: whether a device computes on this machine's CPU (the backends built in
//! that the fused operations run on), and a tensor's values as `f32` there. What code outside
//! the kernels (the optimizers' one-pass update, generation's stepper) needs to work on the
//! host directly.

// burn-ndarray is deprecated in favour of flex; seqlab supports both while burn ships both.
#![allow(deprecated)]

use burn::tensor::{Device, Tensor};

/// Whether `device` (or, for an autodiff device, the device under it) is one of the CPU
/// backends built in, whose tensors live in this process's memory.
///
/// ```
/// use burn::tensor::Device;
/// assert!(seqlab_models::host::is_host_device(&Device::flex().autodiff()));
/// ```
pub fn is_host_device(device: &Device) -> bool {
    let inner = device.clone().inner();
    #[cfg(feature = "flex")]
    if inner == Device::flex() {
        return true;
    }
    #[cfg(feature = "ndarray")]
    if inner == Device::ndarray() {
        return true;
    }
    let _ = inner;
    false
}

/// A tensor's values as `f32` on the host (read from the device; for the CPU backends, a copy
/// at most).
pub fn host_values(tensor: Tensor<1>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32")
}
