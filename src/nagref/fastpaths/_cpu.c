/* nagref.fastpaths._cpu: run a recipe over contiguous arrays in one pass.
 *
 * A recipe (see nagref/_engine/ir.py) is a list of primitive operations on
 * registers. This module evaluates it block by block: each block of BLOCK
 * elements is loaded into registers that stay in the L1 cache, every
 * operation runs over the block, and the output registers are stored. Each
 * operation rounds exactly as the generic path does:
 *
 *   kind  storage  compute  result   notes
 *   F64   float64  float64  float64  FMA: C99 fma
 *   F32   float32  float32  float32  FMA: C99 fmaf
 *   D32   float64  float32  float32  inputs rounded to float32 on load
 *   H32   float16  float32  float16  every result rounded to float16; FMA: fmaf, then float16
 *   H16   float16  float16  float16  every result rounded to float16; FMA: exact, by round-to-odd
 *   B32   bfloat16 float32  bfloat16 every result rounded to bfloat16; FMA: fmaf, then bfloat16
 *   B16   bfloat16 bfloat16 bfloat16 as H16, in bfloat16; copy and negation keep NaN payloads
 *   BW32  bfloat16 float32  float32  float32 results, rounded to bfloat16 when stored
 *   HW32  float16  float32  float32  float32 results, rounded to float16 when stored
 *
 * Every kind but D32, H32, H16 and HW32 may flush subnormals (FTZ/DAZ): operands
 * as they are loaded, results in the compute dtype, before the rounding to
 * the result's (so B32 flushes a float32 result just below 2^-126 that
 * bfloat16 would round up to 2^-126; B16 rounds first, then flushes).
 *
 * One float16 operation computed in float32 and rounded to float16 is
 * correctly rounded, because float32 carries more than 2*11 + 1 bits
 * (Figueroa 1995); so is a bfloat16 one (24 >= 2*8 + 2). The float16 and
 * bfloat16 FMA rounds the exact a*b + c to odd in float64 and float32 and
 * then to nearest, which is exact because each odd rounding keeps more than
 * two extra bits (Boldo and Melquiond 2008).
 *
 * bfloat16 needs no compiler support: its arrays arrive as uint16 views of
 * their bits (NumPy exports no buffer of ml_dtypes' bfloat16), a bfloat16 is
 * the upper half of a float32, and the rounding to nearest is integer
 * arithmetic on the bits, with NaNs made the quiet 0x7fc0 (sign kept), as
 * ml_dtypes converts.
 *
 * run() takes a batch of leaves (a model's tensors of one dtype) and checks
 * each leaf's buffers itself, so the Python side does no per-leaf work
 * beyond gathering the arrays; a leaf it cannot take is skipped, and the
 * caller runs it on the generic path.
 *
 * The file must be compiled with -ffp-contract=off: a compiler that fused
 * a*b + c on its own would change results. Functions are cloned for x86-64
 * levels v4, v3 and the baseline, and the loader picks one at run time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__FLT16_MAX__)
#define HAVE_FLOAT16 1
typedef _Float16 half;
#else
#define HAVE_FLOAT16 0
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONED __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONED
#endif

enum { OP_COPY, OP_NEG, OP_MUL, OP_ADD, OP_SUB, OP_FMA, OP_MULADD, N_OPS };
enum { K_F64, K_F32, K_D32, K_H32, K_H16, K_B32, K_B16, K_BW32, K_HW32, N_KINDS };

/* Bytes per register block: measured fastest here among 128 to 16384. */
#define BLOCK_BYTES 512

/* Every operation is elementwise: element i of the output depends only on
 * element i of the operands, so an output register may be one of its
 * operands and the loop has no carried dependence. */
#define LOOP(m) _Pragma("GCC ivdep") for (int i = 0; i < (m); i++)
#define MAX_REGISTERS 24
#define MAX_STEPS 64

typedef struct {
    unsigned char op, out, a, b, c;
} Instr;

typedef struct {
    int reg;
    char *data;
} Port;

/* One segment's compiled recipe and its constants. */
typedef struct {
    int n_steps, n_const;
    Instr steps[MAX_STEPS];
    int const_reg[MAX_REGISTERS];
    double const_value[MAX_REGISTERS];
} Program;

