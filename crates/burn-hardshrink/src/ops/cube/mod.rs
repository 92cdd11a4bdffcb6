//! The learned-threshold op on Burn's `Cube` backend: every CubeCL runtime (wgpu/WGSL,
//! Vulkan/SPIR-V, Metal/MSL, CUDA, ROCm and the CubeCL CPU runtime) through one pair of kernels
//! (`learned.rs`), fused or not; and the fixed op's trait impl, whose default bodies (Burn's
//! primitive ops) run on the unfused backend as they do under fusion. The fixed op had CubeCL
//! kernels of its own for builds without fusion: the fused default ran forward + backward faster
//! and the same in a model step, so they went (BENCHMARKS.md, "The unfused GPU kernels").
//!
//! # Exactness
//!
//! The kernels decide on the IEEE bit patterns, as the CPU kernels do, never on float
//! comparisons: a shader compiler may assume that no NaN occurs (Metal compiles with fast math
//! unless told otherwise, WGSL allows it) or flush subnormals to zero, and either would change
//! which values fall into the band. The sign bit is cleared and the magnitude compared as an
//! unsigned integer against λ's magnitude bits; for non-negative floats (NaN included, above
//! infinity) the integer order is the float order. The kept value is chosen by a select on the
//! same bits, so kept values (and `-0.0` gradients) pass unchanged and the band writes `+0`.
//!
//! The integer width follows the dtype and what the device can do (see [`Lanes`]):
//!
//! - f32 compares `u32` lanes, f64 `u64` lanes, f16/bf16 `u16` lanes.
//! - f16/bf16 on a device without 16-bit integers (WGSL) widen to f32 first, which is exact
//!   unless the device flushes half subnormals while converting.
//! - f64 on a device without 64-bit integers compares the floats directly (IEEE rules, which
//!   CubeCL keeps unless a kernel opts into fast math).

mod learned;

use super::{HardshrinkBackend, KernelBackend};
use crate::dtype::ShrinkDType;
use burn::tensor::DType;
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::features::TypeUsage;
use cubecl::ir::UIntKind;
use cubecl::prelude::*;
use cubecl::{calculate_cube_count_elemwise, tensor_vector_size_parallel};

/// The fixed op on the unfused backend: the trait's default bodies, Burn's primitive ops (what
/// fusion runs too).
impl HardshrinkBackend for CubeBackend {}

/// How a kernel reads the bits of its element type. Chosen on the host per launch, compiled in
/// (each variant is its own kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Lanes {
    /// f16 or bf16 read as `u16`.
    U16,
    /// f32 read as `u32`.
    U32,
    /// f64 read as `u64`.
    U64,
    /// f16 or bf16 widened to f32 (exact) and read as `u32`: devices without 16-bit integers.
    WidenedU32,
    /// Float comparisons in the element type: f64 on a device without 64-bit integers.
    Float,
}

/// The dtype as the kernels take it, and the lanes they read it in on the client's device; the
/// crate's error as a panic for a dtype they do not take.
pub(crate) fn lanes_for(client: &Client, dtype: DType) -> (ShrinkDType, Lanes) {
    let has_ints = |kind: UIntKind| {
        client
            .properties()
            .type_usage(ElemType::UInt(kind))
            .is_superset(TypeUsage::Conversion | TypeUsage::Arithmetic)
    };
    let dtype = KernelBackend::Cube.dtype(dtype);
    let lanes = match dtype {
        ShrinkDType::F32 => Lanes::U32,
        ShrinkDType::F16 | ShrinkDType::BF16 if has_ints(UIntKind::U16) => Lanes::U16,
        ShrinkDType::F16 | ShrinkDType::BF16 => Lanes::WidenedU32,
        ShrinkDType::F64 if has_ints(UIntKind::U64) => Lanes::U64,
        ShrinkDType::F64 => Lanes::Float,
    };
    (dtype, lanes)
}

/// The widest vector width a linear walk of `tensor` allows: the last dimension must be
/// contiguous and every other stride a multiple of the width.
fn vector_width(tensor: &CubeTensor) -> VectorSize {
    let rank = tensor.meta.num_dims();
    if rank == 0 {
        return 1;
    }
    tensor_vector_size_parallel(
        tensor.client.io_optimized_vector_sizes(tensor.dtype.size()),
        tensor.meta.shape(),
        tensor.meta.strides(),
        rank - 1,
    )
}

/// The launch shape for `num_elements` elements read `width` at a time.
fn launch_shape(client: &Client, num_elements: usize, width: VectorSize) -> (CubeCount, CubeDim) {
    let working_units = num_elements / width;
    let cube_dim = CubeDim::new(client, working_units);
    let cube_count = calculate_cube_count_elemwise(client, working_units, cube_dim);
    (cube_count, cube_dim)
}

/// `+0` where `dead`, `value` unchanged elsewhere. The integer lanes select on the bits, so
/// nothing a compiler may assume about floats can touch the kept values or the zero's sign.
#[cube]
fn zero_where<F: Float, N: Size>(
    dead: Vector<bool, N>,
    value: Vector<F, N>,
    #[comptime] lanes: Lanes,
) -> Vector<F, N> {
    match comptime![lanes] {
        Lanes::U16 => Vector::<F, N>::reinterpret(select_many(
            dead,
            Vector::<u16, N>::new(0u16),
            Vector::<u16, N>::reinterpret(value),
        )),
        Lanes::U32 => Vector::<F, N>::reinterpret(select_many(
            dead,
            Vector::<u32, N>::new(0u32),
            Vector::<u32, N>::reinterpret(value),
        )),
        Lanes::U64 => Vector::<F, N>::reinterpret(select_many(
            dead,
            Vector::<u64, N>::new(0u64),
            Vector::<u64, N>::reinterpret(value),
        )),
        Lanes::WidenedU32 => select_many(dead, Vector::<F, N>::new(F::new(0.0)), value),
        Lanes::Float => select_many(dead, Vector::<F, N>::new(F::new(0.0)), value),
    }
}
