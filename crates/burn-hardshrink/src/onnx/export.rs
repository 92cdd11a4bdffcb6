//! ONNX out: burn-onnx's exporter, with each Hardshrink lowered to ONNX `Shrink` (or, for one
//! threshold per feature, `Where(LessOrEqual(Abs(x), λ), 0, x)`).
//!
//! burn-onnx 0.22's exporter lowers a fixed list of Burn operations, without comparisons,
//! `where` or custom operations, so it cannot lower this op's own operations. While
//! [`export`] runs, the op therefore records a marker the exporter can lower, `x · M + λ` with
//! a constant `M` of its own, and the marker is rewritten into ONNX afterwards.

use super::graph::{constant_tensor, floats, initializer, node, producer, prune, scalar, shrink};
use crate::HardshrinkError;
use burn::module::Module;
use burn::tensor::activation::softplus;
use burn::tensor::{DType, Device, Tensor};
use burn_onnx::export::{ExportInput, ExportOutput, OnnxExporter};
use onnx_ir::{GraphProto, Message, ModelProto, NodeProto};
use std::cell::RefCell;

/// What a marker's `+ λ` holds. The markers are normal f32 numbers no model multiplies by.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Marker {
    /// `x · M + λ`, λ a scalar.
    Fixed,
    /// `x · M + reshape(λ)`, λ a parameter or constant.
    Thresholds,
    /// `x · M + reshape(θ)`, λ = softplus(θ): a `LearnedHardshrink`'s parameter.
    Softplus,
}

impl Marker {
    const ALL: [Marker; 3] = [Marker::Fixed, Marker::Thresholds, Marker::Softplus];

    fn value(self) -> f32 {
        f32::from_bits(0x0B5E_1A10 + self as u32)
    }
}

