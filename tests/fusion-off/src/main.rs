//! burn-hardshrink on wgpu with Burn's kernel fusion off.
//!
//! The workspace's own builds always have fusion on (Burn's default features turn it on and
//! cargo unifies features across the workspace), so this package is built on its own. CI
//! (`.ci/run`) type-checks it before the tests (a full second build of the GPU stack does not
//! fit CI's time); run it with
//!
//! ```text
//! cargo run --locked -p fusion-off-check --features wgpu
//! ```
//!
//! It checks that fusion really is off, then compares the GPU forward, backward and
//! autodiff results with Flex's, bit for bit (Flex is checked against PyTorch by the suite).
//! Exit status: 0 when every check passed, 1 when one failed, 2 when no GPU adapter could be
//! opened (the checks were skipped), 3 when built without `--features wgpu`.
//!
//! `-- --time` times the op instead, against Burn's built-in `hard_shrink` (BENCHMARKS.md,
//! "The unfused GPU kernels"); built with `--features wgpu,fused` it times the fused default the
//! same way, for the comparison.

use std::process::ExitCode;

#[cfg(feature = "wgpu")]
fn main() -> ExitCode {
    checks::run()
}

#[cfg(not(feature = "wgpu"))]
fn main() -> ExitCode {
    eprintln!("fusion-off-check needs the GPU: run it with `--features wgpu`");
    ExitCode::from(3)
}

#[cfg(feature = "wgpu")]
mod checks {
    use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
    use burn_hardshrink::{DeviceError, device_from_name, hardshrink};
    use std::process::ExitCode;

    const LAMBDAS: [f64; 5] = [0.5, 0.0, 1e-3, 3.0, -1.0];

    pub fn run() -> ExitCode {
        let cube = std::any::type_name::<burn_cubecl::Cube>();
        if std::env::args().any(|arg| arg == "--time") {
            return crate::timing::run(cube);
        }
        if cube.contains("Fusion") {
            eprintln!(
                "fusion is on in this build (Burn's Cube backend is {cube}); build this package alone"
            );
            return ExitCode::from(1);
        }
        let gpu = match device_from_name("wgpu") {
            Ok(device) => device,
            Err(error @ DeviceError::Unavailable { .. }) => {
                eprintln!("skipped: {error}");
                return ExitCode::from(2);
            }
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::from(1);
            }
        };
        let mut failures = Vec::new();
        let mut checked = 0;
        let mut check = |what: String, gpu: Vec<u8>, cpu: Vec<u8>| {
            checked += 1;
            if gpu != cpu {
                failures.push(what);
            }
        };
        let cpu = Device::flex();
        for dtype in [DType::F32, DType::F16, DType::BF16, DType::F64] {
            if !gpu.supports_dtype(dtype) {
                println!("{dtype:?}: not supported by this adapter, not checked");
                continue;
            }
            let input = values(dtype);
            // Finite, so that the multiply around the op cannot differ in a NaN's payload.
            let upstream = Tensor::<1>::random([4096], Distribution::Normal(0.0, 1.0), &cpu)
                .cast(dtype)
                .into_data();
            for lambd in LAMBDAS {
                let forward = |device: &Device| bytes(hardshrink(on(&input, device), lambd));
                check(
                    format!("{dtype:?} forward, λ={lambd}"),
                    forward(&gpu),
                    forward(&cpu),
                );

                // A transposed view: the kernel's strided path.
                let strided = |device: &Device| {
                    let x = on(&input, device).reshape([64, 64]).transpose();
                    bytes(hardshrink(x, lambd))
                };
                check(
                    format!("{dtype:?} strided, λ={lambd}"),
                    strided(&gpu),
                    strided(&cpu),
                );

                let gradient = |device: &Device| {
                    let device = device.clone().autodiff();
                    let x = on(&input, &device).require_grad();
                    let upstream = on(&upstream, &device);
                    let grads = (hardshrink(x.clone(), lambd) * upstream).sum().backward();
                    bytes(x.grad(&grads).expect("x takes part in the loss"))
                };
                check(
                    format!("{dtype:?} gradient, λ={lambd}"),
                    gradient(&gpu),
                    gradient(&cpu),
                );
            }
        }
        if failures.is_empty() {
            println!("fusion off ({cube}): {checked} GPU results equal Flex's bit for bit");
            ExitCode::SUCCESS
        } else {
            eprintln!(
                "fusion off: {} of {checked} checks differ from Flex:",
                failures.len()
            );
            for failure in failures {
                eprintln!("  {failure}");
            }
            ExitCode::from(1)
        }
    }

    /// 4096 values: the band's edges, signed zeros, NaN and infinities, then normal samples at
    /// several scales, rounded to `dtype` on the CPU.
    fn values(dtype: DType) -> TensorData {
        let mut v = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            0.500_000_1,
            -0.499_999_9,
            1e-3,
            -1e-3,
            3.0,
            -3.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            -1e-40,
        ];
        let cpu = Device::flex();
        cpu.seed(11);
        let normal = Tensor::<1>::random([4096], Distribution::Normal(0.0, 1.0), &cpu)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 samples");
        let scales = [1.0, 0.01, 4.0, 1e-3];
        v.extend(
            normal
                .iter()
                .enumerate()
                .map(|(i, x)| x * scales[i % scales.len()]),
        );
        v.truncate(4096);
        Tensor::<1>::from_data(TensorData::new(v, [4096]), &cpu)
            .cast(dtype)
            .into_data()
    }

    fn on(data: &TensorData, device: &Device) -> Tensor<1> {
        Tensor::from_data(data.clone(), device)
    }

    fn bytes<const D: usize>(tensor: Tensor<D>) -> Vec<u8> {
        tensor.into_data().as_bytes().to_vec()
    }
}

