/* nagref.fastpaths._cpu: run a recipe over contiguous arrays in one pass.
 *
 * A recipe (see nagref/_recipe.py) is a list of primitive operations on
 * registers. This module evaluates it block by block: each block of BLOCK
 * elements is loaded into registers that stay in the L1 cache, every
 * operation runs over the block, and the output registers are stored. Each
 * operation rounds exactly as the generic path does:
 *
 *   kind  storage  compute  result  notes
 *   F64   float64  float64  float64 FMA: C99 fma
 *   F32   float32  float32  float32 FMA: C99 fmaf
 *   D32   float64  float32  float32 inputs rounded to float32 on load
 *   H32   float16  float32  float16 every result rounded to float16; FMA: fmaf, then float16
 *   H16   float16  float16  float16 every result rounded to float16; FMA: exact, by round-to-odd
 *
 * One float16 operation computed in float32 and rounded to float16 is
 * correctly rounded, because float32 carries more than 2*11 + 1 bits
 * (Figueroa 1995). The float16 FMA rounds the exact a*b + c to odd in float64
 * and float32 and then to nearest in float16, which is exact because each
 * odd rounding keeps more than two extra bits (Boldo and Melquiond 2008).
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
enum { K_F64, K_F32, K_D32, K_H32, K_H16, N_KINDS };

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

typedef struct {
    int kind, flush, n_steps, n_in, n_out, n_const;
    Instr steps[MAX_STEPS];
    Port in[MAX_REGISTERS], out[MAX_REGISTERS];
    int const_reg[MAX_REGISTERS];
    double const_value[MAX_REGISTERS];
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
        for (int k = 0; k < job->n_const; k++) {                               \
            T *block = scratch[job->const_reg[k]];                             \
            for (int i = 0; i < BLOCK; i++) block[i] = (T)job->const_value[k]; \
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
            for (int n = 0; n < job->n_steps; n++) {                           \
                const Instr *st = &job->steps[n];                              \
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

/* ---- float32 registers over float64 or float16 storage ----------------- */

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

#define NARROW_KERNEL(NAME, ST, ROUND, FMA)                                    \
    CLONED static void NAME(const Job *job) {                                  \
        enum { BLOCK = BLOCK_BYTES / sizeof(float) };                          \
        float (*reg)[BLOCK] = job->scratch;                       \
        for (int k = 0; k < job->n_const; k++)                                 \
            for (int i = 0; i < BLOCK; i++)                                    \
                reg[job->const_reg[k]][i] = (float)job->const_value[k];        \
        for (Py_ssize_t s = job->start; s < job->stop; s += BLOCK) {           \
            int m = (int)(job->stop - s < BLOCK ? job->stop - s : BLOCK);      \
            for (int k = 0; k < job->n_in; k++) {                              \
                const ST *src = (const ST *)job->in[k].data + s;               \
                float *dst = reg[job->in[k].reg];                              \
                for (int i = 0; i < m; i++) dst[i] = (float)src[i];            \
            }                                                                  \
            for (int n = 0; n < job->n_steps; n++) {                           \
                const Instr *st = &job->steps[n];                              \
                float *o = reg[st->out];                                       \
                const float *a = reg[st->a], *b = reg[st->b], *c = reg[st->c]; \
                switch (st->op) {                                              \
                case OP_COPY: LOOP(m) o[i] = ROUND(a[i]); break;               \
                case OP_NEG: LOOP(m) o[i] = ROUND(-a[i]); break;               \
                case OP_MUL: LOOP(m) o[i] = ROUND(a[i] * b[i]); break;         \
                case OP_ADD: LOOP(m) o[i] = ROUND(a[i] + b[i]); break;         \
                case OP_SUB: LOOP(m) o[i] = ROUND(a[i] - b[i]); break;         \
                case OP_FMA: LOOP(m) o[i] = FMA(a[i], b[i], c[i]); break;      \
                default: LOOP(m) o[i] = ROUND(ROUND(a[i] * b[i]) + c[i]);      \
                }                                                              \
            }                                                                  \
            for (int k = 0; k < job->n_out; k++) {                             \
                ST *dst = (ST *)job->out[k].data + s;                          \
                const float *src = reg[job->out[k].reg];                       \
                for (int i = 0; i < m; i++) dst[i] = (ST)src[i];               \
            }                                                                  \
        }                                                                      \
    }

#define NO_ROUND(x) (x)
#define FMA_D32(a, b, c) fmaf(a, b, c)
NARROW_KERNEL(run_d32, double, NO_ROUND, FMA_D32)
#if HAVE_FLOAT16
#define FMA_H32(a, b, c) round_half(fmaf(a, b, c))
NARROW_KERNEL(run_h32, half, round_half, FMA_H32)
NARROW_KERNEL(run_h16, half, round_half, fma_half)
#endif

/* ---- the Python entry point -------------------------------------------- */

static const int ITEMSIZE[N_KINDS] = {8, 4, 8, 2, 2};

static int parse_ports(PyObject *seq, Port *ports, Py_buffer *views, int *n_views,
                       int writable, Py_ssize_t need, Py_ssize_t itemsize,
                       const char *what, int n_registers) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > MAX_REGISTERS) {
        PyErr_Format(PyExc_ValueError, "%s: at most %d arrays", what, MAX_REGISTERS);
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        int reg;
        PyObject *obj;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, k), "iO", &reg, &obj)) goto fail;
        if (reg < 0 || reg >= n_registers) {
            PyErr_Format(PyExc_ValueError, "%s: register %d out of range", what, reg);
            goto fail;
        }
        Py_buffer *view = &views[*n_views];
        int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(obj, view, flags) < 0) goto fail;
        (*n_views)++;
        if (view->itemsize != itemsize || view->len < need * itemsize) {
            PyErr_Format(PyExc_ValueError, "%s: array %zd has %zd bytes of %zd-byte items; "
                         "%zd items of %zd bytes needed", what, k, view->len,
                         view->itemsize, need, itemsize);
            goto fail;
        }
        ports[k].reg = reg;
        ports[k].data = (char *)view->buf;
    }
    Py_DECREF(fast);
    return (int)n;
