//! Branch-free `exp`, `sigmoid` and `tanh` for the gate loops: written so that the compiler
//! vectorises them (no calls into libm), and accurate to a few units in the last place of an
//! `f32` (Cephes' `expf` and `tanhf` polynomials).

const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5 · 2²³ rounds an `f32` to the nearest integer.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x` for `x` in `[-87.3, 88]` (clamped outside). Integer-free rounding and scaling (the
/// rounder's bits hold `n` in their low bits), so that loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.0);
    let rounded = x * LOG2_E + ROUNDER;
    let n = rounded - ROUNDER;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let n_bits = rounded.to_bits().wrapping_sub(ROUNDER.to_bits());
    e * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The hyperbolic tangent: a polynomial near zero (where `1 - 2/(e^2x + 1)` would lose
/// relative precision), the exponential form elsewhere.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_5e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let large = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 { small } else { large }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, fast: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64) {
        let mut worst = 0.0f64;
        for i in -40_000..=40_000 {
            let x = i as f32 * 5e-4;
            let (got, want) = (fast(x) as f64, exact(x as f64));
            let err = (got - want).abs() / want.abs().max(1e-30);
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "{name}: worst relative error {worst}");
    }

    #[test]
    fn agree_with_f64_to_a_few_ulps() {
        check("exp", exp, f64::exp);
        check("sigmoid", sigmoid, |x| 1.0 / (1.0 + (-x).exp()));
        check("tanh", tanh, f64::tanh);
    }

    #[test]
    fn saturate_without_nan() {
        for x in [-1e30f32, -1000.0, -88.0, 88.0, 1000.0, 1e30] {
            assert!(sigmoid(x).is_finite() && (0.0..=1.0).contains(&sigmoid(x)));
            assert!((tanh(x).abs() - 1.0).abs() < 1e-6, "tanh({x})");
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
    }
}
