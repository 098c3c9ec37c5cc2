//! [`TokenChoiceBackend`] on the CubeCL backends: one launch of one cube that chooses a token
//! from a row of scores, as [`Sampling::pick`](super::Sampling::pick) does on the host.
//!
//! The cube's threads each own a contiguous run of ids. They find the largest allowed score
//! (greedy stops there), weigh every allowed id by `exp((score − max) / temperature)`, find
//! the top-k and top-p cut-offs by bisecting the weight (30 halvings of `(0, 1]`, the largest
//! weight being 1), then walk the cumulative weights in id order to the first that passes
//! `draw × total`: each thread sums its run, one thread turns the sums into offsets, and the
//! thread whose run holds the draw walks it.

use super::on_device::{TokenChoice, TokenChoiceBackend};
use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use cubecl::prelude::*;
use cubecl::{CubeCount, CubeDim};

/// Threads of the one cube.
const THREADS: u32 = 256;

/// Halvings of the weight interval `(0, 1]` for the top-k and top-p cut-offs.
const BISECTIONS: u32 = 30;

impl TokenChoiceBackend for CubeBackend {
    fn choose_token(
        scores: FloatTensor<Self>,
        banned: FloatTensor<Self>,
        out: IntTensor<Self>,
        choice: TokenChoice,
    ) -> IntTensor<Self> {
        let scores = into_contiguous(scores);
        let banned = into_contiguous(banned);
        let dtypes = [
            dtype_to_storage_type(scores.dtype),
            dtype_to_storage_type(out.dtype),
        ];
        choose_token_kernel::launch(
            &scores.client,
            CubeCount::Static(1, 1, 1),
            CubeDim::new_1d(THREADS),
            scores.clone().into_tensor_arg(),
            banned.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            choice.draw,
            choice.inverse_temperature,
            choice.top_k,
            choice.top_p,
            u32::from(choice.greedy),
            dtypes,
        );
        out
    }
}

/// The sum over the cube of every thread's `value`, given to every thread.
#[cube]
fn cube_sum<F: Float>(value: F, shared: Shared<[F]>) -> F {
    let mut shared = shared;
    let unit = UNIT_POS as usize;
    shared[unit] = value;
    sync_cube();
    // A variable, not a constant, since it halves.
    let mut stride = 0usize;
    stride += comptime![THREADS as usize / 2];
    while stride > 0 {
        if unit < stride {
            shared[unit] = shared[unit] + shared[unit + stride];
        }
        sync_cube();
        stride /= 2;
    }
    let total = shared[0];
    sync_cube();
    total
}

/// The weight of `id`: `exp((score − max) · inverse_temperature)`, 0 for a banned id.
#[cube]
fn weight<F: Float>(
    scores: &Tensor<F>,
    banned: &Tensor<F>,
    id: usize,
    max: F,
    inverse_temperature: F,
) -> F {
    let mut w = F::new(0.0);
    if banned[id] == F::new(0.0) {
        w = F::exp((scores[id] - max) * inverse_temperature);
    }
    w
}

/// How many of this thread's ids weigh at least `cut` (and more than 0), and their weight.
#[cube]
fn at_or_above<F: Float>(
    scores: &Tensor<F>,
    banned: &Tensor<F>,
    run: (usize, usize),
    max: F,
    inverse_temperature: F,
    cut: F,
) -> (F, F) {
    let mut count = F::new(0.0);
    let mut mass = F::new(0.0);
    for id in run.0..run.1 {
        let w = weight::<F>(scores, banned, id, max, inverse_temperature);
        if w >= cut && w > F::new(0.0) {
            count += F::new(1.0);
            mass += w;
        }
    }
    (count, mass)
}

