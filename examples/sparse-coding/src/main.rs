//! The command line: a new run (a preset, a config file and options) or `--resume DIR`.

use burn::train::{ApplicationLoggerInstaller, FileApplicationLoggerInstaller, Interrupter};
use burn_hardshrink::{DeviceName, ThresholdEstimator};
use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
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
use std::sync::atomic::{AtomicI32, Ordering};

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
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Problem size, budget and recipe: default (m = 64, n = 128, 16 000 steps) or large
    /// (m = 250, n = 500, 4 800 steps, with momentum).
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
    /// Where to train; several devices (cpu,cpu) train data-parallel.
    #[arg(long, alias = "device", value_enum, value_delimiter = ',')]
    devices: Option<Vec<DeviceName>>,
    /// Continue the run in DIR from its newest checkpoint (with --devices and --quiet only).
    #[arg(long, value_name = "DIR", conflicts_with_all = [
        "preset", "config", "steps", "layers", "snr", "seed", "fixed_thresholds", "weights",
        "training", "loss", "estimator", "out",
    ])]
    resume: Option<PathBuf>,
    /// Run directory (default: runs/sparse-coding-<date>-<time>-<process id>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print only the final table, and errors.
    #[arg(long)]
    quiet: bool,
}

impl Cli {
    /// The preset, then the file, then the options.
    fn config(&self) -> Result<ExperimentConfig, Error> {
        let preset = self.preset.unwrap_or(Preset::Default);
        let mut config = preset.config();
        if let Some(file) = &self.config {
            config = config.merge_file(file, self.preset)?;
        }
        config.steps = self.steps.unwrap_or(config.steps);
        config.layers = self.layers.unwrap_or(config.layers);
        config.snr_db = self.snr.or(config.snr_db);
        config.seed = self.seed.unwrap_or(config.seed);
        config.fixed_thresholds |= self.fixed_thresholds;
        config.weights = self.weights.unwrap_or(config.weights);
        config.training = self.training.unwrap_or(config.training);
        config.loss = self.loss.unwrap_or(config.loss);
        config.devices = self.devices.clone().unwrap_or(config.devices);
        config.estimator = match (self.estimator.as_deref(), config.estimator) {
            (Some("straight-through"), _) => ThresholdEstimator::StraightThrough,
            (Some(_), ThresholdEstimator::StraightThrough) => preset.config().estimator,
            (_, estimator) => estimator,
        };
        Ok(config)
    }
}

/// The run to train: a new one, or the one `--resume` names; `None` when that one is finished.
fn open_run(cli: &Cli) -> Result<Option<(RunDir, ExperimentConfig)>, Error> {
    let Some(dir) = &cli.resume else {
        let config = cli.config()?;
        config.validate()?;
        let now = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let default = format!("runs/sparse-coding-{now}-{}", std::process::id());
        let run = RunDir::create(cli.out.as_ref().unwrap_or(&default.into()), &config)?;
        return Ok(Some((run, config)));
    };
    let (run, mut config) = RunDir::open(dir)?;
    let results = dir.join("results.json");
    if results.exists() {
        println!(
            "{} is finished: its results are in {}",
            dir.display(),
            results.display()
        );
        return Ok(None);
    }
    config.devices = cli.devices.clone().unwrap_or(config.devices);
    config.validate()?;
    Ok(Some((run, config)))
}

/// Scores the trained networks and writes the results and the charts.
fn report(
    cli: &Cli,
    run: &RunDir,
    config: &ExperimentConfig,
    problem: &Problem,
    trained: Trained,
) -> Result<(), Error> {
    let Trained::Finished(networks, clock) = trained else {
        unreachable!("a finished run")
    };
    let results = Results::of(config, problem, networks, clock.seconds(), || {
        clock.seconds()
    })?;
    let json = serde_json::to_string_pretty(&results).expect("results serialise");
    write_atomic(&run.path.join("results.json"), json.as_bytes())?;
    plot_run(&run.path, config, &results)?;
    println!("{}", results.table());
    if !cli.quiet {
        let (seconds, dir) = (results.wall_seconds, run.path.display());
        println!("wall time {seconds:.1} s; results, metric logs, checkpoints and charts in {dir}");
    }
    Ok(())
}

/// clap's error on one line: its first line, plus the accepted values when it has them.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default().trim();
    let first = first.strip_prefix("error: ").unwrap_or(first).to_string();
    match error.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(values)) if !values.is_empty() => {
            format!("{first} (expected one of {})", values.join(", "))
        }
        _ => first,
    }
}

/// Ctrl-C and SIGTERM stop training as the dashboard's quit does, at the last checkpoint; the
/// signal received is returned. The dashboard puts the terminal in raw mode, where Ctrl-C is a key
/// it ignores: the same thread turns the terminal's signal keys back on.
#[cfg(unix)]
fn stop_on_signals(interrupter: &Interrupter) -> Arc<AtomicI32> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let received = Arc::new(AtomicI32::new(0));
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).expect("signal handlers");
    let (interrupter, slot) = (interrupter.clone(), received.clone());
    std::thread::spawn(move || {
        loop {
            for signal in signals.pending() {
                slot.store(signal, Ordering::SeqCst);
                interrupter.stop(Some("stopped by a signal"));
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
    received
}

#[cfg(not(unix))]
fn stop_on_signals(_: &Interrupter) -> Arc<AtomicI32> {
    Arc::default()
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
    let interrupter = Interrupter::new();
    let signal = stop_on_signals(&interrupter);
    let fail = |error: Error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    };
    let (run, config) = match open_run(&cli) {
        Ok(Some(opened)) => opened,
        Ok(None) => return ExitCode::SUCCESS,
        Err(error) => return fail(error),
    };
    // burn-train's log, one for the run.
    let _ = FileApplicationLoggerInstaller::new(run.path.join("experiment.log")).install();
    // burn-train's threads panic on a fault they meet (its metric logs on a full disk): one line
    // here, and the run ends at its last checkpoint.
    let dir = run.path.clone();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload_as_str()
            .unwrap_or("a fault")
            .replace('\n', " ");
        eprintln!("error: {message}; continue with --resume {}", dir.display());
        std::process::exit(2);
    }));
    let problem = Arc::new(Problem::new(&config));
    if !cli.quiet {
        let devices: Vec<_> = config.devices.iter().map(|d| d.as_str()).collect();
        eprintln!(
            "sparse coding: m = {}, n = {}, {} layers, {} steps of {} on {} (L = {:.3})",
            config.m,
            config.n,
            config.layers,
            config.steps,
            config.batch,
            devices.join(", "),
            problem.lipschitz
        );
    }
    let trained = training::train(&config, &run, &problem, &interrupter, cli.quiet);
    // A stop while training or scoring ends the run at its last checkpoint.
    let outcome = trained.and_then(|trained| match trained {
        Trained::Stopped => Ok(true),
        finished => report(&cli, &run, &config, &problem, finished).map(|()| false),
    });
    match outcome {
        Ok(false) if interrupter.get_message().is_none() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!(
                "training stopped; continue with --resume {}",
                run.path.display()
            );
            // 128 + the signal, as a shell reports it; SIGINT's for the dashboard's quit.
            let signal = signal.load(Ordering::SeqCst);
            ExitCode::from(128 + if signal == 0 { 2 } else { signal as u8 })
        }
        Err(error) => fail(error),
    }
}
