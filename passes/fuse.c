/* The fusion pass: decides which ops run as one kernel and marks them with a group number
 * (`{group=N}` in the printed IR), moving ops where needed so that each group is a run of
 * consecutive ops. Code generation (codegen/program.c) makes one kernel per group. The groups,
 * in the manner of XLA's and Inductor's fusion:
 *
 * - Elementwise groups: a run of consecutive elementwise ops (dc_fusible) whose results all have
 *   one shape. The group computes everything for one element in registers: each input is read
 *   once, a value goes to memory only when an op outside the group (or the function's results)
 *   needs it, so a group may have several outputs (AdamW's new parameter and both moments are
 *   one kernel). Ops need not depend on each other: unrelated ops of one shape share the loop
 *   (horizontal fusion). A splat constant (one value) joins wherever it is used only inside the
 *   group; one that is also used outside is moved ahead of the group.
 * - Matrix-product groups: an f32 matmul the gemm takes, the transposes it reads its operands
 *   through (a transpose of the last two dimensions used by this product alone, moved next to
 *   it: the gemm reads the operand where it lies), and an epilogue: the elementwise ops after it
 *   whose results have the product's shape (bias, activation, residual), computed on each block
 *   of rows as the gemm finishes it.
 * - Convolution groups: an f32 conv2d or conv_transpose2d the convolution kernels take and the
 *   same kind of epilogue (bias, activation, residual), run on each image's rows as they are
 *   finished.
 * - Reduction groups: a reduction, softmax, log_softmax or layer_norm the reduction kernel takes
 *   and its producers: the elementwise ops at the end of the open group that nothing but the
 *   reduction (and each other) reads, computed as the reduction reads each element, so their
 *   results never reach memory (a gradient's squared norm reads the gradient, not its squares
 *   in float64). Their operands must be read at the element's position, at the reduced
 *   position (x - mean with mean kept) or be one element.
 *
 * Buffer updates (`assign`) take effect after the step whatever their place, so they move to
 * the end first and split no group. An op of one element (a scalar: AdamW's bias corrections, a learning rate) that does not
 * depend on the open group moves ahead of it rather than end it, so the updates around it stay
 * one group. Groups stop at 48 ops or 48 inputs read from memory (the kernels' limits). */
#include "passes/decompose.h"
#include "passes/pass.h"

enum { MAX_OPS = 48, MAX_IN = 48 };

typedef struct group {
    int            id;          /* the number its members carry while it is open */
    dl_op         *first;       /* its first member; members are consecutive from here */
    int            nops;
    bool           has_shape;   /* set by the first member that is not a splat constant */
    dl_type        shape;       /* the dimensions every such member's result has */
    bool           matmul;
    int            nin;
    const dl_value *in[MAX_IN]; /* values read from memory */
} group;

static bool same_dims(const dl_type *a, const dl_type *b)
{
    if (a->rank != b->rank)
        return false;
    for (int d = 0; d < a->rank; d++)
        if (!ir_dim_eq(a->dim[d], b->dim[d]))
            return false;
    return true;
}

static bool is_splat(const dl_op *op)
{
    return op->code == DL_OP_CONSTANT && ir_attr_find(op->nattr, op->attr, "value")->n == 1;
}

static bool native_matmul(const dl_op *op)
{
    return op->code == DL_OP_MATMUL && op->nres == 1 && dc_matmul_native(&op->in[0]->type, &op->in[1]->type);
}

/* The operands of op the group would read from memory that it does not read yet. */
static int new_inputs(const group *g, const dl_op *op, const dl_value **out)
{
    int n = 0;
    for (int i = 0; i < op->nin; i++) {
        const dl_value *v = op->in[i];
        bool known = v->def && v->def->group == g->id;
        for (int k = 0; k < g->nin && !known; k++)
            known = g->in[k] == v;
        for (int k = 0; k < n && !known; k++)
            known = out[k] == v;
        if (!known)
            out[n++] = v;
    }
    return n;
}

