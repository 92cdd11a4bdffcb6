//! The learned forward: each row's elements against their feature's limit.

use super::FeatureLayout;
use crate::kernels::element::BitLane;
use crate::kernels::slice::{for_chunks_of, opaque_zero, shrink};
use std::mem::MaybeUninit;

/// The forward over rows of `data`, in place.
pub(super) fn shrink_rows<B: BitLane>(layout: FeatureLayout, limits: &[B], data: &mut [B]) {
    let row = layout.row();
    if row == 0 {
        return;
    }
    for_chunks_of(
        data,
        layout.chunk(),
        #[inline(always)]
        |_, chunk| {
            let zero = opaque_zero();
            for values in chunk.chunks_mut(row) {
                if layout.inner == 1 {
                    // Thresholds vary along the row: zip them in.
                    for (x, &l) in values.iter_mut().zip(limits) {
                        *x = shrink(*x, l).or(zero);
                    }
                } else {
                    // One threshold per contiguous run of `inner` values.
                    for (run, &l) in values.chunks_mut(layout.inner).zip(limits) {
                        for x in run {
                            *x = shrink(*x, l).or(zero);
                        }
                    }
                }
            }
        },
    );
}

/// The forward over rows of `src` into `dst`, writing every element of `dst`.
pub(super) fn shrink_rows_into<B: BitLane>(
    layout: FeatureLayout,
    limits: &[B],
    src: &[B],
    dst: &mut [MaybeUninit<B>],
) {
    let row = layout.row();
    if row == 0 {
        return;
    }
    for_chunks_of(
        dst,
        layout.chunk(),
        #[inline(always)]
        |offset, chunk| {
            let src = &src[offset..offset + chunk.len()];
            for (out, values) in chunk.chunks_mut(row).zip(src.chunks(row)) {
                if layout.inner == 1 {
                    for ((d, &x), &l) in out.iter_mut().zip(values).zip(limits) {
                        *d = MaybeUninit::new(shrink(x, l));
                    }
                } else {
                    let runs = out
                        .chunks_mut(layout.inner)
                        .zip(values.chunks(layout.inner));
                    for ((out, values), &l) in runs.zip(limits) {
                        for (d, &x) in out.iter_mut().zip(values) {
                            *d = MaybeUninit::new(shrink(x, l));
                        }
                    }
                }
            }
        },
    );
}
