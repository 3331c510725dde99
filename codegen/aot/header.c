/* The library's header (see header.h). Names of dimensions and arguments are the program's own;
 * one that would clash with a C keyword or another parameter gets a trailing underscore. */
#include "codegen/aot/header.h"

#include "codegen/aot/model.h"
#include "dlc/dlc.h"

#include <string.h>

static const char *c_type(dl_dtype t)
{
    switch (t) {
    case DL_F32: return "float";
    case DL_F64: return "double";
    case DL_F16: case DL_BF16: return "uint16_t";
    case DL_I8: return "int8_t";
    case DL_U8: case DL_BOOL: return "uint8_t";
    case DL_I32: return "int32_t";
    case DL_I64: return "int64_t";
    default: return "void";
    }
}

/* Parameter names of one prototype. */
typedef struct names {
    int  n;
    char name[100][72];
} names;

static const char *add_name(names *ns, const char *want)
{
    static const char *const reserved[] = {"auto", "break", "case", "char", "const", "continue", "default",
        "do", "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
        "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
        "typedef", "union", "unsigned", "void", "volatile", "while", "bool", "true", "false", NULL};
    char buf[72];
    snprintf(buf, sizeof buf, "%s", want);
    for (;;) {
        bool clash = false;
        for (int i = 0; reserved[i] && !clash; i++)
            clash = !strcmp(reserved[i], buf);
        for (int i = 0; i < ns->n && !clash; i++)
            clash = !strcmp(ns->name[i], buf);
        if (!clash || strlen(buf) + 2 > sizeof buf)
            break;
        strcat(buf, "_");
    }
    if (ns->n == 100)
        return "too_many";
    snprintf(ns->name[ns->n], sizeof ns->name[0], "%s", buf);
    return ns->name[ns->n++];
}

static void describe(FILE *out, const char *name, const dl_type *t, const char *role)
{
    char ts[160];
    ir_type_str(t, ts, sizeof ts);
    fprintf(out, " *   %-8s %s: %s, row-major (%s)\n", name, role, ts, c_type(t->dtype));
}

/* The typed entry of f: forward(m, dims..., inputs..., results...) or train_step(..., loss). */
static void typed(FILE *out, const dl_func *f, const char *prefix, bool train)
{
    int in[CG_AOT_MAX_INPUTS];
    const char *syms[CG_AOT_MAX_SYMS];
    int ni = cg_aot_inputs(f, in, CG_AOT_MAX_INPUTS), ns = cg_aot_symbols(f, syms, CG_AOT_MAX_SYMS);
    names nm = {0};
    const char *mname = add_name(&nm, "m");
    const char *sname[CG_AOT_MAX_SYMS], *iname[CG_AOT_MAX_INPUTS], *rname[64];
    for (int s = 0; s < ns; s++)
        sname[s] = add_name(&nm, syms[s]);
    for (int i = 0; i < ni; i++)
        iname[i] = add_name(&nm, f->arginfo[in[i]].name);
    int nr = train ? 1 : f->nresults < 64 ? f->nresults : 64;
    for (int r = 0; r < nr; r++) {
        char want[32];
        if (train)
            snprintf(want, sizeof want, "loss");
        else if (nr == 1)
            snprintf(want, sizeof want, "y");
        else
            snprintf(want, sizeof want, "y%d", r);
        rname[r] = add_name(&nm, want);
    }
    const dl_op *ret = f->last;
    if (train) {
        fprintf(out, "/* One training step on a batch: forward, loss, backward, gradient clipping and the\n"
                     " * optimizer's update (with gradient accumulation, the update comes every k-th call), as\n"
                     " * `dlc run` takes it; the dropout masks and the learning rate follow the step count.\n");
    } else {
        fprintf(out, "/* The model on a batch (inference: dropout off, batch norm on running statistics).\n");
    }
    if (ns) {
        fprintf(out, " *   ");
        for (int s = 0; s < ns; s++)
            fprintf(out, "%s%s", s ? ", " : "", sname[s]);
        fprintf(out, ": the symbolic dimension%s, >= 0\n", ns > 1 ? "s" : "");
    }
    for (int i = 0; i < ni; i++)
        describe(out, iname[i], &f->args[in[i]]->type, "input");
    if (train)
        describe(out, rname[0], &ret->in[0]->type, "the batch's loss, written");
    for (int r = 0; !train && r < nr; r++)
        describe(out, rname[r], &ret->in[r]->type, "result, written");
    fprintf(out, " * Returns DLC_OK, or an error code with the message in %s_last_error(%s). */\n", prefix, mname);
    fprintf(out, "int %s_%s(%s *%s", prefix, train ? "train_step" : "forward", prefix, mname);
    for (int s = 0; s < ns; s++)
        fprintf(out, ", int64_t %s", sname[s]);
    for (int i = 0; i < ni; i++)
        fprintf(out, ", const %s *%s", c_type(f->args[in[i]]->type.dtype), iname[i]);
    for (int r = 0; r < nr; r++)
        fprintf(out, ", %s *%s", c_type(ret->in[r]->type.dtype), rname[r]);
    fprintf(out, ");\n\n");
}

