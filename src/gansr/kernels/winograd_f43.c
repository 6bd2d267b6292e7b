/* Winograd F(4x4, 3x3) convolution, fp32 or bf16, AVX-512, channels-last (NHWC) with any strides.
 *
 * y = act(conv3x3_pad1(x) + bias + res), computed tile by tile: each 4x4 output tile needs a 6x6
 * input patch. The transformed patches of a block of tiles are multiplied with the pre-transformed
 * weights in 36 small GEMMs (36 products per tile and channel pair instead of 16 * 9 = 144), then
 * transformed back and written with the epilogue fused. A block's scratch stays in L2, so the only
 * passes over memory are reading x (and res) and writing y, as in a direct convolution.
 *
 * Transforms (Lavin & Gray 2015, points 0, +-1, +-2, inf):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 *   U = G g G^T is computed by the caller (in float64), laid out [36][cin][cout].
 *
 * bf16 mode: activations, residual and U in bf16, transforms and accumulation in fp32, the GEMM
 * with AVX512-BF16 dot products (two products per lane and instruction).
 *
 * Requirements (checked by the Python caller): cin % 16 == 0, cout % 32 == 0, channel stride 1.
 * Threads: OpenMP, one contiguous range of tile blocks each. Linked against libgomp.so.1, which
 * resolves to the copy PyTorch has already loaded, so the kernel runs on PyTorch's own (already
 * spinning) worker threads instead of competing with them for the cores.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 12 /* tiles per GEMM micro-kernel: 12 x 32 outputs = 24 zmm accumulators */

typedef struct {
    const void *x; /* fp32, or bf16 when bf16 is set (then res, y, u are bf16 too) */
    int64_t xn, xh, xw; /* strides in elements: image, row, pixel (channel stride is 1) */
    const void *res;
    int64_t rn, rh, rw;
    void *y;
    int64_t yn, yh, yw;
    const void *u; /* fp32 [36][cin][cout]; bf16 [36][cin/2][cout][2] */
    const float *bias;
    const float *slopes; /* per-output-channel negative slopes (per-channel PReLU), or NULL */
    int n, h, w, cin, cout, act, tb, bf16;
    float slope;
    int64_t th, tw, tiles; /* tile rows, tiles per row, tiles in all */
} job_t;

typedef struct {
    const job_t *job;
    int64_t b0, b1;
    int err;
} part_t;

static inline void bt6(const __m512 d[6], __m512 o[6]) {
    const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f), two = _mm512_set1_ps(2.f);
    __m512 t1 = _mm512_fnmadd_ps(four, d[2], d[4]); /* d4 - 4 d2 */
    __m512 t2 = _mm512_fnmadd_ps(four, d[1], d[3]); /* d3 - 4 d1 */
    __m512 t3 = _mm512_sub_ps(d[4], d[2]);
    __m512 t4 = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
    o[0] = _mm512_add_ps(_mm512_fnmadd_ps(five, d[2], d[4]), _mm512_mul_ps(four, d[0]));
    o[1] = _mm512_add_ps(t1, t2);
    o[2] = _mm512_sub_ps(t1, t2);
    o[3] = _mm512_add_ps(t3, t4);
    o[4] = _mm512_sub_ps(t3, t4);
    o[5] = _mm512_add_ps(_mm512_fnmadd_ps(five, d[3], d[5]), _mm512_mul_ps(four, d[1]));
}

static inline void at6(const __m512 m[6], __m512 o[4]) {
    __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), d34, d12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), s34, s12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), d34, d12), m[5]);
}

/* 16 channels of an activation (fp32, or bf16 widened to fp32), and back. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE __m512 load16(const void *base, int64_t off, int bf16) {
    if (!bf16) return _mm512_loadu_ps((const float *)base + off);
    __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + off)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

/* fp32 -> bf16 rounding to nearest even: one instruction with AVX512-BF16, else integer ops that
 * round the same way (NaNs aside). Only the GEMM below requires AVX512-BF16. */
ALWAYS_INLINE void store16(void *base, int64_t off, __m512 v, int bf16) {
    if (!bf16) {
        _mm512_storeu_ps((float *)base + off, v);
        return;
    }
    uint16_t *dst = (uint16_t *)base + off;
#ifdef __AVX512BF16__
    _mm256_storeu_si256((__m256i *)dst, (__m256i)_mm512_cvtneps_pbh(v));
#else
    __m512i bits = _mm512_castps_si512(v);
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    bits = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
    _mm256_storeu_si256((__m256i *)dst, _mm512_cvtepi32_epi16(_mm512_srli_epi32(bits, 16)));
#endif
}

/* Transformed 6x6 patch of tile t into slot s of V ([36][tb][cin], fp32 or bf16). Inlined into
 * one copy per element type, so the type tests fold away. */
