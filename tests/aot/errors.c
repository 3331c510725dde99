/* Every entry of an AOT library refuses bad arguments with its status code and a message, and
 * the instance stays usable (tests/lit/aot/errors.test). Runs on tests/lit/aot/Inputs/tiny.dl's
 * library; prints one line per case, "NAME: CODE MESSAGE", for FileCheck, and a line saying
 * whether the instance still computes what it computed before the failures.
 *
 *     errors GOOD.safetensors DIR        (DIR: the test's folder with missing.safetensors,
 *                                         garbage.safetensors, dropped.safetensors,
 *                                         reshaped.safetensors and truncated.safetensors) */
#include "libtiny.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 4, F = 64, C = 10 };

static tiny *m;
static float x[B * F], logits[B * C], before[B * C], loss;
static int64_t y[B];

static void report(const char *name, int rc)
{
    printf("%s: %d %s\n", name, rc, tiny_last_error(m));
}

static void report_create(const char *name, const char *path)
{
    char err[512] = "untouched";
    tiny *t = tiny_create(path, err, sizeof err);
    printf("%s: %s %s\n", name, t ? "created" : "NULL", err);
    tiny_destroy(t);
}

static DLTensor tensor(void *data, int32_t ndim, int64_t *shape, uint8_t code, uint8_t bits)
{
    return (DLTensor){.data = data, .device = {kDLCPU, 0}, .ndim = ndim, .dtype = {code, bits, 1}, .shape = shape};
}

/* tiny_call("forward") on x [B, F] -> logits [B, C], with one thing changed by `bad`. */
static int call_forward(int bad)
{
    int64_t xs[2] = {B, F}, ys[2] = {B, C}, neg[2] = {-1, F}, small[2] = {B, F - 1}, ysmall[2] = {B, C - 1};
    int64_t yrow[2] = {B + 1, C}, strides[2] = {1, B}, compact[2] = {F, 1}, one[1] = {B * F};
    DLTensor in = tensor(x, 2, xs, kDLFloat, 32), out = tensor(logits, 2, ys, kDLFloat, 32);
    DLTensor two[2] = {in, in};
    switch (bad) {
    case 1: in.dtype.bits = 64; break;
    case 2: in.dtype.code = kDLInt; break;
    case 3: in.dtype.lanes = 2; break;
    case 4: in.ndim = 1; in.shape = one; break;
    case 5: in.shape = small; break;
    case 6: in.shape = neg; break;
    case 7: out.shape = ysmall; break;
    case 8: out.shape = yrow; break;
    case 9: in.device.device_type = (DLDeviceType)2; break;   /* kDLCUDA */
    case 10: out.device.device_type = (DLDeviceType)13; break; /* kDLCUDAManaged... anything not CPU */
    case 11: in.strides = strides; break;
    case 12: in.data = NULL; break;
    case 13: out.data = NULL; break;
    case 14: in.ndim = 2; in.shape = NULL; break;
    case 15: in.strides = compact; break;              /* compact strides given: fine */
    case 16: return tiny_call(m, "forward", two, 2, &out, 1);
    case 17: return tiny_call(m, "forward", &in, 0, &out, 1);
    case 18: return tiny_call(m, "forward", &in, 1, two, 2);
    case 19: return tiny_call(m, "forward", NULL, 1, &out, 1);
    case 20: return tiny_call(m, "forward", &in, 1, NULL, 1);
    case 21: return tiny_call(m, "backward", &in, 1, &out, 1);
    case 22: return tiny_call(m, NULL, &in, 1, &out, 1);
    case 23: return tiny_call(NULL, "forward", &in, 1, &out, 1);
    case 24: out.dtype.bits = 16; break;
    case 25: {   /* byte offsets into larger buffers: the tensors start one row in */
        static float xbuf[(B + 1) * F], ybuf[(B + 1) * C];
        memcpy(xbuf + F, x, sizeof x);
        in.data = xbuf;
        in.byte_offset = F * sizeof(float);
        out.data = ybuf;
        out.byte_offset = C * sizeof(float);
        int rc = tiny_call(m, "forward", &in, 1, &out, 1);
        memcpy(logits, ybuf + C, sizeof logits);
        return rc;
    }
    }
    return tiny_call(m, "forward", &in, 1, &out, 1);
}