static void add(group *g, dl_op *op)
{
    const dl_value *in[8];
    int n = op->nin <= 8 ? new_inputs(g, op, in) : 0;
    for (int k = 0; k < n && g->nin < MAX_IN; k++)
        g->in[g->nin++] = in[k];
    if (!g->nops)
        g->first = op;
    g->nops++;
    op->group = g->id;
    if (!g->has_shape && !is_splat(op)) {
        g->shape = op->res[0].type;
        g->has_shape = true;
    }
}

static bool joins(const group *g, const dl_op *op)
{
    if (!g->nops || !dc_fusible(op) || g->nops >= MAX_OPS || op->nin > 8)
        return false;
    const dl_value *in[8];
    if (g->nin + new_inputs(g, op, in) > MAX_IN)
        return false;
    return is_splat(op) || !g->has_shape || same_dims(&g->shape, &op->res[0].type);
}

/* An op of single-element results that reads nothing of g but splat constants (which move
 * with it): it can run before g starts. */
static bool hoistable(const group *g, const dl_op *op)
{
    if (!g->nops || (ir_op_info(op->code)->props & P_EFFECT) || !op->nres)
        return false;
    for (int r = 0; r < op->nres; r++)
        for (int d = 0; d < op->res[r].type.rank; d++)
            if (op->res[r].type.dim[d].n || op->res[r].type.dim[d].c != 1)
                return false;
    for (int i = 0; i < op->nin; i++)
        if (op->in[i]->def && op->in[i]->def->group == g->id && !is_splat(op->in[i]->def))
            return false;
    return true;
}

static void hoist(group *g, dl_op *op)
{
    for (int i = 0; i < op->nin; i++) {
        dl_op *c = op->in[i]->def;
        if (c && c->group == g->id) {
            c->group = 0;
            g->nops--;
            if (c == g->first)
                g->first = c->next;
            else
                ir_op_move_before(g->first, c);
        }
    }
    ir_op_move_before(g->first, op);
}

static bool used_outside(const dl_op *op, int id)
{
    /* Uses are not linked to their users: look at the ops after it. */
    for (const dl_op *u = op->next; u; u = u->next)
        if (u->group != id)
            for (int i = 0; i < u->nin; i++)
                for (int r = 0; r < op->nres; r++)
                    if (u->in[i] == &op->res[r])
                        return true;
    return false;
}

/* Ends the group: splat constants also used outside it move ahead of it; a group left with one
 * op is no group. Returns the next free number. */
static int close_group(group *g)
{
    if (!g->nops)
        return g->id;
    dl_op *end = g->first;
    for (int k = 1; k < g->nops; k++)
        end = end->next;
    end = end->next;
    int n = 0;
    for (dl_op *op = g->first, *next; op != end; op = next) {
        next = op->next;
        if (is_splat(op) && used_outside(op, g->id)) {
            op->group = 0;
            if (op != g->first)
                ir_op_move_before(g->first, op);
            else
                g->first = next;
        } else
            n++;
    }
    int id = g->id;
    if (n < 2) {
        for (dl_op *op = g->first; op && op != end; op = op->next)
            op->group = 0;
    } else
        id++;
    *g = (group){.id = id};
    return id;
}

/* How many ops at the end of g become the producers of reduction r (0: none; see the header).
 * r comes right after g's last op. */
