/* Memory planning (see memplan.h): lifetimes once, placement per set of sizes (best fit in a
 * free list kept sorted by offset, neighbours merged, the arena's top growing when nothing fits). */
#include "codegen/memplan.h"

#include <stdlib.h>
#include <string.h>

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Whether v is written by one of k's ops (a fused intermediate or an output), not read. */
static bool made_in(const cg_kernel *k, const dl_value *v)
{
    for (int o = 0; o < k->nops; o++)
        for (int r = 0; r < k->ops[o]->nres; r++)
            if (&k->ops[o]->res[r] == v)
                return true;
    return false;
}

/* An elementwise kernel (or a matrix product's epilogue, from op `from` on) may write an output
 * over root r when r dies in it, nothing else took r over, and every operand stored in r is read
 * element for element as the output is written (one type): element i is read before element i
 * is written. In a matrix product's kernel that is the product itself, which the epilogue reads
 * as the gemm finishes each block of rows, or a value only the epilogue reads. */
static bool can_overwrite(const cg_memplan *mp, const cg_kernel *k, int from, int i, const dl_value *out, int r)
{
    if (mp->def[r] < 0 || mp->last[r] != i || mp->taken[r])
        return false;
    if (mp->def[r] == i && !((k->kind == CG_K_MATMUL || k->kind == CG_K_CONV) && r == k->ops[k->matmul]->res[0].id))
        return false;
    for (int o = 0; o < k->nops; o++)
        for (int a = 0; a < k->ops[o]->nin; a++) {
            const dl_value *v = k->ops[o]->in[a];
            bool mine = (k->kind == CG_K_MATMUL || k->kind == CG_K_CONV) && v == &k->ops[k->matmul]->res[0];
            if ((!made_in(k, v) || mine) && mp->root[v->id] == r && (!ir_type_eq(&v->type, &out->type) || o < from))
                return false;
        }
    return true;
}

cg_memplan *cg_memplan_create(const cg_program *prog)
{
    const dl_func *f = prog->f;
    int n = cg_program_nbuffers(f);
    cg_memplan *mp = calloc(1, sizeof *mp);
    if (!mp)
        return NULL;
    mp->prog = prog;
    mp->nbufs = n;
    size_t s = (size_t)n + 1;
    mp->def = malloc(sizeof *mp->def * s);
    mp->last = malloc(sizeof *mp->last * s);
    mp->root = malloc(sizeof *mp->root * s);
    mp->inplace = malloc(sizeof *mp->inplace * s);
    mp->taken = calloc(s, sizeof *mp->taken);
    mp->size = calloc(s, sizeof *mp->size);
    mp->offset = calloc(s, sizeof *mp->offset);
    mp->free_off = malloc(sizeof *mp->free_off * (s + 1));
    mp->free_len = malloc(sizeof *mp->free_len * (s + 1));
    if (!mp->def || !mp->last || !mp->root || !mp->inplace || !mp->taken || !mp->size || !mp->offset || !mp->free_off ||
        !mp->free_len) {
        cg_memplan_destroy(mp);
        return NULL;
    }
    for (int id = 0; id < n; id++) {
        mp->def[id] = mp->last[id] = mp->inplace[id] = -1;
        mp->root[id] = id;
    }
    /* Who writes what, who reads what: views take their operand's root; every other kernel writes
     * its outputs; operands not made inside a kernel are read from memory. */
    for (int i = 0; i < prog->nkernels; i++) {
        const cg_kernel *k = &prog->kernels[i];
        if (k->kind == CG_K_VIEW) {
            for (int o = 0; o < k->nops; o++)
                for (int r = 0; r < k->ops[o]->nres; r++)
                    mp->root[k->ops[o]->res[r].id] = mp->root[k->ops[o]->in[0]->id];
            continue;
        }
        for (int o = 0; o < k->nops; o++)
            for (int a = 0; a < k->ops[o]->nin; a++) {
                const dl_value *v = k->ops[o]->in[a];
                int r = mp->root[v->id];
                if (!made_in(k, v) && mp->def[r] >= 0)
                    mp->last[r] = i > mp->last[r] ? i : mp->last[r];
            }
        for (int o = 0; o < k->nout; o++)
            mp->def[k->out[o]->id] = mp->last[k->out[o]->id] = i;
    }
    /* Results and buffer updates are read after the last kernel. */
    for (const dl_op *op = f->first; op; op = op->next)
        if (op->code == DL_OP_RETURN || op->code == DL_OP_ASSIGN)
            for (int a = op->code == DL_OP_ASSIGN; a < op->nin; a++) {
                int r = mp->root[op->in[a]->id];
                if (mp->def[r] >= 0)
                    mp->last[r] = prog->nkernels;
            }
    /* In place: an elementwise kernel's outputs (a matrix product's epilogue's) take over the
     * slots of inputs that die there. */
    for (int i = 0; i < prog->nkernels; i++) {
        const cg_kernel *k = &prog->kernels[i];
        int from = (k->kind == CG_K_MATMUL || k->kind == CG_K_CONV) && k->epilogue ? k->matmul + 1 : 0;
        if (k->kind != CG_K_ELEMENTWISE && !from)
            continue;
        for (int q = 0; q < k->nout; q++) {
            const dl_value *out = k->out[q];
            if (out->def == k->ops[k->matmul] && from)
                continue;
            for (int o = from; o < k->nops && mp->inplace[out->id] < 0; o++)
                for (int a = 0; a < k->ops[o]->nin && mp->inplace[out->id] < 0; a++) {
                    const dl_value *v = k->ops[o]->in[a];
                    int r = mp->root[v->id];
                    bool mine = from && v == &k->ops[k->matmul]->res[0];
                    if ((!made_in(k, v) || mine) && can_overwrite(mp, k, from, i, out, r)) {
                        mp->inplace[out->id] = r;
                        mp->taken[r] = true;
                    }
                }
        }
    }
    return mp;
}

