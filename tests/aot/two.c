/* Two AOT libraries in one process (tests/lit/aot/deps.test): the digits MLP (mlp.h) and the CNN
 * (cnn.h), linked together as shared libraries or as the relocatable objects `dlc -o NAME.o`
 * writes. Each keeps its own copy of dlc's run time, hidden, so nothing clashes: both create
 * instances from their embedded weights, run forward in turn on the same digits and must give
 * what `dlc run --entry` gave (MLP.npy, CNN.npy), bit for bit; the DLPack entry of each refuses
 * the other's function name.
 *
 *     two X.npy MLP.npy CNN.npy */
#include "cnn.h"
#include "mlp.h"
#include "npy.h"

static int check(const char *what, const float *got, const npy *want)
{
    int same = !memcmp(got, want->data, (size_t)want->n * sizeof(float));
    printf("%s: %s\n", what, same ? "as dlc run" : "OTHER THAN dlc run");
    return same;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: two X.npy MLP.npy CNN.npy\n");
        return 2;
    }
    npy x, rm, rc;
    if (npy_read(argv[1], &x) || npy_read(argv[2], &rm) || npy_read(argv[3], &rc))
        return 1;
    if (x.kind != 'f' || x.ndim != 2 || rm.n != x.shape[0] * 10 || rc.n != rm.n) {
        fprintf(stderr, "two: x must be f32[B, 64] and the references f32[B, 10]\n");
        return 2;
    }
    char err[512];
    mlp *a = mlp_create(NULL, err, sizeof err);
    if (!a) {
        printf("mlp_create: %s\n", err);
        return 1;
    }
    cnn *b = cnn_create(NULL, err, sizeof err);
    if (!b) {
        printf("cnn_create: %s\n", err);
        return 1;
    }
    float *y = malloc(sizeof(float) * (size_t)rm.n);
    int ok = 1;
    for (int round = 0; round < 2; round++) {
        int e = mlp_forward(a, x.shape[0], x.data, y);
        if (e)
            printf("mlp_forward: %d %s\n", e, mlp_last_error(a));
        ok &= !e && check("mlp", y, &rm);
        e = cnn_forward(b, x.shape[0], x.data, y);
        if (e)
            printf("cnn_forward: %d %s\n", e, cnn_last_error(b));
        ok &= !e && check("cnn", y, &rc);
    }
    printf("mlp_call(\"cnn\"): %d %s\n", mlp_call(a, "cnn", NULL, 0, NULL, 0), mlp_last_error(a));
    printf("cnn_last_error: \"%s\"\n", cnn_last_error(b));
    mlp_destroy(a);
    cnn_destroy(b);
    free(y);
    return ok ? 0 : 1;
}