thread_local! {
    /// `Some` while [`export`] runs on this thread: the problems found while marking.
    static EXPORTING: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Whether `x` is being captured by [`export`]; a dtype the lowering cannot write is noted.
pub(crate) fn active<const D: usize>(x: &Tensor<D>) -> bool {
    EXPORTING.with_borrow_mut(|problems| {
        let Some(problems) = problems.as_mut() else {
            return false;
        };
        let device = x.device();
        if !matches!(
            device.as_dispatch(),
            burn::backend::DispatchDevice::Capture(_)
        ) {
            return false;
        }
        if x.dtype() != DType::F32 {
            problems.push(format!(
                "the model runs Hardshrink on {:?} tensors and the ONNX lowering writes f32; \
                 export the model in f32",
                x.dtype()
            ));
        }
        true
    })
}

/// The marker of `hardshrink(x, λ)`.
pub(crate) fn fixed<const D: usize>(x: Tensor<D>, lambd: f64) -> Tensor<D> {
    x.mul_scalar(Marker::Fixed.value()).add_scalar(lambd)
}

/// The marker of a learned Hardshrink: `thresholds` are λ, or θ with λ = softplus(θ).
pub(crate) fn learned<const D: usize>(
    x: Tensor<D>,
    thresholds: Tensor<1>,
    axis: Option<usize>,
    softplus: bool,
) -> Tensor<D> {
    let shape = crate::functional::along(&x, axis);
    let marker = if softplus {
        Marker::Softplus
    } else {
        Marker::Thresholds
    };
    x.mul_scalar(marker.value()) + thresholds.reshape(shape)
}

/// Exports `module`'s `forward` on `inputs` to ONNX (opset 18) with burn-onnx's exporter, every
/// Hardshrink and LearnedHardshrink lowered to ONNX, and returns the model's bytes.
///
/// The lowering, exact to the bit on f32 against this crate's forward on the CPU:
///
/// | In the model                              | In ONNX                                   |
/// |-------------------------------------------|-------------------------------------------|
/// | `Hardshrink`, `hardshrink(x, λ)`, λ >= 0   | `Shrink(lambd = λ, bias = 0)`             |
/// | one learned λ (`softplus(θ)`, computed now) | `Shrink(lambd = λ, bias = 0)`             |
/// | a learned λ per feature                   | `Where(LessOrEqual(Abs(x), λ), 0, x)`     |
/// | λ < 0 or NaN (the identity)               | `Identity`                                |
///
/// NaN inputs are the one difference: ONNX's `Shrink` sends NaN to 0, where this crate (and
/// PyTorch) pass it; the per-feature form passes it. The rest of the model is whatever
/// burn-onnx's exporter writes, and an operation it cannot lower is its one-line error.
///
/// ```
/// use burn::prelude::*;
/// use burn_hardshrink::{Hardshrink, HardshrinkConfig};
///
/// #[derive(Module, Debug)]
/// struct Net {
///     act: Hardshrink,
/// }
///
/// let net = Net { act: HardshrinkConfig::new().init() };
/// let x = Tensor::<2>::zeros([2, 4], &Device::flex());
/// let onnx = burn_hardshrink::onnx::export(&net, x, |net, x| net.act.forward(x))?;
/// assert!(!onnx.is_empty());
/// # Ok::<(), burn_hardshrink::HardshrinkError>(())
/// ```
pub fn export<M, I, O, F>(module: &M, inputs: I, forward: F) -> Result<Vec<u8>, HardshrinkError>
where
    M: Module,
    I: ExportInput,
    O: ExportOutput,
    F: FnOnce(&M, I) -> O,
{
    let fail = |reason: String| HardshrinkError::OnnxExport { reason };
    let captured = {
        let _marking = Marking::start();
        let captured = OnnxExporter::new().export(module, inputs, forward);
        let problems = EXPORTING.with_borrow_mut(|problems| problems.take().unwrap_or_default());
        if let Some(problem) = problems.into_iter().next() {
            return Err(fail(problem));
        }
        captured.map_err(|error| fail(error.to_string()))?
    };
    let mut model = ModelProto::parse_from_bytes(captured.as_bytes()).map_err(|error| {
        fail(format!(
            "burn-onnx wrote a model that does not parse: {error}"
        ))
    })?;
    lower(&mut model).map_err(fail)?;
    model
        .write_to_bytes()
        .map_err(|error| fail(error.to_string()))
}

/// Turns marking on for this thread, and back to what it was on drop (a panicking forward and
/// an export inside a forward included).
struct Marking(Option<Vec<String>>);

impl Marking {
    fn start() -> Self {
        Marking(EXPORTING.with_borrow_mut(|problems| problems.replace(Vec::new())))
    }
}

impl Drop for Marking {
    fn drop(&mut self) {
        EXPORTING.with_borrow_mut(|problems| *problems = self.0.take());
    }
}

/// Rewrites every marker in the graph into its ONNX lowering.
fn lower(model: &mut ModelProto) -> Result<(), String> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(());
    };
    let mut index = 0;
    while index < graph.node.len() {
        let node = &graph.node[index];
        let marker = (node.op_type == "Mul" && node.input.len() == 2)
            .then(|| scalar(graph, &node.input[1]))
            .flatten()
            .and_then(|value| Marker::ALL.into_iter().find(|m| m.value() == value));
        match marker {
            // The marker's `Mul` is gone and nothing before it moved: go on from its place.
            Some(marker) => lower_one(graph, index, marker)?,
            None => index += 1,
        }
    }
    Ok(())
}

