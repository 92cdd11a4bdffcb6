//! The example against PyTorch's stored values (`models/make_models.py`), bit for bit.

#![allow(deprecated)] // NdArray is deprecated upstream in favour of Flex, but still supported.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use burn_hardshrink::{ThresholdEstimator, hardshrink, learned_hardshrink};
use onnx_ir::{Message, ModelProto};
use onnx_port::demo::{Demo, node_types, sample_input};
use onnx_port::imported::{SOURCES, pair_dynamo, pair_torchscript};
use onnx_port::net::NetConfig;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn models() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
}

/// A stored tensor: its f32 bit patterns.
fn stored(json: &Value, key: &str) -> Vec<u32> {
    let values = json[key].as_array().expect("a stored tensor is an array");
    values
        .iter()
        .map(|v| v.as_u64().expect("bits") as u32)
        .collect()
}

fn tensor(bits: &[u32], shape: [usize; 2], device: &Device) -> Tensor<2> {
    let values: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
    Tensor::<1>::from_floats(values.as_slice(), device).reshape(shape)
}

fn bits(tensor: Tensor<2>) -> Vec<u32> {
    let values = tensor.into_data().try_into_vec::<f32>().expect("f32");
    values.iter().map(|v| v.to_bits()).collect()
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(models().join(name)).expect("stored values");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn imported_pytorch_models_match_pytorch_forward_and_gradient() {
    let expected = load("pair_expected.json");
    let shape: Vec<usize> = serde_json::from_value(expected["shape"].clone()).unwrap();
    let shape = [shape[0], shape[1]];
    for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
        type Forward = Box<dyn Fn(Tensor<2>) -> Tensor<2>>;
        let torchscript = pair_torchscript::Model::from_embedded(&device);
        let dynamo = pair_dynamo::Model::from_embedded(&device);
        let exporters: [(&str, Forward); 2] = [
            ("torchscript", Box::new(move |x| torchscript.forward(x))),
            ("dynamo", Box::new(move |x| dynamo.forward(x))),
        ];
        for (exporter, forward) in exporters {
            let x = tensor(&stored(&expected, "x"), shape, &device).require_grad();
            let y = forward(x.clone());
            let weight = tensor(&stored(&expected, "weight"), shape, &device);
            let gradients = (y.clone() * weight).sum().backward();
            let grad = x.grad(&gradients).expect("x takes part in y");
            let place = format!("{exporter} export on {device:?}");
            assert_eq!(bits(y), stored(&expected, "y"), "forward, {place}");
            assert_eq!(bits(grad), stored(&expected, "grad"), "gradient, {place}");
        }
    }
}

#[test]
fn generated_code_calls_burn_hardshrink_for_hardshrink_only() {
    for (name, source) in SOURCES {
        let ours = source.matches("burn_hardshrink::hardshrink(").count();
        let burns = source.matches("burn::tensor::activation::shrink(").count();
        let comparisons = ["greater", "lower", "mask_where", "bool_or"]
            .iter()
            .any(|op| source.contains(op));
        match name {
            "shrink_bias" => assert_eq!((ours, burns), (0, 1), "{name}"),
            _ => assert_eq!((ours, burns, comparisons), (2, 0, false), "{name}"),
        }
    }
}

#[test]
fn pytorch_weights_load_and_give_pytorchs_outputs() {
    let expected = load("learned_expected.json");
    let device = Device::flex();
    let net = NetConfig::new()
        .init(&device)
        .load_pytorch(&models().join("learned.pt"))
        .expect("the committed state_dict loads");
    let lambd = net.thresholds().into_data().try_into_vec::<f32>().unwrap();
    let lambd: Vec<u32> = lambd.iter().map(|l| l.to_bits()).collect();
    assert_eq!(
        lambd,
        stored(&expected, "lambd"),
        "softplus(θ) as PyTorch computes it"
    );

    let x = tensor(&stored(&expected, "x"), [32, 8], &device);
    let ours = bits(net.forward(x));
    let theirs = stored(&expected, "y");
    // The matrix products sum in another order than PyTorch's: allow an ulp each way.
    for (i, (&a, &b)) in ours.iter().zip(&theirs).enumerate() {
        let (a, b) = (f32::from_bits(a), f32::from_bits(b));
        let ulp = f32::EPSILON * a.abs().max(b.abs());
        assert!((a - b).abs() <= ulp, "output {i}: Burn {a}, PyTorch {b}");
    }
    assert!(ours.contains(&0) && ours.iter().any(|&b| b != 0));
}

