//! Burn code that burn-onnx generated from `models/*.onnx` at build time (see `build.rs`).
//!
//! `pair_torchscript` and `pair_dynamo` are PyTorch's `Pair` module (two `nn.Hardshrink`s)
//! exported by each of PyTorch's ONNX exporters; `shrink_bias` is an ONNX `Shrink` with a bias,
//! which is not a Hardshrink and keeps Burn's own code.

/// `x ↦ hardshrink(x, 0.5) + hardshrink(2x, 1.25)`, from `torch.onnx.export(dynamo=False)`.
pub mod pair_torchscript {
    include!(concat!(env!("OUT_DIR"), "/model/pair_torchscript.rs"));
}

/// The same module from `torch.onnx.export(dynamo=True)`.
pub mod pair_dynamo {
    include!(concat!(env!("OUT_DIR"), "/model/pair_dynamo.rs"));
}

/// ONNX `Shrink(lambd = 0.5, bias = 0.25)`.
pub mod shrink_bias {
    include!(concat!(env!("OUT_DIR"), "/model/shrink_bias.rs"));
}

/// The generated sources, by model name: what a reader (or a test) can check they call.
pub const SOURCES: [(&str, &str); 3] = [
    (
        "pair_torchscript",
        include_str!(concat!(env!("OUT_DIR"), "/model/pair_torchscript.rs")),
    ),
    (
        "pair_dynamo",
        include_str!(concat!(env!("OUT_DIR"), "/model/pair_dynamo.rs")),
    ),
    (
        "shrink_bias",
        include_str!(concat!(env!("OUT_DIR"), "/model/shrink_bias.rs")),
    ),
];
