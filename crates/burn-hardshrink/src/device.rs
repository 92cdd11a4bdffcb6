//! Naming a device from a string, for command lines and config files.
//!
//! `cpu` is Burn's recommended CPU backend (Flex); `flex` and `ndarray` name the two CPU
//! backends this crate has kernels for. The GPU names open Burn's CubeCL backend through the
//! runtime of the same Cargo feature: `wgpu` (the platform's default graphics API), `vulkan`,
//! `metal` (wgpu pinned to that API) and `cuda`. A name whose feature is off returns
//! [`DeviceError::NotCompiled`]; a GPU that cannot be opened (no adapter, no driver) returns
//! [`DeviceError::Unavailable`]: never a panic in a worker thread.

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
    /// The backend is compiled in but its device could not be opened.
    Unavailable {
        /// The name that was asked for.
        name: String,
        /// What the runtime reported.
        reason: String,
    },
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { name } => write!(
                f,
                "unknown device `{name}`: expected one of {} (this build opens {})",
                DEVICE_NAMES.join(", "),
                available_devices().join(", ")
            ),
            Self::NotCompiled { name, available } => write!(
                f,
                "device `{name}` is not built in: enable burn-hardshrink's `{name}` feature \
                 (e.g. `--features burn-hardshrink/{name}`), or use one of {}",
                available.join(", ")
            ),
            Self::Unavailable { name, reason } => write!(
                f,
                "device `{name}` could not be opened ({reason}); without a GPU adapter or \
                 driver, use `cpu`"
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
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "vulkan") {
        names.push("vulkan");
    }
    if cfg!(feature = "metal") {
        names.push("metal");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    names
}

/// A wgpu runtime can be set up once per process: the first answer is kept and reused.
#[cfg(feature = "wgpu")]
fn open_wgpu(
    name: &str,
    slot: &'static std::sync::OnceLock<Result<Device, String>>,
    api: Option<burn::tensor::wgpu::WgpuBackend>,
) -> Result<Device, DeviceError> {
    slot.get_or_init(|| {
        let options = Device::wgpu_options();
        // No API named: the runtime picks the platform's (Vulkan first on Linux).
        let options = match api {
            Some(api) => options.graphics_api(api),
            None => options,
        };
        options.init().map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|reason| DeviceError::Unavailable {
        name: name.to_string(),
        reason,
    })
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
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            static SLOT: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
            open_wgpu("wgpu", &SLOT, None)
        }
        #[cfg(feature = "vulkan")]
        "vulkan" => {
            static SLOT: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
            open_wgpu(
                "vulkan",
                &SLOT,
                Some(burn::tensor::wgpu::WgpuBackend::Vulkan),
            )
        }
        #[cfg(feature = "metal")]
        "metal" => {
            static SLOT: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
            open_wgpu("metal", &SLOT, Some(burn::tensor::wgpu::WgpuBackend::Metal))
        }
        #[cfg(feature = "cuda")]
        "cuda" => match Device::enumerate(burn::tensor::DeviceType::Cuda)
            .into_vec()
            .into_iter()
            .next()
        {
            Some(device) => Ok(device),
            None => Err(DeviceError::Unavailable {
                name: key.clone(),
                reason: "no CUDA device or driver found".into(),
            }),
        },
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
        #[cfg(not(feature = "cuda"))]
        {
            let err = device_from_name("cuda").unwrap_err();
            assert!(matches!(err, DeviceError::NotCompiled { .. }));
            assert!(err.to_string().contains("burn-hardshrink/cuda"), "{err}");
        }
        let err = device_from_name("gpu0").unwrap_err();
        assert!(err.to_string().contains("expected one of cpu"), "{err}");
    }
}
