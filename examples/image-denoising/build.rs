//! Decides whether the example's GPU test runs here or is reported as ignored.

include!("../../tests/gpu_probe.rs");

fn main() {
    probe_gpu();
}
