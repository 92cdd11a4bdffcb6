//! ONNX in: `Shrink` nodes generate a call to this crate, and PyTorch's exported Hardshrink
//! graphs become `Shrink` nodes.

use super::graph::{producer, prune, scalar0, shrink};
use burn_onnx::ext::quote::quote;
use burn_onnx::ext::{ArgType, proc_macro2::TokenStream};
use burn_onnx::ext::{CodegenContext, Node, NodeType, OpOverride, ProcessError, arg_to_ident};
use onnx_ir::{GraphProto, ModelProto, NodeProto};

/// burn-onnx's code generation for ONNX `Shrink`, routed to this crate's kernels.
///
/// A `Shrink` with `bias = 0` on a tensor is PyTorch's Hardshrink and becomes
/// `burn_hardshrink::hardshrink(x, lambd)`: this crate's forward and backward on every backend.
/// A `Shrink` with a nonzero bias keeps Burn's own `burn::tensor::activation::shrink`.
///
/// At NaN the two differ as their definitions do: ONNX's `Shrink` sends NaN to 0, PyTorch's
/// Hardshrink and this crate pass it. A `Shrink` on integers also keeps Burn's code.
///
/// Register it in the build script that runs burn-onnx; the crate that includes the generated
/// code depends on `burn-hardshrink` as usual.
///
/// ```no_run
/// // build.rs, with `burn-hardshrink = { ..., features = ["onnx-import"] }` and `burn-onnx` in
/// // [build-dependencies]
/// burn_onnx::ModelGen::new()
///     .input("model.onnx")
///     .out_dir("model/")
///     .register_op_override(burn_hardshrink::onnx::ShrinkOverride)
///     .run_from_script();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ShrinkOverride;

impl OpOverride for ShrinkOverride {
    fn target(&self) -> NodeType {
        NodeType::Shrink
    }

