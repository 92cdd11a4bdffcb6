//! The learned-threshold op on Burn's `Cube` backend: a threshold per feature, read from the
//! device, so neither pass waits on the host.
//!
//! - Forward: one elementwise pass. Each element's feature follows from its logical position in
//!   the `outer × features × inner` layout ([`FeatureLayout`]); a vector of lanes shares one
//!   threshold (runs of `inner` values) or reads a vector of thresholds (features last).
//! - Backward: one pass that masks the gradient and reduces the threshold's pseudo-gradient into
//!   a small `[segments, features, lanes]` tensor of partial sums (each unit walks a strided set
//!   of elements of one feature, adjacent units reading adjacent addresses), then Burn's own sum
//!   over the segments and lanes. Partial sums are f32 (f64 for f64 tensors): the CPU sums in
//!   f64, so the threshold gradient agrees to float-summation tolerance, while the output and
//!   the input gradient are bit-exact, decided on the bits as in the fixed op.

use super::{Lanes, lanes_for, launch_shape, vector_width, zero_where};
use crate::ThresholdEstimator;
use crate::dtype::ShrinkDType;
use crate::kernels::FeatureLayout;
use crate::ops::LearnedHardshrinkBackend;
use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, FloatDType, Shape};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::{into_contiguous, untile};
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::ir::{FloatKind, UIntKind};
use cubecl::prelude::*;
use cubecl::std::tensor::layout::linear::{LinearView, LinearViewMut};

impl LearnedHardshrinkBackend for CubeBackend {
    fn learned_hardshrink(
        x: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        _estimator: ThresholdEstimator,
    ) -> FloatTensor<Self> {
        same_dtype(&x, &lambd);
        let (shrink_dtype, lanes) = lanes_for(&x.client, x.dtype);
        let dtype = x.dtype;
        let layout = FeatureLayout::new(x.meta.shape(), dim);
        if x.meta.num_elements() == 0 {
            return x;
        }
        let x = untile(x);
        let lambd = into_contiguous(untile(lambd));
        let in_place = x.can_mut() && x.is_nonoverlapping();
        let fresh = (!in_place).then(|| {
            empty_device_dtype(
                x.client.clone(),
                x.device.clone(),
                x.meta.shape().clone(),
                dtype,
            )
        });
        let mut width = vector_width(&x);
        if let Some(output) = &fresh {
            width = Ord::min(width, vector_width(output));
        }
        // Features last: a vector holds consecutive features, read as a vector of thresholds.
        // Otherwise a vector must sit inside one run of a feature's `inner` values.
        let rows = layout.inner == 1 && layout.features > 1;
        let fits = |width: usize| match rows {
            true => layout.features.is_multiple_of(width),
            false => layout.inner.is_multiple_of(width),
        };
        while width > 1 && !fits(width) {
            width /= 2;
        }
        let client = x.client.clone();
        let mut address = Ord::max(x.required_address_type(), lambd.required_address_type());
        let output = match &fresh {
            None => x.as_linear_view_alias(0),
            Some(output) => {
                address = Ord::max(address, output.required_address_type());
                output.clone().into_linear_view()
            }
        };
        let (cube_count, cube_dim) = launch_shape(&client, x.meta.num_elements(), width);
        let infinity = infinity_bits(shrink_dtype, lanes);
        let storage = dtype_to_storage_type(dtype);
        // SAFETY: each unit returns unless its position is inside the output view (the input's
        // length), reads its own position and the threshold of its feature (`< features` by
        // the layout), and writes only its own position.
        unsafe {
            if rows {
                learned_forward_rows_kernel::launch_unchecked(
                    &client,
                    cube_count,
                    cube_dim,
                    address,
                    width,
                    x.clone().into_linear_view(),
                    lambd.into_linear_view(),
                    output,
                    layout.features,
                    infinity,
                    lanes,
                    storage,
                );
            } else {
                learned_forward_runs_kernel::launch_unchecked(
                    &client,
                    cube_count,
                    cube_dim,
                    address,
                    width,
                    x.clone().into_linear_view(),
                    lambd.into_tensor_arg(),
                    output,
                    layout.features,
                    layout.inner,
                    infinity,
                    lanes,
                    storage,
                );
            }
        }
        fresh.unwrap_or(x)
    }

