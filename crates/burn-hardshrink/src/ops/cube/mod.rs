//! Hardshrink on Burn's `Cube` backend: every CubeCL runtime (wgpu/WGSL, Vulkan/SPIR-V, Metal/MSL,
//! CUDA, ROCm and the CubeCL CPU runtime) through one pair of kernels.
//!
//! Tested on Mesa's lavapipe (Vulkan, WGSL kernels) against the PyTorch fixtures.
//!
//! # Exactness
//!
//! Both kernels decide on the IEEE bit patterns, as the CPU kernels do, never on float
//! comparisons: a shader compiler may assume that no NaN occurs (Metal compiles with fast math
//! unless told otherwise, WGSL allows it) or flush subnormals to zero, and either would change
//! which values fall into the band. The sign bit is cleared and the magnitude compared as an
//! unsigned integer against λ's magnitude bits; for non-negative floats (NaN included, above
//! infinity) the integer order is the float order. The kept value is chosen by a select on the
//! same bits, so kept values (and `-0.0` gradients) pass unchanged and the band writes `+0`.
//!
//! The integer width follows the dtype and what the device can do (see [`Lanes`]):
//!
//! - f32 (and flex32) compares `u32` lanes, f64 `u64` lanes, f16/bf16 `u16` lanes.
//! - f16/bf16 on a device without 16-bit integers (WGSL) widen to f32 first, which is exact
//!   unless the device flushes half subnormals while converting.
//! - f64 on a device without 64-bit integers compares the floats directly (IEEE rules, which
//!   CubeCL keeps unless a kernel opts into fast math).
//!
//! # Layouts
//!
//! - A tensor whose elements exactly fill their buffer (contiguous, or a permutation of a
//!   contiguous tensor such as a transpose) is processed as one flat array of its buffer, with the
//!   widest vector width the length allows, and the result keeps its strides.
//! - Any other layout (a narrow slice, a broadcast view) is walked in logical order through
//!   CubeCL's linear views, which apply the strides, and vectorized only when the last dimension
//!   is contiguous.
//! - The result is written in place when the buffer is not shared and no two elements alias.

mod learned;

use super::{HardshrinkBackend, KernelBackend};
use crate::kernels::{Band, ShrinkElement};
use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, Shape, bf16, f16};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::untile;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::features::TypeUsage;
use cubecl::ir::{FloatKind, UIntKind};
use cubecl::prelude::*;
use cubecl::std::tensor::layout::linear::{LinearView, LinearViewMut};
use cubecl::{calculate_cube_count_elemwise, tensor_vector_size_parallel};

impl HardshrinkBackend for CubeBackend {
    /// Forward: `+0` where `|x| <= λ`, `x` elsewhere (NaN included).
    fn hardshrink(x: FloatTensor<Self>, lambd: f64) -> FloatTensor<Self> {
        let dtype = x.dtype;
        let lanes = lanes_for(&x.client, dtype).unwrap_or_else(|| unsupported(dtype));
        let Some(limit) = forward_limit(lambd, dtype, lanes) else {
            return x;
        };
        if x.meta.num_elements() == 0 {
            return x;
        }
        let x = untile(x);
        let in_place = x.can_mut() && x.is_nonoverlapping();
        let flat_walk = fills_buffer(&x);
        let input = if flat_walk { flat(&x) } else { x.clone() };
        let fresh = (!in_place).then(|| fresh_like(&x, flat_walk));
        let client = input.client.clone();
        let (mut width, mut address) = (vector_width(&input), input.required_address_type());
        let output = match &fresh {
            None => input.as_linear_view_alias(0),
            Some((output, _)) => {
                width = Ord::min(width, vector_width(output));
                address = Ord::max(address, output.required_address_type());
                output.clone().into_linear_view()
            }
        };
        let (cube_count, cube_dim) = launch_shape(&client, input.meta.num_elements(), width);
        // SAFETY: every unit returns before touching memory unless its position is in bounds of
        // the output view, whose length is the input's; each unit reads and writes only its own
        // position.
        unsafe {
            hardshrink_forward_kernel::launch_unchecked(
                &client,
                cube_count,
                cube_dim,
                address,
                width,
                input.clone().into_linear_view(),
                output,
                limit,
                lanes,
                dtype_to_storage_type(input.dtype),
            );
        }
        fresh.map_or(x, |(_, result)| result)
    }

