#!/usr/bin/env bash
# The prepared GPU check, in two halves.
#
#   scripts/gpu-check.sh build [--out DIR] [--no-cuda]
#       Where cargo is: builds release binaries (`--features wgpu,cuda`, or wgpu alone when cuda
#       does not build, e.g. without access to GitHub, where Burn's CUDA runtime fetches an LLVM
#       bundle at build time, or with --no-cuda) and bundles them in DIR (default gpu-check-bundle/):
#       gpu-check and sparse-coding (stripped, gzipped), this script and the PyTorch
#       reference. The bundle must stay under 64 MiB.
#
#   scripts/gpu-check.sh run [--bundle DIR] [--device cuda|wgpu|vulkan] [--reduced] [--no-main-job]
#       On the GPU machine, no Rust toolchain needed: from the bundle (default: the script's own
#       folder when it sits in one, else gpu-check-bundle/), runs
#         1. PyTorch's golden values and property cases on the GPU, forward and backward, every
#            dtype the device holds, and the learned-threshold kernels against the CPU's;
#         2. the op at 1M, 16M and 256M f32 elements, forward and forward + backward, ours
#            against Burn's built-in, with the forward's bandwidth against the card's peak;
#         3. the learned op forward + backward at 16M, kernels against composed ops;
#         4. the main job's default configuration on the GPU, with its wall time and table;
#       then, where PyTorch with CUDA is installed, torch.nn.functional.hardshrink at the same
#       sizes; and prints one summary. --reduced (CI, lavapipe) runs 1M only, a few timed calls
#       and a short training run. --device defaults to cuda when the bundle has it and
#       nvidia-smi sees a GPU, else wgpu.
set -euo pipefail

usage() {
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
}

die() {
    echo "gpu-check: $*" >&2
    exit 2
}

