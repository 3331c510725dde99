/* The generic harness of the AOT library tests (tests/lit/aot): dlopen()s a library dlc wrote,
 * creates an instance, calls PREFIX_call("forward", ...) on DLPack tensors read from .npy files,
 * with result shapes and dtypes taken from reference .npy files (`dlc run --entry ... --output`),
 * and prints how far each result is from its reference. It exits 1 when a difference is above
 * --tol (relative to the reference's largest magnitude), or on any failure, with the library's
 * message.
 *
 *     call LIB PREFIX WEIGHTS|- [--tol T] [--typed] [--fn NAME] --ref R.npy ... --in X.npy ...
 *
 * WEIGHTS "-" creates with NULL (the embedded weights). --typed also calls PREFIX_forward(m, B, x, y)
 * (one input f32[B, ...], one f32 result) and requires it to agree with PREFIX_call bit for bit.
 * Every call is made twice: the second must repeat the first exactly. --fn calls another function
 * than "forward" (to see it refused). */
#include "npy.h"

#include <dlfcn.h>
#include <math.h>

/* DLPack's descriptor (v0.8 and later), as the generated headers declare it. */
typedef struct {
    void    *data;
    int32_t  device_type, device_id;
    int32_t  ndim;
    uint8_t  code, bits;
    uint16_t lanes;
    int64_t *shape, *strides;
    uint64_t byte_offset;
} dltensor;

typedef void *(*create_fn)(const char *, char *, size_t);
typedef void (*destroy_fn)(void *);
typedef const char *(*error_fn)(const void *);
typedef int (*call_fn)(void *, const char *, const dltensor *, int32_t, dltensor *, int32_t);
typedef int (*forward_fn)(void *, int64_t, const float *, float *);

enum { MAXT = 16 };

static void *sym(void *lib, const char *prefix, const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "%s_%s", prefix, name);
    void *p = dlsym(lib, full);
    if (!p)
        fprintf(stderr, "call: %s: %s\n", full, dlerror());
    return p;
}

static dltensor describe(npy *a, void *data)
{
    return (dltensor){.data = data, .device_type = 1, .ndim = a->ndim, .code = a->kind == 'f' ? 2 : 0,
                      .bits = a->kind == 'f' ? 32 : 64, .lanes = 1, .shape = a->shape};
}

/* Largest |got - want| and |want| over n elements of kind k. */
static void diff(char k, const void *got, const void *want, int64_t n, double *dmax, double *rmax)
{
    *dmax = *rmax = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = k == 'f' ? ((const float *)got)[i] : (double)((const int64_t *)got)[i];
        double w = k == 'f' ? ((const float *)want)[i] : (double)((const int64_t *)want)[i];
        double d = isnan(g) != isnan(w) ? INFINITY : fabs(g - w);
        *dmax = d > *dmax || isnan(d) ? d : *dmax;
        *rmax = fabs(w) > *rmax ? fabs(w) : *rmax;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: call LIB PREFIX WEIGHTS|- [--tol T] [--typed] [--fn NAME] --ref R.npy ... "
                        "--in X.npy ...\n");
        return 2;
    }
    const char *prefix = argv[2], *weights = strcmp(argv[3], "-") ? argv[3] : NULL;
    double tol = 1e-5;
    const char *fn = "forward";
    int typed = 0, nin = 0, nref = 0;
    npy in[MAXT], ref[MAXT];
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--tol") && i + 1 < argc)
            tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--typed"))
            typed = 1;
        else if (!strcmp(argv[i], "--fn") && i + 1 < argc)
            fn = argv[++i];
        else if (!strcmp(argv[i], "--ref") && i + 1 < argc && nref < MAXT) {
            if (npy_read(argv[++i], &ref[nref++]))
                return 1;
        } else if (!strcmp(argv[i], "--in") && i + 1 < argc && nin < MAXT) {
            if (npy_read(argv[++i], &in[nin++]))
                return 1;
        } else {
            fprintf(stderr, "call: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "call: %s\n", dlerror());
        return 1;
    }
    create_fn create = (create_fn)sym(lib, prefix, "create");
    destroy_fn destroy = (destroy_fn)sym(lib, prefix, "destroy");
    error_fn last_error = (error_fn)sym(lib, prefix, "last_error");
    call_fn call = (call_fn)sym(lib, prefix, "call");
    forward_fn forward = typed ? (forward_fn)sym(lib, prefix, "forward") : NULL;
    if (!create || !destroy || !last_error || !call || (typed && !forward))
        return 1;

    char err[512] = "untouched";
    void *m = create(weights, err, sizeof err);
    if (!m) {
        printf("create: failed: %s\n", err);
        return 1;
    }
    printf("create: ok (err \"%s\")\n", err);

    dltensor args[MAXT], res[MAXT], res2[MAXT];
    for (int i = 0; i < nin; i++)
        args[i] = describe(&in[i], in[i].data);
    for (int r = 0; r < nref; r++) {
        size_t bytes = (size_t)(ref[r].n * npy_elsize(&ref[r])) + 1;
        res[r] = describe(&ref[r], memset(malloc(bytes), 0xff, bytes));    /* NaN until written */
        res2[r] = describe(&ref[r], memset(malloc(bytes), 0xff, bytes));
    }
    int rc = call(m, fn, args, nin, res, nref);
    if (rc) {
        printf("call: error %d: %s\n", rc, last_error(m));
        return 1;
    }
    if ((rc = call(m, fn, args, nin, res2, nref))) {
        printf("call again: error %d: %s\n", rc, last_error(m));
        return 1;
    }
    int fails = 0;
    for (int r = 0; r < nref; r++) {
        double d, mx;
        diff(ref[r].kind, res[r].data, ref[r].data, ref[r].n, &d, &mx);
        int ok = d <= tol * (mx > 1 ? mx : 1);
        printf("result %d: %c[", r, ref[r].kind);
        for (int k = 0; k < ref[r].ndim; k++)
            printf("%s%lld", k ? ", " : "", (long long)ref[r].shape[k]);
        printf("] max_abs_diff %.3g max_abs_ref %.3g: %s\n", d, mx, ok ? "ok" : "FAIL");
        fails += !ok || mx == 0;
        size_t bytes = (size_t)(ref[r].n * npy_elsize(&ref[r]));
        if (memcmp(res[r].data, res2[r].data, bytes)) {
            printf("result %d: a second call gave other values: FAIL\n", r);
            fails++;
        }
    }
    if (typed) {
        if (nin != 1 || nref != 1 || in[0].kind != 'f' || ref[0].kind != 'f' || in[0].ndim < 1) {
            fprintf(stderr, "call: --typed takes one f32 input and one f32 result\n");
            return 2;
        }
        size_t bytes = (size_t)(ref[0].n * 4);
        float *y = memset(malloc(bytes + 1), 0xff, bytes);
        if ((rc = forward(m, in[0].shape[0], in[0].data, y))) {
            printf("typed: error %d: %s\n", rc, last_error(m));
            return 1;
        }
        int same = !memcmp(y, res[0].data, bytes);
        printf("typed: %s_forward %s %s_call\n", prefix, same ? "equals" : "DIFFERS FROM", prefix);
        fails += !same;
        free(y);
    }
    printf("last_error after success: \"%s\"\n", last_error(m));
    destroy(m);
    for (int r = 0; r < nref; r++) {
        free(res[r].data);
        free(res2[r].data);
    }
    printf("%s\n", fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}
