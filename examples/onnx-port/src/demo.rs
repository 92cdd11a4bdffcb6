//! A small model with both activations, exported to ONNX with the inputs and Burn's outputs as
//! `.npy` files, so that any ONNX runtime can be checked against Burn.

use crate::Error;
use burn::module::Param;
use burn::prelude::*;
use burn_hardshrink::{Hardshrink, HardshrinkConfig, LearnedHardshrink, LearnedHardshrinkConfig};
use onnx_ir::{Message, ModelProto};
use std::path::Path;

/// `h = x · scale + shift`, then `fixed(h) + per_feature(h) + single(h)`.
///
/// Every operation is elementwise, so a runtime that follows IEEE 754 gives the same bits.
#[derive(Module, Debug)]
pub struct Demo {
    /// Per-feature scale.
    pub scale: Param<Tensor<1>>,
    /// Per-feature shift.
    pub shift: Param<Tensor<1>>,
    /// λ = 0.5.
    pub fixed: Hardshrink,
    /// One learned λ per feature.
    pub per_feature: LearnedHardshrink,
    /// One learned λ for all features.
    pub single: LearnedHardshrink,
}

/// Features of the demo model.
pub const FEATURES: usize = 6;

impl Demo {
    /// The model with thresholds 0.5 (fixed), 0.25 to 1.5 (one per feature) and 0.75 (learned,
    /// one for all), as if trained.
    pub fn new(device: &Device) -> Self {
        let ramp = |start: f32, step: f32| -> Vec<f32> {
            (0..FEATURES).map(|i| start + step * i as f32).collect()
        };
        let param = |values: Vec<f32>| Param::from_tensor(Tensor::from_floats(&values[..], device));
        // Each feature's θ as the library parametrises its λ.
        let raw = ramp(0.25, 0.25).into_iter().map(|lambd| {
            let single = LearnedHardshrinkConfig::new().with_initial_lambd(lambd.into());
            single.init(device).raw_lambd.val()
        });
        let mut per_feature = LearnedHardshrinkConfig::new()
            .with_features(Some(FEATURES))
            .init(device);
        per_feature.raw_lambd = Param::from_tensor(Tensor::cat(raw.collect(), 0));
        Self {
            // Feature 0 passes x unchanged, so the edges `sample_input` puts there reach the
            // activations exactly.
            scale: param(ramp(1.0, 0.3)),
            shift: param(ramp(0.0, 0.1)),
            fixed: HardshrinkConfig::new().init(),
            per_feature,
            single: LearnedHardshrinkConfig::new()
                .with_initial_lambd(0.75)
                .init(device),
        }
    }

    /// `[batch, FEATURES]` to `[batch, FEATURES]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let h = x * self.scale.val().unsqueeze() + self.shift.val().unsqueeze();
        self.fixed.forward(h.clone()) + self.per_feature.forward(h.clone()) + self.single.forward(h)
    }
}

/// Random inputs, with every edge of the three thresholds in feature 0 (which the model passes
/// unchanged): ±λ and their neighbours, ±0, ±inf and a subnormal. NaN is left out: ONNX's
/// `Shrink` sends it to 0.
pub fn sample_input(device: &Device) -> Tensor<2> {
    let rows = 32;
    let mut values = spread(rows * FEATURES, 3.0);
    let mut edges = vec![0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, 1e-45];
    for lambd in [0.25f32, 0.5, 0.75] {
        let (below, above) = (lambd.next_down(), lambd.next_up());
        edges.extend([lambd, -lambd, below, -below, above, -above]);
    }
    for (row, edge) in edges.into_iter().enumerate() {
        values[row * FEATURES] = edge;
    }
    Tensor::<1>::from_floats(values.as_slice(), device).reshape([rows, FEATURES])
}

/// `count` values spread evenly over [-width, width) in a scrambled order (golden-ratio steps).
pub fn spread(count: usize, width: f32) -> Vec<f32> {
    (0..count)
        .map(|i| ((i as f32 * 0.618_034).fract() - 0.5) * 2.0 * width)
        .collect()
}

/// Writes `model.onnx`, `input.npy` and `burn_output.npy` (Burn's output for `x`) to `dir`;
/// returns the ONNX node types in order.
pub fn export<M: Module>(
    dir: &Path,
    model: &M,
    x: Tensor<2>,
    forward: fn(&M, Tensor<2>) -> Tensor<2>,
) -> Result<Vec<String>, Error> {
    let y = forward(model, x.clone());
    let onnx = burn_hardshrink::onnx::export(model, x.clone(), forward)?;
    let io = |path: &Path, source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join("model.onnx");
    std::fs::write(&path, &onnx).map_err(|e| io(&path, e))?;
    for (name, tensor) in [("input.npy", x), ("burn_output.npy", y)] {
        let path = dir.join(name);
        write_npy(&path, tensor).map_err(|e| io(&path, e))?;
    }
    Ok(node_types(&onnx))
}

fn write_npy(path: &Path, tensor: Tensor<2>) -> std::io::Result<()> {
    let shape: Vec<u64> = tensor.dims().iter().map(|&d| d as u64).collect();
    let values = tensor
        .into_data()
        .try_into_vec::<f32>()
        .expect("the demo runs in f32");
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    use npyz::WriterBuilder;
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(file)
        .begin_nd()?;
    writer.extend(values)?;
    writer.finish()
}

/// The node types of an ONNX model, in order.
pub fn node_types(onnx: &[u8]) -> Vec<String> {
    let model = ModelProto::parse_from_bytes(onnx).expect("an exported model parses");
    model
        .graph
        .node
        .iter()
        .map(|node| node.op_type.clone())
        .collect()
}
