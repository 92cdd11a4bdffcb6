//! Helpers shared by the suite: devices, bit patterns, and the scalar reference rule.

use burn::tensor::{DType, Device, Distribution, Shape, Tensor, TensorData, bf16, f16};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The CPU devices this crate has kernels for.
pub fn cpu_devices() -> Vec<(&'static str, Device)> {
    vec![("flex", Device::flex()), ("ndarray", Device::ndarray())]
}

/// The GPU device (Burn's CubeCL backend through wgpu), opened once: only where the build found a
/// driver (`cfg(gpu_tests)`, `gpu_probe.rs`), and then a GPU that does not open fails the test.
pub fn gpu_device() -> Device {
    static GPU: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();
    let opened = GPU.get_or_init(|| {
        burn_hardshrink::device_from_name("wgpu").map_err(|error| error.to_string())
    });
    opened.clone().unwrap_or_else(|error| {
        panic!(
            "a GPU driver was found at build time, but wgpu did not open ({error}); \
             BURN_HARDSHRINK_GPU_TESTS=0 reports the GPU tests as ignored"
        )
    })
}

/// The GPU where this build tests one, for the tests that run on the CPU and on it.
pub fn gpu() -> Option<Device> {
    cfg!(gpu_tests).then(gpu_device)
}

/// The CPU devices, and the GPU when there is one: every device with a kernel of this crate.
pub fn devices() -> Vec<(&'static str, Device)> {
    let mut devices = cpu_devices();
    devices.extend(gpu().map(|device| ("wgpu", device)));
    devices
}

/// Whether there is a GPU and it takes `dtype`, as the crate's own table says (a GPU holds what
/// its adapter supports).
pub fn gpu_holds(dtype: DType) -> bool {
    gpu().is_some_and(|gpu| burn_hardshrink::supports_dtype(&gpu, dtype))
}

/// A dtype's name in the fixture file.
pub fn dtype_of(name: &str) -> DType {
    match name {
        "f32" => DType::F32,
        "f64" => DType::F64,
        "f16" => DType::F16,
        "bf16" => DType::BF16,
        other => panic!("unknown fixture dtype {other}"),
    }
}

/// f32 samples of `distribution` from a generator seeded with `seed`. Tests run in parallel,
/// so they never draw from the backend's shared generator: another test could reseed it or
/// take samples between a test's `seed` and its draws.
pub fn random(shape: impl Into<Shape>, distribution: Distribution, seed: u64) -> TensorData {
    TensorData::random::<f32, _, _>(shape, distribution, &mut StdRng::seed_from_u64(seed))
}

/// A rank-`D` tensor of `dtype` holding the given bit patterns.
pub fn from_bits<const D: usize>(
    bits: &[u64],
    shape: [usize; D],
    dtype: DType,
    device: &Device,
) -> Tensor<D> {
    let data = match dtype {
        DType::F32 => TensorData::new(
            bits.iter().map(|&b| f32::from_bits(b as u32)).collect(),
            shape,
        ),
        DType::F64 => TensorData::new(bits.iter().map(|&b| f64::from_bits(b)).collect(), shape),
        DType::F16 => TensorData::new(
            bits.iter().map(|&b| f16::from_bits(b as u16)).collect(),
            shape,
        ),
        DType::BF16 => TensorData::new(
            bits.iter().map(|&b| bf16::from_bits(b as u16)).collect(),
            shape,
        ),
        other => panic!("no float tensor of {other:?}"),
    };
    let tensor = Tensor::from_data(data, (device, dtype));
    assert_eq!(
        tensor.dtype(),
        dtype,
        "the backend changed the dtype on load"
    );
    tensor
}

/// The bit patterns of a tensor's values in row-major order.
pub fn to_bits<const D: usize>(tensor: Tensor<D>) -> Vec<u64> {
    data_bits(tensor.into_data())
}

/// The bit patterns of tensor data's values in row-major order.
pub fn data_bits(data: TensorData) -> Vec<u64> {
    match data.dtype() {
        DType::F32 => data.iter::<f32>().map(|v| v.to_bits() as u64).collect(),
        DType::F64 => data.iter::<f64>().map(f64::to_bits).collect(),
        DType::F16 => data
            .as_slice::<f16>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        DType::BF16 => data
            .as_slice::<bf16>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits() as u64)
            .collect(),
        other => panic!("no float data of {other:?}"),
    }
}

