//! Fresh output buffers for the out-of-place kernels: written once, never zeroed first, and
//! backed by huge pages when large.

use super::element::ShrinkElement;
use std::mem::MaybeUninit;

/// From this size a fresh buffer asks the kernel for transparent huge pages (Linux): a fresh
/// mapping otherwise faults in 4 KiB at a time, and the faults cost more than the pass itself
/// (BENCHMARKS.md, "CPU on an AVX-512 machine: fresh buffers, huge pages").
const HUGE_PAGE_MIN_BYTES: usize = 8 << 20;

/// A vector of `len` elements written by `fill`, which gets the memory as bit lanes.
///
/// Not zeroed first: on memory the allocator reuses, `calloc`'s clearing is a whole extra pass.
///
/// # Safety
///
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn filled<E: ShrinkElement>(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<E::Lane>]),
) -> Vec<E> {
    let mut out: Vec<E> = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    advise_huge_pages(spare.as_mut_ptr().cast(), size_of_val(spare));
    // SAFETY: an element and its lane have the same size and alignment (the lanes are the
    // elements' bit patterns, `bytemuck::Pod` both), and uninitialised memory stays
    // `MaybeUninit`.
    let lanes = unsafe {
        std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<MaybeUninit<E::Lane>>(), len)
    };
    fill(lanes);
    // SAFETY: `fill` wrote all `len` elements (the caller's promise), and any bit pattern is a
    // valid element.
    unsafe { out.set_len(len) };
    out
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, bytes: usize) {
    const HUGE_PAGE: usize = 2 << 20;
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    // Only the whole huge pages inside the buffer: nothing outside it is touched.
    let first = (start as usize).next_multiple_of(HUGE_PAGE);
    let end = (start as usize + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > first {
        // SAFETY: the range lies inside this allocation, which nothing has touched yet; the
        // advice changes how its pages are faulted in, never their contents. Where the kernel
        // has no huge pages the call fails and the buffer stays as it was.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: *mut u8, _: usize) {}