build() {
    local out="gpu-check-bundle" cuda=1
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --out) out="${2:?--out needs a folder}"; shift 2 ;;
            --no-cuda) cuda=0; shift ;;
            *) die "unknown build option \`$1\` (expected --out DIR or --no-cuda)" ;;
        esac
    done
    command -v cargo >/dev/null || die "the build half needs cargo (https://rustup.rs)"
    local root
    root="$(cd "$(dirname "$0")/.." && pwd)"
    local features="wgpu"
    if [[ $cuda == 1 ]]; then
        features="wgpu,cuda"
    fi
    # Each package's own feature of the same name: `hardshrink-suite/wgpu,sparse-coding/wgpu,...`.
    cargo_build() {
        local list=""
        for feature in ${1//,/ }; do
            list+="hardshrink-suite/$feature,sparse-coding/$feature,"
        done
        (cd "$root" && cargo build --release --locked \
            -p hardshrink-suite --bin gpu-check -p sparse-coding --bin sparse-coding \
            --features "${list%,}")
    }
    echo "building release binaries with features: $features"
    if ! cargo_build "$features"; then
        [[ $cuda == 1 ]] || die "the release build failed (above)"
        echo "gpu-check: the build with cuda failed (above); building with wgpu alone" >&2
        features="wgpu"
        cargo_build "$features" || die "the release build failed (above)"
    fi
    mkdir -p "$out"
    local target="${CARGO_TARGET_DIR:-$root/target}/release"
    # Stripped and gzipped: each binary holds all of Burn's backends (about 95 MB stripped,
    # 27 MB gzipped); the run half unpacks them.
    for binary in gpu-check sparse-coding; do
        rm -f "$out/$binary" "$out/$binary.gz"
        strip -o "$out/$binary" "$target/$binary" 2>/dev/null || cp "$target/$binary" "$out/$binary"
        gzip -9 "$out/$binary"
    done
    cp "$0" "$out/gpu-check.sh"
    cp "$root/scripts/torch_gpu_reference.py" "$out/"
    echo "$features" > "$out/FEATURES"
    local bytes
    bytes=$(du -cb "$out"/* | tail -1 | cut -f1)
    echo "bundle: $out ($((bytes / 1024 / 1024)) MiB, features $features)"
    if (( bytes >= 64 * 1024 * 1024 )); then
        die "the bundle is $((bytes / 1024 / 1024)) MiB, over the 64 MiB it must fit in"
    fi
}

run() {
    local bundle="" device="" reduced=0 main_job=1
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --bundle) bundle="${2:?--bundle needs a folder}"; shift 2 ;;
            --device) device="${2:?--device needs a name}"; shift 2 ;;
            --reduced) reduced=1; shift ;;
            --no-main-job) main_job=0; shift ;;
            *) die "unknown run option \`$1\` (expected --bundle DIR, --device NAME, --reduced or --no-main-job)" ;;
        esac
    done
    if [[ -z $bundle ]]; then
        local here
        here="$(cd "$(dirname "$0")" && pwd)"
        if [[ -e $here/gpu-check.gz || -x $here/gpu-check ]]; then bundle="$here"; else bundle="gpu-check-bundle"; fi
    fi
    local log
    log="$(mktemp -d)"
    trap 'rm -rf "$log"' EXIT
    # The binaries, unpacked from the bundle's .gz files (or used as they are).
    local bin="$log/bin"
    mkdir -p "$bin"
    for binary in gpu-check sparse-coding; do
        if [[ -f $bundle/$binary.gz ]]; then
            gzip -dc "$bundle/$binary.gz" > "$bin/$binary" && chmod +x "$bin/$binary"
        elif [[ -x $bundle/$binary ]]; then
            ln -s "$(cd "$bundle" && pwd)/$binary" "$bin/$binary"
        fi
    done
    [[ -x $bin/gpu-check ]] || die "no gpu-check binary in $bundle: run \`scripts/gpu-check.sh build\` where cargo is and copy the bundle here"
    if [[ $main_job == 1 && ! -x $bin/sparse-coding ]]; then
        die "no sparse-coding binary in $bundle: rebuild the bundle, or pass --no-main-job"
    fi
    if [[ -z $device ]]; then
        device="wgpu"
        if grep -q cuda "$bundle/FEATURES" 2>/dev/null && command -v nvidia-smi >/dev/null \
            && nvidia-smi -L >/dev/null 2>&1; then
            device="cuda"
        fi
    fi
    local sizes="1M,16M,256M" learned="16M" iterations=20 quick=()
    if [[ $reduced == 1 ]]; then
        sizes="1M" learned="1M" iterations=3 quick=(--quick)
    fi
    local started=$SECONDS status=0
    echo "== 1-3. checks and benchmarks on $device"
    "$bin/gpu-check" --device "$device" --sizes "$sizes" --learned-size "$learned" \
        --iterations "$iterations" "${quick[@]}" | tee "$log/checks.txt" || status=$?
    if [[ $status == 2 ]]; then
        die "the device \`$device\` could not be opened (above)"
    fi

    if [[ $main_job == 1 ]]; then
        echo "== 4. the main job on $device"
        local job=()
        if [[ $reduced == 1 ]]; then
            # A few seconds of training: that the job runs on the device and writes its table.
            cat > "$log/reduced.json" <<'JSON'
{"layers": 2, "steps": 20, "batch": 32, "test_samples": 64, "validation_samples": 64,
 "checkpoint_every": 10, "training": "end-to-end"}
JSON
            job=(--config "$log/reduced.json")
        fi
        local start=$SECONDS job_status=0
        "$bin/sparse-coding" --device "$device" --out "$log/run" --quiet "${job[@]}" \
            | tee "$log/main-job.txt" || job_status=$?
        local wall=$((SECONDS - start))
        if [[ $job_status != 0 ]]; then
            echo "SUMMARY main job: FAILED with exit status $job_status" | tee -a "$log/checks.txt"
            status=1
        else
            # The table's last layer row: learned IHT, LISTA-CP, ISTA, FISTA, IHT.
            local last
            last=$(grep '^layer' "$log/main-job.txt" | tail -1)
            local what="default configuration"
            [[ $reduced == 1 ]] && what="reduced: 2 layers, 20 steps"
            echo "$last" | awk -v wall="$wall" -v what="$what" '{ printf "SUMMARY main job (%s): %s s wall, final NMSE: learned IHT %s dB, LISTA-CP %s, ISTA %s, FISTA %s, IHT %s\n", what, wall, $3, $4, $5, $6, $7 }' \
                | tee -a "$log/checks.txt"
        fi
    fi

    if command -v python3 >/dev/null && python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "== PyTorch beside it"
        python3 "$bundle/torch_gpu_reference.py" --sizes "$sizes" --learned-size "$learned" \
            --iterations "$iterations" | tee -a "$log/checks.txt" || true
    else
        echo "(no PyTorch with CUDA here: the side-by-side with torch is left out)"
    fi

    echo
    echo "== summary ($device, $((SECONDS - started)) s)"
    grep '^SUMMARY' "$log/checks.txt" | sed 's/^SUMMARY //'
    exit "$status"
}

case "${1:-}" in
    build) shift; build "$@" ;;
    run) shift; run "$@" ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
esac