#[test]
fn a_pytorch_key_that_does_not_map_is_named() {
    let net = NetConfig::new().init(&Device::flex());
    let error = net
        .load_pytorch(&models().join("learned_renamed.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`act2.raw_lambd`") && error.contains("`act2.threshold`"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
}

#[test]
fn export_lowers_both_activations_to_onnx_with_burns_thresholds() {
    let device = Device::flex();
    let model = Demo::new(&device);
    let onnx = burn_hardshrink::onnx::export(&model, sample_input(&device), Demo::forward)
        .expect("the demo exports");
    let types = node_types(&onnx);
    let count = |op: &str| types.iter().filter(|t| *t == op).count();
    // The fixed and the single learned λ as Shrink, the per-feature λ as Where.
    assert_eq!(
        (count("Shrink"), count("Where"), count("LessOrEqual")),
        (2, 1, 1),
        "{types:?}"
    );
    // x·scale + shift and the two sums: the markers' Mul and Add are gone.
    assert_eq!((count("Mul"), count("Add")), (1, 3), "{types:?}");

    let graph = ModelProto::parse_from_bytes(&onnx).unwrap().graph.unwrap();
    let lambd = graph
        .initializer
        .iter()
        .find(|t| t.name.ends_with("_lambd"))
        .expect("the per-feature thresholds");
    let single = graph.node.iter().filter(|n| n.op_type == "Shrink");
    let single: Vec<f32> = single.map(|n| n.attribute[0].f).collect();
    assert_eq!(single[0], 0.5);
    assert_eq!(
        single[1].to_bits(),
        values(model.single.lambd())[0].to_bits()
    );
    assert_eq!(lambd.float_data, values(model.per_feature.lambd()));
    // onnx-ir reads it back: types and shapes infer.
    onnx_ir::OnnxGraphBuilder::new()
        .parse_bytes(&onnx)
        .expect("burn-onnx's parser takes the exported model");
}

fn values(tensor: Tensor<1>) -> Vec<f32> {
    tensor.into_data().try_into_vec::<f32>().unwrap()
}

#[test]
fn export_refuses_what_it_cannot_lower_in_one_line() {
    let device = Device::flex();
    let model = burn_hardshrink::HardshrinkConfig::new().init();
    let x = sample_input(&device).cast(DType::F64);
    let error = burn_hardshrink::onnx::export(&model, x, |m, x| m.forward(x))
        .unwrap_err()
        .to_string();
    assert!(error.contains("F64") && error.contains("f32"), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
}

/// Thresholds held as a parameter, for models that call the functional op.
#[derive(Module, Debug)]
struct Thresholds {
    lambd: Param<Tensor<1>>,
}

impl Thresholds {
    fn new(values: &[f32], device: &Device) -> Self {
        let lambd = Param::from_tensor(Tensor::from_floats(values, device));
        Self { lambd }
    }
}

#[test]
fn thresholds_computed_in_the_forward_pass_are_refused_in_one_line() {
    let device = Device::flex();
    let model = Thresholds::new(&[1.0; 6], &device);
    let forward = |m: &Thresholds, x: Tensor<2>| {
        let lambd = m.lambd.val().mul_scalar(2.0);
        learned_hardshrink(x, lambd, Some(1), ThresholdEstimator::StraightThrough)
    };
    let error = burn_hardshrink::onnx::export(&model, sample_input(&device), forward)
        .unwrap_err()
        .to_string();
    assert!(error.contains("computed in the forward pass"), "{error}");
    assert_eq!(error.lines().count(), 1, "{error}");
}

#[test]
fn ndarray_computes_the_learned_thresholds_flexs_export_writes() {
    let flex = Demo::new(&Device::flex());
    let ndarray = Demo::new(&Device::ndarray());
    for (a, b) in [
        (flex.per_feature.lambd(), ndarray.per_feature.lambd()),
        (flex.single.lambd(), ndarray.single.lambd()),
    ] {
        let [a, b] = [a, b].map(|l| values(l).iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        assert_eq!(a, b);
    }
}

#[test]
fn given_thresholds_and_the_identity_lower_too() {
    let device = Device::flex();
    let lambd = [0.1f32, 0.2, 0.3, 0.4];
    let model = Thresholds::new(&lambd, &device);
    let forward = |m: &Thresholds, x: Tensor<1>| {
        let y = learned_hardshrink(
            x,
            m.lambd.val(),
            Some(0),
            ThresholdEstimator::StraightThrough,
        );
        hardshrink(y, -1.0) // λ < 0: the identity
    };
    let x = Tensor::<1>::from_floats([0.05, -0.25, 0.3, 2.0], &device);
    let onnx = burn_hardshrink::onnx::export(&model, x, forward).expect("exports");
    let types = node_types(&onnx);
    assert!(
        types.contains(&"Where".into()) && types.ends_with(&["Identity".into()]),
        "{types:?}"
    );
    let graph = ModelProto::parse_from_bytes(&onnx).unwrap().graph.unwrap();
    let stored = graph
        .initializer
        .iter()
        .find(|t| t.name.ends_with("_lambd"));
    assert_eq!(stored.expect("λ as an initializer").float_data, lambd);
}

#[test]
fn the_export_command_writes_the_model_input_and_output() {
    let dir = std::env::temp_dir().join(format!("onnx-port-{}", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_onnx-port"))
        .args(["export".as_ref(), dir.as_os_str()])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for file in ["model.onnx", "input.npy", "burn_output.npy"] {
        assert!(dir.join(file).metadata().unwrap().len() > 0, "{file}");
    }
    // The network with PyTorch's weights exports too: Linear layers as MatMul and Add.
    let run = Command::new(env!("CARGO_BIN_EXE_onnx-port"))
        .args(["export".as_ref(), dir.as_os_str(), "--pytorch".as_ref()])
        .arg(models().join("learned.pt"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("MatMul") && stdout.contains("Shrink"),
        "{stdout}"
    );
    // A file where the folder should be: one line and exit code 2.
    let run = Command::new(env!("CARGO_BIN_EXE_onnx-port"))
        .args(["export".as_ref(), dir.join("model.onnx").as_os_str()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        (run.status.code(), stderr.lines().count()),
        (Some(2), 1),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