    fn learned_hardshrink_backward(
        saved: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        lambd: FloatTensor<Self>,
        dim: Option<usize>,
        estimator: ThresholdEstimator,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        same_dtype(&saved, &lambd);
        same_dtype(&saved, &grad);
        assert_eq!(
            saved.meta.shape(),
            grad.meta.shape(),
            "learned hardshrink backward: the gradient's shape must match the input's"
        );
        let (shrink_dtype, lanes) = lanes_for(&grad.client, grad.dtype);
        let dtype = grad.dtype;
        let layout = FeatureLayout::new(saved.meta.shape(), dim);
        let float_dtype = FloatDType::from(dtype);
        if grad.meta.num_elements() == 0 {
            let zeros =
                CubeBackend::float_zeros(Shape::new([layout.features]), &grad.device, float_dtype);
            return (grad, zeros);
        }
        let saved = into_contiguous(untile(saved));
        let grad = into_contiguous(untile(grad));
        let lambd = into_contiguous(untile(lambd));
        let client = grad.client.clone();
        let split = Split::of(layout, grad.meta.num_elements());
        let sum_dtype = shrink_dtype.partial();
        let partial = empty_device_dtype(
            client.clone(),
            grad.device.clone(),
            Shape::new([split.segments, layout.features, split.lanes]),
            sum_dtype,
        );
        // The masked gradient overwrites a buffer nobody else holds: the gradient's, else the
        // saved tensor's (each unit reads an element before writing it), else a fresh one.
        let (grad_in, result) = if grad.can_mut() {
            (grad.as_tensor_alias(1), None)
        } else if saved.can_mut() {
            (saved.as_tensor_alias(0), None)
        } else {
            let fresh = empty_device_dtype(
                client.clone(),
                grad.device.clone(),
                grad.meta.shape().clone(),
                dtype,
            );
            (fresh.clone().into_tensor_arg(), Some(fresh))
        };
        let result = match &result {
            Some(fresh) => fresh.clone(),
            None if grad.can_mut() => grad.clone(),
            None => saved.clone(),
        };
        let address = [&saved, &grad, &lambd, &result, &partial]
            .into_iter()
            .map(CubeTensor::required_address_type)
            .max()
            .expect("five tensors");
        let units = split.units(layout);
        let (cube_count, cube_dim) = launch_shape(&client, units, 1);
        let (kind, half_width, inverse_bandwidth) = match estimator {
            ThresholdEstimator::StraightThrough => (Estimator::StraightThrough, 0.0, 0.0),
            ThresholdEstimator::Kernel { bandwidth } => {
                (Estimator::Kernel, bandwidth / 2.0, 1.0 / bandwidth)
            }
        };
        let sum_kind = ElemType::Float(match sum_dtype {
            DType::F64 => FloatKind::F64,
            _ => FloatKind::F32,
        });
        // SAFETY: unit `u < units` reads and writes only elements of its own feature `f` and
        // lane `j`, at `(o·features + f)·inner + i` with `o < outer`, `i < inner`: inside every
        // buffer, which are contiguous with the layout's length; it writes `partial[u]` alone.
        unsafe {
            learned_backward_kernel::launch_unchecked(
                &client,
                cube_count,
                cube_dim,
                address,
                saved.clone().into_tensor_arg(),
                grad.clone().into_tensor_arg(),
                lambd.into_tensor_arg(),
                grad_in,
                partial.clone().into_tensor_arg(),
                layout.outer,
                layout.features,
                layout.inner,
                split.segments,
                split.lanes,
                infinity_bits(shrink_dtype, lanes),
                InputScalar::new(half_width, sum_kind),
                InputScalar::new(inverse_bandwidth, sum_kind),
                lanes,
                kind,
                [
                    dtype_to_storage_type(dtype),
                    dtype_to_storage_type(sum_dtype),
                ],
            );
        }
        drop((saved, grad));
        let sums = CubeBackend::float_sum_dims(partial, &[0, 2]);
        let sums = CubeBackend::float_reshape(sums, Shape::new([layout.features]));
        (result, CubeBackend::float_cast(sums, float_dtype))
    }
}

