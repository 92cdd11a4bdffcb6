//! The example as a user runs it, through its binary: a short run denoises; a run killed with
//! SIGKILL, its newest checkpoint cut short, resumes to the numbers of a run never stopped; a
//! finished run's networks test a new folder without training; bad input gets one line and exit
//! code 2.

use image_denoising::config::DenoiseConfig;
use image_denoising::evaluate::Results;
use image_denoising::images::Image;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_image-denoising");

/// A fresh, empty path for one test.
fn scratch(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("image-denoising-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    path
}

/// A folder of two small test images, 40 × 48 crops of the bundled ones (a debug build tests
/// them in seconds).
fn small_test_images(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for image in Image::bundled(true) {
        let (width, height) = (48, 40);
        let pixels = (0..height)
            .flat_map(|r| (0..width).map(move |c| (r + 100, c + 100)))
            .map(|(r, c)| image.pixels[r * image.width + c] as u8)
            .collect();
        let gray = image::GrayImage::from_raw(width as u32, height as u32, pixels).unwrap();
        gray.save(dir.join(format!("{}.png", image.name))).unwrap();
    }
    dir.to_path_buf()
}

/// A configuration a debug build trains in seconds: 3 layers, 64 atoms, 120 steps of 4 crops in
/// epochs of 30.
fn small(test_images: PathBuf) -> DenoiseConfig {
    DenoiseConfig::new()
        .with_layers(3)
        .with_atoms(64)
        .with_steps(120)
        .with_batch(4)
        .with_checkpoint_every(30)
        .with_test_images(Some(test_images))
}

fn command(args: &[&str], paths: &[&Path]) -> Command {
    let mut command = Command::new(BINARY);
    command.arg("--quiet").args(args).args(paths);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Runs the binary to its end: its output.
fn run(args: &[&str], paths: &[&Path]) -> Output {
    command(args, paths).output().unwrap()
}

/// A new run of `config` in `out`, its config written beside it.
fn new_run(config: &DenoiseConfig, out: &Path) -> Command {
    let file = out.with_extension("json");
    std::fs::write(&file, config.to_string()).unwrap();
    let mut command = command(&["--config"], &[&file]);
    command.arg("--out").arg(out);
    command
}

fn results(out: &Path) -> Results {
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `results` without the wall times, which differ from run to run.
fn scores(mut results: Results) -> Results {
    (results.training_seconds, results.test_seconds) = (0.0, 0.0);
    results
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_killed_run_resumes_to_the_numbers_of_one_never_stopped() {
    let root = scratch("resume");
    let config = small(small_test_images(&root.join("test-images")));
    let whole = root.join("whole");
    let output = new_run(&config, &whole).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let finished = results(&whole);
    // Every σ has every method; the networks denoise (the noisy input is ~20 dB at σ = 25).
    assert_eq!(finished.images, ["camera", "coffee"]);
    for methods in finished.sigmas.values() {
        assert_eq!(methods.len(), 4);
    }
    let at_25 = &finished.sigmas["25"];
    for method in ["learned_iht", "learned_ista", "dct"] {
        assert!(
            at_25[method].mean_psnr > at_25["noisy"].mean_psnr + 4.0,
            "{method}"
        );
    }
    for picture in ["atoms.png", "denoised.png", "training.png"] {
        assert!(whole.join(picture).is_file(), "{picture}");
    }

    // Killed once learned IHT has checkpointed its second epoch, then its newest checkpoint
    // cut short, as a kill during a save leaves it.
    let killed = root.join("killed");
    let mut child = new_run(&config, &killed).spawn().unwrap();
    let checkpoints = killed.join("learned-iht").join("checkpoint");
    let started = Instant::now();
    while !checkpoints.join("scheduler-2.bpk").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no checkpoint of epoch 2"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("results.json").exists(),
        "the run finished before the kill"
    );
    let newest = (1..=4)
        .rev()
        .find(|e| checkpoints.join(format!("model-{e}.bpk")).exists());
    let newest = checkpoints.join(format!("model-{}.bpk", newest.unwrap()));
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let resumed = command(&["--resume"], &[&killed]).output().unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let note = stderr(&resumed);
    assert!(
        note.contains("does not load (cut short?); passing it over"),
        "{note}"
    );
    assert_eq!(scores(results(&killed)), scores(finished.clone()));

    // The finished run's networks test a folder they have never seen, without training: on the
    // same images, the same numbers.
    let tested = root.join("tested");
    let output = run(&["--trained"], &[&whole, Path::new("--out"), &tested]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(scores(results(&tested)).sigmas, finished.sigmas);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    let root = scratch("bad-input");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not an image").unwrap();
    let tiny = root.join("tiny");
    std::fs::create_dir_all(&tiny).unwrap();
    image::GrayImage::new(5, 30)
        .save(tiny.join("tiny.png"))
        .unwrap();
    // 12 pixels: holds a patch, but not a training crop.
    let small = root.join("small");
    std::fs::create_dir_all(&small).unwrap();
    image::GrayImage::new(12, 12)
        .save(small.join("small.png"))
        .unwrap();
    let big_crop = root.join("big-crop.json");
    std::fs::write(&big_crop, r#"{"crop": 300}"#).unwrap();
    let out = root.join("out");
    let cases: [(&[&str], &[&Path], &str); 7] = [
        (
            &["--images"],
            &[&empty],
            "holds no readable PNG or JPEG image",
        ),
        (&["--test-images"], &[&tiny], "smaller than"),
        (&["--images"], &[&small], "smaller than 16×16"),
        (&["--config"], &[&big_crop], "invalid `crop` = 300"),
        (&["--atoms", "200"], &[], "invalid `atoms` = 200"),
        (&["--sigmas", "0"], &[], "invalid `sigmas`"),
        (&["--resume"], &[&empty], "holds no run"),
    ];
    for (args, paths, expected) in cases {
        let mut command = command(args, paths);
        if args[0] != "--resume" {
            command.arg("--out").arg(&out);
        }
        let output = command.output().unwrap();
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert_eq!(message.lines().count(), 1, "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        // Refused before a run directory exists: the same `--out` is free for the next try.
        assert!(!out.exists(), "{args:?} left a run behind");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A run's networks denoise on the GPU (wgpu: lavapipe in CI) as on the CPU.
#[test]
#[cfg_attr(
    not(gpu_tests),
    ignore = "no GPU driver was found when the tests were built"
)]
fn trained_networks_denoise_on_the_gpu_as_on_the_cpu() {
    let root = scratch("gpu");
    let config = small(small_test_images(&root.join("test-images"))).with_steps(30);
    let trained = root.join("trained");
    let output = new_run(&config, &trained).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let on_gpu = root.join("on-gpu");
    let output = run(
        &["--device", "wgpu", "--trained"],
        &[&trained, Path::new("--out"), &on_gpu],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let (cpu, gpu) = (results(&trained), results(&on_gpu));
    for (sigma, methods) in &cpu.sigmas {
        for (method, scores) in methods {
            let other = &gpu.sigmas[sigma][method];
            let gap = (scores.mean_psnr - other.mean_psnr).abs();
            assert!(
                gap < 0.01,
                "σ = {sigma}, {method}: cpu {} dB, gpu {} dB",
                scores.mean_psnr,
                other.mean_psnr
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
