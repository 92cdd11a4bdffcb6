"""PyTorch's Hardshrink on a CUDA GPU, timed the way `gpu-check` times ours.

Run by `scripts/gpu-check.sh run` where torch with CUDA is installed (never in CI), or by hand:

    python3 scripts/torch_gpu_reference.py [--sizes 1M,16M,256M] [--learned-size 16M] [--iterations 20]

f32, lambda = 0.5, inputs N(0, 1) in rows of 1024. Each call is timed with the device
synchronised inside the clock and its result freed after it; prints the median in ms, one
`SUMMARY` line per size.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

LAMBD = 0.5


def size(text):
    text = text.strip()
    for suffix, unit in (("M", 1 << 20), ("K", 1 << 10)):
        if text.upper().endswith(suffix):
            return int(text[:-1]) * unit
    return int(text)


def label(n):
    return f"{n >> 20}M" if n % (1 << 20) == 0 else str(n)


def median_ms(call, iterations):
    for _ in range(3):
        result = call()
        torch.cuda.synchronize()
        del result
    times = []
    for _ in range(max(iterations, 1)):
        start = time.perf_counter()
        result = call()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
        del result
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,16M,256M")
    parser.add_argument("--learned-size", default="16M")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--peak-gbs", type=float, default=4800.0)
    args = parser.parse_args()
    device = torch.device("cuda")
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(device)}")
    for n in [size(s) for s in args.sizes.split(",")]:
        x = torch.randn(n // 1024, 1024, device=device)
        forward = median_ms(lambda: F.hardshrink(x, LAMBD), args.iterations)
        gbs = 2 * 4 * n / (forward * 1e-3) / 1e9
        leaf = x.clone().requires_grad_(True)

        def step():
            leaf.grad = None
            F.hardshrink(leaf, LAMBD).sum().backward()
            return leaf.grad

        both = median_ms(step, args.iterations)
        print(f"SUMMARY torch {label(n)}: forward {forward:.3f} ms ({gbs:.0f} GB/s, "
              f"{100 * gbs / args.peak_gbs:.0f}% of peak), forward+backward {both:.3f} ms")
        del x, leaf


if __name__ == "__main__":
    main()
