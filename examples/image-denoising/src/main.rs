//! The command line: train and test a new run, continue one with `--resume`, or test a finished
//! run's networks on other images with `--trained`.

use burn::module::Module;
use burn::train::Interrupter;
use burn_hardshrink::DeviceName;
use clap::Parser;
use image_denoising::config::DenoiseConfig;
use image_denoising::error::Error;
use image_denoising::evaluate::test;
use image_denoising::images::Image;
use image_denoising::model::Denoiser;
use image_denoising::plot::plot_run;
use image_denoising::training::{NETWORKS, train};
use sparse_coding::run_dir::{RunDir, write_atomic};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

// Many small tensors per step, as in the first example.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Denoises natural images with a learned patch dictionary and an unfolded encoder whose layers
/// end in learned hard thresholds (learned IHT), beside its soft-threshold twin and patch-DCT
/// hard thresholding, at every noise level.
///
/// A run writes its config, checkpoints, metric logs, networks, results and pictures to its
/// directory. Options override `--config`'s file. Exit codes: 0 done, 2 error, 130 stopped (a
/// stopped or killed run continues with `--resume`).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Training images: a folder of PNG or JPEG files (default: the bundled ones).
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// Test images: a folder of PNG or JPEG files (default: the bundled ones).
    #[arg(long, value_name = "DIR")]
    test_images: Option<PathBuf>,
    /// A JSON file of config fields, as in a run's config.json.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Training steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Layers of the encoder.
    #[arg(long)]
    layers: Option<usize>,
    /// Atoms of the dictionary (a square number ≥ 64).
    #[arg(long)]
    atoms: Option<usize>,
    /// Noise levels to train and test at (pixel range 0–255).
    #[arg(long, value_delimiter = ',')]
    sigmas: Option<Vec<f64>>,
    /// Seed of the training crops and their noise.
    #[arg(long)]
    seed: Option<u64>,
    /// Keep learned IHT's thresholds at their start (an ablation).
    #[arg(long)]
    fixed_thresholds: bool,
    /// Where to train and denoise.
    #[arg(long, value_enum)]
    device: Option<DeviceName>,
    /// Run directory (default: runs/image-denoising-<process id>-<time>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its newest checkpoints.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "images", "test_images", "config", "steps", "layers", "atoms", "sigmas", "seed",
        "fixed_thresholds", "out", "trained",
    ])]
    resume: Option<PathBuf>,
    /// Test the networks of the finished run in DIR (on --test-images), without training.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "images", "config", "steps", "layers", "atoms", "sigmas", "seed", "fixed_thresholds",
    ])]
    trained: Option<PathBuf>,
    /// Print only the final table, and errors.
    #[arg(long)]
    quiet: bool,
}

impl Cli {
    /// A new run's configuration: the defaults, then the file, then the options.
    fn config(&self) -> Result<DenoiseConfig, Error> {
        let mut config = match &self.config {
            Some(file) => DenoiseConfig::from_file(file)?,
            None => DenoiseConfig::new(),
        };
        config.steps = self.steps.unwrap_or(config.steps);
        config.layers = self.layers.unwrap_or(config.layers);
        config.atoms = self.atoms.unwrap_or(config.atoms);
        config.sigmas = self.sigmas.clone().unwrap_or(config.sigmas);
        config.seed = self.seed.unwrap_or(config.seed);
        config.fixed_thresholds |= self.fixed_thresholds;
        config.images = self.images.clone().or(config.images);
        config.test_images = self.test_images.clone().or(config.test_images);
        config.device = self.device.unwrap_or(config.device);
        Ok(config)
    }

    /// The run directory of a new run.
    fn out(&self, kind: &str) -> PathBuf {
        let seconds = std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_secs());
        let default = format!("runs/{kind}-{}-{seconds}", std::process::id());
        self.out.clone().unwrap_or(default.into())
    }
}

/// The config of the run in `dir`.
fn read_config(dir: &Path) -> Result<DenoiseConfig, Error> {
    DenoiseConfig::from_file(&RunDir::config_file(dir)?)
}

/// A set of images: the folder's, or the bundled ones.
fn images(
    folder: &Option<PathBuf>,
    test: bool,
    config: &DenoiseConfig,
    quiet: bool,
) -> Result<Vec<Image>, Error> {
    let note = |line: String| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    match folder {
        // Training cuts crops; a test image needs only to hold a patch.
        Some(dir) => Image::folder(dir, if test { config.patch } else { config.crop }, &note),
        None => Ok(Image::bundled(test)),
    }
}

