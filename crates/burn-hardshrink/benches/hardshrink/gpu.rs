//! The op on a GPU through Burn's wgpu backend, when there is one.

use criterion::Criterion;

/// The GPU (Burn's wgpu backend, fusion on): forward and forward+backward at 1M and 16M, and
/// Linear → Hardshrink → Linear forward and training step, against the built-in and against
/// `hardshrink_composed` (the same primitive ops as ours under fusion, with Burn's autodiff).
///
/// `cargo bench -p burn-hardshrink --features wgpu --bench hardshrink -- gpu`, with
/// `HARDSHRINK_BENCH_256M=1` for 256M elements too. Skipped, with a message, when there is no
/// adapter.
#[cfg(feature = "wgpu")]
pub fn gpu(c: &mut Criterion) {
    use super::LAMBD;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::activation::hard_shrink;
    use burn::tensor::{Device, Distribution, Tensor};
    use burn_hardshrink::{hardshrink, hardshrink_composed};
    use criterion::{BenchmarkId, Throughput};

    let device = match burn_hardshrink::device_from_name("wgpu") {
        Ok(device) => device,
        Err(error) => {
            eprintln!("GPU benchmarks skipped: {error}");
            return;
        }
    };
    type Op = fn(Tensor<2>, f64) -> Tensor<2>;
    let ops: [(&str, Op); 3] = [
        ("ours", hardshrink),
        ("builtin", hard_shrink),
        ("composed", hardshrink_composed),
    ];
    let sync = |device: &Device| device.sync().expect("the GPU finished its work");
    // 256M (1 GiB per f32 tensor) is for real GPUs: `HARDSHRINK_BENCH_256M=1` adds it.
    let large = std::env::var_os("HARDSHRINK_BENCH_256M").is_some();
    let sizes = [("1M", 1 << 10), ("16M", 1 << 14), ("256M", 1 << 18)];
    for (size, rows) in sizes
        .into_iter()
        .filter(|&(_, rows)| large || rows < 1 << 18)
    {
        let n = rows * 1024;
        let data = Tensor::<2>::random(
            [rows, 1024],
            Distribution::Normal(0.0, 1.0),
            &Device::flex(),
        )
        .into_data();
        let mut group = c.benchmark_group(format!("gpu_forward/{size}"));
        group.throughput(Throughput::Bytes(2 * 4 * n as u64));
        let x = Tensor::<2>::from_data(data.clone(), &device);
        for (name, op) in ops {
            group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
                b.iter(|| {
                    let y = op(x.clone(), LAMBD);
                    sync(&device);
                    y
                })
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("gpu_forward_backward/{size}"));
        group.throughput(Throughput::Elements(n as u64));
        let ad = device.clone().autodiff();
        let x = Tensor::<2>::from_data(data, &ad).require_grad();
        for (name, op) in ops {
            group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
                b.iter(|| {
                    let grads = op(x.clone(), LAMBD).sum().backward();
                    let g = x.grad(&grads);
                    sync(&device);
                    g
                })
            });
        }
        group.finish();
    }

    // Linear → op → Linear: where fusion can merge the composed op with the bias add before
    // it. Inference (forward only), then a training step.
    let first: Linear = LinearConfig::new(1024, 1024).init(&device);
    let second: Linear = LinearConfig::new(1024, 1024).init(&device);
    let x = Tensor::<2>::random([256, 1024], Distribution::Normal(0.0, 1.0), &device);
    let mut group = c.benchmark_group("gpu_model_forward/256x1024");
    for (name, op) in ops {
        group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
            b.iter(|| {
                let y = second.forward(op(first.forward(x.clone()), LAMBD));
                sync(&device);
                y
            })
        });
    }
    group.finish();

    let ad = device.clone().autodiff();
    let first: Linear = LinearConfig::new(1024, 1024).init(&ad);
    let second: Linear = LinearConfig::new(1024, 1024).init(&ad);
    let x = Tensor::<2>::random([256, 1024], Distribution::Normal(0.0, 1.0), &ad);
    let mut group = c.benchmark_group("gpu_model_step/256x1024");
    for (name, op) in ops {
        group.bench_function(BenchmarkId::new(name, "wgpu"), |b| {
            b.iter(|| {
                let y = second.forward(op(first.forward(x.clone()), LAMBD));
                let grads = y.sum().backward();
                let g = first.weight.grad(&grads);
                sync(&device);
                g
            })
        });
    }
    group.finish();
}

#[cfg(not(feature = "wgpu"))]
pub fn gpu(_: &mut Criterion) {}
