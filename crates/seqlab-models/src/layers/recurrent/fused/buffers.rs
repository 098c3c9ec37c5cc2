//! The large buffers of a fused recurrence, filled by every thread. A training step of config c
//! (batch 32 × 100 steps, 2 layers of 512) allocates about 150 MB of them; zeroed or filled by
//! the calling thread alone, they left the other threads idle for 3–4% of the step.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Values at or above which a buffer is filled by every thread.
const PARALLEL_FILL: usize = 1 << 18;

/// Values per thread task when filling.
const FILL_TASK: usize = 1 << 16;

/// `len` zeros.
pub(super) fn zeros(len: usize) -> Vec<f32> {
    if len < PARALLEL_FILL {
        return vec![0.0; len];
    }
    let mut values = Vec::with_capacity(len);
    values.spare_capacity_mut()[..len]
        .par_chunks_mut(FILL_TASK)
        .for_each(|task| task.fill(MaybeUninit::new(0.0)));
    // SAFETY: the first `len` values of the capacity were all written just above.
    unsafe { values.set_len(len) };
    values
}

/// `row` repeated `rows` times, one after the other (`row.repeat(rows)`).
pub(super) fn repeated_rows(row: &[f32], rows: usize) -> Vec<f32> {
    let len = row.len() * rows;
    if len < PARALLEL_FILL || row.is_empty() {
        return row.repeat(rows);
    }
    let rows_per_task = FILL_TASK.div_ceil(row.len());
    let mut values = Vec::with_capacity(len);
    values.spare_capacity_mut()[..len]
        .par_chunks_mut(rows_per_task * row.len())
        .for_each(|task| {
            for dst in task.chunks_exact_mut(row.len()) {
                for (dst, &value) in dst.iter_mut().zip(row) {
                    *dst = MaybeUninit::new(value);
                }
            }
        });
    // SAFETY: every task is a whole number of rows (the last one too: `len` is a multiple of
    // the row's length), each written in full just above: the first `len` values are set.
    unsafe { values.set_len(len) };
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_match_the_serial_ones_below_and_above_the_parallel_size() {
        for len in [
            0,
            5,
            PARALLEL_FILL - 1,
            PARALLEL_FILL,
            3 * FILL_TASK + 7 + PARALLEL_FILL,
        ] {
            let zeros = zeros(len);
            assert_eq!(zeros.len(), len);
            assert!(zeros.iter().all(|&v| v == 0.0));
        }
        let row: Vec<f32> = (0..2048).map(|i| i as f32 * 0.5 - 3.0).collect();
        for rows in [0, 1, 3, PARALLEL_FILL / 2048, 3200, 3201] {
            assert_eq!(repeated_rows(&row, rows), row.repeat(rows), "{rows} rows");
        }
        let odd: Vec<f32> = (0..7).map(|i| i as f32).collect();
        assert_eq!(repeated_rows(&odd, 100_003), odd.repeat(100_003));
    }
}
