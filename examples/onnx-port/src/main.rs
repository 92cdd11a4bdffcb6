//! `onnx-port export DIR [--pytorch FILE]`: the demo model (or the network with PyTorch's
//! weights) to ONNX, with its input and Burn's output.
//! `onnx-port load FILE`: a PyTorch `state_dict` into the Burn network.

use burn::prelude::*;
use clap::{Parser, Subcommand};
use onnx_port::demo::{self, Demo};
use onnx_port::net::{self, Net, NetConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "A model with Hardshrink between PyTorch, ONNX and Burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write DIR/model.onnx (both activations), DIR/input.npy and DIR/burn_output.npy.
    Export {
        dir: PathBuf,
        /// Export the network with this PyTorch state_dict's weights instead of the demo.
        #[arg(long, value_name = "FILE")]
        pytorch: Option<PathBuf>,
    },
    /// Load a PyTorch state_dict of `Net` (models/make_models.py) and print its thresholds.
    Load { file: PathBuf },
}

fn main() -> ExitCode {
    let device = Device::flex();
    let outcome = match Cli::parse().command {
        Command::Export { dir, pytorch } => match pytorch {
            None => demo::export(
                &dir,
                &Demo::new(&device),
                demo::sample_input(&device),
                Demo::forward,
            ),
            Some(file) => NetConfig::new()
                .init(&device)
                .load_pytorch(&file)
                .and_then(|net| demo::export(&dir, &net, net::sample_input(&device), Net::forward)),
        }
        .map(|nodes| {
            println!(
                "wrote {}: {}",
                dir.join("model.onnx").display(),
                nodes.join(", ")
            );
            println!(
                "check it: python3 examples/onnx-port/check_export.py {}",
                dir.display()
            );
        }),
        Command::Load { file } => NetConfig::new()
            .init(&device)
            .load_pytorch(&file)
            .map(|net| {
                let lambd = net.thresholds().into_data();
                println!("loaded {}; learned thresholds {lambd}", file.display());
            }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}
