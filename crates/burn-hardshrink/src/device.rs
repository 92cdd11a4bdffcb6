//! Naming a device from a string, for command lines and config files.
//!
//! `cpu` is Burn's recommended CPU backend (Flex); `flex` and `ndarray` name the two CPU
//! backends this crate has kernels for. The GPU names (`wgpu`, `vulkan`, `cuda`, `metal`) are
//! recognised so a user gets a useful answer, but this build has no GPU backend compiled in:
//! asking for one returns [`DeviceError::NotCompiled`] with the names that do work.

use burn::tensor::Device;
use core::fmt;

/// Every name [`device_from_name`] recognises, in the order the help text lists them.
pub const DEVICE_NAMES: [&str; 7] = ["cpu", "flex", "ndarray", "wgpu", "vulkan", "cuda", "metal"];

/// Why a device name could not be turned into a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// The name is not one of [`DEVICE_NAMES`].
    Unknown {
        /// The name that was asked for.
        name: String,
    },
    /// The name is valid, but its backend is not compiled into this build.
    NotCompiled {
        /// The name that was asked for.
        name: String,
        /// The names this build can open.
        available: Vec<&'static str>,
    },
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { name } => write!(
                f,
                "unknown device `{name}`: expected one of {}",
                DEVICE_NAMES.join(", ")
            ),
            Self::NotCompiled { name, available } => write!(
                f,
                "device `{name}` needs a GPU backend, which this build does not include; \
                 use one of {} (e.g. `cpu`)",
                available.join(", ")
            ),
        }
    }
}

impl std::error::Error for DeviceError {}

/// The device names this build can open.
///
/// ```
/// assert!(burn_hardshrink::available_devices().contains(&"cpu"));
/// ```
pub fn available_devices() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "flex") {
        names.extend(["cpu", "flex"]);
    }
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    names
}

/// Opens the device a name stands for (case-insensitive, surrounding spaces ignored).
///
/// The device comes without gradient tracking; call `.autodiff()` on it to train.
///
/// ```
/// use burn_hardshrink::{DeviceError, device_from_name};
///
/// let device = device_from_name("cpu").unwrap().autodiff();
/// # let _ = device;
/// assert!(matches!(device_from_name("tpu"), Err(DeviceError::Unknown { .. })));
/// ```
// NdArray is deprecated in Burn 0.22 in favour of Flex, but still supported.
#[allow(deprecated)]
pub fn device_from_name(name: &str) -> Result<Device, DeviceError> {
    let key = name.trim().to_ascii_lowercase();
    match key.as_str() {
        #[cfg(feature = "flex")]
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        "ndarray" => Ok(Device::ndarray()),
        known if DEVICE_NAMES.contains(&known) => Err(DeviceError::NotCompiled {
            name: key.clone(),
            available: available_devices(),
        }),
        _ => Err(DeviceError::Unknown {
            name: name.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_open_or_explain() {
        for name in available_devices() {
            assert!(device_from_name(name).is_ok(), "{name} should open");
        }
        assert!(device_from_name(" CPU ").is_ok());
        let err = device_from_name("cuda").unwrap_err();
        assert!(matches!(err, DeviceError::NotCompiled { .. }));
        assert!(err.to_string().contains("`cpu`"), "{err}");
        let err = device_from_name("gpu0").unwrap_err();
        assert!(err.to_string().contains("expected one of cpu"), "{err}");
    }
}
