//! A few reads and edits of an ONNX graph, shared by the import rewrite and the export lowering.

use onnx_ir::{AttributeProto, AttributeType, GraphProto, NodeProto, TensorProto};

/// ONNX's `TensorProto.DataType` for f32.
pub(super) const FLOAT: i32 = 1;

/// The node that writes `value`, by index.
pub(super) fn producer(graph: &GraphProto, value: &str) -> Option<usize> {
    graph
        .node
        .iter()
        .position(|node| node.output.iter().any(|output| output == value))
}

/// Whether anything reads `value`: a node, a node in a subgraph (`If`, `Loop`, `Scan`), or a
/// graph output.
pub(super) fn read(graph: &GraphProto, value: &str) -> bool {
    graph.output.iter().any(|output| output.name == value)
        || graph.node.iter().any(|node| {
            node.input.iter().any(|input| input == value)
                || node.attribute.iter().any(|attribute| {
                    let graphs = attribute.g.as_ref().into_iter().chain(&attribute.graphs);
                    graphs.into_iter().any(|subgraph| read(subgraph, value))
                })
        })
}

/// The tensor of a constant `value`: an initializer or a `Constant` node's `value`.
pub(super) fn constant_tensor<'g>(graph: &'g GraphProto, value: &str) -> Option<&'g TensorProto> {
    if let Some(tensor) = graph.initializer.iter().find(|tensor| tensor.name == value) {
        return Some(tensor);
    }
    let node = &graph.node[producer(graph, value)?];
    if node.op_type != "Constant" {
        return None;
    }
    let attribute = node.attribute.iter().find(|attr| attr.name == "value")?;
    attribute.t.as_ref()
}

/// The f32 values of a constant `value`.
#[cfg(any(test, feature = "onnx-export"))]
pub(super) fn constant(graph: &GraphProto, value: &str) -> Option<Vec<f32>> {
    floats(constant_tensor(graph, value)?)
}

/// A constant holding one f32, of any shape.
#[cfg(feature = "onnx-export")]
pub(super) fn scalar(graph: &GraphProto, value: &str) -> Option<f32> {
    match constant(graph, value)?.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

/// A rank-0 f32 constant: one that broadcasts without changing the other operand's shape.
#[cfg(feature = "onnx-import")]
pub(super) fn scalar0(graph: &GraphProto, value: &str) -> Option<f32> {
    let tensor = constant_tensor(graph, value).filter(|tensor| tensor.dims.is_empty())?;
    match floats(tensor)?.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

/// A tensor's values, if it holds f32.
pub(super) fn floats(tensor: &TensorProto) -> Option<Vec<f32>> {
    if tensor.data_type != FLOAT {
        return None;
    }
    if !tensor.float_data.is_empty() {
        return Some(tensor.float_data.clone());
    }
    let bytes: &[u8] = &tensor.raw_data;
    let values = bytes.chunks_exact(4);
    values.remainder().is_empty().then(|| {
        values
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    })
}

/// An f32 initializer.
#[cfg(any(test, feature = "onnx-export"))]
pub(super) fn initializer(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    let mut tensor = TensorProto::new();
    tensor.name = name.into();
    tensor.data_type = FLOAT;
    tensor.dims = dims.to_vec();
    tensor.float_data = values;
    tensor
}

/// A node of the default domain.
pub(super) fn node(name: &str, op_type: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    let mut node = NodeProto::new();
    node.name = name.into();
    node.op_type = op_type.into();
    node.input = inputs.iter().map(|&input| input.into()).collect();
    node.output = outputs.iter().map(|&output| output.into()).collect();
    node
}

/// ONNX `Shrink` with bias 0: PyTorch's Hardshrink as one node.
pub(super) fn shrink(name: &str, input: &str, output: &str, lambd: f32) -> NodeProto {
    let mut shrink = node(name, "Shrink", &[input], &[output]);
    for (key, value) in [("lambd", lambd), ("bias", 0.0)] {
        let mut attribute = AttributeProto::new();
        attribute.name = key.into();
        attribute.f = value;
        attribute.type_ = AttributeType::FLOAT.into();
        shrink.attribute.push(attribute);
    }
    shrink
}

/// Removes, repeatedly, what `values` names (nodes by output name, and initializers) once
/// nothing reads it, and then what those read. Their graph inputs and value infos go with them.
pub(super) fn prune(graph: &mut GraphProto, mut values: Vec<String>) {
    while let Some(value) = values.pop() {
        if read(graph, &value) {
            continue;
        }
        let removed = match producer(graph, &value) {
            Some(index) => {
                let node = &graph.node[index];
                if node.output.iter().any(|output| read(graph, output)) {
                    continue;
                }
                let node = graph.node.remove(index);
                values.extend(node.input);
                node.output
            }
            None => {
                let before = graph.initializer.len();
                graph.initializer.retain(|tensor| tensor.name != value);
                if graph.initializer.len() == before {
                    continue; // a graph input: it stays
                }
                // Older exports also list initializers as graph inputs.
                graph.input.retain(|input| input.name != value);
                vec![value]
            }
        };
        graph
            .value_info
            .retain(|info| !removed.contains(&info.name));
    }
}