    /// Backward from the forward's output: `grad` where `output != 0` (NaN included), `+0` where
    /// `output` is `±0`. Valid for a λ that is not the identity (the autodiff node passes the
    /// gradient through by itself otherwise).
    fn hardshrink_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        assert_eq!(
            output.dtype, grad.dtype,
            "hardshrink_backward: the output and the gradient must share a dtype"
        );
        assert_eq!(
            output.meta.shape(),
            grad.meta.shape(),
            "hardshrink_backward: the gradient's shape must match the output's"
        );
        let dtype = grad.dtype;
        let lanes = lanes_for(&grad.client, dtype).unwrap_or_else(|| unsupported(dtype));
        if grad.meta.num_elements() == 0 {
            return grad;
        }
        let output = untile(output);
        let grad = untile(grad);
        let grad_in_place = grad.can_mut() && grad.is_nonoverlapping();
        let output_in_place = output.can_mut() && output.is_nonoverlapping();

        // Same layout, both filling their buffers: pair the buffers element by element. Any other
        // pair of layouts: walk both in logical order.
        let flat_walk = fills_buffer(&output) && fills_buffer(&grad) && *output.meta == *grad.meta;
        let (y, g) = if flat_walk {
            (flat(&output), flat(&grad))
        } else {
            (output.clone(), grad.clone())
        };
        if grad_in_place {
            launch_backward(&y, &g, Target::Alias(1), lanes);
            return grad;
        }
        if output_in_place {
            launch_backward(&y, &g, Target::Alias(0), lanes);
            return output;
        }
        let (fresh, result) = fresh_like(&grad, flat_walk);
        launch_backward(&y, &g, Target::Tensor(&fresh), lanes);
        result
    }
}

/// How a kernel reads the bits of its element type. Chosen on the host per launch, compiled in
/// (each variant is its own kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Lanes {
    /// f16 or bf16 read as `u16`.
    U16,
    /// f32 (or flex32) read as `u32`.
    U32,
    /// f64 read as `u64`.
    U64,
    /// f16 or bf16 widened to f32 (exact) and read as `u32`: devices without 16-bit integers.
    WidenedU32,
    /// Float comparisons in the element type: f64 on a device without 64-bit integers.
    Float,
}

fn unsupported(dtype: DType) -> ! {
    KernelBackend::Cube.unsupported(dtype)
}

/// The lanes a kernel uses for `dtype` on the client's device, or `None` for a dtype that is not
/// a float this crate handles.
fn lanes_for(client: &Client, dtype: DType) -> Option<Lanes> {
    let has_ints = |kind: UIntKind| {
        client
            .properties()
            .type_usage(ElemType::UInt(kind))
            .is_superset(TypeUsage::Conversion | TypeUsage::Arithmetic)
    };
    Some(match dtype {
        DType::F32 | DType::Flex32 => Lanes::U32,
        DType::F16 | DType::BF16 if has_ints(UIntKind::U16) => Lanes::U16,
        DType::F16 | DType::BF16 => Lanes::WidenedU32,
        DType::F64 if has_ints(UIntKind::U64) => Lanes::U64,
        DType::F64 => Lanes::Float,
        _ => return None,
    })
}

/// λ as the kernel's scalar for `dtype` and `lanes`, or `None` when λ (rounded to the dtype) is
/// negative or NaN and the op is the identity.
///
/// Integer lanes get λ's magnitude bits (`u32` or `u64`; the 16-bit kernel narrows its `u32`);
/// the widened lanes get the bits of λ's f32 value, which is exactly λ's half value; the float
/// lanes get λ itself.
fn forward_limit(lambd: f64, dtype: DType, lanes: Lanes) -> Option<InputScalar> {
    let word = |bits: u32| InputScalar::new(bits, ElemType::UInt(UIntKind::U32));
    match dtype {
        DType::F32 | DType::Flex32 => match Band::<u32>::of::<f32>(lambd) {
            Band::Identity => None,
            Band::Closed(bits) => Some(word(bits)),
        },
        DType::F16 => half_limit::<f16>(lambd, lanes).map(word),
        DType::BF16 => half_limit::<bf16>(lambd, lanes).map(word),
        DType::F64 => match Band::<u64>::of::<f64>(lambd) {
            Band::Identity => None,
            Band::Closed(bits) if lanes == Lanes::U64 => {
                Some(InputScalar::new(bits, ElemType::UInt(UIntKind::U64)))
            }
            Band::Closed(bits) => Some(InputScalar::new(
                f64::from_bits(bits),
                ElemType::Float(FloatKind::F64),
            )),
        },
        other => unsupported(other),
    }
}

