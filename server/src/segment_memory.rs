//! Where a log segment's bytes live: in one `memfd` per log (so that a plain-TCP writer
//! can hand a run of log bytes to the kernel with `sendfile`, which references the pages
//! instead of copying them into each receiver's socket), or on the heap (when no memfd
//! could be had, or when the old path is asked for).
//!
//! Why it looks like this:
//! - **One file per log; segments follow each other in it, byte for byte.** A new
//!   segment's bytes start in the file exactly where the sealed one before it ended (a
//!   segment is sealed before it is full, at a whole line), so the log's bytes lie
//!   back to back in the file across segments, and a writer hands a run that crosses a
//!   segment boundary to one `sendfile` instead of two (at the load of the benchmark a
//!   writer's batch crossed a boundary about every other time). The mapping of a segment
//!   starts at the page that holds its first byte, which may be the last page of the
//!   segment before: both map the same page-cache page, the one writing only below, the
//!   other only above its end. File offsets only grow: no byte of the file is ever
//!   written twice. A `sendfile` in flight holds references to the page-cache pages of
//!   its range, and those pages keep the bytes they had whatever happens to the file
//!   afterwards: bytes below the published end never change (append-only), and a page
//!   that is punched out is never mapped again.
//! - **Freeing punches a hole over whole pages.** A freed segment is unmapped, and the
//!   pages from the one holding its first byte up to (not including) the one holding the
//!   next segment's first byte are deallocated with `fallocate(PUNCH_HOLE)`: whole pages
//!   at page-aligned offsets, so the kernel drops whole pages from the file (they are
//!   freed when the last socket buffer that references them is) and never zeroes part of
//!   a page, which it does at the edges of a hole that cuts a page. The page shared with
//!   the next segment goes with that one. Segments are freed oldest first (each holds the
//!   next), so a shared page is never punched while its older user still needs it, and
//!   when it is punched its older user is gone. Huge pages (whose edges could lie inside
//!   a segment) are refused for the mappings with `MADV_NOHUGEPAGE`, and the memfd is not
//!   used at all when the system forces them on shared memory.
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
    /// The end of the highest page mapped so far (the file's size): a segment that does
    /// not follow another starts here. Only grows, so no page is ever mapped twice
    /// except the one two neighbouring segments share.
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
    /// The first of the `len` bytes.
    ptr: NonNull<u8>,
    len: usize,
    /// Where the bytes are mapped from, or `None` for a heap block.
    file: Option<Mapping>,
}

/// A mapped block's place in its file.
#[derive(Debug)]
struct Mapping {
    file: Arc<SegmentFile>,
    /// File offset of the block's first byte (not page-aligned when it follows another
    /// block).
    start: u64,
    /// The mapping itself: from the page holding `start`, whole pages.
    base: NonNull<u8>,
    map_len: usize,
    /// Pages from the one holding `start` up to this offset (page-aligned) are this
    /// block's to punch when it is freed: all of its mapping, until a block is mapped
    /// after it, and then up to the page that block starts in (which goes with it).
    punch_to: AtomicU64,
}