/// Whether a bit pattern of `dtype` is a NaN.
pub fn is_nan(bits: u64, dtype: DType) -> bool {
    match dtype {
        DType::F32 => f32::from_bits(bits as u32).is_nan(),
        DType::F64 => f64::from_bits(bits).is_nan(),
        DType::F16 => f16::from_bits(bits as u16).is_nan(),
        DType::BF16 => bf16::from_bits(bits as u16).is_nan(),
        other => panic!("no float of {other:?}"),
    }
}

/// Asserts two bit sequences equal: NaN matches any NaN, everything else (the sign of zero
/// included) bit for bit.
pub fn assert_same_bits(actual: &[u64], expected: &[u64], dtype: DType, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let same = if is_nan(e, dtype) {
            is_nan(a, dtype)
        } else {
            a == e
        };
        assert!(
            same,
            "{what}: element {i}: got {a:#x}, expected {e:#x} ({dtype:?})"
        );
    }
}

/// The spec's rule on one value, written with float comparisons in the value's own type
/// (independent of the crate's bit-level kernels). Values are widened to f64, which is exact.
pub fn reference(x: f64, lambd: f64, dtype: DType) -> f64 {
    let lambd = round_to(lambd, dtype);
    if x >= -lambd && x <= lambd { 0.0 } else { x }
}

/// The gradient rule on one value: `+0` inside the band, the incoming gradient elsewhere.
pub fn reference_grad(x: f64, grad: f64, lambd: f64, dtype: DType) -> f64 {
    let lambd = round_to(lambd, dtype);
    if x >= -lambd && x <= lambd { 0.0 } else { grad }
}

/// `value` rounded to `dtype` (nearest, ties to even) and widened back.
pub fn round_to(value: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => value as f32 as f64,
        DType::F64 => value,
        DType::F16 | DType::BF16 => {
            // The search below is slow; the suite asks for few distinct λ.
            thread_local! {
                static CACHE: std::cell::RefCell<std::collections::HashMap<(u64, bool), f64>> =
                    Default::default();
            }
            let key = (value.to_bits(), dtype == DType::F16);
            CACHE.with(|cache| {
                *cache.borrow_mut().entry(key).or_insert_with(|| {
                    if dtype == DType::F16 {
                        nearest_even(value, |b| f16::from_bits(b).to_f64())
                    } else {
                        nearest_even(value, |b| bf16::from_bits(b).to_f64())
                    }
                })
            })
        }
        other => panic!("no float of {other:?}"),
    }
}

/// The 16-bit value nearest to `value` by exhaustive search over every non-negative finite
/// pattern (ties to even), for an independent check of the crate's rounding.
fn nearest_even(value: f64, widen: impl Fn(u16) -> f64) -> f64 {
    if value.is_nan() {
        return f64::NAN;
    }
    let magnitude = value.abs();
    let finite: Vec<u16> = (0..0x8000u16).filter(|&b| widen(b).is_finite()).collect();
    let largest = *finite.last().unwrap();
    // Above the largest finite value by half a unit or more: infinity.
    let unit = widen(largest) - widen(largest - 1);
    let rounded = if magnitude >= widen(largest) + unit / 2.0 {
        f64::INFINITY
    } else {
        let best = finite
            .iter()
            .copied()
            .min_by(|&a, &b| {
                let d = |x: u16| (magnitude - widen(x)).abs();
                d(a).total_cmp(&d(b)).then((a & 1).cmp(&(b & 1)))
            })
            .unwrap();
        widen(best)
    };
    if value.is_sign_negative() {
        -rounded
    } else {
        rounded
    }
}

/// The bits of an f64 value narrowed (exactly) to `dtype`.
pub fn narrow_bits(value: f64, dtype: DType) -> u64 {
    match dtype {
        DType::F32 => (value as f32).to_bits() as u64,
        DType::F64 => value.to_bits(),
        DType::F16 => f16::from_f64(value).to_bits() as u64,
        DType::BF16 => bf16::from_f64(value).to_bits() as u64,
        other => panic!("no float of {other:?}"),
    }
}

/// The value of a bit pattern of `dtype`, widened to f64.
pub fn widen(bits: u64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => f32::from_bits(bits as u32) as f64,
        DType::F64 => f64::from_bits(bits),
        DType::F16 => f16::from_bits(bits as u16).to_f64(),
        DType::BF16 => bf16::from_bits(bits as u16).to_f64(),
        other => panic!("no float of {other:?}"),
    }
}
