"""PyTorch's Hardshrink timed the way `benches/hardshrink.rs` times ours, for BENCHMARKS.md.

Run by hand where torch is installed (never in CI):

    python3 crates/burn-hardshrink/benches/torch_reference.py [--threads 2] [--quick]

f32, lambda = 0.5, inputs N(0, 1). Each case is timed call by call: inputs are made and outputs
freed outside the clock, as criterion's `iter_batched` does for the Rust contenders. Prints the
median of each case in microseconds.
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

LAMBD = 0.5
SIZES = [("1K", 1 << 10), ("64K", 1 << 16), ("1M", 1 << 20), ("16M", 1 << 24)]


def median_us(call, setup, budget_s=2.0, min_calls=20, max_calls=5000):
    """Median wall time of `call(setup())` in microseconds, the result kept until the clock stops."""
    for _ in range(3):  # warm-up
        del_me = call(setup())
        del del_me
    times = []
    spent = 0.0
    while len(times) < max_calls and (len(times) < min_calls or spent < budget_s):
        args = setup()
        start = time.perf_counter_ns()
        result = call(args)
        elapsed = time.perf_counter_ns() - start
        del result, args
        times.append(elapsed / 1000.0)
        spent += elapsed / 1e9
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="only 1K and 64K")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    sizes = [s for s in SIZES if not args.quick or s[1] <= 1 << 16]
    for name, n in sizes:
        x = torch.randn(n)
        g = torch.randn(n)
        out = torch.empty(n)
        rows = {}
        rows["forward, fresh output"] = median_us(lambda x: F.hardshrink(x, LAMBD), lambda: x)
        rows["forward, preallocated out="] = median_us(
            lambda x: torch.hardshrink(x, LAMBD, out=out), lambda: x)

        def step(act):
            def run(leaf):
                (act(leaf) * g).sum().backward()
                return leaf.grad
            return run

        def leaf():
            return x.clone().requires_grad_(True)

        rows["forward + backward"] = median_us(step(lambda t: F.hardshrink(t, LAMBD)), leaf)
        rows["same graph, no activation"] = median_us(step(lambda t: t), leaf)
        for case, us in rows.items():
            print(f"{name:>4} {case:<28} {us:10.1f} us")


if __name__ == "__main__":
    main()
