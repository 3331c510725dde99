/* The IR's textual form, printing side (docs/ir.md describes the syntax). The output is
 * canonical: attributes in spec order, results numbered in order, floats in their shortest
 * round-tripping form, so print -> parse -> print is the identity. */
#include "ir/ir.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shortest decimal form of d that reads back as d (as a float when `single`: constants of
 * dtypes narrower than f64 mean their values rounded to that dtype), always marked as a float. */
static void print_float_prec(FILE *out, double d, bool single)
{
    if (isnan(d)) {
        fputs("nan", out);
        return;
    }
    if (isinf(d)) {
        fputs(d < 0 ? "-inf" : "inf", out);
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        double back = strtod(buf, NULL);
        if (back == d || (single && (float)back == (float)d))
            break;
    }
    fputs(buf, out);
    if (!strpbrk(buf, ".en"))
        fputs(".0", out);
}

static void print_float(FILE *out, double d) { print_float_prec(out, d, false); }

static void print_dim(FILE *out, dl_dim d)
{
    char buf[160];
    ir_dim_str(d, buf, sizeof buf);
    fputs(buf, out);
}

static void print_type(FILE *out, const dl_type *t)
{
    char buf[1400];
    ir_type_str(t, buf, sizeof buf);
    fputs(buf, out);
}

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

/* How a constant's values print: integer dtypes as integers, narrow floats at float precision. */
typedef enum { VALUES_F64, VALUES_F32, VALUES_INT } values_mode;

static values_mode mode_of(const dl_op *op)
{
    if (op->code != DL_OP_CONSTANT || op->nres != 1)
        return VALUES_F64;
    dl_dtype t = op->res[0].type.dtype;
    return t == DL_F64 ? VALUES_F64 : ir_dtype_is_float(t) ? VALUES_F32 : VALUES_INT;
}

static void print_attr_value(FILE *out, const dl_attr *a, values_mode mode)
{
    switch (a->kind) {
    case DL_ATTR_INT: fprintf(out, "%" PRId64, a->u.i); break;
    case DL_ATTR_FLOAT: print_float(out, a->u.f); break;
    case DL_ATTR_BOOL: fputs(a->u.b ? "true" : "false", out); break;
    case DL_ATTR_STR: print_string(out, a->u.s); break;
    case DL_ATTR_DTYPE: fputs(ir_dtype_name(a->u.dt), out); break;
    case DL_ATTR_INTS:
    case DL_ATTR_FLOATS:
    case DL_ATTR_SHAPE:
        fputc('[', out);
        for (int i = 0; i < a->n; i++) {
            if (i)
                fputs(", ", out);
            if (a->kind == DL_ATTR_INTS)
                fprintf(out, "%" PRId64, a->u.ints[i]);
            else if (a->kind == DL_ATTR_FLOATS)
                if (mode == VALUES_INT && fabs(a->u.floats[i]) < 9.2e18 &&
                    a->u.floats[i] == (double)(int64_t)a->u.floats[i])
                    fprintf(out, "%" PRId64, (int64_t)a->u.floats[i]);
                else
                    print_float_prec(out, a->u.floats[i], mode == VALUES_F32);
            else
                print_dim(out, a->u.dims[i]);
        }
        fputc(']', out);
        break;
    }
}

static void print_value(FILE *out, const dl_func *f, const dl_value *v)
{
    if (v->def)
        fprintf(out, "%%%d", v->id);
    else
        fprintf(out, "%%%s", f->arginfo[v->index].name);
}

static void print_op(FILE *out, const dl_func *f, const dl_op *op)
{
    fputs("  ", out);
    for (int i = 0; i < op->nres; i++)
        fprintf(out, "%s%%%d", i ? ", " : "", op->res[i].id);
    if (op->nres)
        fputs(" = ", out);
    fputs(ir_op_info(op->code)->name, out);
    for (int i = 0; i < op->nin; i++) {
        fputs(i ? ", " : " ", out);
        print_value(out, f, op->in[i]);
    }
    if (op->nattr || op->checkpoint || op->group) {
        fputs(" {", out);
        for (int i = 0; i < op->nattr; i++) {
            fprintf(out, "%s%s=", i ? ", " : "", op->attr[i].name);
            print_attr_value(out, &op->attr[i], mode_of(op));
        }
        if (op->checkpoint)
            fprintf(out, "%scheckpoint=%d", op->nattr ? ", " : "", op->checkpoint);
        if (op->group)
            fprintf(out, "%sgroup=%d", op->nattr || op->checkpoint ? ", " : "", op->group);
        fputc('}', out);
    }
    for (int i = 0; i < op->nres; i++) {
        fputs(i ? ", " : " : ", out);
        print_type(out, &op->res[i].type);
    }
    fputc('\n', out);
}

void ir_print_func(FILE *out, const dl_func *f)
{
    fprintf(out, "func @%s(", f->name);
    for (int i = 0; i < f->nargs; i++) {
        const dl_arg_info *a = &f->arginfo[i];
        fprintf(out, "%s%%%s: ", i ? ", " : "", a->name);
        print_type(out, &f->args[i]->type);
        if (a->role != DL_ROLE_INPUT || a->path || a->init) {
            fprintf(out, " {role=%s", ir_role_name(a->role));
            if (a->path) {
                fputs(", path=", out);
                print_string(out, a->path);
            }
            if (a->init) {
                fputs(", init=", out);
                print_string(out, a->init);
            }
            fputc('}', out);
        }
    }
    fputs(") -> (", out);
    for (int i = 0; i < f->nresults; i++) {
        if (i)
            fputs(", ", out);
        print_type(out, &f->results[i].type);
        if (f->results[i].role != DL_ROLE_OUTPUT)
            fprintf(out, " {role=%s}", ir_role_name(f->results[i].role));
    }
    fputs(") {\n", out);
    /* Number results in order; the numbers live in the values, which printing may set. */
    int id = 0;
    for (dl_op *op = f->first; op; op = op->next)
        for (int i = 0; i < op->nres; i++)
            op->res[i].id = id++;
    for (const dl_op *op = f->first; op; op = op->next)
        print_op(out, f, op);
    fputs("}\n", out);
}

void ir_print(FILE *out, const dl_module *m)
{
    for (const dl_func *f = m->first; f; f = f->next) {
        if (f != m->first)
            fputc('\n', out);
        ir_print_func(out, f);
    }
}
