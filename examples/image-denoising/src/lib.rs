#![warn(missing_docs)]
//! Natural-image denoising with a learned patch dictionary and an unfolded encoder whose layers
//! end in learned hard thresholds, trained with burn-train.
//!
//! Noisy images are cut into overlapping patches; each patch is coded by the encoder, whose `K`
//! layers end in [`burn_hardshrink::LearnedHardshrink`] (a threshold per atom, in units of the
//! noise level), rebuilt from the dictionary, and the image is rebuilt by averaging the overlaps.
//! The same network with soft thresholds is trained beside it, and both are compared with
//! patch-DCT hard thresholding.
//!
//! - [`config`]: the experiment's configuration.
//! - [`images`]: the bundled images or a folder's, patches and PSNR; [`dct`]: the DCT baseline
//!   and the dictionary's start.
//! - [`model`]: the denoiser and its training and validation steps; [`data`]: burn-train's data
//!   loaders.
//! - [`training`]: the training recipe, as burn-train launches.
//! - [`evaluate`], [`plot`]: the test, its table and `results.json`, and the pictures; [`error`].

pub mod config;
pub mod data;
pub mod dct;
pub mod error;
pub mod evaluate;
pub mod images;
pub mod model;
pub mod plot;
pub mod training;
