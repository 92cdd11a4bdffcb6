//! The widest vector instruction set the CPU has, chosen once per process at run time.
//!
//! A default x86-64 build targets SSE2 only. The kernels are plain loops over integer lanes, so
//! the same loop compiled inside a function with AVX2 or AVX-512 enabled vectorises at that
//! width: [`dispatch`] runs a kernel body inside such a function when the CPU has the
//! instructions. That needs the body inlined into it, so the kernels' closures and helpers are
//! `#[inline(always)]`: without that, LLVM called the learned kernels' loops, compiled for SSE2,
//! from the AVX2 function (seen in the disassembly). Every level computes the same bits (integer masks, and f64 sums whose order
//! the loops fix; Rust never contracts a multiply and an add into an FMA by itself).
//!
//! The environment variable [`SIMD_ENV`] forces a lower level (`portable`, `avx2`, `avx512`),
//! read once, so that the tests cover every path the machine has.

use std::sync::OnceLock;

/// The environment variable that forces a [`SimdLevel`].
pub const SIMD_ENV: &str = "BURN_HARDSHRINK_SIMD";

/// An instruction-set level the kernels run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// The build's own target features: SSE2 on a default x86-64 build, NEON on aarch64.
    Portable,
    /// x86-64 with AVX2: 256-bit lanes.
    Avx2,
    /// x86-64 with AVX-512 F, BW and VL: 512-bit lanes, 16-bit elements included.
    Avx512,
}

impl SimdLevel {
    /// Every level, lowest first.
    pub const ALL: [Self; 3] = [Self::Portable, Self::Avx2, Self::Avx512];

    /// The level's name, as [`SIMD_ENV`] takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// Whether this CPU runs the level.
    pub fn detected(self) -> bool {
        match self {
            Self::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => {
                std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw")
                    && std::is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The widest level this CPU runs.
    pub fn best() -> Self {
        Self::ALL
            .into_iter()
            .rev()
            .find(|level| level.detected())
            .unwrap_or(Self::Portable)
    }

    /// The level the kernels use: [`best`](Self::best), or the one [`SIMD_ENV`] names.
    ///
    /// # Panics
    ///
    /// Once, at the first kernel call, when [`SIMD_ENV`] names no level or one this CPU lacks.
    pub fn active() -> Self {
        static ACTIVE: OnceLock<SimdLevel> = OnceLock::new();
        *ACTIVE.get_or_init(|| match std::env::var(SIMD_ENV) {
            Ok(name) => Self::forced(&name).unwrap_or_else(|message| panic!("{message}")),
            Err(_) => Self::best(),
        })
    }

    /// The level `name` asks for, if this CPU runs it.
    fn forced(name: &str) -> Result<Self, String> {
        let names = || Self::ALL.map(Self::name).join(", ");
        let wanted = name.trim().to_ascii_lowercase();
        let level = Self::ALL
            .into_iter()
            .find(|level| level.name() == wanted)
            .ok_or_else(|| format!("{SIMD_ENV}={name}: expected one of {}", names()))?;
        if !level.detected() {
            return Err(format!(
                "{SIMD_ENV}={name}: this CPU runs at most {}; unset it or pick a lower level",
                Self::best().name()
            ));
        }
        Ok(level)
    }
}

/// Runs `kernel` at the [active](SimdLevel::active) level.
///
/// `kernel` is inlined into a function compiled with that level's target features, so its loops
/// vectorise at the level's width.
#[inline(always)]
pub(crate) fn dispatch<R>(kernel: impl FnOnce() -> R) -> R {
    match SimdLevel::active() {
        // SAFETY: `active` returns a level only when the CPU has its features (`detected`).
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { with_avx512(kernel) },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => unsafe { with_avx2(kernel) },
        _ => kernel(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,bmi1,bmi2,popcnt,lzcnt")]
fn with_avx512<R>(kernel: impl FnOnce() -> R) -> R {
    kernel()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt")]
fn with_avx2<R>(kernel: impl FnOnce() -> R) -> R {
    kernel()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused_in_one_line() {
        for level in SimdLevel::ALL.into_iter().filter(|l| l.detected()) {
            assert_eq!(SimdLevel::forced(level.name()), Ok(level));
        }
        let error = SimdLevel::forced("sse9").unwrap_err();
        assert_eq!(
            error,
            "BURN_HARDSHRINK_SIMD=sse9: expected one of portable, avx2, avx512"
        );
        if let Some(missing) = SimdLevel::ALL.into_iter().find(|l| !l.detected()) {
            let error = SimdLevel::forced(missing.name()).unwrap_err();
            assert!(error.contains("this CPU runs at most"), "{error}");
        }
    }

    #[test]
    fn the_best_level_is_detected_and_active_by_default() {
        assert!(SimdLevel::best().detected());
        if std::env::var(SIMD_ENV).is_err() {
            assert_eq!(SimdLevel::active(), SimdLevel::best());
        }
    }
}
