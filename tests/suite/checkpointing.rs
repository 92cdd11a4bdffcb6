//! Gradient checkpointing (Balanced) on and off give identical gradients, with memory-bound
//! neighbours that Balanced recomputes by retro-forward.

use burn::tensor::{Device, Distribution, Tensor};
use burn_hardshrink::hardshrink;

use crate::common::{cpu_devices, random, to_bits};

/// A chain with memory-bound ops (tanh, exp, mul by a scalar) before and after the op, and the
/// op's output used twice (by a matmul and by an exp).
fn grads(device: &Device, lambd: f64) -> (Vec<u64>, Vec<u64>) {
    let x = Tensor::<2>::from_data(random([24, 16], Distribution::Normal(0.0, 1.0), 11), device)
        .require_grad();
    let w = Tensor::<2>::from_data(random([16, 16], Distribution::Normal(0.0, 0.5), 12), device)
        .require_grad();
    let h = (x.clone().matmul(w.clone()).tanh() * 1.5).exp() - 1.0;
    let y = hardshrink(h, lambd);
    let out = y.clone().matmul(w.clone()).tanh() + (y * 0.1).exp();
    let grads = out.sum().backward();
    (
        to_bits(x.grad(&grads).unwrap()),
        to_bits(w.grad(&grads).unwrap()),
    )
}

#[test]
fn balanced_checkpointing_gives_the_same_gradients() {
    for (name, device) in cpu_devices() {
        for lambd in [0.5, 0.0, -1.0] {
            let plain = grads(&device.clone().autodiff(), lambd);
            let checkpointed = grads(&device.clone().autodiff().gradient_checkpointing(), lambd);
            assert_eq!(plain, checkpointed, "{name} λ={lambd}");
        }
    }
}

#[test]
fn input_without_gradient_is_untracked_but_downstream_still_trains() {
    for (_, device) in cpu_devices() {
        for device in [
            device.clone().autodiff(),
            device.autodiff().gradient_checkpointing(),
        ] {
            let x = Tensor::<2>::from_floats([[-1.0, 0.2], [0.7, -0.1]], &device);
            let w = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device).require_grad();
            let grads = hardshrink(x, 0.5).matmul(w.clone()).sum().backward();
            let gw = w
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            // d/dW sum(y W) = yᵀ 1, with y = [[-1, 0], [0.7, 0]].
            assert_eq!(gw, vec![-0.3, -0.3, 0.0, 0.0]);
        }
    }
}