    fn forward(
        &self,
        node: &Node,
        ctx: &mut CodegenContext<'_, '_>,
    ) -> Result<TokenStream, ProcessError> {
        let Node::Shrink(shrink) = node else {
            return Err(ProcessError::Custom(format!(
                "ShrinkOverride: expected a Shrink node, got {}",
                node.name()
            )));
        };
        let input = ctx.arg(&shrink.inputs[0]);
        let output = arg_to_ident(&shrink.outputs[0]);
        let lambd = float(shrink.config.lambda);
        let on_floats = matches!(&shrink.inputs[0].ty, ArgType::Tensor(t) if t.dtype.is_float());
        Ok(if shrink.config.bias == 0.0 && on_floats {
            quote! { let #output = burn_hardshrink::hardshrink(#input, #lambd); }
        } else {
            let bias = float(shrink.config.bias);
            quote! { let #output = burn::tensor::activation::shrink(#input, #lambd, #bias); }
        })
    }
}

/// An `f64` literal, infinities and NaN included.
fn float(value: f64) -> TokenStream {
    match value {
        v if v.is_nan() => quote! { f64::NAN },
        f64::INFINITY => quote! { f64::INFINITY },
        f64::NEG_INFINITY => quote! { f64::NEG_INFINITY },
        v => {
            let literal = burn_onnx::ext::proc_macro2::Literal::f64_suffixed(v);
            quote! { #literal }
        }
    }
}

/// Rewrites each Hardshrink that `torch.onnx.export` wrote as comparisons into one ONNX
/// `Shrink` node (bias 0), and returns how many it rewrote.
///
/// PyTorch has no `Shrink` export: its TorchScript exporter (`dynamo=False`) writes
/// `Where(Or(Greater(x, λ), Less(x, -λ)), x, 0)` (with casts to bool between), and its dynamo
/// exporter writes `Where(LessOrEqual(Abs(x), λ), 0, x)`. Both are rewritten where λ is a
/// rank-0 f32 constant other than NaN; the comparisons and constants nothing else reads are
/// removed. Run it before burn-onnx so [`ShrinkOverride`] sends those nodes to this crate's
/// kernels (burn-onnx's overrides see one node at a time, so the pattern is matched here, on
/// the graph).
///
/// The rewritten graph is for that code generation, which runs it as PyTorch does. In an ONNX
/// runtime it would send NaN inputs to 0, where the dynamo pattern passes them.
///
/// ```no_run
/// use burn_hardshrink::onnx::rewrite_torch_hardshrink;
/// use onnx_ir::{Message, ModelProto};
///
/// let mut model = ModelProto::parse_from_bytes(&std::fs::read("net.onnx")?)?;
/// let rewritten = rewrite_torch_hardshrink(&mut model);
/// std::fs::write("net.shrink.onnx", model.write_to_bytes()?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn rewrite_torch_hardshrink(model: &mut ModelProto) -> usize {
    let Some(graph) = model.graph.as_mut() else {
        return 0;
    };
    let mut rewritten = 0;
    let mut index = 0;
    while index < graph.node.len() {
        let node = &graph.node[index];
        let found = (node.op_type == "Where" && node.input.len() == 3 && node.output.len() == 1)
            .then(|| torchscript(graph, node).or_else(|| dynamo(graph, node)))
            .flatten();
        if let Some((x, lambd)) = found {
            let replaced = node.input.clone();
            let output = node.output[0].clone();
            let name = format!("{output}_hardshrink");
            graph.node[index] = shrink(&name, &x, &output, lambd);
            // The pruned nodes all come before the Shrink: find it again.
            prune(graph, replaced);
            index = producer(graph, &output).unwrap_or(index);
            rewritten += 1;
        }
        index += 1;
    }
    rewritten
}

/// `Where(Or(Greater(x, λ), Less(x, -λ)), x, 0)`: the input and λ.
fn torchscript(graph: &GraphProto, node: &NodeProto) -> Option<(String, f32)> {
    let [condition, x, zero] = &node.input[..] else {
        return None;
    };
    let or = writer(graph, condition, "Or")?;
    let greater = writer(graph, &through_cast(graph, &or.input[0]), "Greater")?;
    let less = writer(graph, &through_cast(graph, &or.input[1]), "Less")?;
    let lambd = scalar0(graph, &greater.input[1]).filter(|lambd| !lambd.is_nan())?;
    let exact = &greater.input[0] == x
        && &less.input[0] == x
        && negated(graph, &less.input[1])?.to_bits() == lambd.to_bits()
        && scalar0(graph, zero)?.to_bits() == 0;
    exact.then(|| (x.clone(), lambd))
}

/// The negation of `value`: −m for a constant m, and c for `Neg(c)` (which an export without
/// constant folding writes).
fn negated(graph: &GraphProto, value: &str) -> Option<f32> {
    if let Some(constant) = scalar0(graph, value) {
        return Some(-constant);
    }
    let node = &graph.node[producer(graph, value)?];
    (node.op_type == "Neg" && node.input.len() == 1)
        .then(|| scalar0(graph, &node.input[0]))
        .flatten()
}

/// `Where(LessOrEqual(Abs(x), λ), 0, x)`: the input and λ.
fn dynamo(graph: &GraphProto, node: &NodeProto) -> Option<(String, f32)> {
    let [condition, zero, x] = &node.input[..] else {
        return None;
    };
    let le = writer(graph, condition, "LessOrEqual")?;
    let abs = writer(graph, &le.input[0], "Abs")?;
    if &abs.input[0] != x || scalar0(graph, zero)?.to_bits() != 0 {
        return None;
    }
    let lambd = scalar0(graph, &le.input[1]).filter(|lambd| !lambd.is_nan())?;
    Some((x.clone(), lambd))
}

/// The node of type `op_type` that writes `value`, if that is its only output.
fn writer<'g>(graph: &'g GraphProto, value: &str, op_type: &str) -> Option<&'g NodeProto> {
    let node = &graph.node[producer(graph, value)?];
    let inputs = if op_type == "Abs" { 1 } else { 2 };
    (node.op_type == op_type && node.output.len() == 1 && node.input.len() == inputs)
        .then_some(node)
}

