//! The command line: a new run (a preset, a config file and options) or `--resume DIR`.

use burn::train::{ApplicationLoggerInstaller, FileApplicationLoggerInstaller, Interrupter};
use burn_hardshrink::{DeviceName, ThresholdEstimator};
use clap::{Args, Parser};
use sparse_coding::config::{ExperimentConfig, LossPlacement, Preset, Training, Weights};
use sparse_coding::error::Error;
use sparse_coding::evaluate::Results;
use sparse_coding::plot::plot_run;
use sparse_coding::problem::Problem;
use sparse_coding::run_dir::{RunDir, write_atomic};
use sparse_coding::training::{self, Trained};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

// Many small tensors per step: mimalloc took a quarter off the default run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Learned iterative hard thresholding against its soft-threshold twin (LISTA-CP), ISTA, FISTA and
/// IHT on synthetic sparse codes.
///
/// Options override `--config`'s file, which overrides the preset. A run writes its config,
/// checkpoints, metric logs, results and charts to its directory. On a terminal it shows
/// burn-train's dashboard, elsewhere a line per epoch. Exit codes: 0 done, 2 error, 130 stopped
/// (Ctrl-C or the dashboard's quit), 143 stopped by SIGTERM; a stopped run continues with
/// `--resume`.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    new: NewRun,
    /// Where to train; several devices (cpu,cpu) train data-parallel.
    #[arg(long, alias = "device", value_enum, value_delimiter = ',')]
    devices: Option<Vec<DeviceName>>,
    /// Continue the run in DIR from its newest checkpoint (with --devices and --quiet only).
    // Listed rather than `conflicts_with = "NewRun"`: a conflict with the group names all of it.
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "preset", "config", "steps", "layers", "snr", "seed", "fixed_thresholds", "weights",
        "training", "loss", "estimator", "out",
    ])]
    resume: Option<PathBuf>,
    /// Print only the final table, and errors.
    #[arg(long)]
    quiet: bool,
}

/// What only a new run takes: its configuration and its directory.
#[derive(Args)]
struct NewRun {
    /// Problem size, budget and recipe: default (m = 64, n = 128, 16 000 steps) or large
    /// (m = 250, n = 500, 4 800 steps, with momentum and training densities spread ±30%).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// A JSON file of config fields, as in a run's config.json.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Training steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Layers of the networks (and iterations of each baseline).
    #[arg(long)]
    layers: Option<usize>,
    /// Measurement SNR in dB (default: noiseless).
    #[arg(long, allow_hyphen_values = true)]
    snr: Option<f64>,
    /// Seed of the dictionary and the training data.
    #[arg(long)]
    seed: Option<u64>,
    /// Keep learned IHT's thresholds at 0.5·0.8^k (the twin still learns its own).
    #[arg(long)]
    fixed_thresholds: bool,
    /// Layer weights: analytic (ALISTA's W with a learned step) or free (LISTA-CP).
    #[arg(long, value_enum)]
    weights: Option<Weights>,
    /// End to end, or stage-wise (one layer more per stage).
    #[arg(long, value_enum)]
    training: Option<Training>,
    /// The loss: at the last layer, or averaged over layers.
    #[arg(long, value_enum)]
    loss: Option<LossPlacement>,
    /// Pseudo-gradient of learned IHT's thresholds: kernel (a kernel's window from the file or
    /// the preset) or straight-through.
    #[arg(long, value_parser = ["kernel", "straight-through"])]
    estimator: Option<String>,
    /// Run directory (default: runs/sparse-coding-<date>-<time>-<process id>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Cli {
    /// A new run's configuration: the preset, then the file, then the options.
    fn config(&self) -> Result<ExperimentConfig, Error> {
        let new = &self.new;
        let preset = new.preset.unwrap_or(Preset::Default);
        let mut config = preset.config();
        if let Some(file) = &new.config {
            config = config.merge_file(file, new.preset)?;
        }
        config.steps = new.steps.unwrap_or(config.steps);
        config.layers = new.layers.unwrap_or(config.layers);
        config.snr_db = new.snr.or(config.snr_db);
        config.seed = new.seed.unwrap_or(config.seed);
        config.fixed_thresholds |= new.fixed_thresholds;
        config.weights = new.weights.unwrap_or(config.weights);
        config.training = new.training.unwrap_or(config.training);
        config.loss = new.loss.unwrap_or(config.loss);
        config.devices = self.devices.clone().unwrap_or(config.devices);
        config.estimator = match (new.estimator.as_deref(), config.estimator) {
            (Some("straight-through"), _) => ThresholdEstimator::StraightThrough,
            (Some(_), ThresholdEstimator::StraightThrough) => preset.config().estimator,
            (_, estimator) => estimator,
        };
        Ok(config)
    }
}

