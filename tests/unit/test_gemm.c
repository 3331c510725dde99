/* The CPU backend's sgemm against a double-precision reference: shapes that hit every edge of the
 * packing and the micro-kernel (1, odd sizes, partial MR/NR tiles, several K blocks), strided
 * operands, 1 and 2 threads, default and small blocking parameters.
 * `test_gemm --print-asm|--print-ir` prints the micro-kernel for znver5 (tests/lit/codegen). */
#include "codegen/cpu/gemm.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>

static unsigned seed = 12345;

static float rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* One C = A @ B with leading dimensions padded by `pad`, A and/or B stored transposed (ta, tb:
 * read through cg_gemm_run_strided); C starts as NaN so a missed store shows, and the padding
 * around C must survive untouched. */
static void check_shape(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, int64_t pad, bool ta,
                        bool tb)
{
    int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)(arows * lda + 1));
    float *B = malloc(sizeof(float) * (size_t)(brows * ldb + 1));
    float *C = malloc(sizeof(float) * (size_t)(M * ldc + 1));
    for (int64_t i = 0; i < arows * lda; i++)
        A[i] = rnd();
    for (int64_t i = 0; i < brows * ldb; i++)
        B[i] = rnd();
    for (int64_t i = 0; i < M * ldc; i++)
        C[i] = NAN;
    int64_t rsa = ta ? 1 : lda, csa = ta ? lda : 1, rsb = tb ? 1 : ldb, csb = tb ? ldb : 1;
    if (ta || tb)
        CHECK(cg_gemm_run_strided(g, pool, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc));
    else
        CHECK(cg_gemm_run(g, pool, M, N, K, A, lda, B, ldb, C, ldc));
    /* Inputs in [-1, 1]: the float error of a K-term dot product grows like K * eps. */
    double tol = 1e-6 * (double)(K + 4) * 4;
    int bad = 0;
    for (int64_t i = 0; i < M && bad < 5; i++) {
        for (int64_t j = 0; j < N && bad < 5; j++) {
            double ref = 0;
            for (int64_t k = 0; k < K; k++)
                ref += (double)A[i * rsa + k * csa] * (double)B[k * rsb + j * csb];
            double got = C[i * ldc + j];
            if (!(fabs(got - ref) <= tol)) {
                bad++;
                check_failures++;
                fprintf(stderr, "gemm %lldx%lldx%lld pad %lld threads %d: C[%lld][%lld] = %.9g, want %.9g\n",
                        (long long)M, (long long)N, (long long)K, (long long)pad,
                        pool ? rt_pool_threads(pool) : 1, (long long)i, (long long)j, got, ref);
            }
        }
        for (int64_t j = N; j < ldc && i < M; j++)
            if (!isnan(C[i * ldc + j]) && bad < 5) {
                bad++;
                check_failures++;
                fprintf(stderr, "gemm %lldx%lldx%lld: wrote past N at C[%lld][%lld]\n", (long long)M,
                        (long long)N, (long long)K, (long long)i, (long long)j);
            }
    }
    free(A);
    free(B);
    free(C);
}

static const int64_t SHAPES[][3] = {
    {1, 1, 1},     {3, 5, 7},     {17, 33, 65},   {128, 128, 128}, {257, 129, 63},
    {1, 300, 70},  {300, 1, 70},  {40, 50, 1},    {1, 1, 600},     {15, 31, 2},
    {14, 32, 256}, {28, 64, 257}, {170, 100, 520}, {33, 2100, 9},  {64, 10, 512},
};

static void check_all(cg_gemm *g, rt_pool *pool)
{
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int64_t pad = 0; pad <= 3; pad += 3)
            for (int t = 0; t < 4; t++)
                check_shape(g, pool, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], pad, t & 1, t & 2);
}

static int print_kernel(bool want_asm)
{
    char err[512];
    cg_jit *j = cg_jit_create("znver5", err, sizeof err);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    cg_gemm_params p = cg_gemm_default_params(j);
    char *s = cg_gemm_print_kernel(j, &p, want_asm, err, sizeof err);
    if (!s)
        fprintf(stderr, "%s\n", err);
    else
        fputs(s, stdout);
    free(s);
    cg_jit_destroy(j);
    return s ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return print_kernel(!strcmp(argv[1], "--print-asm"));
    char err[512];
    cg_jit *j = cg_jit_create(NULL, err, sizeof err);
    CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return check_result("test_gemm");
    }
    cg_gemm_params def = cg_gemm_default_params(j);
    /* Small blocks make every shape above cross several KC, MC and NC boundaries. */
    cg_gemm_params small = def;
    small.kc = 64;
    small.mc = 2 * def.mr;
    small.nc = 3 * def.nr;
    cg_gemm_params odd = def;   /* an odd register tile, narrower than the defaults */
    odd.mr = 5;
    odd.nr = def.vec;
    const cg_gemm_params *ps[] = {&def, &small, &odd};

    rt_pool *pool2 = rt_pool_create(2, err, sizeof err);
    CHECK(pool2 != NULL);
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        cg_gemm *g = cg_gemm_create(j, ps[i], err, sizeof err);
        CHECK(g != NULL);
        if (!g) {
            fprintf(stderr, "%s\n", err);
            continue;
        }
        check_all(g, NULL);
        if (pool2)
            check_all(g, pool2);
        cg_gemm_destroy(g);
    }

    /* K == 0 overwrites C with zeros; bad parameters are refused with a message. */
    cg_gemm *g = cg_gemm_create(j, NULL, err, sizeof err);
    CHECK(g != NULL);
    float C[6] = {1, 2, 3, 4, 5, 6};
    CHECK(g && cg_gemm_run(g, pool2, 2, 3, 0, NULL, 0, NULL, 3, C, 3));
    CHECK(C[0] == 0 && C[5] == 0);
    cg_gemm_destroy(g);
    cg_gemm_params bad = def;
    bad.nr = def.vec + 1;
    CHECK(cg_gemm_create(j, &bad, err, sizeof err) == NULL);
    CHECK(strstr(err, "multiple of vec") != NULL);

    rt_pool_destroy(pool2);
    cg_jit_destroy(j);
    return check_result("test_gemm");
}