void cg_memplan_destroy(cg_memplan *mp)
{
    if (!mp)
        return;
    free(mp->def);
    free(mp->last);
    free(mp->root);
    free(mp->inplace);
    free(mp->taken);
    free(mp->size);
    free(mp->offset);
    free(mp->free_off);
    free(mp->free_len);
    free(mp);
}

/* ---- placement ------------------------------------------------------------------------------ */

static int64_t take(cg_memplan *mp, int64_t size, int64_t *top)
{
    int best = -1;
    for (int b = 0; b < mp->nfree; b++)
        if (mp->free_len[b] >= size && (best < 0 || mp->free_len[b] < mp->free_len[best]))
            best = b;
    if (best < 0) {
        /* Nothing fits: grow the top, starting inside a free block that ends there. */
        int b = mp->nfree - 1;
        int64_t at = *top;
        if (b >= 0 && mp->free_off[b] + mp->free_len[b] == *top) {
            at = mp->free_off[b];
            mp->nfree--;
        }
        *top = at + size;
        return at;
    }
    int64_t at = mp->free_off[best];
    mp->free_off[best] += size;
    mp->free_len[best] -= size;
    if (!mp->free_len[best]) {
        memmove(mp->free_off + best, mp->free_off + best + 1, sizeof *mp->free_off * (size_t)(mp->nfree - best - 1));
        memmove(mp->free_len + best, mp->free_len + best + 1, sizeof *mp->free_len * (size_t)(mp->nfree - best - 1));
        mp->nfree--;
    }
    return at;
}

static void give_back(cg_memplan *mp, int64_t off, int64_t len)
{
    int b = 0;
    while (b < mp->nfree && mp->free_off[b] < off)
        b++;
    memmove(mp->free_off + b + 1, mp->free_off + b, sizeof *mp->free_off * (size_t)(mp->nfree - b));
    memmove(mp->free_len + b + 1, mp->free_len + b, sizeof *mp->free_len * (size_t)(mp->nfree - b));
    mp->free_off[b] = off;
    mp->free_len[b] = len;
    mp->nfree++;
    if (b + 1 < mp->nfree && off + len == mp->free_off[b + 1]) {     /* merge with the next */
        mp->free_len[b] += mp->free_len[b + 1];
        memmove(mp->free_off + b + 1, mp->free_off + b + 2, sizeof *mp->free_off * (size_t)(mp->nfree - b - 2));
        memmove(mp->free_len + b + 1, mp->free_len + b + 2, sizeof *mp->free_len * (size_t)(mp->nfree - b - 2));
        mp->nfree--;
    }
    if (b > 0 && mp->free_off[b - 1] + mp->free_len[b - 1] == mp->free_off[b]) {   /* and the previous */
        mp->free_len[b - 1] += mp->free_len[b];
        memmove(mp->free_off + b, mp->free_off + b + 1, sizeof *mp->free_off * (size_t)(mp->nfree - b - 1));
        memmove(mp->free_len + b, mp->free_len + b + 1, sizeof *mp->free_len * (size_t)(mp->nfree - b - 1));
        mp->nfree--;
    }
}

