#!/usr/bin/env bash
# Builds the sparse-coding example as it runs on a CPU without AVX-512, on a CPU with it.
#
#   scripts/avx2-build.sh
#       Writes target/avx2/release/sparse-coding. Run it with BURN_HARDSHRINK_SIMD=avx2, which
#       caps this project's own kernels; the build caps Flex's.
#
# Flex's vector code (sums, means and other reductions) comes from the macerator crate, which
# picks AVX-512 at run time whenever the CPU has it, and has no switch to pick less. A sum over
# 16 lanes adds in another order than one over 8, so training takes another path on an AVX-512
# CPU. Flex's matrix products do not: its gemm runs the same AVX2/FMA kernels on both, because
# burn-flex leaves gemm's AVX-512 feature off. This script builds against a copy of macerator
# whose detection stops at AVX2, in a target folder of its own, and leaves Cargo.lock as it was.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
copy="target/avx2-macerator"

source_dir="$(cargo metadata --format-version 1 --locked |
    python3 -c 'import json, sys, os
packages = json.load(sys.stdin)["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in packages if p["name"] == "macerator"))')"
rm -rf "$copy"
mkdir -p target
cp -r "$source_dir" "$copy"
chmod -R u+w "$copy"

# Cut the AVX-512 branch out of the run-time detection; every caller then gets AVX2.
detection="$copy/src/backend/arch/x86.rs"
python3 - "$detection" <<'EOF'
import sys
path = sys.argv[1]
text = open(path).read()
branch = """        #[cfg(avx512)]
        if x86::V4::is_available() {
            return Self::V4;
        }
"""
if text.count(branch) != 1:
    sys.exit(f"avx2-build: {path} has changed; find its AVX-512 detection by hand")
open(path, "w").write(text.replace(branch, ""))
EOF

# The patch rewrites Cargo.lock's macerator entry; the committed lock file is put back.
cp Cargo.lock target/avx2-Cargo.lock
trap 'cp target/avx2-Cargo.lock Cargo.lock' EXIT
cargo build --release -p sparse-coding --target-dir target/avx2 \
    --config "patch.crates-io.macerator.path=\"$copy\""
echo "built target/avx2/release/sparse-coding; run it with BURN_HARDSHRINK_SIMD=avx2"