/* One program over elements [start, stop) of one leaf's buffers. */
typedef struct {
    int kind, flush, n_in, n_out;
    const Program *program;
    Port in[MAX_REGISTERS], out[MAX_REGISTERS];
    Py_ssize_t start, stop;
    void *scratch; /* MAX_REGISTERS blocks of BLOCK elements, 64-byte aligned */
} Job;

/* ---- float64 and float32: one rounding per operation ------------------- */

#define FLUSH_LOOP(T, MIN, x, m)                                               \
    for (int i = 0; i < (m); i++)                                              \
        if ((x)[i] < (MIN) && (x)[i] > -(MIN)) (x)[i] = copysign##T(0, (x)[i])

/* A register reads from its input array in place until an operation writes
 * it; from then on it lives in its scratch block. Inputs are copied (and
 * flushed) into scratch only when the model flushes subnormal operands. */
#define SAME_TYPE_KERNEL(NAME, T, SUFFIX, MIN)                                 \
    CLONED static void NAME(const Job *job) {                                  \
        enum { BLOCK = BLOCK_BYTES / sizeof(T) };                              \
        T (*scratch)[BLOCK] = job->scratch;                                    \
        T *ptr[MAX_REGISTERS];                                                 \
        for (int k = 0; k < job->program->n_const; k++) {                               \
            T *block = scratch[job->program->const_reg[k]];                             \
            for (int i = 0; i < BLOCK; i++) block[i] = (T)job->program->const_value[k]; \
        }                                                                      \
        for (Py_ssize_t s = job->start; s < job->stop; s += BLOCK) {           \
            int m = (int)(job->stop - s < BLOCK ? job->stop - s : BLOCK);      \
            for (int r = 0; r < MAX_REGISTERS; r++) ptr[r] = scratch[r];       \
            for (int k = 0; k < job->n_in; k++) {                              \
                T *src = (T *)job->in[k].data + s;                             \
                if (job->flush) {                                              \
                    T *dst = scratch[job->in[k].reg];                          \
                    memcpy(dst, src, (size_t)m * sizeof(T));                   \
                    FLUSH_LOOP(SUFFIX, MIN, dst, m);                           \
                } else {                                                       \
                    ptr[job->in[k].reg] = src;                                 \
                }                                                              \
            }                                                                  \
            for (int n = 0; n < job->program->n_steps; n++) {                           \
                const Instr *st = &job->program->steps[n];                              \
                const T *a = ptr[st->a], *b = ptr[st->b], *c = ptr[st->c];     \
                T *o = ptr[st->out] = scratch[st->out];                        \
                switch (st->op) {                                              \
                case OP_COPY: LOOP(m) o[i] = a[i]; break;                      \
                case OP_NEG: LOOP(m) o[i] = -a[i]; break;                      \
                case OP_MUL: LOOP(m) o[i] = a[i] * b[i]; break;                \
                case OP_ADD: LOOP(m) o[i] = a[i] + b[i]; break;                \
                case OP_SUB: LOOP(m) o[i] = a[i] - b[i]; break;                \
                case OP_FMA: LOOP(m) o[i] = fma##SUFFIX(a[i], b[i], c[i]); break; \
                default: /* OP_MULADD: product and sum rounded separately */   \
                    if (job->flush) {                                          \
                        T t[BLOCK];                                            \
                        LOOP(m) t[i] = a[i] * b[i];                            \
                        FLUSH_LOOP(SUFFIX, MIN, t, m);                         \
                        LOOP(m) o[i] = t[i] + c[i];                            \
                    } else {                                                   \
                        LOOP(m) { T t = a[i] * b[i]; o[i] = t + c[i]; }        \
                    }                                                          \
                }                                                              \
                if (job->flush) FLUSH_LOOP(SUFFIX, MIN, o, m);                 \
            }                                                                  \
            for (int k = 0; k < job->n_out; k++)                               \
                memcpy((T *)job->out[k].data + s, ptr[job->out[k].reg],        \
                       (size_t)m * sizeof(T));                                 \
        }                                                                      \
    }

SAME_TYPE_KERNEL(run_f64, double, , DBL_MIN)
SAME_TYPE_KERNEL(run_f32, float, f, FLT_MIN)

/* ---- float32 registers over float64, float16 or bfloat16 storage ------- */

static inline double round_to_odd64(double s, double e) {
    /* s = RN(x) and e = x - s exactly: the value x rounded to odd */
    if (e == 0 || !isfinite(e)) return s;
    uint64_t u;
    memcpy(&u, &s, sizeof u);
    if (u & 1) return s;
    return nextafter(s, e > 0 ? INFINITY : -INFINITY);
}

