//! The GPU backend without Burn's fusion layer, as a build with fusion off runs it.
//!
//! With fusion on (this suite's build), Burn's `Cube` backend is `Fusion<CubeBackend>`; with
//! fusion off it is `CubeBackend` itself, where the op runs Burn's primitive ops unfused. These
//! tests call `CubeBackend` and `Autodiff<CubeBackend>` directly on the GPU's primitives, so that
//! path is held to the PyTorch fixtures too. (`.ci/run` type-checks the
//! crate with fusion really off, `tests/fusion-off`.)

use crate::common::{assert_same_bits, data_bits, dtype_of, from_bits, gpu_device, gpu_holds};
use crate::fixtures::{Case, cases};
use burn::backend::ops::FloatTensorOps;
use burn::backend::{Autodiff, AutodiffBackend, Backend, DispatchDevice};
use burn::tensor::{Device, TensorData, read_sync};
use burn_cubecl::{CubeBackend, CubeDevice};
use burn_hardshrink::HardshrinkBackend;

type Unfused = CubeBackend;
type UnfusedAutodiff = Autodiff<CubeBackend>;

/// The GPU's CubeCL device, under the fusion wrapper the dispatch device carries.
fn cube_device() -> CubeDevice {
    match gpu_device().as_dispatch() {
        DispatchDevice::Cube(device) => device.clone(),
        other => panic!("the wgpu device is not a CubeCL device: {other:?}"),
    }
}

/// A fixture tensor's data, in its dtype.
fn data(bits: &[u64], case: &Case) -> TensorData {
    from_bits::<1>(bits, [bits.len()], dtype_of(&case.dtype), &Device::flex()).into_data()
}

fn read<B: Backend>(tensor: burn::backend::tensor::FloatTensor<B>) -> Vec<u64> {
    data_bits(read_sync(B::float_into_data(tensor)).expect("the GPU returned the tensor"))
}

/// The GPU's fixture cases, with at least f32 among them.
fn gpu_cases() -> Vec<Case> {
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|case| gpu_holds(dtype_of(&case.dtype)))
        .collect();
    assert!(cases.len() >= 7, "the GPU must hold at least f32");
    cases
}

#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn unfused_forward_and_backward_op_match_pytorch() {
    let device = cube_device();
    for case in gpu_cases() {
        let dtype = dtype_of(&case.dtype);
        let what = format!("unfused {dtype:?} λ={}", case.lambd());
        let x = Unfused::float_from_data(data(&case.x, &case), &device);
        let y = <Unfused as HardshrinkBackend>::hardshrink(x, case.lambd());
        assert_same_bits(&read::<Unfused>(y), &case.y, dtype, &what);
        if case.lambd() >= 0.0 {
            let y = Unfused::float_from_data(data(&case.y, &case), &device);
            let grad = Unfused::float_from_data(data(&case.grad_out, &case), &device);
            let grad_in = <Unfused as HardshrinkBackend>::hardshrink_backward(y, grad);
            let what = format!("{what} backward op");
            assert_same_bits(&read::<Unfused>(grad_in), &case.grad_in, dtype, &what);
        }
    }
}

#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn unfused_autodiff_matches_pytorch() {
    let device = cube_device();
    type B = UnfusedAutodiff;
    for case in gpu_cases() {
        let dtype = dtype_of(&case.dtype);
        let x = B::float_set_require_grad(B::float_from_data(data(&case.x, &case), &device), true);
        let grad_out = B::float_from_data(data(&case.grad_out, &case), &device);
        // d/dx sum(hardshrink(x) * g): the product's backward multiplies g by exactly one.
        let y = <B as HardshrinkBackend>::hardshrink(x.clone(), case.lambd());
        let grads = B::backward(B::float_sum(B::float_mul(y, grad_out)));
        let grad_in = B::grad(&x, &grads).expect("x requires a gradient");
        let what = format!("unfused autodiff {dtype:?} λ={}", case.lambd());
        assert_same_bits(&read::<Unfused>(grad_in), &case.grad_in, dtype, &what);
    }
}

#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn unfused_strided_input_matches_flex() {
    let device = cube_device();
    // A transposed view of a 33 × 40 matrix: the kernels' non-contiguous path.
    let values: Vec<f32> = (0..33 * 40)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0)
        .collect();
    let data = TensorData::new(values, [33, 40]);
    let x = Unfused::float_swap_dims(Unfused::float_from_data(data.clone(), &device), 0, 1);
    let ours = read::<Unfused>(<Unfused as HardshrinkBackend>::hardshrink(x, 0.5));
    let flex = burn::tensor::Tensor::<2>::from_data(data, &Device::flex()).transpose();
    let expected = crate::common::to_bits(burn_hardshrink::hardshrink(flex, 0.5));
    assert_eq!(ours, expected);
}

#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn unfused_sliced_views_match_flex() {
    use burn::backend::Dispatch;
    use burn::tensor::{Slice, Tensor};
    let device = cube_device();
    // Columns 3..35 of a 33 × 40 matrix do not fill their buffer: the kernels walk them in
    // logical order through the strides, forward and backward.
    let values = |seed: usize| -> TensorData {
        let v: Vec<f32> = (0..33 * 40)
            .map(|i| (((i + seed) * 53 % 97) as f32 - 48.0) / 40.0)
            .collect();
        TensorData::new(v, [33, 40])
    };
    let columns = [Slice::new(0, None, 1), Slice::new(3, Some(35), 1)];
    let gpu =
        |data: TensorData| Unfused::float_slice(Unfused::float_from_data(data, &device), &columns);
    let cpu = |data: TensorData| Tensor::<2>::from_data(data, &Device::flex()).slice(columns);

    let ours = read::<Unfused>(<Unfused as HardshrinkBackend>::hardshrink(
        gpu(values(0)),
        0.5,
    ));
    let expected = crate::common::to_bits(burn_hardshrink::hardshrink(cpu(values(0)), 0.5));
    assert_eq!(ours, expected, "forward");

    // The backward op on a sliced output and gradient (the output holds zeros and kept values).
    let output =
        burn_hardshrink::hardshrink(Tensor::<2>::from_data(values(0), &Device::flex()), 0.5)
            .into_data();
    let ours = read::<Unfused>(<Unfused as HardshrinkBackend>::hardshrink_backward(
        gpu(output.clone()),
        gpu(values(7)),
    ));
    let expected = <Dispatch as HardshrinkBackend>::hardshrink_backward(
        cpu(output).into_dispatch(),
        cpu(values(7)).into_dispatch(),
    );
    assert_eq!(
        ours,
        crate::common::to_bits(Tensor::<2>::from_dispatch(expected)),
        "backward"
    );
}
