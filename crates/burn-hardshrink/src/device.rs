//! Naming a device, for command lines and config files.
//!
//! [`DeviceName`] is the one table of names: `cpu` is Burn's recommended CPU backend (Flex);
//! `flex` and `ndarray` name the two CPU backends this crate has kernels for. The GPU names open
//! Burn's CubeCL backend through the runtime of the same Cargo feature: `wgpu` (the platform's
//! default graphics API), `vulkan`, `metal` (wgpu pinned to that API) and `cuda`. A name whose
//! feature is off returns [`DeviceError::NotCompiled`]; a GPU that cannot be opened (no adapter,
//! no driver) returns [`DeviceError::Unavailable`]: never a panic in a worker thread.

use crate::ops::KernelBackend;
use burn::tensor::Device;
use core::fmt;
use core::str::FromStr;

/// A device this crate can open by name.
///
/// It parses from its lower-case name (`"cpu".parse()`), prints as it, and (de)serialises as
/// it; with the `clap` feature it is a `clap::ValueEnum`, so a command line lists the names.
///
/// ```
/// use burn_hardshrink::DeviceName;
///
/// let name: DeviceName = " CPU ".parse().unwrap();
/// assert_eq!(name, DeviceName::Cpu);
/// let device = name.open().unwrap().autodiff();
/// # let _ = device;
/// assert!("tpu".parse::<DeviceName>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DeviceName {
    /// Burn's recommended CPU backend (Flex).
    Cpu,
    /// Burn's Flex CPU backend.
    Flex,
    /// Burn's NdArray CPU backend.
    Ndarray,
    /// Burn's GPU backend on wgpu, through the platform's default graphics API.
    Wgpu,
    /// Burn's GPU backend on wgpu, through Vulkan.
    Vulkan,
    /// Burn's GPU backend on CUDA.
    Cuda,
    /// Burn's GPU backend on wgpu, through Metal.
    Metal,
}

impl DeviceName {
    /// The table of names: each name, as written, the backend with kernels it opens (whose
    /// own table says whether it is a CPU backend) and whether this build has it (the feature
    /// of its name: a GPU name needs its runtime), in the order of the variants and of help texts.
    const TABLE: [(Self, &'static str, KernelBackend, bool); 7] = [
        (
            Self::Cpu,
            "cpu",
            KernelBackend::Flex,
            KernelBackend::Flex.is_compiled(),
        ),
        (
            Self::Flex,
            "flex",
            KernelBackend::Flex,
            KernelBackend::Flex.is_compiled(),
        ),
        (
            Self::Ndarray,
            "ndarray",
            KernelBackend::NdArray,
            KernelBackend::NdArray.is_compiled(),
        ),
        (
            Self::Wgpu,
            "wgpu",
            KernelBackend::Cube,
            cfg!(feature = "wgpu"),
        ),
        (
            Self::Vulkan,
            "vulkan",
            KernelBackend::Cube,
            cfg!(feature = "vulkan"),
        ),
        (
            Self::Cuda,
            "cuda",
            KernelBackend::Cube,
            cfg!(feature = "cuda"),
        ),
        (
            Self::Metal,
            "metal",
            KernelBackend::Cube,
            cfg!(feature = "metal"),
        ),
    ];

    /// Every name, in the order help texts list them.
    pub const ALL: [Self; 7] = {
        let mut all = [Self::Cpu; 7];
        let mut i = 0;
        while i < all.len() {
            // The table's rows follow the variants, so a variant indexes its own row.
            assert!(Self::TABLE[i].0 as usize == i);
            all[i] = Self::TABLE[i].0;
            i += 1;
        }
        all
    };

    /// The name as it is written.
    pub const fn as_str(self) -> &'static str {
        Self::TABLE[self as usize].1
    }

    /// Whether this build has the backend (its Cargo feature is on).
    pub const fn is_compiled(self) -> bool {
        Self::TABLE[self as usize].3
    }

    /// The backend with kernels the name opens.
    pub(crate) const fn backend(self) -> KernelBackend {
        Self::TABLE[self as usize].2
    }

    /// Whether the name is a CPU backend (Flex or NdArray) rather than one of CubeCL's GPU
    /// runtimes, whether or not this build has it.
    ///
    /// ```
    /// use burn_hardshrink::DeviceName;
    ///
    /// assert!(DeviceName::Cpu.is_cpu() && DeviceName::Ndarray.is_cpu());
    /// assert!(!DeviceName::Wgpu.is_cpu() && !DeviceName::Cuda.is_cpu());
    /// ```
    pub const fn is_cpu(self) -> bool {
        self.backend().is_cpu()
    }