fail:
    Py_DECREF(fast);
    return -1;
}

static void dispatch(const Job *job) {
    switch (job->kind) {
    case K_F64: run_f64(job); break;
    case K_F32: run_f32(job); break;
    case K_D32: run_d32(job); break;
#if HAVE_FLOAT16
    case K_H32: run_h32(job); break;
    case K_H16: run_h16(job); break;
#endif
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

/* Run one (inputs, outputs, start, stop) entry of the job list: 1 if it ran,
 * 0 if it was skipped because an output overlaps an input (other than being
 * that input, an in-place update) or another output, -1 on error. */
static int run_one(Job *job, PyObject *entry, int n_registers) {
    PyObject *inputs, *outputs;
    Py_ssize_t start, stop;
    Py_buffer views[2 * MAX_REGISTERS];
    int n_views = 0, status = -1;
    if (!PyArg_ParseTuple(entry, "OOnn", &inputs, &outputs, &start, &stop)) return -1;
    if (start < 0 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "malformed program");
        return -1;
    }
    job->start = start;
    job->stop = stop;
    Py_ssize_t itemsize = ITEMSIZE[job->kind];
    job->n_in = parse_ports(inputs, job->in, views, &n_views, 0, stop, itemsize, "inputs",
                            n_registers);
    if (job->n_in < 0) goto done;
    job->n_out = parse_ports(outputs, job->out, views, &n_views, 1, stop, itemsize, "outputs",
                             n_registers);
    if (job->n_out < 0) goto done;
    status = 0;
    for (int k = job->n_in; k < n_views; k++)
        for (int j = 0; j < k; j++)
            if (clash(&views[k], &views[j], j < job->n_in)) goto done;
    Py_BEGIN_ALLOW_THREADS
    dispatch(job);
    Py_END_ALLOW_THREADS
    status = 1;
done:
    for (int k = 0; k < n_views; k++) PyBuffer_Release(&views[k]);
    return status;
}

static PyObject *run(PyObject *self, PyObject *args) {
    (void)self;
    int kind, flush, n_registers;
    Py_buffer program;
    PyObject *consts, *entries;
    if (!PyArg_ParseTuple(args, "ipiy*OO", &kind, &flush, &n_registers, &program, &consts,
                          &entries))
        return NULL;
    Job job;
    PyObject *result = NULL, *fast = NULL, *skipped = NULL;
    memset(&job, 0, sizeof job);
    if (kind < 0 || kind >= N_KINDS || (!HAVE_FLOAT16 && (kind == K_H32 || kind == K_H16))) {
        PyErr_Format(PyExc_ValueError, "kind %d is not available", kind);
        goto done;
    }
    if (n_registers < 1 || n_registers > MAX_REGISTERS || program.len % 5 != 0 ||
        program.len / 5 > MAX_STEPS) {
        PyErr_SetString(PyExc_ValueError, "malformed program");
        goto done;
    }
    job.kind = kind;
    job.flush = flush && (kind == K_F64 || kind == K_F32);
    job.n_steps = (int)(program.len / 5);
    const unsigned char *code = (const unsigned char *)program.buf;
    for (int n = 0; n < job.n_steps; n++) {
        Instr *st = &job.steps[n];
        st->op = code[5 * n];
        st->out = code[5 * n + 1];
        st->a = code[5 * n + 2];
        st->b = code[5 * n + 3];
        st->c = code[5 * n + 4];
        if (st->op >= N_OPS || st->out >= n_registers || st->a >= n_registers ||
            st->b >= n_registers || st->c >= n_registers) {
            PyErr_SetString(PyExc_ValueError, "malformed program");
            goto done;
        }
    }
    fast = PySequence_Fast(consts, "constants");
    if (!fast) goto done;
    Py_ssize_t n_const = PySequence_Fast_GET_SIZE(fast);
    if (n_const > MAX_REGISTERS) n_const = -1;
    for (Py_ssize_t k = 0; k < n_const; k++) {
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, k), "id", &job.const_reg[k],
                              &job.const_value[k]) ||
            job.const_reg[k] < 0 || job.const_reg[k] >= n_registers) {
            n_const = -1;
            break;
        }
    }
    Py_CLEAR(fast);
    if (n_const < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "malformed constants");
        goto done;
    }
    job.n_const = (int)n_const;
    fast = PySequence_Fast(entries, "jobs");
    if (!fast) goto done;
    job.scratch = aligned_alloc(64, MAX_REGISTERS * BLOCK_BYTES);
    if (!job.scratch) {
        PyErr_NoMemory();
        goto done;
    }
    skipped = PyList_New(0);
    if (!skipped) goto done;
    for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(fast); j++) {
        int ran = run_one(&job, PySequence_Fast_GET_ITEM(fast, j), n_registers);
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
    free(job.scratch);
    Py_XDECREF(fast);
    PyBuffer_Release(&program);
    return result;
}

static PyMethodDef methods[] = {
    {"run", run, METH_VARARGS,
     "run(kind, flush, n_registers, program, constants, jobs)\n\n"
     "Evaluate a compiled recipe for each job (inputs, outputs, start, stop): on\n"
     "elements [start, stop) of C-contiguous buffers, in the order given. Returns\n"
     "the indices of the jobs skipped because an output overlaps an input (other\n"
     "than being it) or another output."},
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