/// Looks through a `Cast` to bool (the TorchScript exporter puts one before `Or`).
fn through_cast(graph: &GraphProto, value: &str) -> String {
    let cast = producer(graph, value)
        .map(|index| &graph.node[index])
        .filter(|node| node.op_type == "Cast" && node.input.len() == 1);
    cast.map_or_else(|| value.into(), |node| node.input[0].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::graph::{constant, initializer, node, read};
    use onnx_ir::{GraphProto, ValueInfoProto};

    fn model(nodes: Vec<NodeProto>, constants: &[(&str, f32)]) -> ModelProto {
        let mut graph = GraphProto::new();
        graph.node = nodes;
        for &(name, value) in constants {
            graph.initializer.push(initializer(name, &[], vec![value]));
        }
        let mut output = ValueInfoProto::new();
        output.name = "y".into();
        graph.output.push(output);
        let mut model = ModelProto::new();
        model.graph = Some(graph).into();
        model
    }

    /// `Where(LessOrEqual(Abs(x), l), z, x)` into `out`.
    fn dynamo_pattern(out: &str) -> Vec<NodeProto> {
        vec![
            node("a", "Abs", &["x"], &["a"]),
            node("le", "LessOrEqual", &["a", "l"], &["le"]),
            node("w", "Where", &["le", "z", "x"], &[out]),
        ]
    }

    /// `Where(Or(Cast(Greater(x, l)), Cast(Less(x, m))), x, z)` into `y`.
    fn torchscript_pattern() -> Vec<NodeProto> {
        vec![
            node("g", "Greater", &["x", "l"], &["g"]),
            node("l", "Less", &["x", "m"], &["lt"]),
            node("c1", "Cast", &["g"], &["gb"]),
            node("c2", "Cast", &["lt"], &["lb"]),
            node("o", "Or", &["gb", "lb"], &["o"]),
            node("w", "Where", &["o", "x", "z"], &["y"]),
        ]
    }

    fn ops(model: &ModelProto) -> Vec<String> {
        model.graph.node.iter().map(|n| n.op_type.clone()).collect()
    }

    #[test]
    fn both_torch_patterns_become_one_shrink_each() {
        let constants = [("l", 1.25), ("m", -1.25), ("z", 0.0)];
        let mut torchscript = model(torchscript_pattern(), &constants);
        let mut dynamo = model(dynamo_pattern("y"), &[("l", 0.5), ("z", 0.0)]);
        for (model, lambd) in [(&mut torchscript, 1.25), (&mut dynamo, 0.5)] {
            assert_eq!(rewrite_torch_hardshrink(model), 1);
            assert_eq!(ops(model), ["Shrink"]);
            let shrink = &model.graph.node[0];
            assert_eq!(
                (shrink.input[0].as_str(), shrink.output[0].as_str()),
                ("x", "y")
            );
            assert_eq!(shrink.attribute[0].f, lambd);
            assert!(model.graph.initializer.is_empty());
        }
    }

    #[test]
    fn look_alikes_stay_and_values_read_elsewhere_are_kept() {
        // -λ that is not λ's negation, a nonzero fill, and a comparison read elsewhere.
        let constants = [("l", 1.0), ("m", -2.0), ("z", 0.0)];
        let mut asymmetric = model(torchscript_pattern(), &constants);
        assert_eq!(rewrite_torch_hardshrink(&mut asymmetric), 0);
        let mut filled = model(dynamo_pattern("y"), &[("l", 0.5), ("z", 1.0)]);
        assert_eq!(rewrite_torch_hardshrink(&mut filled), 0);
        let mut nodes = dynamo_pattern("w");
        nodes.push(node("s", "Add", &["w", "a"], &["y"]));
        let mut shared = model(nodes, &[("l", 0.5), ("z", 0.0)]);
        assert_eq!(rewrite_torch_hardshrink(&mut shared), 1);
        assert_eq!(ops(&shared), ["Abs", "Shrink", "Add"]);
        assert!(!read(&shared.graph, "le"));
        assert!(
            constant(&shared.graph, "l").is_none(),
            "λ's constant is pruned"
        );
    }

    #[test]
    fn exports_without_folding_and_old_style_inputs_rewrite_cleanly() {
        // -λ written as Neg(λ), and the constants also listed as graph inputs.
        let mut nodes = torchscript_pattern();
        nodes.push(node("n", "Neg", &["l"], &["m"]));
        let mut unfolded = model(nodes, &[("l", 0.5), ("z", 0.0)]);
        for name in ["x", "l", "z"] {
            let mut input = ValueInfoProto::new();
            input.name = name.into();
            unfolded.graph.mut_or_insert_default().input.push(input);
        }
        assert_eq!(rewrite_torch_hardshrink(&mut unfolded), 1);
        assert_eq!(ops(&unfolded), ["Shrink"]);
        let inputs: Vec<&str> = unfolded
            .graph
            .input
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(inputs, ["x"]);
    }

    #[test]
    fn what_would_change_the_result_is_not_rewritten() {
        // A NaN λ (the exported graph zeroes everything), and a [1, 1] λ that broadcasts x up.
        let mut nan = model(dynamo_pattern("y"), &[("l", f32::NAN), ("z", 0.0)]);
        assert_eq!(rewrite_torch_hardshrink(&mut nan), 0);
        let mut wide = model(dynamo_pattern("y"), &[("z", 0.0)]);
        let graph = wide.graph.mut_or_insert_default();
        graph.initializer.push(initializer("l", &[1, 1], vec![0.5]));
        assert_eq!(rewrite_torch_hardshrink(&mut wide), 0);
        // A constant still read inside a subgraph stays.
        let mut branch = model(dynamo_pattern("y"), &[("l", 0.5), ("z", 0.0)]);
        let mut body = GraphProto::new();
        body.node.push(node("b", "Identity", &["z"], &["b"]));
        let mut attribute = onnx_ir::AttributeProto::new();
        attribute.g = Some(body).into();
        let mut branching = node("if", "If", &["c"], &["o"]);
        branching.attribute.push(attribute);
        branch.graph.mut_or_insert_default().node.push(branching);
        assert_eq!(rewrite_torch_hardshrink(&mut branch), 1);
        assert!(constant(&branch.graph, "z").is_some());
    }
}