static inline float round_to_odd32(double x) {
    float f = (float)x;
    if ((double)f == x || !isfinite(x)) return f;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (u & 1) return f;
    return nextafterf(f, (double)f < x ? INFINITY : -INFINITY);
}

#if HAVE_FLOAT16
static inline float round_half(float x) { return (float)(half)x; }

static inline float fma_half(float a, float b, float c) {
    /* exact a*b + c (TwoSum), to odd in float64 and float32, to nearest in float16 */
    double p = (double)a * (double)b, q = (double)c, s = p + q;
    double pv = s - q, qv = s - pv, e = (p - pv) + (q - qv);
    return round_half(round_to_odd32(round_to_odd64(s, e)));
}
#else
static inline float round_half(float x) { return x; }
static inline float fma_half(float a, float b, float c) { return fmaf(a, b, c); }
#endif

/* A kernel over float32 registers. LOAD and STORE convert one element of
 * storage to and from float32 (exactly, or, STORE, rounding to nearest);
 * FL flushes an operand as it is loaded (or is the identity); FIN finishes
 * an operation's exact-or-float32 result (flush and round, in the model's
 * order); NEG, COPY and FMA are the whole operation. */
#define NARROW_KERNEL(NAME, ST, LOAD, STORE, FL, FIN, NEG, COPY, FMA)          \
    CLONED static void NAME(const Job *job) {                                  \
        enum { BLOCK = BLOCK_BYTES / sizeof(float) };                          \
        float (*reg)[BLOCK] = job->scratch;                                    \
        for (int k = 0; k < job->program->n_const; k++)                        \
            for (int i = 0; i < BLOCK; i++)                                    \
                reg[job->program->const_reg[k]][i] = (float)job->program->const_value[k]; \
        for (Py_ssize_t s = job->start; s < job->stop; s += BLOCK) {           \
            int m = (int)(job->stop - s < BLOCK ? job->stop - s : BLOCK);      \
            for (int k = 0; k < job->n_in; k++) {                              \
                const ST *src = (const ST *)job->in[k].data + s;               \
                float *dst = reg[job->in[k].reg];                              \
                LOOP(m) dst[i] = FL(LOAD(src[i]));                             \
            }                                                                  \
            for (int n = 0; n < job->program->n_steps; n++) {                  \
                const Instr *st = &job->program->steps[n];                     \
                float *o = reg[st->out];                                       \
                const float *a = reg[st->a], *b = reg[st->b], *c = reg[st->c]; \
                switch (st->op) {                                              \
                case OP_COPY: LOOP(m) o[i] = COPY(a[i]); break;                \
                case OP_NEG: LOOP(m) o[i] = NEG(a[i]); break;                  \
                case OP_MUL: LOOP(m) o[i] = FIN(a[i] * b[i]); break;           \
                case OP_ADD: LOOP(m) o[i] = FIN(a[i] + b[i]); break;           \
                case OP_SUB: LOOP(m) o[i] = FIN(a[i] - b[i]); break;           \
                case OP_FMA: LOOP(m) o[i] = FMA(a[i], b[i], c[i]); break;      \
                default: LOOP(m) o[i] = FIN(FIN(a[i] * b[i]) + c[i]);          \
                }                                                              \
            }                                                                  \
            for (int k = 0; k < job->n_out; k++) {                             \
                ST *dst = (ST *)job->out[k].data + s;                          \
                const float *src = reg[job->out[k].reg];                       \
                LOOP(m) dst[i] = STORE(src[i]);                                \
            }                                                                  \
        }                                                                      \
    }

#define NO_ROUND(x) (x)
#define TO_FLOAT(x) ((float)(x))
#define FMA_D32(a, b, c) fmaf(a, b, c)
#define STORE_D32(x) ((double)(x))
#define NEG_NO_ROUND(x) (-(x))
NARROW_KERNEL(run_d32, double, TO_FLOAT, STORE_D32, NO_ROUND, NO_ROUND, NEG_NO_ROUND, NO_ROUND,
              FMA_D32)
#if HAVE_FLOAT16
#define STORE_HALF(x) ((half)(x))
#define NEG_HALF(x) round_half(-(x))
#define FMA_H32(a, b, c) round_half(fmaf(a, b, c))
NARROW_KERNEL(run_h32, half, TO_FLOAT, STORE_HALF, NO_ROUND, round_half, NEG_HALF, round_half,
              FMA_H32)