/// Median wall times of the op and of Burn's built-in on the GPU: forward and forward + backward
/// at 1M and 16M f32 elements, and a Linear → act → Linear training step (256 × 1024).
#[cfg(feature = "wgpu")]
mod timing {
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::activation::hard_shrink;
    use burn::tensor::{Distribution, Tensor};
    use burn_hardshrink::{device_from_name, hardshrink};
    use std::process::ExitCode;
    use std::time::Instant;

    /// The median of `runs` timed calls, after three untimed ones, in milliseconds.
    fn median(runs: usize, mut call: impl FnMut()) -> f64 {
        (0..3).for_each(|_| call());
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                call();
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[runs / 2]
    }

    pub fn run(cube: &str) -> ExitCode {
        let device = match device_from_name("wgpu") {
            Ok(device) => device,
            Err(error) => {
                eprintln!("skipped: {error}");
                return ExitCode::from(2);
            }
        };
        println!("{cube}");
        let sync = || device.sync().expect("the GPU finished its work");
        type Op = fn(Tensor<2>, f64) -> Tensor<2>;
        let ops: [(&str, Op); 2] = [("ours", hardshrink), ("built-in", hard_shrink)];
        for rows in [1 << 10, 1 << 14] {
            let x = Tensor::<2>::random([rows, 1024], Distribution::Normal(0.0, 1.0), &device);
            let ad = device.clone().autodiff();
            let xg = Tensor::<2>::from_data(x.to_data(), &ad).require_grad();
            for (name, op) in ops {
                let forward = median(21, || {
                    let _y = op(x.clone(), 0.5);
                    sync();
                });
                let both = median(21, || {
                    let grads = op(xg.clone(), 0.5).sum().backward();
                    let _g = xg.grad(&grads);
                    sync();
                });
                println!(
                    "{}M {name}: forward {forward:.2} ms, forward + backward {both:.2} ms",
                    rows >> 10
                );
            }
        }
        let ad = device.clone().autodiff();
        let first: Linear = LinearConfig::new(1024, 1024).init(&ad);
        let second: Linear = LinearConfig::new(1024, 1024).init(&ad);
        let x = Tensor::<2>::random([256, 1024], Distribution::Normal(0.0, 1.0), &ad);
        for (name, op) in ops {
            let step = median(11, || {
                let y = second.forward(op(first.forward(x.clone()), 0.5));
                let grads = y.sum().backward();
                let _g = first.weight.grad(&grads);
                sync();
            });
            println!("model step {name}: {step:.1} ms");
        }
        ExitCode::SUCCESS
    }
}
