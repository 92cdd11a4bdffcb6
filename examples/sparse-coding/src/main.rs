//! Command line of the sparse-coding example; everything else lives in the library.

use clap::Parser;
use sparse_coding::{Error, Outcome, Preset, RunConfig, RunOptions, resume, run};
use std::path::PathBuf;
use std::process::ExitCode;

/// Learned iterative hard thresholding against ISTA, FISTA and IHT on synthetic sparse codes.
///
/// Options override the preset, which overrides `--config`'s file, which overrides the
/// defaults. A run writes its config, checkpoints, metrics, results and plots to `--out`.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Device: cpu, flex, ndarray (GPU names where built in).
    #[arg(long)]
    device: Option<String>,
    /// Problem size: default (m = 64, n = 128) or large (m = 250, n = 500).
    #[arg(long)]
    preset: Option<String>,
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
    /// Keep the thresholds at 0.5·0.8^k instead of learning them.
    #[arg(long)]
    fixed_thresholds: bool,
    /// A JSON config file (fields as in a run's config.json).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Continue the run in DIR from its newest checkpoint (only --device may be given too).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["preset", "steps", "layers", "snr", "seed", "fixed_thresholds", "config", "out"])]
    resume: Option<PathBuf>,
    /// Run directory (default: runs/sparse-coding-<date>-<time>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn build_config(cli: &Cli) -> Result<RunConfig, Error> {
    let mut config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
            RunConfig::from_json(&text, &path.display().to_string())?
        }
        None => RunConfig::default(),
    };
    if let Some(name) = &cli.preset {
        Preset::from_name(name)?.apply(&mut config);
    }
    if let Some(steps) = cli.steps {
        config.steps = steps;
    }
    if let Some(layers) = cli.layers {
        config.layers = layers;
    }
    if cli.snr.is_some() {
        config.snr_db = cli.snr;
    }
    if let Some(seed) = cli.seed {
        config.seed = seed;
    }
    if cli.fixed_thresholds {
        config.fixed_thresholds = true;
    }
    if let Some(device) = &cli.device {
        config.device = device.clone();
    }
    Ok(config)
}

/// `runs/sparse-coding-YYYYMMDD-HHMMSS` (UTC).
fn default_out() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    PathBuf::from(format!(
        "runs/sparse-coding-{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = RunOptions {
        progress: !cli.quiet,
        stop_after: None,
    };
    let result = match &cli.resume {
        Some(dir) => resume(dir, cli.device.as_deref(), &options).map(|o| (o, dir.clone())),
        None => build_config(&cli).and_then(|config| {
            let out = cli.out.clone().unwrap_or_else(default_out);
            run(&config, &out, &options).map(|o| (o, out))
        }),
    };
    match result {
        Ok((Outcome::Finished(results), out)) => {
            println!("{}", results.table());
            println!(
                "wall time {:.1} s; results, metrics, checkpoints and plots in {}",
                results.wall_seconds,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Ok((Outcome::Stopped(step), out)) => {
            println!(
                "stopped after step {step}; continue with --resume {}",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