fn same_dtype(a: &CubeTensor, b: &CubeTensor) {
    assert_eq!(
        a.dtype, b.dtype,
        "learned hardshrink: the thresholds and gradients must have the input's dtype"
    );
}

/// How the backward's units share the elements: `segments × features × lanes` units, unit
/// `(s, f, j)` walking rows `s, s + segments, …` and, in each, positions `j, j + lanes, …` of
/// feature `f`'s run.
#[derive(Debug, Clone, Copy)]
struct Split {
    segments: usize,
    lanes: usize,
}

/// Units the backward aims for: enough to fill a large GPU (an H200 keeps about 270K threads
/// resident), few enough that each walks a dozen elements and the partial sums stay small.
const TARGET_UNITS: usize = 1 << 17;
/// Elements each unit should walk at the least, so that the partial sums are a small fraction
/// of the tensor.
const MIN_ELEMENTS_PER_UNIT: usize = 16;

impl Split {
    fn of(layout: FeatureLayout, elements: usize) -> Self {
        let target = (elements / MIN_ELEMENTS_PER_UNIT).clamp(1, TARGET_UNITS);
        let lanes = (target / layout.features.max(1)).clamp(1, layout.inner.max(1));
        let segments = (target / (layout.features.max(1) * lanes)).clamp(1, layout.outer.max(1));
        Self { segments, lanes }
    }

    fn units(self, layout: FeatureLayout) -> usize {
        self.segments * layout.features * self.lanes
    }
}

/// The estimator as the backward kernel compiles it (its parameters are runtime scalars).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Estimator {
    StraightThrough,
    Kernel,
}

/// The bits of +∞ in the lanes the kernels compare: a threshold's magnitude above it is NaN.
fn infinity_bits(dtype: ShrinkDType, lanes: Lanes) -> InputScalar {
    let word = |bits: u32| InputScalar::new(bits, ElemType::UInt(UIntKind::U32));
    match (dtype, lanes) {
        (_, Lanes::Float) => word(0),
        (_, Lanes::WidenedU32) | (ShrinkDType::F32, _) => word(f32::INFINITY.to_bits()),
        (ShrinkDType::F16, _) => word(u32::from(half::f16::INFINITY.to_bits())),
        (ShrinkDType::BF16, _) => word(u32::from(half::bf16::INFINITY.to_bits())),
        (ShrinkDType::F64, _) => {
            InputScalar::new(f64::INFINITY.to_bits(), ElemType::UInt(UIntKind::U64))
        }
    }
}

/// Forward with the features last (`inner = 1`): lane `k` of vector `p` is feature
/// `(p·N + k) mod features`, and `features` is a multiple of `N`.
#[cube(launch_unchecked, address_type = "dynamic")]
fn learned_forward_rows_kernel<F: Float, N: Size>(
    input: LinearView<'_, Vector<F, N>>,
    lambd: LinearView<'_, Vector<F, N>>,
    mut output: LinearViewMut<'_, Vector<F, N>>,
    features: usize,
    infinity: InputScalar,
    #[comptime] lanes: Lanes,
    #[define(F)] _dtype: ElemType,
) {
    if !output.is_in_bounds(ABSOLUTE_POS) {
        terminate!();
    }
    let width = input.vector_size();
    let feature = (ABSOLUTE_POS * width) % features;
    let x = input.read(ABSOLUTE_POS);
    let dead = in_learned_band::<F, N>(x, lambd.read(feature / width), &infinity, lanes);
    output.write(ABSOLUTE_POS, zero_where::<F, N>(dead, x, lanes));
}

