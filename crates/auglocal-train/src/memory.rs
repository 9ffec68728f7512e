//! Peak training memory on CPU: live heap bytes and the process's resident-set high-water.
//!
//! **Heap**: [`CountingAllocator`] wraps the system allocator and keeps the bytes currently
//! allocated and their peak since the last [`reset_peaks`]. It counts every allocation of the
//! process (tensors, autodiff graphs, gradients, optimiser state, data batches in flight, the
//! data set itself), so a peak is what training needed on top of what was already live. It
//! only counts if the binary installs it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: auglocal_train::memory::CountingAllocator =
//!     auglocal_train::memory::CountingAllocator;
//! ```
//!
//! **RSS**: `VmHWM` of `/proc/self/status` (Linux), reset by writing `5` to
//! `/proc/self/clear_refs`: the pages the process touched, allocator caching included.
//!
//! **Reuse**: [`keep_freed_memory`] asks glibc's allocator to keep what a training step frees
//! for the next step, rather than hand it back to the system and fault it in again.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting live bytes and their peak.
pub struct CountingAllocator;

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counters are plain atomics and never touch the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout, forwarded to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (through this allocator).
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

/// Thresholds tried in turn for [`keep_freed_memory`]: 256 MiB, then 32 MiB (the most that
/// glibc's manual promises to accept).
const KEEP_BELOW: [usize; 2] = [256 << 20, 32 << 20];
/// What glibc adds to each growth of its heap: 64 MiB (address space; pages count only when
/// touched).
const TOP_PAD: usize = 64 << 20;

/// Keeps freed memory in glibc's heap for reuse; returns whether it did (only on Linux with
/// glibc).
///
/// A training step frees and allocates again activations, gradients and workspaces of a few
/// MiB each, hundreds of them. By default glibc maps each allocation above a threshold (which
/// it raises as such blocks are freed, to 32 MiB at most) on its own and unmaps it when freed,
/// and returns free memory at the top of its heap once more than twice that threshold is
/// free: each such block comes back as fresh pages, zeroed by the kernel one page fault at a
/// time, on whichever thread touches it first. This fixes both thresholds at 256 MiB (32 MiB
/// where glibc refuses more; nothing at all where it refuses that too, since a fixed trim
/// threshold with the default 128 KiB mapping threshold would map far more) and grows the
/// heap 64 MiB at a time, so blocks below the threshold are reused from the heap. Peak
/// resident memory is what the peak step touches either way; what changes is that freed
/// memory stays with the process until it exits. `auglocal` calls it first thing; a binary of
/// your own may too. Measured on ResNet-32 (batch 128, two threads): about 364,000 page faults
/// per AugLocal bench before, 27,000 after (docs/benchmarks.md).
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |param: libc::c_int, bytes: usize| {
            let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            #[allow(unsafe_code)]
            // SAFETY: mallopt only sets the allocator's tuning parameters, and returns 0 for
            // a value it does not take.
            let taken = unsafe { libc::mallopt(param, value) };
            taken == 1
        };
        let Some(threshold) = KEEP_BELOW
            .into_iter()
            .find(|&bytes| set(libc::M_MMAP_THRESHOLD, bytes))
        else {
            return false;
        };
        set(libc::M_TRIM_THRESHOLD, threshold) && set(libc::M_TOP_PAD, TOP_PAD)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Live heap bytes now and at their peak since the last reset, if the binary installed
/// [`CountingAllocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapUsage {
    /// Bytes allocated now.
    pub current: u64,
    /// Most bytes allocated at once since the last reset.
    pub peak: u64,
}

/// The heap counters, or `None` when [`CountingAllocator`] is not the global allocator.
pub fn heap() -> Option<HeapUsage> {
    INSTALLED.load(Ordering::Relaxed).then(|| HeapUsage {
        current: CURRENT.load(Ordering::Relaxed) as u64,
        peak: PEAK.load(Ordering::Relaxed) as u64,
    })
}

/// The process's resident-set high-water mark in bytes (`VmHWM`), where the OS reports it.
pub fn rss_high_water() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Starts a new measurement: the heap peak becomes the current live bytes, the memory the
/// allocator holds free goes back to the system (glibc), and the RSS high-water mark is reset
/// where Linux allows it. Returns whether the RSS reset worked.
///
/// Without the release, the high-water mark would start from whatever an earlier stretch
/// left free in the allocator (an evaluation pass's batches, say, kept for reuse by
/// [`keep_freed_memory`]), not from what the process holds.
pub fn reset_peaks() -> bool {
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
    release_freed_memory();
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Hands the memory glibc's allocator holds free back to the system (elsewhere nothing).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code)]
        // SAFETY: malloc_trim only returns free memory of the allocator's own heaps.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Peak memory of one measured stretch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeakMemory {
    /// Peak live heap bytes (`None` without the counting allocator).
    pub heap_bytes: Option<u64>,
    /// Resident-set high-water mark (`None` where not reported, or not reset).
    pub rss_bytes: Option<u64>,
}

/// Measures peak memory between [`Meter::start`] and [`Meter::peak`].
#[derive(Debug)]
pub struct Meter {
    rss_reset: bool,
}

impl Meter {
    /// Resets the peaks.
    pub fn start() -> Self {
        Self {
            rss_reset: reset_peaks(),
        }
    }

    /// The peaks since `start`.
    pub fn peak(&self) -> PeakMemory {
        PeakMemory {
            heap_bytes: heap().map(|h| h.peak),
            rss_bytes: if self.rss_reset {
                rss_high_water()
            } else {
                None
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_the_reuse_settings() {
        let taken = keep_freed_memory();
        assert_eq!(
            taken,
            cfg!(all(target_os = "linux", target_env = "gnu")),
            "glibc refused a threshold (or a non-glibc build claimed to set one)"
        );
        // The allocator still hands out and takes back blocks on both sides of the threshold.
        for len in [1 << 10, 8 << 20, 300 << 20] {
            let v = vec![1u8; len];
            assert_eq!(v.iter().map(|&b| usize::from(b)).sum::<usize>(), len);
        }
    }
}