static const char *common =
    "#ifndef DLC_LIBRARY_COMMON\n"
    "#define DLC_LIBRARY_COMMON\n"
    "/* Status codes, shared by every library dlc makes (docs/aot.md). */\n"
    "enum {\n"
    "    DLC_OK = 0,\n"
    "    DLC_ERR_ARGUMENT = 1,   /* a null pointer, a negative size, an unknown function, a wrong count */\n"
    "    DLC_ERR_SHAPE = 2,      /* a tensor's shape does not fit the signature */\n"
    "    DLC_ERR_DTYPE = 3,      /* a tensor's dtype does not fit the signature */\n"
    "    DLC_ERR_DEVICE = 4,     /* a DLTensor not in CPU memory or not compact row-major */\n"
    "    DLC_ERR_FILE = 5,       /* a file that cannot be opened, read or written */\n"
    "    DLC_ERR_FORMAT = 6,     /* a weights or checkpoint file that is invalid or does not fit */\n"
    "    DLC_ERR_MEMORY = 7,     /* out of memory */\n"
    "    DLC_ERR_RUNTIME = 8     /* bad data met while running (an index out of range) */\n"
    "};\n"
    "#endif\n\n"
    "#ifndef DLPACK_VERSION\n"
    "/* DLPack's tensor descriptor (https://github.com/dmlc/dlpack, v0.8 and later): include\n"
    " * <dlpack/dlpack.h> before this header to use its definitions instead. */\n"
    "#define DLPACK_VERSION 80\n"
    "typedef enum { kDLCPU = 1 } DLDeviceType;\n"
    "typedef struct { DLDeviceType device_type; int32_t device_id; } DLDevice;\n"
    "typedef enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6 } DLDataTypeCode;\n"
    "typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;\n"
    "typedef struct {\n"
    "    void      *data;\n"
    "    DLDevice   device;\n"
    "    int32_t    ndim;\n"
    "    DLDataType dtype;\n"
    "    int64_t   *shape;\n"
    "    int64_t   *strides;      /* NULL, or compact row-major ones (the only layout accepted) */\n"
    "    uint64_t   byte_offset;\n"
    "} DLTensor;\n"
    "#endif\n\n";

void cg_aot_header(FILE *out, const dl_module *lib, const char *prefix, const cg_aot_opts *o)
{
    const dl_func *fwd = ir_func_find(lib, "forward"), *step = ir_func_find(lib, "train_step");
    char guard[160];
    size_t k = 0;
    for (const char *p = prefix; *p && k + 16 < sizeof guard; p++)
        guard[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    snprintf(guard + k, sizeof guard - k, "_DLC_H");
    fprintf(out, "/* %s: generated by dlc %d.%d.%d from %s. Do not edit.\n", prefix, DLC_VERSION_MAJOR,
            DLC_VERSION_MINOR, DLC_VERSION_PATCH, o->source ? o->source : "a .dl file");
    fprintf(out, " *\n * Link: cc app.c -L<dir> -lNAME -Wl,-rpath,<dir> for <dir>/libNAME.so, or cc app.c NAME.o -lm\n"
                 " * -lpthread for the object file.\n");
    fprintf(out, " * An instance is used by one thread at a time; instances are independent. Every entry\n"
                 " * checks its arguments and returns a status code (DLC_OK is 0) with a message in\n"
                 " * %s_last_error: bad input never crashes the library. Tensors are row-major, in the\n"
                 " * caller's memory, and are not kept after a call returns. docs/aot.md has the details. */\n",
            prefix);
    fprintf(out, "#ifndef %s\n#define %s\n\n#include <stddef.h>\n#include <stdint.h>\n\n", guard, guard);
    fprintf(out, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n%s", common);
    fprintf(out, "typedef struct %s %s;   /* opaque */\n\n", prefix, prefix);
    if (o->external)
        fprintf(out, "/* A new instance with the weights of `weights`, a safetensors file with every parameter\n"
                     " * and buffer under its state_dict name (required: the library was compiled with\n"
                     " * --external-weights and embeds none).\n");
    else
        fprintf(out, "/* A new instance with the embedded weights, or those of `weights`, a safetensors file with\n"
                     " * every parameter and buffer under its state_dict name (NULL: the embedded ones).\n");
    fprintf(out, " * NULL on failure, with the reason in err (errlen bytes, may be NULL). */\n");
    fprintf(out, "%s *%s_create(const char *weights, char *err, size_t errlen);\n", prefix, prefix);
    fprintf(out, "void %s_destroy(%s *m);   /* NULL is fine */\n", prefix, prefix);
    fprintf(out, "/* The message of the last failed call on m (\"\" when it succeeded); valid until the next call. */\n");
    fprintf(out, "const char *%s_last_error(const %s *m);\n\n", prefix, prefix);
    typed(out, fwd, prefix, false);
    fprintf(out, "/* The same on DLPack tensors: fn is \"forward\"%s; args are its inputs in the order\n"
                 " * above, results its %d result%s, allocated by the caller with the exact shapes and dtypes,\n"
                 " * in CPU memory, compact row-major.%s */\n",
            step ? " or \"train_step\"" : "", fwd->nresults, fwd->nresults == 1 ? "" : "s",
            step ? "\n * train_step's results are scalars: the loss, the metrics, the learning rate, the\n"
                   " * gradient norm." : "");
    fprintf(out, "int %s_call(%s *m, const char *fn, const DLTensor *args, int32_t nargs, DLTensor *results,\n"
                 "        int32_t nresults);\n\n", prefix, prefix);
    if (step) {
        typed(out, step, prefix, true);
        fprintf(out, "/* A checkpoint: parameters, buffers, the optimizer's state and the step count, written\n"
                     " * atomically as safetensors (the format `dlc run --resume` reads). */\n");
        fprintf(out, "int %s_save(%s *m, const char *path);\n", prefix, prefix);
        fprintf(out, "/* Restores a checkpoint, or just the weights from a weights file; a file that does not\n"
                     " * fit leaves the instance unchanged. */\n");
        fprintf(out, "int %s_load(%s *m, const char *path);\n\n", prefix, prefix);
    }
    fprintf(out, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}
