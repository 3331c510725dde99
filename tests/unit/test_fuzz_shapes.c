/* Random operand types and attribute values for every op of the table, straight into shape
 * inference: no rule may crash or overflow (the sanitizer build checks), a failure must come
 * with a message naming the op, and a success must give well-formed types. */
#include "ir/ir.h"
#include "tests/unit/check.h"

#include <inttypes.h>
#include <stdlib.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *syms[3];

static dl_dim random_dim(bool attr)
{
    static const int64_t sizes[] = {1, 1, 2, 3, 4, 8, 0, 16, 281474976710656LL};
    switch (rnd(attr ? 6 : 5)) {
    case 0: return ir_dim_sym(syms[rnd(3)]);
    case 5: return ir_dim_const(-1);
    default: return ir_dim_const(sizes[rnd(sizeof sizes / sizeof *sizes)]);
    }
}

static void random_type(dl_type *t)
{
    t->dtype = rnd(4) ? DL_F32 : (dl_dtype)rnd(DL_NDTYPES);
    t->rank = (int)rnd(6);
    for (int i = 0; i < t->rank; i++)
        t->dim[i] = random_dim(false);
}

static int64_t random_int(void)
{
    static const int64_t v[] = {0, 1, 2, 3, -1, -2, 5, 64, 281474976710656LL, INT64_MAX, INT64_MIN};
    return v[rnd(sizeof v / sizeof *v)];
}

static void random_attr(const dl_attr_spec *s, dl_attr *a, int64_t *ints, double *floats,
                        dl_dim *dims)
{
    static const char *const strs[] = {"mean", "sum", "none", "tanh", "batchmean", "bogus"};
    static const double fl[] = {0, 0.5, -1, 1e-5, 1e300, -1e300};
    a->name = s->name;
    a->kind = s->kind;
    a->n = (int)rnd(5);
    switch (s->kind) {
    case DL_ATTR_INT: a->u.i = random_int(); break;
    case DL_ATTR_FLOAT: a->u.f = fl[rnd(6)]; break;
    case DL_ATTR_BOOL: a->u.b = rnd(2); break;
    case DL_ATTR_STR: a->u.s = strs[rnd(6)]; break;
    case DL_ATTR_DTYPE: a->u.dt = (dl_dtype)rnd(DL_NDTYPES); break;
    case DL_ATTR_INTS:
        for (int i = 0; i < a->n; i++)
            ints[i] = random_int();
        a->u.ints = ints;
        break;
    case DL_ATTR_FLOATS:
        for (int i = 0; i < a->n; i++)
            floats[i] = fl[rnd(6)];
        a->u.floats = floats;
        break;
    case DL_ATTR_SHAPE:
        for (int i = 0; i < a->n; i++)
            dims[i] = random_dim(true);
        a->u.dims = dims;
        break;
    }
}

int main(int argc, char **argv)
{
    int per_op = argc > 1 ? atoi(argv[1]) : 3000;
    if (argc > 2)
        rng ^= strtoull(argv[2], NULL, 0) * 0x2545F4914F6CDD1Dull;
    dl_module *m = ir_module_create();
    syms[0] = ir_intern(m, "N", 1);
    syms[1] = ir_intern(m, "T", 1);
    syms[2] = ir_intern(m, "B", 1);
    long ok_total = 0;
    for (int code = 0; code < DL_NOPS; code++) {
        const dl_op_info *info = ir_op_info((dl_opcode)code);
        int ok = 0;
        for (int it = 0; it < per_op; it++) {
            dl_type in[6], out[64];
            const dl_type *pin[6];
            int nin = info->min_in + (int)rnd(3);
            if (info->max_in >= 0 && nin > info->max_in)
                nin = info->max_in;
            if (nin > 6)
                nin = 6;
            for (int i = 0; i < nin; i++) {
                random_type(&in[i]);
                /* Often make operands agree, so rules get past their first checks. */
                if (i > 0 && rnd(2))
                    in[i] = in[0];
                pin[i] = &in[i];
            }
            dl_attr attrs[16];
            int64_t ints[16][8];
            double floats[16][8];
            dl_dim dims[16][8];
            int nattr = 0;
            for (int s = 0; s < info->nattr && nattr < 16; s++)
                if (info->attr[s].required || rnd(2)) {
                    random_attr(&info->attr[s], &attrs[nattr], ints[nattr], floats[nattr],
                                dims[nattr]);
                    nattr++;
                }
            if (code == DL_OP_CONSTANT)
                random_type(&out[0]);
            int nres = -1;
            char err[512] = "";
            if (ir_infer((dl_opcode)code, nin, pin, nattr, attrs, out, &nres, err, sizeof err)) {
                ok++;
                CHECK(nres >= 0 && nres <= 64);
                for (int r = 0; r < nres; r++) {
                    CHECK(out[r].rank >= 0 && out[r].rank <= DL_MAX_RANK);
                    for (int d = 0; d < out[r].rank; d++)
                        CHECK(out[r].dim[d].c >= 0 && out[r].dim[d].n <= DL_DIM_MAXSYM);
                }
            } else {
                char want[64];
                snprintf(want, sizeof want, "'%s': ", info->name);
                CHECK(!strncmp(err, want, strlen(want)) && strlen(err) > strlen(want));
            }
            if (check_failures > 20)
                return check_result("test_fuzz_shapes");
        }
        ok_total += ok;
    }
    printf("%d ops x %d cases, %ld inferred\n", DL_NOPS, per_op, ok_total);
    CHECK(ok_total > 0);
    ir_module_destroy(m);
    return check_result("test_fuzz_shapes");
}