impl Block {
    /// A block of `len` bytes, mapped from `file` when there is one and the mapping works
    /// (its `block` size must be `len`), otherwise from the heap. `after`: the block
    /// before it in the log and how many of its bytes were used; when both are mapped
    /// from the same file, the new block's bytes start in the file right after those, so
    /// that runs of the two are one contiguous range of the file.
    pub fn new(
        len: usize,
        file: Option<&Arc<SegmentFile>>,
        after: Option<(&Block, usize)>,
    ) -> Block {
        file.filter(|f| f.block == len)
            .and_then(|f| Block::mapped(f, after))
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

    fn mapped(file: &Arc<SegmentFile>, after: Option<(&Block, usize)>) -> Option<Block> {
        let len = file.block;
        let page = page_size() as u64;
        // Right after the previous block's used bytes when it is in this file (only the
        // log's one appender makes blocks, so nothing maps in between); otherwise on a
        // fresh page above everything mapped so far.
        let follows = after.and_then(|(prev, used)| {
            let m = prev.file.as_ref().filter(|m| Arc::ptr_eq(&m.file, file))?;
            Some((m, m.start.checked_add(used.min(prev.len) as u64)?))
        });
        let start = match follows {
            Some((_, start)) => start,
            None => file.next.load(Ordering::Relaxed),
        };
        let base_off = start - start % page;
        let map_len = usize::try_from((start - base_off) + len as u64)
            .ok()?
            .checked_next_multiple_of(page_size())?;
        let map_end = base_off.checked_add(map_len as u64)?;
        let size = file.next.fetch_max(map_end, Ordering::Relaxed).max(map_end);
        let raw = file.fd.as_raw_fd();
        // The file grows to cover the new range (sparse: nothing is allocated until
        // written). It never shrinks, so ranges already handed to `sendfile` stay inside.
        // SAFETY: plain system call on a file descriptor we own.
        if unsafe { libc::ftruncate(raw, i64::try_from(size).ok()?) } != 0 {
            return None;
        }
        // SAFETY: a fresh shared mapping of `map_len` bytes of our own file at a
        // page-aligned offset; the kernel picks the address, so nothing else is replaced.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                raw,
                i64::try_from(base_off).ok()?,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        // No huge pages in this range (module documentation). Advice only: if refused,
        // the system's setting (never `force` here, see `Backing`) applies.
        // SAFETY: `p..p+map_len` is the mapping just made.
        unsafe { libc::madvise(p, map_len, libc::MADV_NOHUGEPAGE) };
        let base = NonNull::new(p.cast::<u8>())?;
        // SAFETY: `start - base_off` is below a page, inside the mapping.
        let ptr = unsafe { base.add(usize::try_from(start - base_off).ok()?) };
        if let Some((prev, _)) = follows {
            // The page this block starts in is freed with this block, not with the one
            // before (which is freed first: it holds this one).
            prev.punch_to.store(base_off, Ordering::Relaxed);
        }
        Some(Block {
            ptr,
            len,
            file: Some(Mapping {
                file: file.clone(),
                start,
                base,
                map_len,
                punch_to: AtomicU64::new(map_end),
            }),
        })
    }

    /// The first byte.
    pub fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The file and the offset in it of byte `at` of this block, if it is mapped.
    pub fn file_offset(&self, at: usize) -> Option<(BorrowedFd<'_>, u64)> {
        let m = self.file.as_ref()?;
        Some((m.file.fd(), m.start + at as u64))
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
            Some(m) => {
                // SAFETY: `base..base+map_len` is the mapping made in `mapped`, unmapped
                // only here, once; no reference into it outlives the segment that owns
                // this.
                unsafe { libc::munmap(m.base.as_ptr().cast(), m.map_len) };
                // Give the pages back: whole pages only, from the one this block starts
                // in (the block before, which shared it, is already freed) up to the one
                // the block after starts in. Pages still referenced by a socket buffer
                // keep their bytes and are freed with it; none is mapped again.
                let page = page_size() as u64;
                let from = m.start - m.start % page;
                let to = m.punch_to.load(Ordering::Relaxed);
                if to > from {
                    let (off, len) = (
                        i64::try_from(from).unwrap_or(i64::MAX),
                        i64::try_from(to - from).unwrap_or(0),
                    );
                    // SAFETY: plain system call on a file descriptor we own.
                    unsafe {
                        libc::fallocate(
                            m.file.fd.as_raw_fd(),
                            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                            off,
                            len,
                        )
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_file(file: &SegmentFile, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` is valid for `len` bytes; the descriptor is the test's memfd.
        let n = unsafe {
            libc::pread(
                file.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                len,
                i64::try_from(offset).unwrap(),
            )
        };
        assert_eq!(usize::try_from(n).ok(), Some(len));
        buf
    }

    fn write(block: &Block, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= block.len);
        // SAFETY: inside the block, which the test owns and nobody reads concurrently.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), block.ptr().as_ptr().add(at), bytes.len())
        };
    }

    /// Blocks that follow nothing take fresh page-aligned ranges above everything mapped
    /// and start zeroed; a freed range is not used again; a block of another size than
    /// the file's falls back to the heap (no file offset).
    #[test]
    fn mapped_blocks_take_fresh_ranges_and_others_fall_back_to_the_heap() {
        let len = 16 * page_size();
        let file = SegmentFile::new(len).expect("a memfd (Linux)");
        let a = Block::new(len, Some(&file), None);
        let b = Block::new(len, Some(&file), None);
        assert_eq!(a.file_offset(0).map(|(_, o)| o), Some(0));
        assert_eq!(b.file_offset(5).map(|(_, o)| o), Some(len as u64 + 5));
        // SAFETY: `a` is `len` bytes, mapped and owned by this test.
        let bytes = unsafe { std::slice::from_raw_parts(a.ptr().as_ptr(), len) };
        assert!(bytes.iter().all(|&x| x == 0));
        drop(a);
        let c = Block::new(len, Some(&file), None);
        assert_eq!(
            c.file_offset(0).map(|(_, o)| o),
            Some(2 * len as u64),
            "a freed range is not used again"
        );
        let heap = Block::new(len / 2, Some(&file), None);
        assert!(heap.file_offset(0).is_none());
        assert!(SegmentFile::new(len + 1).is_none(), "not whole pages");
    }

    /// A block mapped after another starts in the file right after the other's used
    /// bytes, mid-page: both write into the shared page, each on its side, and the file
    /// holds their bytes back to back. Freeing the older one (first, as the log does)
    /// punches its pages but not the shared one; freeing the newer one punches the rest.
    #[test]
    fn a_following_block_continues_the_file_and_pages_are_freed_in_order() {
        let page = page_size();
        let len = 4 * page;
        let file = SegmentFile::new(len).expect("a memfd (Linux)");
        let a = Block::new(len, Some(&file), None);
        let used = 2 * page + 100;
        let first: Vec<u8> = (0..used).map(|i| (i % 251) as u8).collect();
        write(&a, 0, &first);
        let b = Block::new(len, Some(&file), Some((&a, used)));
        assert_eq!(b.file_offset(0).map(|(_, o)| o), Some(used as u64));
        let second: Vec<u8> = (0..len).map(|i| (i % 241) as u8 + 1).collect();
        write(&b, 0, &second);
        let mut both = first.clone();
        both.extend_from_slice(&second);
        assert_eq!(
            read_file(&file, 0, both.len()),
            both,
            "back to back in the file"
        );
        // A block after `b` used whole: it starts on a page boundary.
        let c = Block::new(len, Some(&file), Some((&b, len)));
        assert_eq!(c.file_offset(0).map(|(_, o)| o), Some((used + len) as u64));
        // A block that follows one of another file (or a heap one) starts afresh.
        let other = SegmentFile::new(len).expect("a memfd (Linux)");
        let d = Block::new(len, Some(&other), Some((&c, 10)));
        assert_eq!(d.file_offset(0).map(|(_, o)| o), Some(0));
        let heap = Block::new(len / 2, Some(&file), None);
        let e = Block::new(len, Some(&file), Some((&heap, 10)));
        let fresh = (used + 2 * len).next_multiple_of(page) as u64;
        assert_eq!(
            e.file_offset(0).map(|(_, o)| o),
            Some(fresh),
            "above all mapped"
        );

        let held = |f: &SegmentFile| f.allocated_bytes().expect("fstat");
        let before = held(&file);
        drop(a);
        // `a`'s two whole pages went; the page it shares with `b` stayed, bytes intact.
        assert_eq!(held(&file), before - 2 * page as u64);
        assert_eq!(read_file(&file, used as u64, len), second, "b's bytes kept");
        // SAFETY: `b` is mapped and owned by this test; nothing writes it now.
        let through_b = unsafe { std::slice::from_raw_parts(b.ptr().as_ptr(), len) };
        assert_eq!(through_b, &second[..]);
        drop(b);
        drop(c);
        drop(e);
        assert_eq!(held(&file), 0, "every page of the file given back");
        drop(d);
        assert_eq!(held(&other), 0);
    }
}
