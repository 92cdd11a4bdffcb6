//! Generates Burn code for the ONNX models in `models/`. PyTorch's exported Hardshrinks are
//! rewritten into ONNX `Shrink` first, and each `Shrink` with bias 0 calls burn-hardshrink.

use burn_hardshrink::onnx::{ShrinkOverride, rewrite_torch_hardshrink};
use onnx_ir::{Message, ModelProto};
use std::{env, fs, path::PathBuf};

const MODELS: [&str; 3] = ["pair_torchscript", "pair_dynamo", "shrink_bias"];

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut generator = burn_onnx::ModelGen::new();
    generator
        .out_dir("model/")
        .load_strategy(burn_onnx::LoadStrategy::Embedded)
        .register_op_override(ShrinkOverride);
    for name in MODELS {
        let source = format!("models/{name}.onnx");
        println!("cargo:rerun-if-changed={source}");
        let bytes = fs::read(&source).unwrap_or_else(|error| panic!("{source}: {error}"));
        let mut model = ModelProto::parse_from_bytes(&bytes)
            .unwrap_or_else(|error| panic!("{source}: {error}"));
        rewrite_torch_hardshrink(&mut model);
        let rewritten = out.join(format!("{name}.onnx"));
        let bytes = model.write_to_bytes().expect("a parsed model encodes");
        fs::write(&rewritten, bytes).expect("OUT_DIR is writable");
        generator.input(rewritten.to_str().expect("OUT_DIR is UTF-8"));
    }
    generator.run_from_script();
}