/// Chooses one id from `scores` `[V]` (ids where `banned` is not 0 never, unless all are) and
/// writes it to `out[0]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn choose_token_kernel<F: Float, I: Numeric>(
    scores: &Tensor<F>,
    banned: &Tensor<F>,
    out: &mut Tensor<I>,
    draw: f32,
    inverse_temperature: f32,
    top_k: u32,
    top_p: f32,
    greedy: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let threads = comptime![THREADS as usize];
    let unit = UNIT_POS as usize;
    let vocab = scores.len();
    let chunk = vocab.div_ceil(threads);
    let mut begin = unit * chunk;
    if begin > vocab {
        begin = vocab;
    }
    let mut end = begin + chunk;
    if end > vocab {
        end = vocab;
    }
    let mut values = Shared::<[F]>::new_slice(comptime![THREADS as usize]);
    let mut ids = Shared::<[u32]>::new_slice(comptime![THREADS as usize]);
    if unit == 0 {
        out[0usize] = I::cast_from(0u32);
    }

    // The largest allowed score and its lowest id.
    let mut best = F::new(-3.0e38);
    let mut best_id = vocab as u32;
    for id in begin..end {
        if banned[id] == F::new(0.0) && scores[id] > best {
            best = scores[id];
            best_id = id as u32;
        }
    }
    values[unit] = best;
    ids[unit] = best_id;
    sync_cube();
    // A variable, not a constant, since it halves.
    let mut stride = 0usize;
    stride += comptime![THREADS as usize / 2];
    while stride > 0 {
        if unit < stride {
            let other = values[unit + stride];
            let other_id = ids[unit + stride];
            if other > values[unit] || (other == values[unit] && other_id < ids[unit]) {
                values[unit] = other;
                ids[unit] = other_id;
            }
        }
        sync_cube();
        stride /= 2;
    }
    let max = values[0];
    let max_id = ids[0];
    sync_cube();
    if greedy == 1 {
        if unit == 0 && max_id < vocab as u32 {
            out[0usize] = I::cast_from(max_id);
        }
        terminate!();
    }

    let inverse_temperature = F::cast_from(inverse_temperature);
    let run = (begin, end);
    // Top-k: the largest cut that keeps at least k ids.
    let mut cut = F::new(0.0);
    if top_k > 0 {
        let wanted = F::cast_from(top_k);
        let mut high = F::new(1.0);
        for _ in 0..BISECTIONS {
            let middle = (cut + high) * F::new(0.5);
            let (count, _) =
                at_or_above::<F>(scores, banned, run, max, inverse_temperature, middle);
            if cube_sum::<F>(count, values.clone()) >= wanted {
                cut = middle;
            } else {
                high = middle;
            }
        }
    }
    // Top-p: the largest cut above that keeps `top_p` of what top-k kept.
    if top_p < 1.0 {
        let (_, mass) = at_or_above::<F>(scores, banned, run, max, inverse_temperature, cut);
        let needed = cube_sum::<F>(mass, values.clone()) * F::cast_from(top_p);
        let mut high = F::new(1.0);
        for _ in 0..BISECTIONS {
            let middle = (cut + high) * F::new(0.5);
            let (_, mass) = at_or_above::<F>(scores, banned, run, max, inverse_temperature, middle);
            if cube_sum::<F>(mass, values.clone()) >= needed {
                cut = middle;
            } else {
                high = middle;
            }
        }
    }

    // The walk: each run's kept weight, the runs' offsets, then the run holding the draw.
    let (_, mine) = at_or_above::<F>(scores, banned, run, max, inverse_temperature, cut);
    values[unit] = mine;
    sync_cube();
    let mut offsets = Shared::<[F]>::new_slice(comptime![THREADS as usize + 1]);
    if unit == 0 {
        let mut total = F::new(0.0);
        for u in 0..threads {
            offsets[u] = total;
            total += values[u];
        }
        offsets[threads] = total;
    }
    sync_cube();
    let target = F::cast_from(draw) * offsets[threads];
    let start = offsets[unit];
    if start <= target && target < offsets[unit + 1] {
        let mut walked = F::new(0.0);
        let mut found = false;
        for id in begin..end {
            let w = weight::<F>(scores, banned, id, max, inverse_temperature);
            if w >= cut && w > F::new(0.0) {
                walked += w;
                if !found && start + walked > target {
                    out[0usize] = I::cast_from(id as u32);
                    found = true;
                }
            }
        }
    }
}
