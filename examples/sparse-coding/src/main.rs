//! Command line of the sparse-coding example; everything else lives in the library.

use burn_hardshrink::DeviceName;
use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use sparse_coding::config::{Estimator, LossPlacement, Training, Weights};
use sparse_coding::{Error, Outcome, Preset, RunConfig, RunOptions, resume, run};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Learned iterative hard thresholding against its soft-threshold twin (LISTA-CP), ISTA, FISTA
/// and IHT on synthetic sparse codes.
///
/// Options override the preset and `--config`'s file (which may not set the same fields), which
/// override the defaults. A run writes its config, checkpoints, metric logs, results and plots
/// to `--out`. On a terminal it shows burn-train's dashboard; into a file or pipe, plain
/// progress lines.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Device to train on.
    #[arg(long, value_enum)]
    device: Option<DeviceName>,
    /// Train data-parallel on these devices (comma-separated), each on an equal share of
    /// every batch.
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "device")]
    devices: Option<Vec<DeviceName>>,
    /// Problem size, budget and recipe: default (m = 64, n = 128, 16 000 steps) or large
    /// (m = 250, n = 500, 4 800 steps, with momentum).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Training steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Layers of the network (and iterations of each baseline).
    #[arg(long)]
    layers: Option<usize>,
    /// Measurement SNR in dB (default: noiseless); may be negative.
    #[arg(long, allow_negative_numbers = true)]
    snr: Option<f64>,
    /// Seed of the dictionary and the training data.
    #[arg(long)]
    seed: Option<u64>,
    /// Keep learned IHT's thresholds at 0.5·0.8^k instead of learning them (the soft twin
    /// still learns its own).
    #[arg(long)]
    fixed_thresholds: bool,
    /// Layer weights: analytic (ALISTA's W with a learned step per layer) or free (LISTA-CP).
    #[arg(long, value_enum)]
    weights: Option<Weights>,
    /// Training: end-to-end, or stage-wise (one layer more per stage).
    #[arg(long, value_enum)]
    training: Option<Training>,
    /// Loss: at the last layer, or averaged over layers.
    #[arg(long, value_enum)]
    loss: Option<LossPlacement>,
    /// Pseudo-gradient of the hard thresholds.
    #[arg(long, value_enum)]
    estimator: Option<Estimator>,
    /// A JSON config file (fields as in a run's config.json).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Continue the run in DIR from its newest checkpoint (only --device and --quiet may be
    /// given too).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "steps", "layers", "snr", "seed", "fixed_thresholds", "weights", "training", "loss", "estimator", "config", "out", "devices"])]
    resume: Option<PathBuf>,
    /// Run directory (default: runs/sparse-coding-<date>-<time>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the final table (and errors).
    #[arg(long)]
    quiet: bool,
}

fn build_config(cli: &Cli) -> Result<RunConfig, Error> {
    let mut config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
            if let Some(preset) = cli.preset {
                preset.check_file(&text, path)?;
            }
            RunConfig::from_json(&text, path)?
        }
        None => RunConfig::default(),
    };
    if let Some(preset) = cli.preset {
        preset.apply(&mut config);
    }
    config.steps = cli.steps.unwrap_or(config.steps);
    config.layers = cli.layers.unwrap_or(config.layers);
    config.snr_db = cli.snr.or(config.snr_db);
    config.seed = cli.seed.unwrap_or(config.seed);
    config.fixed_thresholds |= cli.fixed_thresholds;
    config.weights = cli.weights.unwrap_or(config.weights);
    config.training = cli.training.unwrap_or(config.training);
    config.loss = cli.loss.unwrap_or(config.loss);
    config.estimator = cli.estimator.unwrap_or(config.estimator);
    if let Some(device) = cli.device {
        config.train_on(device);
    }
    if let Some(devices) = &cli.devices {
        config.devices = devices.clone();
    }
    Ok(config)
}

/// `runs/sparse-coding-YYYYMMDD-HHMMSS` (UTC).
fn default_out() -> PathBuf {
    let now = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    PathBuf::from(format!("runs/sparse-coding-{now}"))
}

/// clap's error on one line: its first line, plus the accepted values when it lists them.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match error.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(values)) => {
            format!("{first} (expected one of {})", values.join(", "))
        }
        _ => first.to_string(),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let options = RunOptions {
        quiet: cli.quiet,
        stop_after_epochs: None,
    };
    let result = match &cli.resume {
        Some(dir) => resume(dir, cli.device, &options).map(|o| (o, dir.clone())),
        None => build_config(&cli).and_then(|config| {
            let out = cli.out.clone().unwrap_or_else(default_out);
            run(&config, &out, &options).map(|o| (o, out))
        }),
    };
    match result {
        Ok((Outcome::Finished(results), out)) => {
            println!("{}", results.table());
            if !cli.quiet {
                println!(
                    "wall time {:.1} s; results, metrics, checkpoints and plots in {}",
                    results.wall_seconds,
                    out.display()
                );
            }
            ExitCode::SUCCESS
        }
        Ok((Outcome::Stopped, out)) => {
            println!("training stopped; continue with --resume {}", out.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
