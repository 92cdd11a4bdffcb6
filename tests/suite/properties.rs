//! Property tests against the scalar reference rule: random shapes of rank 1 to 6 (empty
//! included), random λ, every dtype the backend holds, contiguous and strided views, moved-in
//! and shared inputs.

use crate::common::{
    assert_same_bits, from_bits, gpu_holds, narrow_bits, reference, reference_grad, to_bits, widen,
};
use burn::backend::Dispatch;
use burn::tensor::{DType, Device, Slice, Tensor};
use burn_hardshrink::{HardshrinkBackend, hardshrink, supports_dtype};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum View {
    /// The tensor as built.
    Contiguous,
    /// Two axes swapped.
    Transposed(usize, usize),
    /// One axis reversed (negative stride).
    Flipped(usize),
    /// Every other element along one axis (a strided slice with a gap).
    Stepped(usize),
    /// The first entry along one axis repeated along it (zero stride).
    Broadcast(usize),
}

#[derive(Debug, Clone)]
struct Case {
    shape: Vec<usize>,
    values: Vec<f64>,
    lambd: f64,
    dtype: DType,
    view: View,
    shared: bool,
    on_ndarray: bool,
}

fn special(lambd: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(lambd),
        Just(-lambd),
        -4.0f64..4.0,
        -1.0f64..1.0,
    ]
}

fn lambd() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.5),
        Just(0.0),
        Just(f64::INFINITY),
        Just(f64::NAN),
        Just(-1.0),
        Just(-1e-300),
        Just(1e-300),
        Just(0.1),
        // Just above a halfway point between two f16 (and bf16) values: exact rounding matters.
        Just(1.0 + 2f64.powi(-11) + 2f64.powi(-40)),
        Just(1.0 + 2f64.powi(-8) + 2f64.powi(-40)),
        0.0f64..3.0,
        -2.0f64..0.0,
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let shape = prop::collection::vec(prop_oneof![1 => Just(0usize), 8 => 1usize..5], 1..=6);
    (
        shape,
        lambd(),
        0usize..4,
        any::<bool>(),
        any::<bool>(),
        0usize..5,
        any::<(usize, usize)>(),
    )
        .prop_flat_map(|(shape, lambd, dtype, shared, on_ndarray, view, (a, b))| {
            let n: usize = shape.iter().product();
            let rank = shape.len();
            let dtypes = [DType::F32, DType::F64, DType::F16, DType::BF16];
            // NdArray holds f32 and f64 only (the crate's table says which).
            let held: Vec<DType> = dtypes
                .into_iter()
                .filter(|&held| !on_ndarray || supports_dtype(&Device::ndarray(), held))
                .collect();
            let dtype = held[dtype % held.len()];
            let view = match view {
                0 => View::Contiguous,
                1 => View::Transposed(a % rank, b % rank),
                2 => View::Flipped(a % rank),
                3 => View::Stepped(a % rank),
                _ => View::Broadcast(a % rank),
            };
            let rounded = crate::common::round_to(lambd, dtype);
            (
                prop::collection::vec(special(rounded), n),
                Just((shape, lambd, dtype, shared, on_ndarray, view)),
            )
        })
        .prop_map(
            |(values, (shape, lambd, dtype, shared, on_ndarray, view))| Case {
                shape,
                values,
                lambd,
                dtype,
                view,
                shared,
                on_ndarray,
            },
        )
}

/// NdArray for the cases that ask for it; of the rest, every third goes to the GPU when
/// there is one and it holds the dtype, the others to Flex.
fn device(case: &Case) -> Device {
    if case.on_ndarray {
        return Device::ndarray();
    }
    let pick_gpu = case.values.len() % 3 == 1 && gpu_holds(case.dtype);
    match crate::common::gpu() {
        Some(gpu) if pick_gpu => gpu,
        _ => Device::flex(),
    }
}

/// Builds the case's tensor and applies its view (a view of the same rank).
fn build<const D: usize>(case: &Case, values: &[f64], device: &Device) -> Tensor<D> {
    let bits: Vec<u64> = values.iter().map(|&v| narrow_bits(v, case.dtype)).collect();
    let shape: [usize; D] = case.shape.clone().try_into().unwrap();
    let x = from_bits::<D>(&bits, shape, case.dtype, device);
    let along = |axis: usize, slice: Slice| -> Vec<Slice> {
        (0..D)
            .map(|d| if d == axis { slice } else { Slice::full() })
            .collect()
    };
    match case.view {
        View::Contiguous => x,
        View::Transposed(a, b) => x.swap_dims(a, b),
        View::Flipped(a) => x.flip([a as isize]),
        View::Stepped(a) if shape[a] > 0 => x.slice(along(a, Slice::new(0, None, 2)).as_slice()),
        // Burn cannot expand an empty tensor.
        View::Broadcast(a) if shape.iter().all(|&d| d > 0) => x
            .slice(along(a, Slice::new(0, Some(1), 1)).as_slice())
            .expand(shape),
        View::Stepped(_) | View::Broadcast(_) => x,
    }
}

