"""The example's peers on the same images, run by hand (never by CI):

- scikit-learn's MiniBatchDictionaryLearning (256 atoms, learned on clean 8×8 training patches,
  means removed) with OMP coding of every noisy test patch to the error K-SVD denoising uses,
  ‖y − Dz‖² ≤ 64·(1.15σ)², overlaps averaged;
- patch-DCT hard thresholding at 2.7σ, the same algorithm as the example's baseline (a check of
  its numbers);
- BM3D (`pip install bm3d`), the ceiling.

    pip install numpy scikit-learn scikit-image bm3d
    python3 examples/image-denoising/compare.py [--images DIR] [--test-images DIR]

The noise is numpy's (seed 1), not the example's ChaCha stream: PSNRs of the same method differ
by about 0.02 dB between the two.
"""

import argparse
import glob
import json
import os
import time

import numpy as np
from skimage import io
from skimage.color import rgb2gray
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.feature_extraction.image import extract_patches_2d, reconstruct_from_patches_2d
from sklearn.linear_model import orthogonal_mp_gram

ALPHA = float(os.environ.get("ALPHA", "1.0"))
ITERATIONS = int(os.environ.get("ITERATIONS", "20"))
HERE = os.path.dirname(os.path.abspath(__file__))
P = 8


def load(folder):
    images = {}
    for file in sorted(glob.glob(os.path.join(folder, "*"))):
        if os.path.splitext(file)[1].lower() not in (".png", ".jpg", ".jpeg"):
            continue
        image = io.imread(file)
        if image.dtype == np.uint16:
            image = np.round(image / 257.0)
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            image = np.round(rgb2gray(image[..., :3].astype(np.float64) / 255.0) * 255)
        elif image.ndim == 3:
            image = image[..., 0]  # gray and alpha
        images[os.path.splitext(os.path.basename(file))[0]] = image.astype(np.float64)
    return images


def psnr(clean, estimate, clip=True):
    # Denoised images are clipped to 0-255, as the example clips them; the noisy input is not.
    estimate = np.clip(estimate, 0, 255) if clip else estimate
    return 10 * np.log10(255.0**2 / np.mean((clean - estimate) ** 2))


def dct_basis(n=P):
    k = np.arange(n)
    c = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    c[0] /= np.sqrt(2)
    c *= np.sqrt(2 / n)
    return np.kron(c, c)


def dct_denoise(noisy, sigma):
    patches = extract_patches_2d(noisy, (P, P)).reshape(-1, P * P)
    basis = dct_basis()
    coefficients = patches @ basis.T
    keep = np.abs(coefficients) > 2.7 * sigma
    keep[:, 0] = True
    out = (coefficients * keep) @ basis
    # The constant coefficient (the mean) is always kept and not counted, as in the example.
    return reconstruct_from_patches_2d(out.reshape(-1, P, P), noisy.shape), keep[:, 1:].sum(1).mean()


def omp_denoise(noisy, sigma, dictionary):
    patches = extract_patches_2d(noisy, (P, P)).reshape(-1, P * P)
    mean = patches.mean(1, keepdims=True)
    y = patches - mean
    gram = dictionary @ dictionary.T
    tol = P * P * (1.15 * sigma) ** 2
    codes = np.empty((y.shape[0], dictionary.shape[0]))
    for start in range(0, y.shape[0], 4096):
        block = y[start : start + 4096]
        codes[start : start + 4096] = orthogonal_mp_gram(
            gram, dictionary @ block.T, tol=tol, norms_squared=(block**2).sum(1)
        ).T
    out = codes @ dictionary + mean
    return reconstruct_from_patches_2d(out.reshape(-1, P, P), noisy.shape), (codes != 0).sum(1).mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", default=os.path.join(HERE, "images", "train"))
    parser.add_argument("--test-images", default=os.path.join(HERE, "images", "test"))
    parser.add_argument("--sigmas", default="15,25,50")
    args = parser.parse_args()
    train, test = load(args.images), load(args.test_images)
    patches = np.concatenate([extract_patches_2d(im, (P, P), max_patches=20000, random_state=0) for im in train.values()])
    patches = patches.reshape(len(patches), -1)
    patches -= patches.mean(1, keepdims=True)
    started = time.time()
    # As scikit-learn's own denoising example: patches scaled to unit variance, alpha = 1.
    learner = MiniBatchDictionaryLearning(
        n_components=256, alpha=ALPHA, batch_size=256, max_iter=ITERATIONS, random_state=0
    )
    dictionary = learner.fit(patches / patches.std()).components_
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    learn_seconds = time.time() - started
    print(f"dictionary learned on {len(patches)} patches in {learn_seconds:.1f} s")
    noise = np.random.default_rng(1)
    results = {"dictionary_seconds": learn_seconds, "sigmas": {}}
    import bm3d

    for sigma in [float(s) for s in args.sigmas.split(",")]:
        rows = {"omp": [], "dct": [], "bm3d": [], "noisy": []}
        nonzeros = {"omp": [], "dct": []}
        seconds = {"omp": 0.0, "bm3d": 0.0}
        for name, clean in test.items():
            noisy = clean + sigma * noise.standard_normal(clean.shape)
            started = time.time()
            estimate, nz = omp_denoise(noisy, sigma, dictionary)
            seconds["omp"] += time.time() - started
            rows["omp"].append(psnr(clean, estimate))
            nonzeros["omp"].append(nz)
            estimate, nz = dct_denoise(noisy, sigma)
            rows["dct"].append(psnr(clean, estimate))
            nonzeros["dct"].append(nz)
            started = time.time()
            rows["bm3d"].append(psnr(clean, bm3d.bm3d(noisy, sigma_psd=sigma)))
            seconds["bm3d"] += time.time() - started
            rows["noisy"].append(psnr(clean, noisy, clip=False))
        results["sigmas"][f"{sigma:g}"] = {
            method: {
                "psnr": values,
                "mean_psnr": float(np.mean(values)),
                "nonzeros_per_patch": float(np.mean(nonzeros[method])) if method in nonzeros else None,
                "seconds": seconds.get(method),
            }
            for method, values in rows.items()
        }
        for method, scores in results["sigmas"][f"{sigma:g}"].items():
            per = " ".join(f"{v:6.2f}" for v in scores["psnr"])
            nz = scores["nonzeros_per_patch"]
            print(f"σ={sigma:>4g} {method:<6} {per}  mean {scores['mean_psnr']:6.2f}" + (f"  nonzeros {nz:.1f}" if nz is not None else ""))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