/// Trains the run the command line names, then scores the networks and writes the results and
/// the charts; `false` when stopped before the end.
fn run(cli: &Cli, interrupter: &Interrupter) -> Result<bool, Error> {
    let (run, config) = match &cli.resume {
        Some(dir) => {
            let run = RunDir::open_locked(dir)?;
            let mut config = ExperimentConfig::new().merge_file(&dir.join("config.json"), None)?;
            if dir.join("results.json").exists() {
                println!("{} is finished: see its results.json", dir.display());
                return Ok(true);
            }
            config.devices = cli.devices.clone().unwrap_or(config.devices);
            config.validate()?;
            (run, config)
        }
        None => {
            let config = cli.config()?;
            config.validate()?;
            let now = chrono::Local::now().format("%Y%m%d-%H%M%S");
            let default = format!("runs/sparse-coding-{now}-{}", std::process::id());
            let out = cli.new.out.clone().unwrap_or(default.into());
            (RunDir::create(&out, &config)?, config)
        }
    };
    // burn-train's log, one for the run.
    let _ = FileApplicationLoggerInstaller::new(run.path.join("experiment.log")).install();
    let resume = format!("continue with --resume {}", run.path.display());
    // burn-train's threads panic on a fault they meet (its metric logs on a full disk): one line
    // here, and the run ends at its last checkpoint.
    let hint = resume.clone();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("a fault");
        eprintln!("error: {}; {hint}", message.replace('\n', " "));
        std::process::exit(2);
    }));
    let problem = Arc::new(Problem::new(&config));
    if !cli.quiet {
        let ExperimentConfig { m, n, layers, .. } = config;
        let devices: Vec<_> = config.devices.iter().map(|d| d.as_str()).collect();
        eprintln!(
            "sparse coding: m = {m}, n = {n}, {layers} layers, {} steps of {} on {} (L = {:.3})",
            config.steps,
            config.batch,
            devices.join(", "),
            problem.lipschitz
        );
    }
    let Trained::Finished(networks, clock) =
        training::train(&config, &run, &problem, interrupter, cli.quiet)?
    else {
        eprintln!("training stopped; {resume}");
        return Ok(false);
    };
    // Scoring takes seconds and is not stopped: a stop that comes now ends a finished run.
    let results = Results::of(&config, &problem, networks, clock)?;
    let json = serde_json::to_string_pretty(&results).expect("results serialise");
    write_atomic(&run.path.join("results.json"), json.as_bytes())?;
    plot_run(&run.path, &config, &results)?;
    println!("{}", results.table());
    if !cli.quiet {
        println!(
            "wall time {:.1} s; results, metric logs, checkpoints and charts in {}",
            results.wall_seconds,
            run.path.display()
        );
    }
    Ok(true)
}

/// clap's error in one line (its first paragraph: the problem, and the accepted values when it
/// has them), exit code 2; help and version print as clap prints them.
fn exit_on(error: clap::Error) -> ! {
    if !error.use_stderr() {
        error.exit();
    }
    let rendered = error.render().to_string();
    let first = rendered.split("\n\n").next().unwrap_or_default();
    let words: Vec<_> = first.split_whitespace().collect();
    eprintln!("{}", words.join(" "));
    std::process::exit(2)
}

/// Ctrl-C and SIGTERM stop training as the dashboard's quit does, at the last checkpoint, with the
/// signal's name as the stop's message. The dashboard puts the terminal in raw mode, where Ctrl-C
/// is a key it ignores: the same thread turns the terminal's signal keys back on.
#[cfg(unix)]
fn stop_on_signals(interrupter: Interrupter) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).expect("signal handlers");
    std::thread::spawn(move || {
        loop {
            for signal in signals.pending() {
                interrupter.stop(signal_hook::low_level::signal_name(signal));
            }
            // SAFETY: `termios` is plain data, filled by `tcgetattr` before it is read.
            unsafe {
                let mut terminal: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(libc::STDIN_FILENO, &mut terminal) == 0
                    && terminal.c_lflag & libc::ISIG == 0
                {
                    terminal.c_lflag |= libc::ISIG;
                    libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &terminal);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
}

fn main() -> ExitCode {
    let cli = Cli::try_parse().unwrap_or_else(|e| exit_on(e));
    let interrupter = Interrupter::new();
    #[cfg(unix)]
    stop_on_signals(interrupter.clone());
    match run(&cli, &interrupter) {
        Ok(true) => ExitCode::SUCCESS,
        // 128 + the signal, as a shell reports it; SIGINT's for the dashboard's quit.
        Ok(false) => match interrupter.get_message().as_deref() {
            Some("SIGTERM") => ExitCode::from(143),
            _ => ExitCode::from(130),
        },
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_new_run_option_conflicts_with_resume() {
        let command = Cli::command();
        let resume = command.get_arguments().find(|a| a.get_id() == "resume");
        let conflicts = command.get_arg_conflicts_with(resume.unwrap());
        for option in NewRun::augment_args(clap::Command::new("new")).get_arguments() {
            let listed = conflicts.iter().any(|c| c.get_id() == option.get_id());
            assert!(listed, "--resume does not refuse `{}`", option.get_id());
        }
    }
}