/* tiny_call("train_step") on x [B, F], y [B] -> its four scalar results, one thing changed. */
static int call_step(int bad)
{
    int64_t xs[2] = {B, F}, ys[1] = {B}, ys5[1] = {B + 1};
    float r[4];
    int32_t y32[B] = {0};
    DLTensor in[2] = {tensor(x, 2, xs, kDLFloat, 32), tensor(y, 1, ys, kDLInt, 64)};
    DLTensor res[4];
    for (int i = 0; i < 4; i++)
        res[i] = tensor(&r[i], 0, NULL, kDLFloat, 32);
    switch (bad) {
    case 1: in[1] = tensor(y32, 1, ys, kDLInt, 32); break;
    case 2: in[1].shape = ys5; break;
    case 3: return tiny_call(m, "train_step", in, 2, res, 1);
    case 4: res[3].ndim = 1; res[3].shape = ys; break;
    }
    int rc = tiny_call(m, "train_step", in, 2, res, 4);
    if (!rc)
        printf("train_step by DLPack: loss %.4f, lr %g\n", r[0], r[2]);
    return rc;
}

static int same_logits(const float *a, const float *b)
{
    return !memcmp(a, b, sizeof logits);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: errors GOOD.safetensors DIR\n");
        return 2;
    }
    char path[4096];
    for (int i = 0; i < B * F; i++)
        x[i] = (float)((i * 37) % 17) / 16;
    for (int i = 0; i < B; i++)
        y[i] = i * 3;

    /* create */
    report_create("create good", argv[1]);
    snprintf(path, sizeof path, "%s/missing.safetensors", argv[2]);
    report_create("create missing", path);
    report_create("create directory", argv[2]);
    snprintf(path, sizeof path, "%s/garbage.safetensors", argv[2]);
    report_create("create garbage", path);
    snprintf(path, sizeof path, "%s/dropped.safetensors", argv[2]);
    report_create("create dropped", path);
    snprintf(path, sizeof path, "%s/reshaped.safetensors", argv[2]);
    report_create("create reshaped", path);
    snprintf(path, sizeof path, "%s/truncated.safetensors", argv[2]);
    report_create("create truncated", path);
    char tinyerr[8];
    snprintf(path, sizeof path, "%s/missing.safetensors", argv[2]);
    tiny *t = tiny_create(path, tinyerr, sizeof tinyerr);
    printf("create missing, 8-byte err: %s \"%s\"\n", t ? "created" : "NULL", tinyerr);
    t = tiny_create(path, NULL, 0);
    printf("create missing, no err: %s\n", t ? "created" : "NULL");

    char err[512];
    if (!(m = tiny_create(argv[1], err, sizeof err))) {
        printf("tiny_create: %s\n", err);
        return 1;
    }
    int rc = tiny_forward(m, B, x, before);
    printf("forward: %d \"%s\"\n", rc, tiny_last_error(m));

    /* the typed entries */
    printf("forward null handle: %d %s\n", tiny_forward(NULL, B, x, logits), tiny_last_error(NULL));
    report("forward null x", tiny_forward(m, B, NULL, logits));
    report("forward null y", tiny_forward(m, B, x, NULL));
    report("forward negative B", tiny_forward(m, -1, x, logits));
    report("forward huge B", tiny_forward(m, (int64_t)1 << 60, x, logits));
    report("forward B = 0", tiny_forward(m, 0, x, logits));
    printf("train_step null handle: %d\n", tiny_train_step(NULL, B, x, y, &loss));
    report("train_step null x", tiny_train_step(m, B, NULL, y, &loss));
    report("train_step null y", tiny_train_step(m, B, x, NULL, &loss));
    report("train_step null loss", tiny_train_step(m, B, x, y, NULL));
    report("train_step negative B", tiny_train_step(m, -3, x, y, &loss));
    int64_t bad_y[B] = {0, 1, 10, 2};
    report("train_step label 10", tiny_train_step(m, B, x, bad_y, &loss));
    bad_y[2] = -1;
    report("train_step label -1", tiny_train_step(m, B, x, bad_y, &loss));
    rc = tiny_forward(m, B, x, logits);
    printf("after the failed steps: %d, logits %s\n", rc, same_logits(logits, before) ? "unchanged" : "CHANGED");

    /* the DLPack entry */
    static const char *const fwd_cases[] = {
        "ok", "f64 input", "int32 input", "2 lanes", "rank 1 input", "input [4, 63]", "input [-1, 64]",
        "result [4, 9]", "result [5, 10]", "input on CUDA", "result on device 13", "input strided",
        "input data NULL", "result data NULL", "input shape NULL", "compact strides", "2 inputs", "0 inputs",
        "2 results", "null inputs", "null results", "fn backward", "fn NULL", "null handle", "f16 result",
        "byte offsets"};
    for (int i = 0; i < (int)(sizeof fwd_cases / sizeof *fwd_cases); i++) {
        memset(logits, 0, sizeof logits);
        rc = call_forward(i);
        char name[64];
        snprintf(name, sizeof name, "call forward %s", fwd_cases[i]);
        if (i == 23)
            printf("%s: %d\n", name, rc);
        else
            report(name, rc);
        if (!rc && !same_logits(logits, before))
            printf("%s: other logits than tiny_forward\n", name);
    }
    static const char *const step_cases[] = {"ok", "int32 labels", "labels [5]", "1 result", "rank 1 result"};
    for (int i = 0; i < (int)(sizeof step_cases / sizeof *step_cases); i++) {
        char name[64];
        snprintf(name, sizeof name, "call train_step %s", step_cases[i]);
        report(name, call_step(i));
    }

    /* checkpoints, on weights that training moved away from the file's */
    float trained[B * C];
    for (int i = 0; i < 6; i++)
        if ((rc = tiny_train_step(m, B, x, y, &loss)))
            report("train_step", rc);
    tiny_forward(m, B, x, trained);
    printf("training changed the logits: %s\n", same_logits(trained, before) ? "NO" : "yes");
    report("save null path", tiny_save(m, NULL));
    report("save unwritable", tiny_save(m, "/nonexistent-dir/sub/ck.safetensors"));
    snprintf(path, sizeof path, "%s", argv[2]);
    report("save onto a directory", tiny_save(m, path));
    printf("save null handle: %d\n", tiny_save(NULL, "x"));
    report("load null path", tiny_load(m, NULL));
    printf("load null handle: %d\n", tiny_load(NULL, "x"));
    snprintf(path, sizeof path, "%s/missing.safetensors", argv[2]);
    report("load missing", tiny_load(m, path));
    snprintf(path, sizeof path, "%s/garbage.safetensors", argv[2]);
    report("load garbage", tiny_load(m, path));
    snprintf(path, sizeof path, "%s/dropped.safetensors", argv[2]);
    report("load dropped", tiny_load(m, path));
    snprintf(path, sizeof path, "%s/reshaped.safetensors", argv[2]);
    report("load reshaped", tiny_load(m, path));
    snprintf(path, sizeof path, "%s/truncated.safetensors", argv[2]);
    report("load truncated", tiny_load(m, path));
    rc = tiny_forward(m, B, x, logits);
    printf("after the failed loads: %d, logits %s\n", rc, same_logits(logits, trained) ? "unchanged" : "CHANGED");
    report("load good", tiny_load(m, argv[1]));
    rc = tiny_forward(m, B, x, logits);
    printf("after loading the weights again: %d, logits %s\n", rc,
           same_logits(logits, before) ? "as at create" : "OTHER THAN AT CREATE");
    int finite = 1;
    for (int i = 0; i < B * C; i++)
        finite &= isfinite(before[i]) && before[i] != 0;
    printf("logits finite and nonzero: %s\n", finite ? "yes" : "NO");
    tiny_destroy(m);
    tiny_destroy(NULL);
    return 0;
}
