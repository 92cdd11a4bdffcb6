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
//! It checks that fusion really is off, then compares the unfused GPU forward, backward and
//! autodiff results with Flex's, bit for bit (Flex is checked against PyTorch by the suite).
//! Exit status: 0 when every check passed, 1 when one failed, 2 when no GPU adapter could be
//! opened (the checks were skipped), 3 when built without `--features wgpu`.

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