/// A half type's λ bits for the 16-bit lanes, or its f32 bits for the widened lanes.
fn half_limit<E: ShrinkElement<Lane = u16>>(lambd: f64, lanes: Lanes) -> Option<u32> {
    match Band::<u16>::of::<E>(lambd) {
        Band::Identity => None,
        Band::Closed(bits) if lanes == Lanes::U16 => Some(u32::from(bits)),
        // Every half value is an f32 value: the widening is exact.
        Band::Closed(bits) => Some((E::from_bits(bits).to_f64() as f32).to_bits()),
    }
}

/// Whether the tensor's elements are exactly the elements of the range its handle binds: no
/// two alias and no gaps. Such a tensor is a permutation of a contiguous one, so an elementwise
/// op may run over the buffer in storage order and keep the strides.
fn fills_buffer(tensor: &CubeTensor) -> bool {
    let bytes = tensor.meta.num_elements() as u64 * tensor.dtype.size() as u64;
    tensor.is_nonoverlapping() && tensor.handle.size_in_used() == bytes
}

/// The tensor's buffer as a one-dimensional contiguous tensor (same handle).
fn flat(tensor: &CubeTensor) -> CubeTensor {
    CubeTensor::new_contiguous(
        tensor.client.clone(),
        tensor.device.clone(),
        Shape::new([tensor.meta.num_elements()]),
        tensor.handle.clone(),
        tensor.dtype,
    )
}

/// A fresh buffer for a result shaped like `like`: the tensor the kernel writes, and the result.
///
/// For a flat walk the kernel writes a flat view of the buffer and the result carries `like`'s
/// shape and strides; otherwise both are one contiguous tensor of `like`'s shape.
fn fresh_like(like: &CubeTensor, flat_walk: bool) -> (CubeTensor, CubeTensor) {
    if !flat_walk {
        let output = empty_device_dtype(
            like.client.clone(),
            like.device.clone(),
            like.meta.shape().clone(),
            like.dtype,
        );
        return (output.clone(), output);
    }
    let handle = like
        .client
        .empty(like.meta.num_elements() * like.dtype.size());
    let output = CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        Shape::new([like.meta.num_elements()]),
        handle.clone(),
        like.dtype,
    );
    let result = CubeTensor {
        client: like.client.clone(),
        handle,
        meta: like.meta.clone(),
        device: like.device.clone(),
        dtype: like.dtype,
        qparams: None,
    };
    (output, result)
}

/// Where a kernel writes.
enum Target<'a> {
    /// Over the input at this position among the kernel's tensor inputs.
    Alias(usize),
    /// Into this tensor, of the inputs' shape.
    Tensor(&'a CubeTensor),
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

fn launch_backward(output: &CubeTensor, grad: &CubeTensor, target: Target<'_>, lanes: Lanes) {
    let client = grad.client.clone();
    let mut width = Ord::min(vector_width(output), vector_width(grad));
    let mut address = Ord::max(output.required_address_type(), grad.required_address_type());
    if let Target::Tensor(result) = &target {
        width = Ord::min(width, vector_width(result));
        address = Ord::max(address, result.required_address_type());
    }
    let (cube_count, cube_dim) = launch_shape(&client, grad.meta.num_elements(), width);
    let result = match target {
        Target::Alias(0) => output.as_linear_view_alias(0),
        Target::Alias(_) => grad.as_linear_view_alias(1),
        Target::Tensor(result) => result.clone().into_linear_view(),
    };
    // SAFETY: as for the forward; the three views have the same shape.
    unsafe {
        hardshrink_backward_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            address,
            width,
            output.clone().into_linear_view(),
            grad.clone().into_linear_view(),
            result,
            lanes,
            dtype_to_storage_type(grad.dtype),
        );
    }
}