NARROW_KERNEL(run_h16, half, TO_FLOAT, STORE_HALF, NO_ROUND, round_half, NEG_HALF, round_half,
              fma_half)
/* HW32: float32 results throughout, rounded to float16 when stored. */
NARROW_KERNEL(run_hw32, half, TO_FLOAT, STORE_HALF, NO_ROUND, NO_ROUND, NEG_NO_ROUND, NO_ROUND,
              FMA_D32)
#endif

/* ---- bfloat16 storage, as its bits ------------------------------------- */

/* bfloat16 is the upper half of a float32: a float32 whose low 16 bits are
 * zero is a bfloat16 number, and its register holds exactly that. No
 * compiler support is needed, only uint16_t arithmetic on the bits. */
static inline float bf16_load(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* float32 to bfloat16, to nearest, ties to even, as ml_dtypes converts:
 * overflow gives an infinity, subnormals round on bfloat16's own grid (the
 * float32 one, 2^16 times coarser), and every NaN becomes the quiet NaN
 * 0x7fc0 with its sign. */
static inline uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t nearest = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : nearest);
}

/* A register that already holds a bfloat16 number (NaN payloads included). */
static inline uint16_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)(u >> 16);
}

static inline float round_bf16(float x) { return bf16_load(bf16_round(x)); }

/* Subnormal float32 (and so bfloat16) to a zero of its sign; FLT_MIN =
 * 2^-126 is both formats' smallest normal number. */