/// Forward with runs of `inner` values per feature: a vector lies in one run (`inner` is a
/// multiple of `N`) and shares its feature's threshold.
#[cube(launch_unchecked, address_type = "dynamic")]
fn learned_forward_runs_kernel<F: Float, N: Size>(
    input: LinearView<'_, Vector<F, N>>,
    lambd: &Tensor<F>,
    mut output: LinearViewMut<'_, Vector<F, N>>,
    features: usize,
    inner: usize,
    infinity: InputScalar,
    #[comptime] lanes: Lanes,
    #[define(F)] _dtype: ElemType,
) {
    if !output.is_in_bounds(ABSOLUTE_POS) {
        terminate!();
    }
    let feature = (ABSOLUTE_POS * input.vector_size() / inner) % features;
    let x = input.read(ABSOLUTE_POS);
    let limit = Vector::<F, N>::new(lambd[feature]);
    let dead = in_learned_band::<F, N>(x, limit, &infinity, lanes);
    output.write(ABSOLUTE_POS, zero_where::<F, N>(dead, x, lanes));
}

/// The backward: masks `grad` into `grad_in` (`+0` in the band, `grad` bit for bit elsewhere)
/// and writes unit `(s, f, j)`'s sum of the threshold's pseudo-gradient into `partial`.
#[cube(launch_unchecked, address_type = "dynamic")]
#[allow(clippy::too_many_arguments)]
fn learned_backward_kernel<F: Float, A: Float>(
    saved: &Tensor<F>,
    grad: &Tensor<F>,
    lambd: &Tensor<F>,
    grad_in: &mut Tensor<F>,
    partial: &mut Tensor<A>,
    outer: usize,
    features: usize,
    inner: usize,
    segments: usize,
    lanes_per_run: usize,
    infinity: InputScalar,
    half_width: InputScalar,
    inverse_bandwidth: InputScalar,
    #[comptime] lanes: Lanes,
    #[comptime] estimator: Estimator,
    #[define(F, A)] _dtypes: [ElemType; 2],
) {
    let unit = ABSOLUTE_POS;
    if unit >= segments * features * lanes_per_run {
        terminate!();
    }
    let lane = unit % lanes_per_run;
    let feature = (unit / lanes_per_run) % features;
    let segment = unit / (lanes_per_run * features);
    let l = lambd[feature];
    let limit = Vector::<F, Const<1>>::new(l);
    let lambd_sum = A::cast_from(l);
    let zero = A::new(0.0);
    let one = A::new(1.0);
    let half_width = half_width.get::<A>();
    let scale = lambd_sum * inverse_bandwidth.get::<A>();
    let mut sum = zero;
    for row in range_stepped(segment, outer, segments) {
        let base = (row * features + feature) * inner;
        for i in range_stepped(lane, inner, lanes_per_run) {
            let k = base + i;
            let x = Vector::<F, Const<1>>::new(saved[k]);
            let g = Vector::<F, Const<1>>::new(grad[k]);
            let dead = in_learned_band::<F, Const<1>>(x, limit, &infinity, lanes);
            grad_in[k] = zero_where::<F, Const<1>>(dead, g, lanes).extract(0usize);
            let xs = A::cast_from(x.extract(0usize));
            let gs = A::cast_from(g.extract(0usize));
            // sign(x) from the bits, as the CPU's: a device may flush subnormals to zero when
            // it widens them, and their sign still counts.
            let (positive, negative) = signs::<F>(x, &infinity, lanes);
            let sign = select(positive, one, select(negative, -one, zero));
            match comptime![estimator] {
                Estimator::StraightThrough => {
                    sum += select(dead.extract(0usize), zero, -sign * gs);
                }
                Estimator::Kernel => {
                    let near = A::abs(A::abs(xs) - lambd_sum) < half_width;
                    sum += select(near, -sign * scale * gs, zero);
                }
            }
        }
    }
    partial[unit] = sum;
}