/// `y = +0` where `|x| <= λ`, `y = x` elsewhere. `limit` holds λ as [`forward_limit`] encodes it.
#[cube(launch_unchecked, address_type = "dynamic")]
fn hardshrink_forward_kernel<F: Float, N: Size>(
    input: LinearView<'_, Vector<F, N>>,
    mut output: LinearViewMut<'_, Vector<F, N>>,
    limit: InputScalar,
    #[comptime] lanes: Lanes,
    #[define(F)] _dtype: ElemType,
) {
    if !output.is_in_bounds(ABSOLUTE_POS) {
        terminate!();
    }
    let x = input.read(ABSOLUTE_POS);
    let dead = in_band::<F, N>(x, &limit, lanes);
    output.write(ABSOLUTE_POS, zero_where::<F, N>(dead, x, lanes));
}

/// `grad_in = +0` where `output` is `±0`, `grad_in = grad` (bit for bit) elsewhere.
#[cube(launch_unchecked, address_type = "dynamic")]
fn hardshrink_backward_kernel<F: Float, N: Size>(
    output: LinearView<'_, Vector<F, N>>,
    grad: LinearView<'_, Vector<F, N>>,
    mut grad_in: LinearViewMut<'_, Vector<F, N>>,
    #[comptime] lanes: Lanes,
    #[define(F)] _dtype: ElemType,
) {
    if !grad_in.is_in_bounds(ABSOLUTE_POS) {
        terminate!();
    }
    let dead = is_zero::<F, N>(output.read(ABSOLUTE_POS), lanes);
    grad_in.write(
        ABSOLUTE_POS,
        zero_where::<F, N>(dead, grad.read(ABSOLUTE_POS), lanes),
    );
}

/// Whether `|x| <= λ`, lane by lane; false for NaN.
#[cube]
fn in_band<F: Float, N: Size>(
    x: Vector<F, N>,
    limit: &InputScalar,
    #[comptime] lanes: Lanes,
) -> Vector<bool, N> {
    match comptime![lanes] {
        Lanes::U16 => {
            let magnitude = Vector::<u16, N>::reinterpret(x) & Vector::<u16, N>::new(0x7fffu16);
            magnitude.less_equal(&Vector::<u16, N>::new(limit.get::<u16>()))
        }
        Lanes::U32 => {
            let magnitude =
                Vector::<u32, N>::reinterpret(x) & Vector::<u32, N>::new(0x7fff_ffffu32);
            magnitude.less_equal(&Vector::<u32, N>::new(limit.get::<u32>()))
        }
        Lanes::U64 => {
            let magnitude =
                Vector::<u64, N>::reinterpret(x) & Vector::<u64, N>::new(0x7fff_ffff_ffff_ffffu64);
            magnitude.less_equal(&Vector::<u64, N>::new(limit.get::<u64>()))
        }
        Lanes::WidenedU32 => {
            let wide = Vector::<f32, N>::cast_from(x);
            let magnitude =
                Vector::<u32, N>::reinterpret(wide) & Vector::<u32, N>::new(0x7fff_ffffu32);
            magnitude.less_equal(&Vector::<u32, N>::new(limit.get::<u32>()))
        }
        Lanes::Float => Vector::abs(x).less_equal(&Vector::<F, N>::new(limit.get::<F>())),
    }
}

/// Whether `y` is `+0` or `-0`, lane by lane; false for NaN and subnormals.
#[cube]
fn is_zero<F: Float, N: Size>(y: Vector<F, N>, #[comptime] lanes: Lanes) -> Vector<bool, N> {
    match comptime![lanes] {
        Lanes::U16 => (Vector::<u16, N>::reinterpret(y) & Vector::<u16, N>::new(0x7fffu16))
            .equal(&Vector::<u16, N>::new(0u16)),
        Lanes::U32 => (Vector::<u32, N>::reinterpret(y) & Vector::<u32, N>::new(0x7fff_ffffu32))
            .equal(&Vector::<u32, N>::new(0u32)),
        Lanes::U64 => (Vector::<u64, N>::reinterpret(y)
            & Vector::<u64, N>::new(0x7fff_ffff_ffff_ffffu64))
        .equal(&Vector::<u64, N>::new(0u64)),
        Lanes::WidenedU32 => {
            let wide = Vector::<f32, N>::cast_from(y);
            (Vector::<u32, N>::reinterpret(wide) & Vector::<u32, N>::new(0x7fff_ffffu32))
                .equal(&Vector::<u32, N>::new(0u32))
        }
        Lanes::Float => y.equal(&Vector::<F, N>::new(F::new(0.0))),
    }
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