static inline float ftz(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (u & 0x7f800000u) ? u : u & 0x80000000u; /* a zero exponent: a zero or a subnormal */
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The rounding to odd of fma_half, with integer steps instead of nextafter,
 * so that the loop vectorizes: where the rounding to nearest s was inexact
 * and its last bit is even, the odd neighbour towards the exact value is
 * one unit further from zero where the error has s's sign, one unit nearer
 * otherwise (s is not zero: an inexact sum is not). */
static inline double odd64(double s, double e) {
    uint64_t u;
    memcpy(&u, &s, sizeof u);
    uint64_t bump = (uint64_t)((e != 0) & (fabs(e) < INFINITY)) & ~u & 1u;
    uint64_t away = (uint64_t)((s < 0) == (e < 0));
    u = u + (bump & away) - (bump & ~away);
    memcpy(&s, &u, sizeof s);
    return s;
}

/* x rounded to odd in float32, likewise; a zero rounded from a tiny x steps
 * away from zero, and an x beyond the largest float steps back from inf. */
static inline float odd32(double x) {
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t bump = (uint32_t)(((double)f != x) & (fabs(x) < INFINITY)) & ~u & 1u;
    uint32_t away = (uint32_t)((u >> 31) == (uint32_t)(x < (double)f));
    u = u + (bump & away) - (bump & ~away);
    memcpy(&f, &u, sizeof f);
    return f;
}

/* a*b + c rounded once to bfloat16: the product of two bfloat16 numbers is
 * exact in float64, TwoSum gives the sum's error, and the sum is rounded to
 * odd in float64 and float32 before the one rounding to nearest (Boldo and
 * Melquiond 2008), as nagref._engine.fma does it. */
static inline float fma_bf16(float a, float b, float c) {
    double p = (double)a * (double)b, q = (double)c, s = p + q;
    double pv = s - q, qv = s - pv, e = (p - pv) + (q - qv);
    return round_bf16(odd32(odd64(s, e)));
}

/* B32: each result computed in float32, flushed there where the model
 * flushes, then rounded to bfloat16 (a float32 just below 2^-126 flushes to
 * zero, though it would round up to bfloat16's smallest normal). */
#define B32_FIN(x) round_bf16(x)
#define B32_NEG(x) round_bf16(-(x))
#define B32_FMA(a, b, c) round_bf16(fmaf(a, b, c))
#define B32_FIN_FTZ(x) round_bf16(ftz(x))
#define B32_NEG_FTZ(x) round_bf16(ftz(-(x)))
#define B32_FMA_FTZ(a, b, c) round_bf16(ftz(fmaf(a, b, c)))
NARROW_KERNEL(run_b32, uint16_t, bf16_load, bf16_bits, NO_ROUND, B32_FIN, B32_NEG, B32_FIN,
              B32_FMA)
NARROW_KERNEL(run_b32_ftz, uint16_t, bf16_load, bf16_bits, ftz, B32_FIN_FTZ, B32_NEG_FTZ,
              B32_FIN_FTZ, B32_FMA_FTZ)
/* B16: each result rounded to bfloat16 (a float32 sum or product of two
 * bfloat16 numbers rounded to bfloat16 is correctly rounded: 24 >= 2*8 + 2),
 * then flushed there; a negation or copy keeps the bits, NaN payloads too. */
#define B16_FIN_FTZ(x) ftz(round_bf16(x))
#define B16_FMA_FTZ(a, b, c) ftz(fma_bf16(a, b, c))
NARROW_KERNEL(run_b16, uint16_t, bf16_load, bf16_bits, NO_ROUND, round_bf16, NEG_NO_ROUND,
              NO_ROUND, fma_bf16)
NARROW_KERNEL(run_b16_ftz, uint16_t, bf16_load, bf16_bits, ftz, B16_FIN_FTZ, NEG_NO_ROUND,
              NO_ROUND, B16_FMA_FTZ)
/* BW32: float32 results throughout, rounded to bfloat16 when stored. */
#define BW32_NEG_FTZ(x) ftz(-(x))
#define BW32_FMA_FTZ(a, b, c) ftz(fmaf(a, b, c))
NARROW_KERNEL(run_bw32, uint16_t, bf16_load, bf16_round, NO_ROUND, NO_ROUND, NEG_NO_ROUND,
              NO_ROUND, FMA_D32)
NARROW_KERNEL(run_bw32_ftz, uint16_t, bf16_load, bf16_round, ftz, ftz, BW32_NEG_FTZ, ftz,
              BW32_FMA_FTZ)

/* ---- the Python entry point -------------------------------------------- */

static const int ITEMSIZE[N_KINDS] = {8, 4, 8, 2, 2, 2, 2, 2, 2};
/* The buffer format of each kind's storage, native byte order (PEP 3118):
 * bfloat16 has none (NumPy will not export ml_dtypes' 'E'), so its arrays
 * come as uint16 views of their bits. */
static const char *const FORMAT[N_KINDS] = {"d", "f", "d", "e", "e", "H", "H", "H", "e"};

static int malformed(const char *what) {
    PyErr_Format(PyExc_ValueError, "malformed %s", what);
    return -1;
}

/* Parse one segment, (code, constants): 5 bytes per operation, and
 * (register, value) pairs. */
static int parse_program(PyObject *segment, Program *program, int n_registers) {
    Py_buffer code;
    PyObject *consts, *fast = NULL;
    int status = -1;
    if (!PyArg_ParseTuple(segment, "y*O", &code, &consts)) return -1;
    if (code.len % 5 != 0 || code.len / 5 > MAX_STEPS) {
        malformed("program");
        goto done;
    }
    program->n_steps = (int)(code.len / 5);
    const unsigned char *bytes = (const unsigned char *)code.buf;
    for (int n = 0; n < program->n_steps; n++) {
        Instr *st = &program->steps[n];
        st->op = bytes[5 * n];
        st->out = bytes[5 * n + 1];
        st->a = bytes[5 * n + 2];
        st->b = bytes[5 * n + 3];
        st->c = bytes[5 * n + 4];
        if (st->op >= N_OPS || st->out >= n_registers || st->a >= n_registers ||
            st->b >= n_registers || st->c >= n_registers) {
            malformed("program");
            goto done;
        }
    }
    fast = PySequence_Fast(consts, "constants");
    if (!fast) goto done;
    Py_ssize_t n_const = PySequence_Fast_GET_SIZE(fast);
    if (n_const > MAX_REGISTERS) {
        malformed("constants");
        goto done;
    }
    for (Py_ssize_t k = 0; k < n_const; k++) {
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, k), "id", &program->const_reg[k],
                              &program->const_value[k]))
            goto done;
        if (program->const_reg[k] < 0 || program->const_reg[k] >= n_registers) {
            malformed("constants");
            goto done;
        }
    }
    program->n_const = (int)n_const;
    status = 0;
done:
    Py_XDECREF(fast);
    PyBuffer_Release(&code);
    return status;
}