/// Trains (or loads) the networks, tests them and writes the results; `false` when stopped.
fn run(cli: &Cli, interrupter: &Interrupter) -> Result<bool, Error> {
    let started = std::time::Instant::now();
    // A new run's config, or that of the run it continues or tests.
    let mut config = match (&cli.resume, &cli.trained) {
        (Some(dir), _) | (_, Some(dir)) => read_config(dir)?,
        (None, None) => cli.config()?,
    };
    config.device = cli.device.unwrap_or(config.device);
    if cli.trained.is_some() {
        config.test_images = cli.test_images.clone().or(config.test_images);
    }
    config.validate()?;
    // The images before the run directory: a bad folder leaves no run behind.
    let test_images = images(&config.test_images, true, &config, cli.quiet)?;
    let training = match cli.trained {
        Some(_) => None,
        None => Some(Arc::new(images(&config.images, false, &config, cli.quiet)?)),
    };
    let device = config.device.open()?;
    let (run, networks) = match (&cli.resume, &cli.trained) {
        (_, Some(trained)) => {
            let load = |(name, soft): &(&str, bool)| {
                let file = trained.join(name).join("model.bpk");
                let network = Denoiser::init(&config, *soft, &device);
                network.try_load_file(&file).map_err(|e| {
                    let reason =
                        format!("cannot be loaded ({e}): pass a finished run to --trained");
                    Error::Images(file, reason)
                })
            };
            let networks = [load(&NETWORKS[0])?, load(&NETWORKS[1])?];
            let run = RunDir::create(&cli.out("image-denoising-test"), &config)?;
            (run, Some(networks))
        }
        (Some(dir), None) => {
            let run = RunDir::open_locked(dir)?;
            if dir.join("results.json").exists() {
                println!("{} is finished: see its results.json", dir.display());
                return Ok(true);
            }
            (run, None)
        }
        (None, None) => (RunDir::create(&cli.out("image-denoising"), &config)?, None),
    };
    let networks = match (networks, training) {
        (Some(networks), _) => networks,
        (None, training) => {
            let training = training.expect("training images for a run that trains");
            if !cli.quiet {
                eprintln!(
                    "image denoising: {} training and {} test images, {}×{} patches, {} atoms, {} \
                     layers, {} steps of {} crops on {}",
                    training.len(),
                    test_images.len(),
                    config.patch,
                    config.patch,
                    config.atoms,
                    config.layers,
                    config.steps,
                    config.batch,
                    config.device.as_str()
                );
            }
            let Some(networks) = train(&config, &run.path, training, interrupter, cli.quiet)?
            else {
                let path = run.path.display();
                eprintln!("training stopped; continue with --resume {path}");
                return Ok(false);
            };
            for (network, (name, _)) in networks.iter().zip(NETWORKS) {
                let file = run.path.join(name).join("model.bpk");
                network
                    .clone()
                    .save_file(&file)
                    .map_err(|e| Error::Training(format!("cannot save {}: {e}", file.display())))?;
            }
            networks
        }
    };
    let networks = networks.map(|n| n.fork(&device));
    let training_seconds = started.elapsed().as_secs_f64();
    let (results, shown) = test(&config, &networks, &test_images, &device, training_seconds);
    let json = serde_json::to_string_pretty(&results).expect("results serialise");
    write_atomic(&run.path.join("results.json"), json.as_bytes())?;
    // A tested run's training curves are those of the run that trained its networks.
    let logs = cli.trained.as_deref().unwrap_or(&run.path);
    plot_run(&run.path, logs, &config, &networks[0], &shown)?;
    println!("{}", results.table());
    if !cli.quiet {
        println!(
            "{:.1} s; results, networks, metric logs and pictures in {}",
            started.elapsed().as_secs_f64(),
            run.path.display()
        );
    }
    Ok(true)
}

fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|e| exit_on(e));
    let interrupter = Interrupter::new();
    match run(&cli, &interrupter) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(130),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// clap's error in one line, exit code 2; help and version print as clap prints them.
fn exit_on(error: clap::Error) -> ! {
    if !error.use_stderr() {
        error.exit();
    }
    let rendered = error.render().to_string();
    let first = rendered.split("\n\n").next().unwrap_or_default();
    eprintln!("{}", first.split_whitespace().collect::<Vec<_>>().join(" "));
    std::process::exit(2)
}