/// Whether `|x| <= λ` lane by lane, each lane with its own λ; false for a NaN `x`, and for every
/// lane whose λ is negative or NaN (the identity). Decided on the bits, as the fixed op is.
#[cube]
fn in_learned_band<F: Float, N: Size>(
    x: Vector<F, N>,
    lambd: Vector<F, N>,
    infinity: &InputScalar,
    #[comptime] lanes: Lanes,
) -> Vector<bool, N> {
    match comptime![lanes] {
        Lanes::U16 => {
            let magnitude = Vector::<u16, N>::new(0x7fffu16);
            let x = Vector::<u16, N>::reinterpret(x) & magnitude;
            let bits = Vector::<u16, N>::reinterpret(lambd);
            let limit = bits & magnitude;
            // λ counts when it is not NaN and not below zero (-0 counts: its band is ±0).
            let valid = limit
                .less_equal(&Vector::<u16, N>::new(infinity.get::<u16>()))
                .vec_and(bits.less_equal(&Vector::<u16, N>::new(0x8000u16)));
            x.less_equal(&limit).vec_and(valid)
        }
        Lanes::U32 => u32_band::<N>(
            Vector::<u32, N>::reinterpret(x),
            Vector::<u32, N>::reinterpret(lambd),
            infinity.get::<u32>(),
        ),
        Lanes::U64 => {
            let magnitude = Vector::<u64, N>::new(0x7fff_ffff_ffff_ffffu64);
            let x = Vector::<u64, N>::reinterpret(x) & magnitude;
            let bits = Vector::<u64, N>::reinterpret(lambd);
            let limit = bits & magnitude;
            let valid = limit
                .less_equal(&Vector::<u64, N>::new(infinity.get::<u64>()))
                .vec_and(bits.less_equal(&Vector::<u64, N>::new(0x8000_0000_0000_0000u64)));
            x.less_equal(&limit).vec_and(valid)
        }
        Lanes::WidenedU32 => u32_band::<N>(
            Vector::<u32, N>::reinterpret(Vector::<f32, N>::cast_from(x)),
            Vector::<u32, N>::reinterpret(Vector::<f32, N>::cast_from(lambd)),
            infinity.get::<u32>(),
        ),
        // IEEE comparisons: false for a NaN on either side or a λ below zero.
        Lanes::Float => Vector::abs(x).less_equal(&lambd),
    }
}

/// Whether `x` is above zero and whether below, each false for ±0 and NaN; on the bits except
/// for the float lanes (which compare, IEEE rules).
#[cube]
fn signs<F: Float>(
    x: Vector<F, Const<1>>,
    infinity: &InputScalar,
    #[comptime] lanes: Lanes,
) -> (bool, bool) {
    match comptime![lanes] {
        Lanes::U16 => {
            let bits = Vector::<u16, Const<1>>::reinterpret(x).extract(0usize);
            let magnitude = bits & 0x7fffu16;
            let counts = magnitude != 0u16 && magnitude <= infinity.get::<u16>();
            (counts && bits == magnitude, counts && bits != magnitude)
        }
        Lanes::U32 | Lanes::WidenedU32 => {
            let wide = Vector::<f32, Const<1>>::cast_from(x);
            let bits = Vector::<u32, Const<1>>::reinterpret(wide).extract(0usize);
            let magnitude = bits & 0x7fff_ffffu32;
            let counts = magnitude != 0u32 && magnitude <= f32::INFINITY.to_bits();
            (counts && bits == magnitude, counts && bits != magnitude)
        }
        Lanes::U64 => {
            let bits = Vector::<u64, Const<1>>::reinterpret(x).extract(0usize);
            let magnitude = bits & 0x7fff_ffff_ffff_ffffu64;
            let counts = magnitude != 0u64 && magnitude <= infinity.get::<u64>();
            (counts && bits == magnitude, counts && bits != magnitude)
        }
        Lanes::Float => {
            let x = x.extract(0usize);
            (x > F::new(0.0), x < F::new(0.0))
        }
    }
}

/// [`in_learned_band`] on 32-bit patterns.
#[cube]
fn u32_band<N: Size>(x: Vector<u32, N>, bits: Vector<u32, N>, infinity: u32) -> Vector<bool, N> {
    let magnitude = Vector::<u32, N>::new(0x7fff_ffffu32);
    let limit = bits & magnitude;
    let valid = limit
        .less_equal(&Vector::<u32, N>::new(infinity))
        .vec_and(bits.less_equal(&Vector::<u32, N>::new(0x8000_0000u32)));
    (x & magnitude).less_equal(&limit).vec_and(valid)
}
