/* One AOT library of bench/run_models.sh (a train block compiled with `dlc FILE.dl -o libM.so`):
 * the forward pass and the whole training step timed through the library's DLPack entry
 * PREFIX_call, which takes any signature, so one program serves every model. The library is
 * dlopen'ed; x and y are one batch in .npy files (f32 or i64, C order). Before timing it writes
 * what bench/models.py compares with PyTorch: the forward's result on x (OUTDIR/dlc_forward.bin,
 * raw f32) and the losses of the first CHECK_STEPS training steps on (x, y).
 *
 *     bench_models LIB.so PREFIX WEIGHTS.safetensors X.npy Y.npy OUT_SHAPE OUTDIR
 *
 * OUT_SHAPE is the forward's result shape, comma-separated ("64,10"). Prints
 *     losses L1 L2 L3
 *     forward_ms MEDIAN MIN MAX
 *     train_ms MEDIAN MIN MAX
 * Times are per call: the median (and the extremes) of BENCH_SAMPLES (default 7) samples, each
 * at least BENCH_SAMPLE_S seconds (default 0.2) and 3 calls of back-to-back calls, after a
 * warm-up of 0.3 s. The training steps run on the same instance after the forward timing, each
 * on the same batch (the weights keep changing, as in a real run). The thread count is the
 * library's: DLC_NUM_THREADS, read at create. */
#include "bench/bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* DLPack v0.8's descriptor, as the generated headers declare it. */
typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;

typedef void *(*create_fn)(const char *, char *, size_t);
typedef void (*destroy_fn)(void *);
typedef const char *(*last_error_fn)(const void *);
typedef int (*call_fn)(void *, const char *, const DLTensor *, int32_t, DLTensor *, int32_t);

enum { CHECK_STEPS = 3, MAXDIM = 8 };

typedef struct {
    DLTensor t;
    int64_t shape[MAXDIM];
} tensor;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_models: %s: %s\n", what, msg);
    exit(1);
}

/* A C-order .npy of f4 or i8 (little-endian), version 1 or 2 header. */
static void read_npy(const char *path, tensor *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, strerror(errno));
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6))
        die(path, "not a .npy file");
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2)
            die(path, "truncated header");
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    char *h = calloc(1, hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen)
        die(path, "truncated header");
    memset(&out->t, 0, sizeof out->t);
    out->t.device.device_type = 1;
    out->t.dtype.lanes = 1;
    if (strstr(h, "'<f4'"))
        out->t.dtype.code = 2, out->t.dtype.bits = 32;
    else if (strstr(h, "'<i8'"))
        out->t.dtype.code = 0, out->t.dtype.bits = 64;
    else
        die(path, "dtype is neither <f4 nor <i8");
    if (!strstr(h, "'fortran_order': False"))
        die(path, "not in C order");
    char *s = strstr(h, "'shape': (");
    if (!s)
        die(path, "no shape");
    s += strlen("'shape': (");
    int64_t n = 1;
    while (*s && *s != ')') {
        char *end;
        long long d = strtoll(s, &end, 10);
        if (end == s)
            break;
        if (out->t.ndim == MAXDIM)
            die(path, "too many dimensions");
        out->shape[out->t.ndim++] = d;
        n *= d;
        s = end;
        while (*s == ',' || *s == ' ')
            s++;
    }
    free(h);
    out->t.shape = out->shape;
    size_t bytes = (size_t)n * out->t.dtype.bits / 8;
    out->t.data = malloc(bytes ? bytes : 1);
    if (!out->t.data || fread(out->t.data, 1, bytes, f) != bytes)
        die(path, "truncated data");
    fclose(f);
}

static void f32_tensor(tensor *out, const char *shape)
{
    memset(&out->t, 0, sizeof out->t);
    out->t.device.device_type = 1;
    out->t.dtype = (DLDataType){2, 32, 1};
    int64_t n = 1;
    for (const char *s = shape; *s;) {
        char *end;
        long long d = strtoll(s, &end, 10);
        if (end == s || out->t.ndim == MAXDIM)
            die(shape, "bad shape");
        out->shape[out->t.ndim++] = d;
        n *= d;
        s = *end == ',' ? end + 1 : end;
    }
    out->t.shape = out->shape;
    out->t.data = calloc((size_t)n + 1, sizeof(float));
}