ALWAYS_INLINE void input_tile(const job_t *j, int64_t t, int s, void *V, const int bf16) {
    const int cin = j->cin;
    const int64_t xi_stride = (int64_t)j->tb * cin;
    const int64_t dst = (int64_t)s * cin; /* offset in elements */
    const size_t esize = bf16 ? 2 : 4;
    int64_t per = j->th * j->tw;
    if (t >= j->tiles) { /* padding slot of the last block */
        for (int k = 0; k < 36; k++) memset((char *)V + (dst + k * xi_stride) * esize, 0, esize * cin);
        return;
    }
    int64_t img = t / per, rem = t % per;
    int r0 = (int)(rem / j->tw) * 4 - 1, c0 = (int)(rem % j->tw) * 4 - 1;
    const char *xi = (const char *)j->x + (img * j->xn + r0 * j->xh + c0 * j->xw) * (int64_t)esize;
    /* Offsets of the 36 patch pixels; -1 where the patch hangs over the zero padding. */
    int64_t off[6][6];
    int inside = 1;
    for (int i = 0; i < 6; i++)
        for (int jj = 0; jj < 6; jj++) {
            int ok = r0 + i >= 0 && r0 + i < j->h && c0 + jj >= 0 && c0 + jj < j->w;
            off[i][jj] = ok ? i * j->xh + jj * j->xw : -1;
            inside &= ok;
        }
    for (int c = 0; c < cin; c += 16) {
        __m512 tmp[6][6]; /* tmp[i][jj] = (B^T d)[i][jj] */
        for (int jj = 0; jj < 6; jj++) {
            __m512 d[6], o[6];
            if (inside)
                for (int i = 0; i < 6; i++) d[i] = load16(xi, off[i][jj] + c, bf16);
            else
                for (int i = 0; i < 6; i++)
                    d[i] = off[i][jj] >= 0 ? load16(xi, off[i][jj] + c, bf16) : _mm512_setzero_ps();
            bt6(d, o);
            for (int i = 0; i < 6; i++) tmp[i][jj] = o[i];
        }
        for (int i = 0; i < 6; i++) {
            __m512 o[6];
            bt6(tmp[i], o);
            for (int jj = 0; jj < 6; jj++) store16(V, dst + (i * 6 + jj) * xi_stride + c, o[jj], bf16);
        }
    }
}