static int producers(const group *g, const dl_op *r)
{
    int first, end;
    if (!g->nops || !dc_reduce_native(r) || !dc_reduce_run(r, &first, &end) || !r->in[0]->def ||
        r->in[0]->def->group != g->id)
        return 0;
    const dl_type *x = &r->in[0]->type;
    const dl_op *last = g->first;
    for (int k = 1; k < g->nops; k++)
        last = last->next;
    int n = 0;
    const dl_op *s = last;
    for (const dl_op *op = last; n < g->nops && op && op != g->first->prev; op = op->prev) {
        if (!dc_fusible(op) || (!is_splat(op) && !same_dims(&op->res[0].type, x)))
            break;
        /* every use in the ops after it up to r */
        int uses = 0;
        for (const dl_op *u = op->next; u && u != r->next; u = u->next)
            for (int i = 0; i < u->nin; i++)
                uses += u->in[i] == &op->res[0];
        if (uses != op->res[0].nuses)
            break;
        for (int i = 1; i < r->nin; i++)
            if (r->in[i] == &op->res[0])
                return 0;
        n++, s = op;
    }
    /* The suffix must make r's input, and read everything else in a way the kernel can. */
    bool makes = false;
    for (const dl_op *op = s; n && op != r; op = op->next) {
        makes |= &op->res[0] == r->in[0];
        for (int i = 0; i < op->nin; i++) {
            const dl_value *v = op->in[i];
            bool inside = false;
            for (const dl_op *q = s; q != op && !inside; q = q->next)
                inside = v == &q->res[0];
            if (!inside && dc_reduce_operand(x, first, end, &v->type) < 0)
                return 0;
        }
    }
    return makes ? n : 0;
}

/* Splits the last n ops off g into a group with reduction r, and closes both. */
static int steal(group *g, dl_op *r, int n)
{
    dl_op *s = r;
    for (int k = 0; k < n; k++) {
        s = s->prev;
        s->group = -1;
    }
    g->nops -= n;
    int id = close_group(g);
    group h = {.id = id};
    for (dl_op *op = s; op != r; op = op->next)
        add(&h, op);
    add(&h, r);
    return close_group(&h);
}

/* A matmul group: the product and the transposes it can read through, moved just before it. */
static void start_matmul(group *g, dl_op *mm)
{
    g->matmul = true;
    for (int i = 0; i < 2; i++) {
        dl_op *t = (dl_op *)dc_swap_last2(mm->in[i]->def);
        if (!t || mm->in[i]->nuses != 1 || t->group ||
            (i == 0 && mm->in[0]->type.rank > 2 && mm->in[1]->type.rank == 2))
            continue;
        ir_op_move_before(mm, t);
        add(g, t);
    }
    add(g, mm);
    g->shape = mm->res[0].type;
    g->has_shape = true;
}

static bool native_conv(const dl_op *op)
{
    if ((op->code != DL_OP_CONV2D && op->code != DL_OP_CONV_TRANSPOSE2D) || op->nres != 1 ||
        op->res[0].type.dtype != DL_F32)
        return false;
    for (int i = 0; i < op->nin; i++)
        if (op->in[i]->type.dtype != DL_F32)
            return false;
    return true;
}

static void fuse_func(dl_func *f, int *next_id)
{
    /* The moved assigns gather before the return, the first of them marking where to stop. */
    dl_op *end = f->last && f->last->code == DL_OP_RETURN ? f->last : NULL, *stop = end;
    for (dl_op *op = f->first, *next; op && op != stop; op = next) {
        next = op->next;
        op->group = 0;
        if (op->code == DL_OP_ASSIGN && end) {
            ir_op_move_before(end, op);
            if (stop == end)
                stop = op;
        }
    }
    group g = {.id = *next_id};
    for (dl_op *op = f->first, *next; op; op = next) {
        next = op->next;
        if (op->code == DL_OP_RETURN || op->code == DL_OP_ASSIGN) {
            g.id = close_group(&g);
            continue;
        }
        if (joins(&g, op)) {
            add(&g, op);
            continue;
        }
        if (hoistable(&g, op)) {
            hoist(&g, op);
            continue;
        }
        int n = producers(&g, op);
        if (n) {
            g = (group){.id = steal(&g, op, n)};
            continue;
        }
        g.id = close_group(&g);
        if (native_matmul(op))
            start_matmul(&g, op);
        else if (native_conv(op)) {
            add(&g, op);
            g.matmul = true;
        }
        else if (dc_fusible(op))
            add(&g, op);
    }
    *next_id = close_group(&g);
}

bool pass_fuse(dl_module *m, const dl_pass_opts *opts, dl_diag *diag)
{
    (void)opts, (void)diag;
    int id = 1;
    for (dl_func *f = m->first; f; f = f->next)
        fuse_func(f, &id);
    return true;
}
