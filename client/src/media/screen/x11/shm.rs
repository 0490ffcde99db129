//! A MIT-SHM segment the X server created (`ShmCreateSegment`) mapped read-only into this process.
//!
//! The one `unsafe` of the X11 capture: `mmap`/`munmap` of the segment's file descriptor.

use rustix::fd::OwnedFd;
use rustix::mm::{MapFlags, ProtFlags};
use std::ffi::c_void;
use std::ptr::NonNull;

/// `len` bytes of a shared-memory segment, mapped `PROT_READ`, `MAP_SHARED`; unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone (no aliasing handle in this
// process); moving it to another thread moves that ownership with it.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps the first `len` bytes of the segment behind `fd` (the fd may be closed afterwards).
    pub(super) fn map(fd: &OwnedFd, len: usize) -> std::io::Result<Self> {
        // SAFETY: a fresh mapping at an address the kernel chooses (null hint, no MAP_FIXED), so
        // it cannot overlap memory Rust already uses. The server created the segment with at
        // least `len` bytes (`ShmCreateSegment` with that size).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr).ok_or(std::io::ErrorKind::OutOfMemory)?;
        Ok(Self { ptr, len })
    }

    /// The segment's bytes. Call only once the reply to the request that filled them has
    /// arrived and before the next one is sent: `&mut self` on the capture side guarantees that,
    /// as only one `ShmGetImage` is ever in flight.
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live readable mapping of `len` bytes (see `map`), unmapped only in
        // `drop`, which cannot run while this borrow lives. The X server writes to the segment
        // only while it handles a `ShmGetImage` into it; the capture code sends one, waits for its
        // reply, and only then reads, so no write overlaps this borrow.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned, unmapped once, and no borrow
        // from `bytes` can outlive `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}