/* M[12 x 32] = V[12 x K] * U[K x 32] (row strides vs, us, ms). */
static void gemm_12x32(int K, const float *v, int64_t vs, const float *u, int64_t us, float *m, int64_t ms) {
    __m512 c0[ROWS], c1[ROWS];
#pragma GCC unroll 12
    for (int r = 0; r < ROWS; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(u + k * us), b1 = _mm512_loadu_ps(u + k * us + 16);
#pragma GCC unroll 12
        for (int r = 0; r < ROWS; r++) {
            __m512 a = _mm512_set1_ps(v[r * vs + k]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < ROWS; r++) {
        _mm512_storeu_ps(m + r * ms, c0[r]);
        _mm512_storeu_ps(m + r * ms + 16, c1[r]);
    }
}

/* The same with bf16 V and U (U pair-interleaved: [K/2][32 columns][2]), fp32 accumulation.
 * Compiled for AVX512-BF16 whatever -march says; the caller uses it only on CPUs that have it. */
__attribute__((target("avx512bf16"))) static void gemm_12x32_bf16(int K, const uint16_t *v, int64_t vs,
                                                                   const uint16_t *u, int64_t us, float *m,
                                                                   int64_t ms) {
    __m512 c0[ROWS], c1[ROWS];
#pragma GCC unroll 12
    for (int r = 0; r < ROWS; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 2) {
        const uint16_t *row = u + (k / 2) * us;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(row), b1 = (__m512bh)_mm512_loadu_si512(row + 32);
#pragma GCC unroll 12
        for (int r = 0; r < ROWS; r++) {
            int32_t pair;
            memcpy(&pair, v + r * vs + k, sizeof pair);
            __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
            c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < ROWS; r++) {
        _mm512_storeu_ps(m + r * ms, c0[r]);
        _mm512_storeu_ps(m + r * ms + 16, c1[r]);
    }
}

/* Inverse transform of slot s of M ([36][tb][cout]) into the output tile t, with the epilogue. */
ALWAYS_INLINE void output_tile(const job_t *j, int64_t t, int s, const float *M, const int bf16) {
    const int cout = j->cout;
    const int64_t xi_stride = (int64_t)j->tb * cout;
    const float *src = M + (int64_t)s * cout;
    int64_t per = j->th * j->tw;
    int64_t img = t / per, rem = t % per;
    int r0 = (int)(rem / j->tw) * 4, c0 = (int)(rem % j->tw) * 4;
    int nr = j->h - r0 < 4 ? j->h - r0 : 4, nc = j->w - c0 < 4 ? j->w - c0 : 4;
    const int64_t esize = bf16 ? 2 : 4;
    char *yi = (char *)j->y + img * j->yn * esize;
    const char *ri = j->res ? (const char *)j->res + img * j->rn * esize : NULL;
    const __m512 slope = _mm512_set1_ps(j->slope);
    for (int c = 0; c < cout; c += 16) {
        __m512 p[4][6];
        for (int jj = 0; jj < 6; jj++) {
            __m512 m[6], o[4];
            for (int i = 0; i < 6; i++) m[i] = _mm512_loadu_ps(src + (i * 6 + jj) * xi_stride + c);
            at6(m, o);
            for (int i = 0; i < 4; i++) p[i][jj] = o[i];
        }
        __m512 b = j->bias ? _mm512_loadu_ps(j->bias + c) : _mm512_setzero_ps();
        __m512 sl = j->slopes ? _mm512_loadu_ps(j->slopes + c) : slope;
        for (int i = 0; i < nr; i++) {
            __m512 o[4];
            at6(p[i], o);
            for (int jj = 0; jj < nc; jj++) {
                int64_t row = r0 + i, col = c0 + jj;
                __m512 v = _mm512_add_ps(o[jj], b);
                if (ri) v = _mm512_add_ps(v, load16(ri, row * j->rh + col * j->rw + c, bf16));
                if (j->act) {
                    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
                    v = _mm512_mask_mul_ps(v, neg, v, sl);
                }
                store16(yi, row * j->yh + col * j->yw + c, v, bf16);
            }
        }
    }
}

static void input_f32(const job_t *j, int64_t t, int s, void *V) { input_tile(j, t, s, V, 0); }
static void input_bf16(const job_t *j, int64_t t, int s, void *V) { input_tile(j, t, s, V, 1); }
static void output_f32(const job_t *j, int64_t t, int s, const float *M) { output_tile(j, t, s, M, 0); }
static void output_bf16(const job_t *j, int64_t t, int s, const float *M) { output_tile(j, t, s, M, 1); }

/* One thread's share: tile blocks [p->b0, p->b1). */
static void run_part(part_t *p) {
    const job_t *j = p->job;
    const int64_t tb = j->tb, cin = j->cin, cout = j->cout;
    size_t vbytes = (j->bf16 ? 2 : 4) * 36 * (size_t)(tb * cin);
    size_t mbytes = sizeof(float) * 36 * (size_t)(tb * cout);
    void *V = aligned_alloc(64, (vbytes + 63) / 64 * 64);
    float *M = aligned_alloc(64, (mbytes + 63) / 64 * 64);
    if (!V || !M) {
        free(V);
        free(M);
        p->err = 1;
        return;
    }
    for (int64_t b = p->b0; b < p->b1; b++) {
        int64_t t0 = b * tb;
        for (int s = 0; s < tb; s++) (j->bf16 ? input_bf16 : input_f32)(j, t0 + s, s, V);
        for (int xi = 0; xi < 36; xi++) {
            for (int64_t co = 0; co < cout; co += 32) {
                for (int64_t r = 0; r < tb; r += ROWS) {
                    int64_t vr = (xi * tb + r) * cin, uo = xi * cin * cout;
                    float *m = M + (xi * tb + r) * cout + co;
                    if (j->bf16) {
                        const uint16_t *u = (const uint16_t *)j->u + uo + 2 * co;
                        gemm_12x32_bf16(cin, (const uint16_t *)V + vr, cin, u, 2 * cout, m, cout);
                    } else {
                        const float *u = (const float *)j->u + uo + co;
                        gemm_12x32(cin, (const float *)V + vr, cin, u, cout, m, cout);
                    }
                }
            }
        }
        for (int s = 0; s < tb && t0 + s < j->tiles; s++)
            (j->bf16 ? output_bf16 : output_f32)(j, t0 + s, s, M);
    }
    free(V);
    free(M);
}

/* Returns 0 on success, 1 if scratch memory could not be allocated, 2 on bad arguments. */
int gansr_winograd_f43(const void *x, int64_t xn, int64_t xh, int64_t xw,   /* input, its strides */
                       const void *res, int64_t rn, int64_t rh, int64_t rw, /* residual or NULL */
                       void *y, int64_t yn, int64_t yh, int64_t yw,         /* output */
                       const void *u, const float *bias,                    /* weights, bias or NULL */
                       int n, int h, int w, int cin, int cout, int act, float slope,
                       const float *slopes,                                 /* per-channel or NULL */
                       int tb, int bf16, int threads) {
    if (cin % 16 || cout % 32 || tb % ROWS || tb <= 0 || n <= 0 || h <= 0 || w <= 0) return 2;
    job_t j = {.x = x, .xn = xn, .xh = xh, .xw = xw, .res = res, .rn = rn, .rh = rh, .rw = rw,
               .y = y, .yn = yn, .yh = yh, .yw = yw, .u = u, .bias = bias, .slopes = slopes,
               .n = n, .h = h, .w = w, .cin = cin, .cout = cout, .act = act, .tb = tb, .bf16 = bf16,
               .slope = slope, .th = (h + 3) / 4, .tw = (w + 3) / 4};
    j.tiles = (int64_t)n * j.th * j.tw;
    int64_t blocks = (j.tiles + tb - 1) / tb;
    if (threads < 1) threads = 1;
    if (threads > blocks) threads = (int)blocks;
    int err = 0;
#pragma omp parallel num_threads(threads)
    {
        int id = omp_get_thread_num(), nt = omp_get_num_threads();
        part_t part = {&j, blocks * id / nt, blocks * (id + 1) / nt, 0};
        run_part(&part);
        if (part.err) {
#pragma omp atomic write
            err = 1;
        }
    }
    return err;
}