static void dispatch(const Job *job) {
    switch (job->kind) {
    case K_F64: run_f64(job); break;
    case K_F32: run_f32(job); break;
    case K_D32: run_d32(job); break;
#if HAVE_FLOAT16
    case K_H32: run_h32(job); break;
    case K_H16: run_h16(job); break;
    case K_HW32: run_hw32(job); break;
#endif
    case K_B32: job->flush ? run_b32_ftz(job) : run_b32(job); break;
    case K_B16: job->flush ? run_b16_ftz(job) : run_b16(job); break;
    case K_BW32: job->flush ? run_bw32_ftz(job) : run_bw32(job); break;
    default: break;
    }
}

/* Whether two buffers overlap other than by being the very same memory. */
static int clash(const Py_buffer *a, const Py_buffer *b, int same_is_fine) {
    const char *a0 = a->buf, *b0 = b->buf;
    if (a->len == 0 || b->len == 0) return 0;
    if (a0 + a->len <= b0 || b0 + b->len <= a0) return 0;
    return !(same_is_fine && a0 == b0 && a->len == b->len);
}

typedef struct {
    int kind, flush, n_in, n_out;
    Py_ssize_t lanes;
    unsigned char in_reg[MAX_REGISTERS], out_reg[MAX_REGISTERS];
    Program programs[2]; /* the body, and the tail where lanes > 0 */
    PyTypeObject *type;
    void *scratch;
} Batch;

/* Run the batch's programs on one leaf, a tuple of n_in input and n_out
 * output arrays: 1 if it ran; 0 if it was skipped (an array that is not of
 * the batch's exact type, not a C-contiguous buffer of the batch's storage
 * format, not writable where it is an output, or not of the first array's
 * length; or an output that overlaps an input other than by being it, or
 * another output); -1 on error. */
static int run_leaf(const Batch *batch, PyObject *leaf) {
    int n_arrays = batch->n_in + batch->n_out;
    if (!PyTuple_Check(leaf) || PyTuple_GET_SIZE(leaf) != n_arrays) return malformed("leaf");
    Py_buffer views[2 * MAX_REGISTERS];
    int n_views = 0, status = 0;
    Py_ssize_t itemsize = ITEMSIZE[batch->kind];
    for (int k = 0; k < n_arrays; k++) {
        PyObject *obj = PyTuple_GET_ITEM(leaf, k);
        if (Py_TYPE(obj) != batch->type) goto done;
        int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (k >= batch->n_in ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(obj, &views[k], flags) < 0) {
            PyErr_Clear(); /* not a buffer this evaluator can take: skipped */
            goto done;
        }
        n_views++;
        const Py_buffer *v = &views[k];
        if (v->itemsize != itemsize || !v->format || strcmp(v->format, FORMAT[batch->kind]) ||
            v->len != views[0].len)
            goto done;
    }
    for (int k = batch->n_in; k < n_arrays; k++)
        for (int j = 0; j < k; j++)
            if (clash(&views[k], &views[j], j < batch->n_in)) goto done;
    Job job;
    job.kind = batch->kind;
    job.flush = batch->flush;
    job.n_in = batch->n_in;
    job.n_out = batch->n_out;
    job.scratch = batch->scratch;
    for (int k = 0; k < batch->n_in; k++) {
        job.in[k].reg = batch->in_reg[k];
        job.in[k].data = views[k].buf;
    }
    for (int k = 0; k < batch->n_out; k++) {
        job.out[k].reg = batch->out_reg[k];
        job.out[k].data = views[batch->n_in + k].buf;
    }
    Py_ssize_t n = n_arrays ? views[0].len / itemsize : 0;
    Py_ssize_t cut = batch->lanes ? n - n % batch->lanes : n;
    Py_BEGIN_ALLOW_THREADS
    job.program = &batch->programs[0];
    job.start = 0;
    job.stop = cut;
    dispatch(&job);
    if (cut < n) {
        job.program = &batch->programs[1];
        job.start = cut;
        job.stop = n;
        dispatch(&job);
    }
    Py_END_ALLOW_THREADS
    status = 1;
done:
    for (int k = 0; k < n_views; k++) PyBuffer_Release(&views[k]);
    return status;
}

static int parse_registers(const char *what, PyObject *bytes, unsigned char *regs,
                           int n_registers) {
    if (!PyBytes_Check(bytes) || PyBytes_GET_SIZE(bytes) > MAX_REGISTERS) return malformed(what);
    int n = (int)PyBytes_GET_SIZE(bytes);
    for (int k = 0; k < n; k++) {
        regs[k] = (unsigned char)PyBytes_AS_STRING(bytes)[k];
        if (regs[k] >= n_registers) {
            PyErr_Format(PyExc_ValueError, "%s: register %d out of range", what, regs[k]);
            return -1;
        }
    }
    return n;
}

