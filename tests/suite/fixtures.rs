//! Bit-exact parity with PyTorch 2.15's golden values, forward and backward, on every CPU
//! backend and every dtype it holds.

use crate::common::{assert_same_bits, devices, dtype_of, from_bits, gpu, gpu_holds, to_bits};
use burn::tensor::{DType, Tensor};
use burn_hardshrink::{HardshrinkConfig, hardshrink, supports_dtype};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
pub struct Case {
    pub dtype: String,
    lambd: serde_json::Value,
    pub x: Vec<u64>,
    pub y: Vec<u64>,
    pub grad_out: Vec<u64>,
    pub grad_in: Vec<u64>,
}

impl Case {
    pub fn lambd(&self) -> f64 {
        match &self.lambd {
            serde_json::Value::Number(n) => n.as_f64().unwrap(),
            serde_json::Value::String(s) if s == "inf" => f64::INFINITY,
            serde_json::Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
            serde_json::Value::String(s) if s == "nan" => f64::NAN,
            other => panic!("unexpected lambd {other}"),
        }
    }
}

pub fn cases() -> Vec<Case> {
    let fixture: Fixture = serde_json::from_str(include_str!("../torch_hardshrink.json")).unwrap();
    assert!(fixture.cases.len() >= 28, "the fixture lost cases");
    fixture.cases
}

#[test]
fn forward_matches_pytorch_bit_for_bit() {
    let mut checked = 0;
    for case in cases() {
        let dtype = dtype_of(&case.dtype);
        for (name, device) in devices() {
            if !supports_dtype(&device, dtype) {
                continue;
            }
            let n = case.x.len();
            let what = format!("{name} {:?} λ={}", dtype, case.lambd());
            // Moved in (in place) and shared (out of place) must agree with PyTorch.
            let x = from_bits(&case.x, [n], dtype, &device);
            assert_same_bits(&to_bits(hardshrink(x, case.lambd())), &case.y, dtype, &what);
            let x = from_bits(&case.x, [n], dtype, &device);
            let y = hardshrink(x.clone(), case.lambd());
            assert_same_bits(&to_bits(y), &case.y, dtype, &what);
            assert_same_bits(&to_bits(x), &case.x, dtype, &format!("{what}: input kept"));
            checked += 1;
        }
    }
    // On a GPU: every case of each dtype the adapter holds (lavapipe: f32, f16, f64).
    let on_gpu = cases()
        .iter()
        .filter(|case| gpu_holds(dtype_of(&case.dtype)))
        .count();
    assert!(
        gpu().is_none() || on_gpu >= 7,
        "the GPU must hold at least f32"
    );
    assert_eq!(
        checked,
        28 + 14 + on_gpu,
        "every case on Flex, the f32/f64 cases on NdArray, the GPU's dtypes on the GPU"
    );
    eprintln!("fixture forward cases checked on the GPU: {on_gpu}");
}

#[test]
fn module_forward_matches_pytorch_for_valid_thresholds() {
    for case in cases().into_iter().filter(|c| c.lambd() >= 0.0) {
        let dtype = dtype_of(&case.dtype);
        for (name, device) in devices() {
            if supports_dtype(&device, dtype) {
                let act = HardshrinkConfig::new().with_lambd(case.lambd()).init();
                let x = from_bits(&case.x, [case.x.len()], dtype, &device);
                assert_same_bits(&to_bits(act.forward(x)), &case.y, dtype, name);
            }
        }
    }
}

#[test]
fn backward_matches_pytorch_bit_for_bit() {
    for case in cases() {
        let dtype = dtype_of(&case.dtype);
        for (name, device) in devices() {
            if !supports_dtype(&device, dtype) {
                continue;
            }
            for device in [
                device.clone().autodiff(),
                device.autodiff().gradient_checkpointing(),
            ] {
                let n = case.x.len();
                let x = from_bits::<1>(&case.x, [n], dtype, &device).require_grad();
                let grad_out = from_bits::<1>(&case.grad_out, [n], dtype, &device);
                // d/dx sum(hardshrink(x) * g) = hardshrink'(x) * g, and the product's backward
                // multiplies g by exactly one, so the gradient reaching x is the op's alone.
                let loss = (hardshrink(x.clone(), case.lambd()) * grad_out).sum();
                let grads = loss.backward();
                let grad_in = x.grad(&grads).expect("x requires a gradient");
                let what = format!("{name} {dtype:?} λ={} grad", case.lambd());
                assert_same_bits(&to_bits(grad_in), &case.grad_in, dtype, &what);
            }
        }
    }
}

#[test]
fn backward_op_matches_pytorch_bit_for_bit() {
    use burn::backend::Dispatch;
    use burn_hardshrink::HardshrinkBackend;
    for case in cases().into_iter().filter(|c| c.lambd() >= 0.0) {
        let dtype = dtype_of(&case.dtype);
        for (name, device) in devices() {
            if !supports_dtype(&device, dtype) {
                continue;
            }
            let n = case.x.len();
            let y = from_bits::<1>(&case.y, [n], dtype, &device).into_dispatch();
            let grad = from_bits::<1>(&case.grad_out, [n], dtype, &device).into_dispatch();
            let grad_in = <Dispatch as HardshrinkBackend>::hardshrink_backward(y, grad);
            let what = format!("{name} {dtype:?} λ={} backward op", case.lambd());
            assert_same_bits(
                &to_bits(Tensor::<1>::from_dispatch(grad_in)),
                &case.grad_in,
                dtype,
                &what,
            );
        }
    }
}

#[test]
fn a_dtype_the_op_cannot_shrink_gets_an_error_naming_it_and_the_backend() {
    use burn::tensor::quantization::QuantScheme;
    let x = Tensor::<1>::from_floats([1.0, -2.0, 0.25, 4.0], &burn::tensor::Device::flex())
        .quantize_dynamic(&QuantScheme::default());
    let dtype = x.dtype();
    assert!(matches!(dtype, DType::QFloat(_)), "{dtype:?}");
    let error = burn_hardshrink::try_hardshrink(x.clone(), 0.5)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("QFloat") && error.contains("Flex"),
        "{error}"
    );
    let panic = std::panic::catch_unwind(|| hardshrink(x, 0.5)).unwrap_err();
    assert_eq!(panic.downcast_ref::<String>(), Some(&error));
}
