//! Where a log segment's bytes live: in one `memfd` per log (so that a plain-TCP writer
//! can hand a run of log bytes to the kernel with `sendfile`, which references the pages
//! instead of copying them into each receiver's socket), or on the heap (when no memfd
//! could be had, or when the old path is asked for).
//!
//! Why it looks like this:
//! - **One file per log, one fresh range per segment.** Each segment is mapped
//!   (`MAP_SHARED`) at its own file offset, taken from a counter that only grows: an
//!   offset is never used twice. A `sendfile` in flight holds references to the page-cache
//!   pages of its range, and those pages keep the bytes they had whatever happens to the
//!   file afterwards, provided nothing writes into them again: the log is append-only
//!   (bytes below the published end never change), and a freed range is never mapped
//!   again.
//! - **Freeing punches a hole over whole pages.** A freed segment is unmapped and its
//!   whole range is deallocated with `fallocate(PUNCH_HOLE)`. The range is a multiple of
//!   the page size at a page-aligned offset, so the kernel drops whole pages from the file
//!   (they are freed when the last socket buffer that references them is) and never
//!   zeroes part of a page, which it does at the edges of a hole that cuts a page. Huge
//!   pages (whose edges could lie inside a segment) are refused for the mappings with
//!   `MADV_NOHUGEPAGE`, and the memfd is not used at all when the system forces them on
//!   shared memory.
//! - **What it costs is what the heap costs.** A segment's pages count in the process's
//!   RSS (as `RssShmem`) once written, exactly as heap pages do, and leave it when the
//!   hole is punched; the log's budget (`SEGMENT_COST`) counts the same 64 KiB either way.
//!
//! The switch: `CHAT_SERVER_LOG_MEMORY=heap` in the environment makes every log of the
//! process use the heap (and so every writer the `writev` path), for A/B measurements and
//! for tests that compare both paths.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Where a log's segments get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// Mapped from one memfd per log, so writers may `sendfile` from it.
    MemFd,
    /// Plain heap blocks: writers copy log bytes into sockets with `writev`.
    Heap,
}

impl Backing {
    /// The process's choice: [`Backing::MemFd`] unless `CHAT_SERVER_LOG_MEMORY=heap`, or
    /// the system forces huge pages on shared memory (see the module documentation).
    pub fn from_environment() -> Backing {
        static CHOSEN: OnceLock<Backing> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let heap_asked =
                std::env::var_os("CHAT_SERVER_LOG_MEMORY").is_some_and(|v| v == "heap");
            if heap_asked || shmem_huge_pages_forced() {
                Backing::Heap
            } else {
                Backing::MemFd
            }
        })
    }
}

/// True when the kernel is set to use huge pages for all shared memory whatever the
/// mapping asks (`force`): a hole punched in a segment could then cut a huge page.
fn shmem_huge_pages_forced() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
        .is_ok_and(|s| s.contains("[force]"))
}

/// The page size, which a segment's size and every file offset are multiples of.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096).max(1)
}

/// One log's memfd and the next unused offset in it.
#[derive(Debug)]
pub struct SegmentFile {
    fd: OwnedFd,
    /// Offset of the next segment's range: only grows, so no range is ever used twice.
    next: AtomicU64,
    /// Bytes per segment (a multiple of the page size).
    block: usize,
}

impl SegmentFile {
    /// A new, empty memfd for segments of `block` bytes; `None` when the system gives
    /// none or `block` is not a multiple of the page size (the log then uses the heap).
    pub fn new(block: usize) -> Option<Arc<SegmentFile>> {
        if block == 0 || block % page_size() != 0 {
            return None;
        }
        // SAFETY: the name is a NUL-terminated string; the flags are valid.
        let raw = unsafe { libc::memfd_create(c"chat-log".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return None;
        }
        // SAFETY: `raw` is a file descriptor just opened and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Freeing a segment punches a hole; a file that cannot would keep every page the
        // log ever wrote. Try it once on the empty file (harmless) and use the heap if
        // it fails.
        let block_len = i64::try_from(block).ok()?;
        // SAFETY: plain system call on the file descriptor just made.
        let punched = unsafe {
            libc::fallocate(
                fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                0,
                block_len,
            )
        };
        if punched != 0 {
            return None;
        }
        Some(Arc::new(SegmentFile {
            fd,
            next: AtomicU64::new(0),
            block,
        }))
    }

    /// The file, for `sendfile`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes of memory the file holds now (its allocated blocks): written segments not
    /// yet freed. `None` if the system does not say.
    pub fn allocated_bytes(&self) -> Option<u64> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `st` is valid for writing a `stat`; the descriptor is ours.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: fstat succeeded, so it filled `st`.
        let st = unsafe { st.assume_init() };
        u64::try_from(st.st_blocks).ok().map(|b| b * 512)
    }
}

