/* The memory bound of batch-1 sampling: a bare AVX2 matrix-vector product over MB megabytes
 * of f32 weights in rows of 512 (the char-LSTM's recurrent rows), repeated REPS times with
 * OpenMP's static schedule; prints the best and the mean time per pass.
 *
 *   gcc -O3 -mavx2 -mfma -fopenmp scripts/gemv-bandwidth.c -o /tmp/gemv-bandwidth
 *   OMP_NUM_THREADS=2 /tmp/gemv-bandwidth 13 2000
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MB REPS\n", argv[0]);
        return 2;
    }
    size_t mb = (size_t)atoi(argv[1]);
    int reps = atoi(argv[2]);
    size_t n = mb * 1024 * 1024 / 4, rows = n / 512;
    float *w = aligned_alloc(64, rows * 512 * 4), *v = aligned_alloc(64, 512 * 4);
    float *out = aligned_alloc(64, rows * 4);
    for (size_t i = 0; i < rows * 512; i++) w[i] = (float)i * 1e-7f;
    for (int i = 0; i < 512; i++) v[i] = 1.0f / (float)(i + 1);
    double best = 1e9, total = 0;
    for (int r = 0; r < reps; r++) {
        double start = now();
#pragma omp parallel for schedule(static)
        for (size_t row = 0; row < rows; row++) {
            const float *x = w + row * 512;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (int k = 0; k < 512; k += 32) {
                s0 = _mm256_fmadd_ps(_mm256_load_ps(x + k), _mm256_load_ps(v + k), s0);
                s1 = _mm256_fmadd_ps(_mm256_load_ps(x + k + 8), _mm256_load_ps(v + k + 8), s1);
                s2 = _mm256_fmadd_ps(_mm256_load_ps(x + k + 16), _mm256_load_ps(v + k + 16), s2);
                s3 = _mm256_fmadd_ps(_mm256_load_ps(x + k + 24), _mm256_load_ps(v + k + 24), s3);
            }
            float lanes[8];
            _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
            out[row] = lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
        }
        double took = now() - start;
        total += took;
        if (took < best) best = took;
    }
    double mean = total / reps;
    printf("%zu MB, %d threads: best %.1f us, mean %.1f us per pass (%.0f passes/s, %.1f GB/s)"
           " [check %g]\n",
           mb, omp_get_max_threads(), best * 1e6, mean * 1e6, 1 / mean,
           mb * 1.048576e6 / mean / 1e9, out[rows / 2]);
    return 0;
}
