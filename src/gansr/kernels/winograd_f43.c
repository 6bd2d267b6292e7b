/* Winograd F(4x4, 3x3) convolution, fp32, AVX-512, channels-last (NHWC) with arbitrary strides.
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
 * Requirements (checked by the Python caller): cin % 16 == 0, cout % 32 == 0, channel stride 1.
 * Threads: plain pthreads, one contiguous range of tile blocks each (no second OpenMP runtime
 * next to PyTorch's).
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 12 /* tiles per GEMM micro-kernel: 12 x 32 outputs = 24 zmm accumulators */
#define MAX_THREADS 64

typedef struct {
    const float *x;
    int64_t xn, xh, xw; /* strides in floats: image, row, pixel (channel stride is 1) */
    const float *res;
    int64_t rn, rh, rw;
    float *y;
    int64_t yn, yh, yw;
    const float *u; /* [36][cin][cout] */
    const float *bias;
    int n, h, w, cin, cout, act, tb;
    float slope;
    int64_t th, tw, tiles;
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

/* Transformed 6x6 patch of tile t into slot s of V ([36][tb][cin]). */
static void input_tile(const job_t *j, int64_t t, int s, float *V) {
    const int cin = j->cin;
    const int64_t xi_stride = (int64_t)j->tb * cin;
    float *dst = V + (int64_t)s * cin;
    int64_t per = j->th * j->tw;
    if (t >= j->tiles) { /* padding slot of the last block */
        for (int k = 0; k < 36; k++) memset(dst + k * xi_stride, 0, sizeof(float) * cin);
        return;
    }
    int64_t img = t / per, rem = t % per;
    int r0 = (int)(rem / j->tw) * 4 - 1, c0 = (int)(rem % j->tw) * 4 - 1;
    const float *xi = j->x + img * j->xn;
    int rok[6], cok[6];
    for (int i = 0; i < 6; i++) {
        rok[i] = r0 + i >= 0 && r0 + i < j->h;
        cok[i] = c0 + i >= 0 && c0 + i < j->w;
    }
    for (int c = 0; c < cin; c += 16) {
        __m512 tmp[6][6]; /* tmp[i][jj] = (B^T d)[i][jj] */
        for (int jj = 0; jj < 6; jj++) {
            __m512 d[6], o[6];
            for (int i = 0; i < 6; i++)
                d[i] = rok[i] && cok[jj]
                           ? _mm512_loadu_ps(xi + (int64_t)(r0 + i) * j->xh + (int64_t)(c0 + jj) * j->xw + c)
                           : _mm512_setzero_ps();
            bt6(d, o);
            for (int i = 0; i < 6; i++) tmp[i][jj] = o[i];
        }
        for (int i = 0; i < 6; i++) {
            __m512 o[6];
            bt6(tmp[i], o);
            for (int jj = 0; jj < 6; jj++) _mm512_storeu_ps(dst + (i * 6 + jj) * xi_stride + c, o[jj]);
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

/* Inverse transform of slot s of M ([36][tb][cout]) into the output tile t, with the epilogue. */
static void output_tile(const job_t *j, int64_t t, int s, const float *M) {
    const int cout = j->cout;
    const int64_t xi_stride = (int64_t)j->tb * cout;
    const float *src = M + (int64_t)s * cout;
    int64_t per = j->th * j->tw;
    int64_t img = t / per, rem = t % per;
    int r0 = (int)(rem / j->tw) * 4, c0 = (int)(rem % j->tw) * 4;
    int nr = j->h - r0 < 4 ? j->h - r0 : 4, nc = j->w - c0 < 4 ? j->w - c0 : 4;
    float *yi = j->y + img * j->yn;
    const float *ri = j->res ? j->res + img * j->rn : NULL;
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
        for (int i = 0; i < nr; i++) {
            __m512 o[4];
            at6(p[i], o);
            for (int jj = 0; jj < nc; jj++) {
                int64_t row = r0 + i, col = c0 + jj;
                __m512 v = _mm512_add_ps(o[jj], b);
                if (ri) v = _mm512_add_ps(v, _mm512_loadu_ps(ri + row * j->rh + col * j->rw + c));
                if (j->act) {
                    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
                    v = _mm512_mask_mul_ps(v, neg, v, slope);
                }
                _mm512_storeu_ps(yi + row * j->yh + col * j->yw + c, v);
            }
        }
    }
}

static void *run_part(void *arg) {
    part_t *p = (part_t *)arg;
    const job_t *j = p->job;
    size_t vbytes = sizeof(float) * 36 * (size_t)j->tb * j->cin;
    size_t mbytes = sizeof(float) * 36 * (size_t)j->tb * j->cout;
    float *V = aligned_alloc(64, (vbytes + 63) / 64 * 64);
    float *M = aligned_alloc(64, (mbytes + 63) / 64 * 64);
    if (!V || !M) {
        free(V);
        free(M);
        p->err = 1;
        return NULL;
    }
    for (int64_t b = p->b0; b < p->b1; b++) {
        int64_t t0 = b * j->tb;
        for (int s = 0; s < j->tb; s++) input_tile(j, t0 + s, s, V);
        for (int xi = 0; xi < 36; xi++) {
            const float *v = V + (int64_t)xi * j->tb * j->cin;
            const float *u = j->u + (int64_t)xi * j->cin * j->cout;
            float *m = M + (int64_t)xi * j->tb * j->cout;
            for (int co = 0; co < j->cout; co += 32)
                for (int r = 0; r < j->tb; r += ROWS)
                    gemm_12x32(j->cin, v + (int64_t)r * j->cin, j->cin, u + co, j->cout, m + (int64_t)r * j->cout + co,
                               j->cout);
        }
        for (int s = 0; s < j->tb && t0 + s < j->tiles; s++) output_tile(j, t0 + s, s, M);
    }
    free(V);
    free(M);
    return NULL;
}

/* Returns 0 on success, 1 if scratch memory could not be allocated, 2 on bad arguments. */
int gansr_winograd_f43(const float *x, int64_t xn, int64_t xh, int64_t xw, const float *res, int64_t rn,
                       int64_t rh, int64_t rw, float *y, int64_t yn, int64_t yh, int64_t yw, const float *u,
                       const float *bias, int n, int h, int w, int cin, int cout, int act, float slope, int tb,
                       int threads) {
    if (cin % 16 || cout % 32 || tb % ROWS || tb <= 0 || n <= 0 || h <= 0 || w <= 0) return 2;
    job_t j = {x, xn, xh, xw, res, rn, rh, rw, y, yn, yh, yw, u, bias, n, h, w, cin, cout, act, tb, slope,
               (h + 3) / 4, (w + 3) / 4, 0};
    j.tiles = (int64_t)n * j.th * j.tw;
    int64_t blocks = (j.tiles + tb - 1) / tb;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > blocks) threads = (int)blocks;
    part_t parts[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int i = 0; i < threads; i++) parts[i] = (part_t){&j, blocks * i / threads, blocks * (i + 1) / threads, 0};
    for (int i = 1; i < threads; i++) started[i] = pthread_create(&tid[i], NULL, run_part, &parts[i]) == 0;
    run_part(&parts[0]);
    for (int i = 1; i < threads; i++) {
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            run_part(&parts[i]); /* could not start a thread: do its share here */
    }
    for (int i = 0; i < threads; i++)
        if (parts[i].err) return 1;
    return 0;
}
