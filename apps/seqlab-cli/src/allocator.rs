//! The command line's allocator: mimalloc, ending the process with one line on stderr and exit
//! status 1 when memory runs out, where Rust's default aborts (a signal, and a core dump).
//! Settings too big for the machine are refused before anything is allocated
//! (`seqlab::train::MemoryNeed`); this catches what the estimate missed.

use std::alloc::{GlobalAlloc, Layout};

/// mimalloc's `mi_option_purge_delay` (`include/mimalloc.h`, the same place in its v2 and v3
/// option lists): milliseconds before freed memory goes back to the system, -1 for never.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps the memory the process frees for its own reuse rather than returning it to the
/// system a second later (mimalloc's default). A training step frees and allocates the same
/// large buffers each time; returned, they came back as page faults and zeroed pages on every
/// step (config c: 38k faults in a benchmark run against 1.3k, and 3–4% of its training
/// speed). Call before the first allocation of any size that matters.
pub fn keep_freed_memory() {
    // SAFETY: setting an option is thread-safe and allowed at any time; `PURGE_DELAY` is a
    // valid option index, and -1 is its documented "never purge".
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

/// `A`, exiting with a one-line message when it has no memory to give.
pub struct ExitOnOutOfMemory<A>(pub A);

// SAFETY: every call is passed to `A` unchanged; a null result, which a caller would hand to
// `handle_alloc_error`, ends the process instead of returning.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ExitOnOutOfMemory<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `A` shares.
        let pointer = unsafe { self.0.alloc(layout) };
        if pointer.is_null() {
            out_of_memory(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { self.0.alloc_zeroed(layout) };
        if pointer.is_null() {
            out_of_memory(layout.size());
        }
        pointer
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract: `pointer` came from this allocator
        // (so from `A`) with `layout`.
        let moved = unsafe { self.0.realloc(pointer, layout, new_size) };
        if moved.is_null() {
            out_of_memory(new_size);
        }
        moved
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract: `pointer` came from `A`.
        unsafe { self.0.dealloc(pointer, layout) }
    }
}

/// Writes "seqlab: out of memory …" to stderr and exits with status 1, allocating nothing.
fn out_of_memory(bytes: usize) -> ! {
    let mut line = [0u8; 192];
    let mut length = 0;
    let mut push = |part: &[u8]| {
        line[length..length + part.len()].copy_from_slice(part);
        length += part.len();
    };
    push(b"seqlab: out of memory: an allocation of ");
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = bytes;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    push(&digits[start..]);
    push(b" bytes failed; use smaller sizes or free some memory\n");
    // SAFETY: `line[..length]` is initialised and outlives the call; `_exit` ends the process
    // without running destructors or handlers that could allocate.
    unsafe {
        libc::write(2, line.as_ptr().cast(), length);
        libc::_exit(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_mimallocs_and_is_switched_off() {
        // mimalloc v3's default purge delay is 1000 ms; index 15 holding it shows the
        // index names that option (unless the environment set it).
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reading an option is allowed at any time.
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 1000);
        }
        keep_freed_memory();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, -1);
    }
}