    /// Opens the device, without gradient tracking (call `.autodiff()` on it to train).
    ///
    /// A GPU runtime is set up once per process: the first answer is kept and reused.
    // NdArray is deprecated in Burn 0.22 in favour of Flex, but still supported.
    #[allow(deprecated)]
    pub fn open(self) -> Result<Device, DeviceError> {
        let not_compiled = || DeviceError::NotCompiled {
            name: self.as_str().to_string(),
            available: available_devices(),
        };
        if !self.is_compiled() {
            return Err(not_compiled());
        }
        match self {
            #[cfg(feature = "flex")]
            Self::Cpu | Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            Self::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Self::Wgpu | Self::Vulkan | Self::Metal => open_wgpu(self),
            #[cfg(feature = "cuda")]
            Self::Cuda => match Device::enumerate(burn::tensor::DeviceType::Cuda)
                .into_vec()
                .into_iter()
                .next()
            {
                Some(device) => Ok(device),
                None => Err(DeviceError::Unavailable {
                    name: self.as_str().to_string(),
                    reason: "no CUDA device or driver found".into(),
                }),
            },
            #[allow(unreachable_patterns)]
            _ => Err(not_compiled()),
        }
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceName {
    type Err = DeviceError;

    /// Case-insensitive, surrounding spaces ignored.
    fn from_str(name: &str) -> Result<Self, DeviceError> {
        let key = name.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|known| known.as_str() == key)
            .ok_or_else(|| DeviceError::Unknown {
                name: name.to_string(),
            })
    }
}

/// Why a device name could not be turned into a device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The name is not one of [`DeviceName::ALL`].
    #[error(
        "unknown device `{name}`: expected one of {} (this build opens {})",
        DeviceName::ALL.map(DeviceName::as_str).join(", "),
        available_devices().join(", ")
    )]
    Unknown {
        /// The name that was asked for.
        name: String,
    },
    /// The name is valid, but its backend is not compiled into this build.
    #[error(
        "device `{name}` is not built in: enable burn-hardshrink's `{name}` feature (e.g. \
         `--features burn-hardshrink/{name}`), or use one of {}",
        available.join(", ")
    )]
    NotCompiled {
        /// The name that was asked for.
        name: String,
        /// The names this build can open.
        available: Vec<&'static str>,
    },
    /// The backend is compiled in but its device could not be opened.
    #[error(
        "device `{name}` could not be opened ({reason}); without a GPU adapter or driver, use \
         `cpu`"
    )]
    Unavailable {
        /// The name that was asked for.
        name: String,
        /// What the runtime reported.
        reason: String,
    },
}

/// The device names this build can open.
///
/// ```
/// assert!(burn_hardshrink::available_devices().contains(&"cpu"));
/// ```
pub fn available_devices() -> Vec<&'static str> {
    DeviceName::ALL
        .into_iter()
        .filter(|d| d.is_compiled())
        .map(DeviceName::as_str)
        .collect()
}

/// Opens the wgpu device a name stands for, once per name and process.
#[cfg(feature = "wgpu")]
fn open_wgpu(name: DeviceName) -> Result<Device, DeviceError> {
    use burn::tensor::wgpu::WgpuBackend;
    use std::sync::OnceLock;
    // One slot per wgpu name: `wgpu` (the platform's API), `vulkan`, `metal`.
    static SLOTS: [OnceLock<Result<Device, String>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let (slot, api) = match name {
        DeviceName::Vulkan => (&SLOTS[1], Some(WgpuBackend::Vulkan)),
        DeviceName::Metal => (&SLOTS[2], Some(WgpuBackend::Metal)),
        _ => (&SLOTS[0], None),
    };
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
        name: name.as_str().to_string(),
        reason,
    })
}

/// Opens the device a name stands for (case-insensitive, surrounding spaces ignored): the
/// string form of [`DeviceName::open`].
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
pub fn device_from_name(name: &str) -> Result<Device, DeviceError> {
    name.parse::<DeviceName>()?.open()
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

    #[test]
    fn names_round_trip_through_text_and_json() {
        for name in DeviceName::ALL {
            assert_eq!(name.as_str().parse::<DeviceName>().unwrap(), name);
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<DeviceName>(&json).unwrap(), name);
        }
    }
}