/// Lowers the marker whose `Mul` is node `mul`.
fn lower_one(graph: &mut GraphProto, mul: usize, marker: Marker) -> Result<(), String> {
    let [x, constant_m] = [0, 1].map(|i| graph.node[mul].input[i].clone());
    let marked = graph.node[mul].output[0].clone();
    let add = graph
        .node
        .iter()
        .position(|node| node.op_type == "Add" && node.input.first() == Some(&marked))
        .ok_or_else(|| format!("a Hardshrink marker ({marked}) without its threshold"))?;
    let [_, threshold] = [0, 1].map(|i| graph.node[add].input[i].clone());
    let output = graph.node[add].output[0].clone();
    let name = format!("{output}_hardshrink");
    let nodes = match marker {
        Marker::Fixed => {
            let lambd = scalar(graph, &threshold)
                .ok_or_else(|| format!("Hardshrink's threshold at {output} is not a constant"))?;
            vec![one_threshold(&name, &x, &output, lambd)]
        }
        Marker::Thresholds | Marker::Softplus => {
            per_feature(graph, &name, &x, &threshold, &output, marker)?
        }
    };
    // The lowering takes the `Add`'s place: after everything the threshold needs.
    graph.node.splice(add..=add, nodes);
    graph.node.remove(mul);
    prune(graph, vec![constant_m, threshold]);
    Ok(())
}

/// `Shrink` for λ >= 0, `Identity` where the op is the identity.
fn one_threshold(name: &str, x: &str, output: &str, lambd: f32) -> NodeProto {
    if lambd >= 0.0 {
        shrink(name, x, output, lambd)
    } else {
        node(name, "Identity", &[x], &[output])
    }
}

/// The lowering of `x · M + reshape(t)`, t an f32 initializer of λ or θ.
fn per_feature(
    graph: &mut GraphProto,
    name: &str,
    x: &str,
    threshold: &str,
    output: &str,
    marker: Marker,
) -> Result<Vec<NodeProto>, String> {
    let reshape = producer(graph, threshold)
        .map(|index| graph.node[index].clone())
        .filter(|node| node.op_type == "Reshape");
    let source = reshape.as_ref().map_or(threshold, |node| &node.input[0]);
    let (values, dims) = constant_tensor(graph, source)
        .and_then(|tensor| Some((floats(tensor)?, tensor.dims.clone())))
        .ok_or_else(|| {
            format!(
                "the thresholds of the learned Hardshrink at {output} are computed in the \
                 forward pass; the ONNX lowering needs them as a parameter or constant"
            )
        })?;
    let lambd = match marker {
        Marker::Softplus => softplus_f32(values)?,
        _ => values,
    };
    if let [lambd] = lambd[..] {
        return Ok(vec![one_threshold(name, x, output, lambd)]);
    }
    let lambd_name = format!("{name}_lambd");
    let zero = format!("{name}_zero");
    graph
        .initializer
        .push(initializer(&lambd_name, &dims, lambd));
    graph.initializer.push(initializer(&zero, &[], vec![0.0]));
    let mut nodes = Vec::new();
    let broadcast = match reshape {
        Some(mut reshape) => {
            let reshaped = format!("{name}_lambd_reshaped");
            reshape.name = reshaped.clone();
            reshape.input[0] = lambd_name;
            reshape.output = vec![reshaped.clone()];
            nodes.push(reshape);
            reshaped
        }
        None => lambd_name,
    };
    let [abs, inside] = ["abs", "inside"].map(|part| format!("{name}_{part}"));
    nodes.push(node(&abs, "Abs", &[x], &[&abs]));
    nodes.push(node(
        &inside,
        "LessOrEqual",
        &[&abs, &broadcast],
        &[&inside],
    ));
    nodes.push(node(name, "Where", &[&inside, &zero, x], &[output]));
    Ok(nodes)
}

/// λ = softplus(θ), computed as the model computes it on the CPU (Flex; NdArray gives the
/// same bits, which the example's tests check).
fn softplus_f32(raw: Vec<f32>) -> Result<Vec<f32>, String> {
    let raw = Tensor::<1>::from_floats(raw.as_slice(), &Device::flex());
    let lambd = softplus(raw, 1.0).into_data();
    lambd
        .try_to_vec::<f32>()
        .map_err(|error| format!("softplus of the learned thresholds: {error:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_distinct_normal_f32_numbers() {
        let values = Marker::ALL.map(Marker::value);
        assert!(
            values
                .iter()
                .all(|v| v.is_normal() && f64::from(*v) as f32 == *v)
        );
        assert!(values[0] != values[1] && values[1] != values[2]);
    }
}