/// One segment's bytes: `len` writable bytes, zeroed, that stay at the same address
/// until dropped.
#[derive(Debug)]
pub struct Block {
    ptr: NonNull<u8>,
    len: usize,
    /// The file and offset the bytes are mapped from, or `None` for a heap block.
    file: Option<(Arc<SegmentFile>, u64)>,
}

impl Block {
    /// A block of `len` bytes, mapped from `file` when there is one and the mapping works
    /// (its `block` size must be `len`), otherwise from the heap.
    pub fn new(len: usize, file: Option<&Arc<SegmentFile>>) -> Block {
        file.filter(|f| f.block == len)
            .and_then(Block::mapped)
            .unwrap_or_else(|| Block::heap(len))
    }

    fn heap(len: usize) -> Block {
        // `vec![0; n]` asks the allocator for zeroed memory: pages are only touched (and
        // only count in RSS) once lines are written into them.
        let data: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        Block {
            ptr: NonNull::from(Box::leak(data)).cast::<u8>(),
            len,
            file: None,
        }
    }

    fn mapped(file: &Arc<SegmentFile>) -> Option<Block> {
        let len = file.block;
        let offset = file.next.fetch_add(len as u64, Ordering::Relaxed);
        let end = i64::try_from(offset.checked_add(len as u64)?).ok()?;
        let off = i64::try_from(offset).ok()?;
        let raw = file.fd.as_raw_fd();
        // The file grows to cover the new range (sparse: nothing is allocated until
        // written). It never shrinks, so ranges already handed to `sendfile` stay inside.
        // SAFETY: plain system call on a file descriptor we own.
        if unsafe { libc::ftruncate(raw, end) } != 0 {
            return None;
        }
        // SAFETY: a fresh shared mapping of `len` bytes of our own file at a page-aligned
        // offset; the kernel picks the address, so nothing else is replaced.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // No huge pages in this range (module documentation). Advice only: if refused,
        // the system's setting (never `force` here, see `Backing`) applies.
        // SAFETY: `p..p+len` is the mapping just made.
        unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
        Some(Block {
            ptr: NonNull::new(p.cast::<u8>())?,
            len,
            file: Some((file.clone(), offset)),
        })
    }

    /// The first byte.
    pub fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The file and the offset in it of byte `at` of this block, if it is mapped.
    pub fn file_offset(&self, at: usize) -> Option<(BorrowedFd<'_>, u64)> {
        let (file, offset) = self.file.as_ref()?;
        Some((file.fd(), offset + at as u64))
    }
}

// SAFETY: a `Block` owns its memory (a leaked box or a private mapping of a file only
// blocks use); the pointer is not tied to a thread. What may be read or written through
// it and when is up to the log's segment (log.rs), which publishes bytes with atomics.
unsafe impl Send for Block {}
// SAFETY: `&Block` gives out only the pointer and the file's descriptor; see above.
unsafe impl Sync for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        match self.file.take() {
            None => {
                let slice = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
                // SAFETY: `ptr` came from `Box::leak` of a boxed slice of exactly this
                // length and is freed only here, once.
                drop(unsafe { Box::from_raw(slice) });
            }
            Some((file, offset)) => {
                // SAFETY: `ptr..ptr+len` is the mapping made in `mapped`, unmapped only
                // here, once; no reference into it outlives the segment that owns this.
                unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
                // Give the pages back: whole pages only (offset and len are multiples of
                // the page size), so pages still referenced by a socket buffer keep their
                // bytes and are freed with it. The range is never mapped again.
                let (off, len) = (
                    i64::try_from(offset).unwrap_or(i64::MAX),
                    i64::try_from(self.len).unwrap_or(0),
                );
                // SAFETY: plain system call on a file descriptor we own.
                unsafe {
                    libc::fallocate(
                        file.fd.as_raw_fd(),
                        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                        off,
                        len,
                    )
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mapped blocks take fresh page-aligned ranges in order and start zeroed; a block
    /// of another size than the file's falls back to the heap (no file offset).
    #[test]
    fn mapped_blocks_take_fresh_ranges_and_others_fall_back_to_the_heap() {
        let len = 16 * page_size();
        let file = SegmentFile::new(len).expect("a memfd (Linux)");
        let a = Block::new(len, Some(&file));
        let b = Block::new(len, Some(&file));
        assert_eq!(a.file_offset(0).map(|(_, o)| o), Some(0));
        assert_eq!(b.file_offset(5).map(|(_, o)| o), Some(len as u64 + 5));
        // SAFETY: `a` is `len` bytes, mapped and owned by this test.
        let bytes = unsafe { std::slice::from_raw_parts(a.ptr().as_ptr(), len) };
        assert!(bytes.iter().all(|&x| x == 0));
        drop(a);
        let c = Block::new(len, Some(&file));
        assert_eq!(
            c.file_offset(0).map(|(_, o)| o),
            Some(2 * len as u64),
            "a freed range is not used again"
        );
        let heap = Block::new(len / 2, Some(&file));
        assert!(heap.file_offset(0).is_none());
        assert!(SegmentFile::new(len + 1).is_none(), "not whole pages");
    }
}