static void *sym(void *lib, const char *prefix, const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "%s_%s", prefix, name);
    void *p = dlsym(lib, full);
    if (!p)
        die(full, dlerror());
    return p;
}

static call_fn call;
static last_error_fn last_error;
static void *model;
static DLTensor args[2], fwd_out, step_out[3];

static void forward(void)
{
    if (call(model, "forward", args, 1, &fwd_out, 1))
        die("forward", last_error(model));
}

static float train_step(void)
{
    if (call(model, "train_step", args, 2, step_out, 3))
        die("train_step", last_error(model));
    return *(float *)step_out[0].data;
}

static void step_void(void)
{
    train_step();
}

/* Milliseconds per call: median, min, max over the samples. */
static void time_it(const char *name, void (*fn)(void))
{
    int samples = getenv("BENCH_SAMPLES") ? atoi(getenv("BENCH_SAMPLES")) : 7;
    double min_s = getenv("BENCH_SAMPLE_S") ? atof(getenv("BENCH_SAMPLE_S")) : 0.2;
    if (samples < 1 || samples > 99)
        samples = 7;
    double times[99], t_end = now_s() + 0.3;
    do
        fn();
    while (now_s() < t_end);
    for (int s = 0; s < samples; s++) {
        int64_t calls = 0;
        double t0 = now_s(), t;
        do {
            fn();
            calls++;
        } while ((t = now_s()) - t0 < min_s || calls < 3);
        times[s] = (t - t0) / (double)calls;
    }
    qsort(times, (size_t)samples, sizeof *times, cmp_double);
    printf("%s %.4f %.4f %.4f\n", name, 1e3 * times[samples / 2], 1e3 * times[0],
           1e3 * times[samples - 1]);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr,
                "usage: %s LIB.so PREFIX WEIGHTS.safetensors X.npy Y.npy OUT_SHAPE OUTDIR\n",
                argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        die(argv[1], dlerror());
    create_fn create = (create_fn)sym(lib, argv[2], "create");
    destroy_fn destroy = (destroy_fn)sym(lib, argv[2], "destroy");
    last_error = (last_error_fn)sym(lib, argv[2], "last_error");
    call = (call_fn)sym(lib, argv[2], "call");

    char err[1024];
    model = create(argv[3], err, sizeof err);
    if (!model)
        die("create", err);
    tensor x, y, out, scal[3];
    read_npy(argv[4], &x);
    read_npy(argv[5], &y);
    f32_tensor(&out, argv[6]);
    for (int i = 0; i < 3; i++)
        f32_tensor(&scal[i], "");               /* loss, learning rate, gradient norm */
    args[0] = x.t;
    args[1] = y.t;
    fwd_out = out.t;
    for (int i = 0; i < 3; i++)
        step_out[i] = scal[i].t;

    /* What models.py checks against PyTorch: the forward's result and the first losses. */
    forward();
    char path[4096];
    snprintf(path, sizeof path, "%s/dlc_forward.bin", argv[7]);
    FILE *f = fopen(path, "wb");
    int64_t n = 1;
    for (int d = 0; d < out.t.ndim; d++)
        n *= out.shape[d];
    if (!f || fwrite(out.t.data, sizeof(float), (size_t)n, f) != (size_t)n || fclose(f))
        die(path, "cannot write");
    /* The checked steps run on a second instance so that the timed forward sees the initial
     * weights on both sides. */
    void *first = model;
    model = create(argv[3], err, sizeof err);
    if (!model)
        die("create", err);
    printf("losses");
    for (int s = 0; s < CHECK_STEPS; s++)
        printf(" %.7g", (double)train_step());
    printf("\n");
    destroy(model);
    model = first;

    time_it("forward_ms", forward);
    time_it("train_ms", step_void);
    destroy(model);
    return 0;
}
