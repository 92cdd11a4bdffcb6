//! Gradients against central finite differences and against Burn's built-in `hard_shrink`.

use burn::module::Module;
use burn::nn::{HardShrink, HardShrinkConfig, Linear, LinearConfig};
use burn::tensor::activation::hard_shrink;
use burn::tensor::{DType::F64, Device, Distribution, Tensor, TensorData};
use burn_hardshrink::{Hardshrink, hardshrink};

use crate::common::{cpu_devices, gpu_device, random, to_bits};

/// Points spread over [-3, 3], none within 1e-3 of ±λ so the finite difference does not
/// straddle the jump.
fn points(lambd: f64) -> Vec<f64> {
    (0..61)
        .map(|i| -3.0 + 0.1 * i as f64 + 0.0137)
        .filter(|x: &f64| (x.abs() - lambd).abs() > 1e-3)
        .collect()
}

#[test]
fn f64_gradient_matches_central_differences() {
    for (name, device) in cpu_devices() {
        for lambd in [0.5, 0.0, 1.3, -1.0] {
            let xs = points(lambd);
            let weights: Vec<f64> = (0..xs.len()).map(|i| 0.5 + (i % 7) as f64 * 0.25).collect();
            // f(x) = Σ w_i hardshrink(x_i); df/dx_i = w_i hardshrink'(x_i).
            let f = |xs: &[f64]| -> f64 {
                let x = Tensor::<1>::from_data(
                    TensorData::new(xs.to_vec(), [xs.len()]),
                    (&device, F64),
                );
                let w = Tensor::<1>::from_data(
                    TensorData::new(weights.clone(), [xs.len()]),
                    (&device, F64),
                );
                (hardshrink(x, lambd) * w).sum().into_scalar::<f64>()
            };
            let ad = device.clone().autodiff();
            let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), (&ad, F64))
                .require_grad();
            let w =
                Tensor::<1>::from_data(TensorData::new(weights.clone(), [xs.len()]), (&ad, F64));
            let grads = (hardshrink(x.clone(), lambd) * w).sum().backward();
            let analytic = x
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f64>()
                .unwrap();
            let h = 1e-6;
            for i in 0..xs.len() {
                let (mut up, mut down) = (xs.clone(), xs.clone());
                up[i] += h;
                down[i] -= h;
                let numeric = (f(&up) - f(&down)) / (2.0 * h);
                assert!(
                    (numeric - analytic[i]).abs() < 1e-6,
                    "{name} λ={lambd} x={}: numeric {numeric}, autodiff {}",
                    xs[i],
                    analytic[i]
                );
            }
        }
    }
}

#[derive(Module, Debug)]
struct Mlp<A: Module> {
    first: Linear,
    act: A,
    second: Linear,
}

trait Activation {
    fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;
}

impl Activation for Hardshrink {
    fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward(x)
    }
}

impl Activation for HardShrink {
    fn apply<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.forward(x)
    }
}

impl<A: Module + Activation> Mlp<A> {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.second.forward(self.act.apply(self.first.forward(x)))
    }
}

/// Every parameter gradient of `model` for a fixed batch, as bit patterns.
fn parameter_grads<A: Module + Activation>(model: &Mlp<A>, device: &Device) -> Vec<Vec<u64>> {
    let x = Tensor::<2>::from_data(random([16, 8], Distribution::Normal(0.0, 1.0), 7), device);
    let target = Tensor::<2>::ones([16, 4], device);
    let loss = (model.forward(x) - target).powi_scalar(2).mean();
    let grads = loss.backward();
    let mut out = vec![
        to_bits(model.first.weight.grad(&grads).unwrap()),
        to_bits(model.second.weight.grad(&grads).unwrap()),
    ];
    for bias in [&model.first.bias, &model.second.bias]
        .into_iter()
        .flatten()
    {
        out.push(to_bits(bias.grad(&grads).unwrap()));
    }
    out
}

#[test]
fn model_gradients_equal_burns_builtin() {
    // Bit for bit on the CPU. On the GPU the matmuls around the op may round differently
    // from one graph to the other (fusion), so `cpu_and_gpu_agree_on_a_model` compares there.
    for (name, device) in cpu_devices() {
        let device = device.autodiff();
        for lambd in [0.5, 0.1, 0.0] {
            let first = LinearConfig::new(8, 32).init(&device);
            let second = LinearConfig::new(32, 4).init(&device);
            let ours = Mlp {
                first: first.clone(),
                act: burn_hardshrink::HardshrinkConfig::new()
                    .with_lambd(lambd)
                    .init(),
                second: second.clone(),
            };
            let builtin = Mlp {
                first,
                act: HardShrinkConfig::new().with_lambda(lambd).init(),
                second,
            };
            let ours = parameter_grads(&ours, &device);
            let theirs = parameter_grads(&builtin, &device);
            assert_eq!(ours, theirs, "{name} λ={lambd}: parameter gradients differ");
        }
    }
}

#[test]
fn input_gradient_equals_burns_builtin_on_random_data() {
    for (name, device) in cpu_devices() {
        let device = device.autodiff();
        let data = random([64, 33], Distribution::Normal(0.0, 1.0), 3);
        let g =
            Tensor::<2>::from_data(random([64, 33], Distribution::Normal(0.0, 1.0), 4), &device);
        for lambd in [0.5, 0.25, 0.0, -1.0] {
            let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
            let grads = (hardshrink(x.clone(), lambd) * g.clone()).sum().backward();
            let ours = to_bits(x.grad(&grads).unwrap());
            let x = Tensor::<2>::from_data(data.clone(), &device).require_grad();
            let grads = (hard_shrink(x.clone(), lambd) * g.clone()).sum().backward();
            let theirs = to_bits(x.grad(&grads).unwrap());
            assert_eq!(ours, theirs, "{name} λ={lambd}");
        }
    }
}

/// A small model's output and parameter gradients on the GPU equal the CPU's, up to the
/// matmuls' rounding (the shrink itself is exact on both).
#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn cpu_and_gpu_agree_on_a_model() {
    let gpu = gpu_device();
    // x·W1 → Hardshrink → ·W2 with the same numbers on both devices.
    let numbers = |n: usize, seed: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 37 + seed * 11) % 101) as f32 - 50.0) / 60.0)
            .collect()
    };
    let run = |device: &Device| -> Vec<Vec<f32>> {
        let device = device.clone().autodiff();
        let tensor = |values: Vec<f32>, shape: [usize; 2]| {
            Tensor::<2>::from_data(TensorData::new(values, shape), &device)
        };
        let x = tensor(numbers(32 * 16, 1), [32, 16]);
        let w1 = tensor(numbers(16 * 64, 2), [16, 64]).require_grad();
        let w2 = tensor(numbers(64 * 8, 3), [64, 8]).require_grad();
        let y = hardshrink(x.matmul(w1.clone()), 0.5).matmul(w2.clone());
        let grads = y.clone().square().sum().backward();
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        vec![
            values(y),
            values(w1.grad(&grads).unwrap()),
            values(w2.grad(&grads).unwrap()),
        ]
    };
    let (cpu, gpu) = (run(&Device::flex()), run(&gpu));
    for (what, (c, g)) in ["output", "W1 gradient", "W2 gradient"]
        .iter()
        .zip(cpu.iter().zip(&gpu))
    {
        for (i, (x, y)) in c.iter().zip(g).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "{what}[{i}]: cpu {x} vs gpu {y}"
            );
        }
    }
}
