"""Runs an exported model in onnxruntime and compares it with Burn's output, bit for bit.

    cargo run --release -p onnx-port -- export out/
    pip install onnx onnxruntime numpy
    python3 examples/onnx-port/check_export.py out/
"""

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
onnx.checker.check_model(onnx.load(folder / "model.onnx"), full_check=True)
print(f"onnx {onnx.__version__}: the checker (full_check) passes")
session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                       providers=["CPUExecutionProvider"])
x = np.load(folder / "input.npy")
burn = np.load(folder / "burn_output.npy")
(ort,) = session.run(None, {session.get_inputs()[0].name: x})
differ = ort.view(np.uint32) != burn.view(np.uint32)
print(f"onnxruntime {onnxruntime.__version__}: {ort.size} outputs, "
      f"{int(differ.sum())} differ from Burn's in any bit")
for index in zip(*np.nonzero(differ)):
    print(f"  at {tuple(int(i) for i in index)}: input {x[index]!r}, "
          f"onnxruntime {ort[index]!r}, Burn {burn[index]!r}")
sys.exit(1 if differ.any() else 0)
