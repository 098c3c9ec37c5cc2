//! Which vector instructions this CPU runs: the one place the fused kernels ask.
//!
//! Every kernel with per-ISA code dispatches the same way: the widest set the CPU has, through
//! a `#[target_feature]` entry point whose safety rests on this check, else portable code.

/// Whether this CPU runs the 8-wide FMA versions of the kernels (AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether this CPU runs the 16-wide AVX-512 versions (AVX-512F, with AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && has_avx2_fma()
}

/// The vector instructions a kernel runs on.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 8-wide AVX2 with FMA.
    Avx2,
    /// 16-wide AVX-512.
    Avx512,
}

#[cfg(target_arch = "x86_64")]
impl Isa {
    /// The widest this CPU runs, if any.
    pub(crate) fn detect() -> Option<Self> {
        if has_avx512() {
            Some(Isa::Avx512)
        } else if has_avx2_fma() {
            Some(Isa::Avx2)
        } else {
            None
        }
    }
}