static PyObject *run(PyObject *self, PyObject *args) {
    (void)self;
    int n_registers;
    PyObject *inputs, *outputs, *segments, *leaves, *type;
    Batch batch;
    memset(&batch, 0, sizeof batch);
    if (!PyArg_ParseTuple(args, "(ipinSS)OOO!", &batch.kind, &batch.flush, &n_registers,
                          &batch.lanes, &inputs, &outputs, &segments, &leaves, &PyType_Type,
                          &type))
        return NULL;
    int kind = batch.kind;
    if (kind < 0 || kind >= N_KINDS || (!HAVE_FLOAT16 && (kind == K_H32 || kind == K_H16 || kind == K_HW32))) {
        PyErr_Format(PyExc_ValueError, "kind %d is not available", kind);
        return NULL;
    }
    if (n_registers < 1 || n_registers > MAX_REGISTERS || batch.lanes < 0) {
        malformed("program");
        return NULL;
    }
    batch.flush = batch.flush && kind != K_D32 && kind != K_H32 && kind != K_H16 && kind != K_HW32;
    batch.type = (PyTypeObject *)type;
    batch.n_in = parse_registers("inputs", inputs, batch.in_reg, n_registers);
    if (batch.n_in < 0) return NULL;
    batch.n_out = parse_registers("outputs", outputs, batch.out_reg, n_registers);
    if (batch.n_out < 0) return NULL;
    PyObject *result = NULL, *fast = NULL, *skipped = NULL;
    fast = PySequence_Fast(segments, "segments");
    if (!fast) return NULL;
    Py_ssize_t n_segments = PySequence_Fast_GET_SIZE(fast);
    if (n_segments != (batch.lanes ? 2 : 1)) {
        malformed("segments: one, and a tail where lanes > 0");
        goto done;
    }
    for (Py_ssize_t k = 0; k < n_segments; k++)
        if (parse_program(PySequence_Fast_GET_ITEM(fast, k), &batch.programs[k], n_registers) < 0)
            goto done;
    Py_CLEAR(fast);
    fast = PySequence_Fast(leaves, "leaves");
    if (!fast) goto done;
    batch.scratch = aligned_alloc(64, MAX_REGISTERS * BLOCK_BYTES);
    if (!batch.scratch) {
        PyErr_NoMemory();
        goto done;
    }
    skipped = PyList_New(0);
    if (!skipped) goto done;
    for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(fast); j++) {
        int ran = run_leaf(&batch, PySequence_Fast_GET_ITEM(fast, j));
        if (ran < 0) goto done;
        if (ran == 0) {
            PyObject *index = PyLong_FromSsize_t(j);
            if (!index || PyList_Append(skipped, index) < 0) {
                Py_XDECREF(index);
                goto done;
            }
            Py_DECREF(index);
        }
    }
    result = skipped;
    skipped = NULL;
done:
    Py_XDECREF(skipped);
    free(batch.scratch);
    Py_XDECREF(fast);
    return result;
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS,
     "run(spec, segments, leaves, array_type)\n\n"
     "spec = (kind, flush, n_registers, lanes, inputs, outputs): the storage kind,\n"
     "whether subnormals flush, the register count, the tail's lanes (0: none),\n"
     "and the registers (bytes) that the input and output arrays fill.\n"
     "segments = [(code, constants)]: the body's program, then the tail's, which\n"
     "runs on the last n mod lanes elements of each leaf.\n"
     "leaves = [(input arrays..., output arrays...)], run in the order given.\n"
     "Returns the indices of the leaves skipped: an array not of exactly\n"
     "array_type, not a C-contiguous buffer of the kind's storage format (for\n"
     "bfloat16: uint16, its bits) and the\n"
     "first array's length, or a read-only output; or an output that overlaps an\n"
     "input (other than being it) or another output."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cpu", "A recipe evaluator over contiguous buffers.", -1, methods,
};

PyMODINIT_FUNC PyInit__cpu(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "HAVE_FLOAT16", HAVE_FLOAT16) < 0 ||
        PyModule_AddIntConstant(m, "MAX_REGISTERS", MAX_REGISTERS) < 0 ||
        PyModule_AddIntConstant(m, "BLOCK_BYTES", BLOCK_BYTES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