fn expected(input: &[u64], case: &Case) -> Vec<u64> {
    input
        .iter()
        .map(|&b| {
            narrow_bits(
                reference(widen(b, case.dtype), case.lambd, case.dtype),
                case.dtype,
            )
        })
        .collect()
}

fn check_forward<const D: usize>(case: &Case) {
    let device = device(case);
    let x = build::<D>(case, &case.values, &device);
    let input = to_bits(x.clone());
    let want = expected(&input, case);
    let y = if case.shared {
        let y = hardshrink(x.clone(), case.lambd);
        // The caller's tensor must be untouched.
        assert_same_bits(&to_bits(x), &input, case.dtype, "shared input changed");
        y
    } else {
        hardshrink(x, case.lambd)
    };
    assert_same_bits(&to_bits(y), &want, case.dtype, &format!("{case:?}"));
}

fn check_backward<const D: usize>(case: &Case) {
    if crate::common::round_to(case.lambd, case.dtype).is_nan()
        || crate::common::round_to(case.lambd, case.dtype) < 0.0
    {
        return; // the backward op is defined for a closed band; autodiff skips it otherwise
    }
    let device = device(case);
    let x = build::<D>(case, &case.values, &device);
    let input = to_bits(x.clone());
    let y = hardshrink(x, case.lambd);
    // A gradient with the same view (so layouts line up or not, as the case decides).
    let grad_values: Vec<f64> = (0..case.values.len())
        .map(|i| i as f64 * 0.25 - 3.0)
        .collect();
    let grad = build::<D>(case, &grad_values, &device);
    let grad_bits = to_bits(grad.clone());
    let want: Vec<u64> = input
        .iter()
        .zip(&grad_bits)
        .map(|(&x, &g)| {
            let value = reference_grad(
                widen(x, case.dtype),
                widen(g, case.dtype),
                case.lambd,
                case.dtype,
            );
            narrow_bits(value, case.dtype)
        })
        .collect();
    let out = if case.shared {
        let out = <Dispatch as HardshrinkBackend>::hardshrink_backward(
            y.into_dispatch(),
            grad.clone().into_dispatch(),
        );
        assert_same_bits(
            &to_bits(grad),
            &grad_bits,
            case.dtype,
            "shared gradient changed",
        );
        out
    } else {
        <Dispatch as HardshrinkBackend>::hardshrink_backward(
            y.into_dispatch(),
            grad.into_dispatch(),
        )
    };
    assert_same_bits(
        &to_bits(Tensor::<D>::from_dispatch(out)),
        &want,
        case.dtype,
        &format!("{case:?}"),
    );
}

/// Calls `$check::<rank>` for the case's rank.
macro_rules! by_rank {
    ($check:ident, $case:expr) => {{
        let case = $case;
        match case.shape.len() {
            1 => $check::<1>(&case),
            2 => $check::<2>(&case),
            3 => $check::<3>(&case),
            4 => $check::<4>(&case),
            5 => $check::<5>(&case),
            6 => $check::<6>(&case),
            rank => unreachable!("rank {rank}"),
        }
    }};
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn forward_follows_the_reference_rule(case in case()) {
        by_rank!(check_forward, case);
    }

    #[test]
    fn backward_follows_the_reference_rule(case in case()) {
        by_rank!(check_backward, case);
    }
}

#[test]
fn large_tensors_take_the_parallel_path_and_stay_exact() {
    // Above the parallel threshold, with a length that does not divide into whole chunks.
    let n = burn_hardshrink::kernels::PARALLEL_THRESHOLD + 12345;
    let values: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 2001) as f64 / 500.0 - 2.0)
        .collect();
    for (on_ndarray, dtype) in [
        (false, DType::F32),
        (false, DType::BF16),
        (true, DType::F64),
    ] {
        for shared in [false, true] {
            let case = Case {
                shape: vec![n],
                values: values.clone(),
                lambd: 0.5,
                dtype,
                view: View::Contiguous,
                shared,
                on_ndarray,
            };
            check_forward::<1>(&case);
            check_backward::<1>(&case);
        }
    }
}