void cg_memplan_place(cg_memplan *mp, const int64_t *bytes)
{
    const cg_program *prog = mp->prog;
    int64_t top = 0;
    mp->nfree = 0;
    mp->peak = 0;
    mp->peak_kernel = 0;
    for (int id = 0; id < mp->nbufs; id++)
        if (mp->def[id] >= 0)
            mp->size[id] = max64((bytes[id] + CG_MEM_ALIGN - 1) / CG_MEM_ALIGN * CG_MEM_ALIGN, CG_MEM_ALIGN);
    for (int i = 0; i < prog->nkernels; i++) {
        for (int id = 0; id < mp->nbufs; id++) {
            if (mp->def[id] != i)
                continue;
            mp->offset[id] = mp->inplace[id] >= 0 ? mp->offset[mp->inplace[id]] : take(mp, mp->size[id], &top);
        }
        if (top > mp->peak) {
            mp->peak = top;
            mp->peak_kernel = i;
        }
        for (int id = 0; id < mp->nbufs; id++)
            if (mp->def[id] >= 0 && mp->last[id] == i && !mp->taken[id])
                give_back(mp, mp->offset[id], mp->size[id]);
    }
}

/* ---- the report ----------------------------------------------------------------------------- */

static void name(FILE *out, const dl_func *f, int id)
{
    if (id < f->nargs)
        fprintf(out, "%%%s", f->arginfo[id].name);
    else
        fprintf(out, "%%%d", id - f->nargs);
}

void cg_memplan_print(FILE *out, const cg_memplan *mp)
{
    const cg_program *prog = mp->prog;
    const dl_func *f = prog->f;
    fprintf(out, "memory plan of @%s: %d kernels, arena %lld bytes\n", f->name, prog->nkernels, (long long)mp->peak);
    for (int i = 0; i < prog->nkernels; i++) {
        bool any = false;
        for (int id = 0; id < mp->nbufs; id++) {
            if (mp->def[id] != i)
                continue;
            if (any)
                fprintf(out, "; ");
            else
                fprintf(out, "  %s: ", prog->kernels[i].name);
            name(out, f, id);
            fprintf(out, " at %lld, %lld bytes", (long long)mp->offset[id], (long long)mp->size[id]);
            if (mp->inplace[id] >= 0) {
                fprintf(out, ", in place of ");
                name(out, f, mp->inplace[id]);
            }
            if (mp->last[id] == prog->nkernels)
                fprintf(out, ", live to the end");
            any = true;
        }
        bool freed = false;
        for (int id = 0; id < mp->nbufs; id++)
            if (mp->def[id] >= 0 && mp->last[id] == i && mp->def[id] != i && !mp->taken[id]) {
                fprintf(out, "%s", freed ? ", " : any ? "; frees " : "  frees ");
                name(out, f, id);
                freed = any = true;
            }
        if (any)
            fputc('\n', out);
    }
    fprintf(out, "peak %lld bytes after %s; live there:", (long long)mp->peak,
            prog->nkernels ? prog->kernels[mp->peak_kernel].name : "nothing");
    for (int id = 0; id < mp->nbufs; id++)
        if (mp->def[id] >= 0 && mp->def[id] <= mp->peak_kernel && mp->last[id] >= mp->peak_kernel &&
            !(mp->taken[id] && mp->last[id] == mp->peak_kernel)) {
            fputc(' ', out);
            name(out, f, id);
            fprintf(out, " (%lld)", (long long)mp->size[id]);
        }
    fputc('\n', out);
}
