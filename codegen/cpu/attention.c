/* scaled_dot_product_attention as one LLVM IR kernel (see attention.h). The semantics are the
 * reference's (codegen/ref/ref_nn.c, PyTorch's): scores q.k * scale, then causal (j > i masked:
 * the upper-left aligned tril, also when L != S) or the mask (bool: false masks; float: added),
 * a softmax over the keys, the weighted sum of v's rows. A row whose every score is -inf comes
 * out NaN (the reference's softmax of all -inf); S = 0 gives zeros.
 *
 * Per batch, the query rows go in blocks of QB (q converted to the compute type on the stack)
 * and each block streams over the keys in blocks of BC, with an online softmax: every row keeps
 * a running maximum m, a running sum l and an accumulator o[Ev] on the stack. A key block is
 * transposed once (E x BC, a scalar loop: gathers and scatters are slow on AMD) and then serves
 * the block's rows in groups of BR: the group's BR x BC scores are a loop over E of broadcast q
 * elements times contiguous rows of the transposed keys (vector FMAs, accumulated in E order),
 * then scaled and masked; m grows to cover them, they become p = exp(s - m) and add to l, the
 * group's accumulators are rescaled by exp(m_old - m) into a BR x Ev copy the optimizer keeps in
 * registers (Ev a small constant) and get p * v added, each row of v feeding BR rows. Rows end
 * as o / l. A running maximum of -inf is used as 0, so masked scores give p = 0 rather than
 * exp(-inf + inf) = NaN, and a fully masked row ends as 0 / 0 = NaN. Causal blocks stop at the
 * block's last row and groups skip the keys past theirs; rows past L repeat row L - 1 and are not
 * stored. exp is a polynomial in f32 (vectorized with its loop) and llvm.exp in f64.
 *
 * The stack holds (QB + BC) * E + (QB + BR) * Ev values (program.c leaves larger constant head
 * dimensions to the reference); the L x S scores never reach memory. One thread. */
#include "codegen/cpu/attention.h"

#include "codegen/cpu/emit.h"

#include <llvm-c/DebugInfo.h>

#include <math.h>
#include <stdio.h>

enum { QB = 64, BR = 4, BC = 64 };    /* query rows per block and per group, keys per block */
_Static_assert(QB % BR == 0, "a block's groups cover its rows exactly");

typedef struct ak {
    cg_em       *e;
    LLVMValueRef fn;
    LLVMTypeRef  ct;                  /* the compute type: f32, or f64 for f64 */
    dl_dtype     dt, mt;              /* q, k, v and the result's dtype; the mask's */
    bool         causal, masked;
    LLVMValueRef q, k, v, mask, out;  /* buffers */
    LLVMValueRef L, S, E, Ev, scale;
    LLVMValueRef msl, mss;            /* the mask's strides along L and S (0 where it broadcasts) */
    /* Stack arrays: the block's q rows (QB x E) and accumulators (QB x Ev), running maxima and
     * sums (QB), the key block transposed (E x BC), a group's scores (BR x BC). */
    LLVMValueRef qs, o, mx, sum, kt, s;
    LLVMValueRef og;                  /* stack: a group's accumulators (BR x Ev) */
    LLVMValueRef bmx[BR], alpha[BR], psum;  /* stack scalars, promoted to registers */
    LLVMValueRef q0;                  /* the block's first query row */
} ak;

static LLVMValueRef cr(ak *a, double v) { return LLVMConstReal(a->ct, v); }
static LLVMValueRef ld(ak *a, LLVMValueRef p) { return LLVMBuildLoad2(a->e->b, a->ct, p, ""); }
static void         st(ak *a, LLVMValueRef p, LLVMValueRef v) { LLVMBuildStore(a->e->b, v, p); }
static LLVMValueRef add(ak *a, LLVMValueRef x, LLVMValueRef y) { return LLVMBuildAdd(a->e->b, x, y, ""); }
static LLVMValueRef mul(ak *a, LLVMValueRef x, LLVMValueRef y) { return LLVMBuildMul(a->e->b, x, y, ""); }
static LLVMValueRef i64(ak *a, int64_t v) { return cg_em_i64(a->e, v); }

/* &base[r * n + i] in the compute type. */
static LLVMValueRef at(ak *a, LLVMValueRef base, LLVMValueRef r, LLVMValueRef n, LLVMValueRef i)
{
    LLVMValueRef idx = add(a, mul(a, r, n), i);
    return LLVMBuildGEP2(a->e->b, a->ct, base, &idx, 1, "");
}

static LLVMValueRef imin(ak *a, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildSelect(a->e->b, LLVMBuildICmp(a->e->b, LLVMIntSLT, x, y, ""), x, y, "");
}

static LLVMValueRef fmuladd(ak *a, LLVMValueRef x, LLVMValueRef y, LLVMValueRef z)
{
    return cg_em_intrinsic(a->e, "llvm.fmuladd", a->ct, 3, (LLVMValueRef[]){x, y, z});
}

static LLVMValueRef maximum(ak *a, LLVMValueRef x, LLVMValueRef y)
{
    return cg_em_intrinsic(a->e, "llvm.maximum", a->ct, 2, (LLVMValueRef[]){x, y});
}

/* A sum the vectorizer may split into partial sums. */
static LLVMValueRef loose(LLVMValueRef v)
{
    if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
        LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    return v;
}

/* e^x (every argument here is a score minus a running maximum, so <= 0 or NaN; -inf gives 0,
 * which keeps masked scores out of the sums): the vectorizable f32 exp of codegen/cpu/emit.c, or
 * llvm.exp in f64. */
static LLVMValueRef emit_exp(ak *a, LLVMValueRef x)
{
    return a->ct == a->e->f64 ? cg_em_intrinsic1(a->e, "llvm.exp", x) : cg_em_exp(a->e, x);
}

/* The strides of x's dimensions aligned right against `nt` dimensions: row-major, or 0 where x
 * broadcasts (a dimension of 1, or none). */
static void bstrides(cg_em *e, const dl_type *x, int nt, LLVMValueRef *out)
{
    LLVMValueRef s = cg_em_i64(e, 1), rm[DL_MAX_RANK];
    for (int d = x->rank - 1; d >= 0; d--) {
        rm[d] = s;
        s = LLVMBuildMul(e->b, s, cg_em_dim(e, x->dim[d]), "");
    }
    for (int t = 0; t < nt; t++) {
        int d = x->rank - nt + t;
        bool one = d < 0 || (x->dim[d].n == 0 && x->dim[d].c == 1);
        out[t] = one ? cg_em_i64(e, 0) : rm[d];
    }
}

/* The block's query rows from q0: q copied (rows past L repeat row L - 1), running maxima -inf,
 * sums and accumulators 0. */
static void begin_block(ak *a, LLVMValueRef qoff)
{
    cg_em *e = a->e;
    LLVMValueRef last = LLVMBuildSub(e->b, a->L, i64(a, 1), ""), qb = i64(a, QB);
    cg_loop lr = cg_em_loop_begin(e, a->fn, qb, "qrow");
    LLVMValueRef src = add(a, qoff, mul(a, imin(a, add(a, a->q0, lr.i), last), a->E));
    cg_loop le = cg_em_loop_begin(e, a->fn, a->E, "qe");
    st(a, at(a, a->qs, lr.i, a->E, le.i), cg_em_load(e, a->q, a->dt, add(a, src, le.i)));
    cg_em_loop_end(e, &le, a->E);
    st(a, at(a, a->mx, lr.i, i64(a, 1), i64(a, 0)), cr(a, -INFINITY));
    st(a, at(a, a->sum, lr.i, i64(a, 1), i64(a, 0)), cr(a, 0));
    cg_em_loop_end(e, &lr, qb);
    LLVMValueRef n = mul(a, qb, a->Ev);
    cg_loop lo = cg_em_loop_begin(e, a->fn, n, "oe");
    st(a, at(a, a->o, i64(a, 0), n, lo.i), cr(a, 0));
    cg_em_loop_end(e, &lo, n);
}

/* Marks the loop whose latch is the current block as one to leave scalar. */
static void no_vectorize(ak *a)
{
    LLVMContextRef c = a->e->c;
    LLVMMetadataRef self = LLVMTemporaryMDNode(c, NULL, 0);
    LLVMMetadataRef opt[2] = {LLVMMDStringInContext2(c, "llvm.loop.vectorize.enable", 26),
                              LLVMValueAsMetadata(LLVMConstInt(a->e->i1, 0, 0))};
    LLVMMetadataRef ops[2] = {self, LLVMMDNodeInContext2(c, opt, 2)};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(c, ops, 2);
    LLVMMetadataReplaceAllUsesWith(self, loop);
    LLVMSetMetadata(LLVMGetBasicBlockTerminator(LLVMGetInsertBlock(a->e->b)),
                    LLVMGetMDKindIDInContext(c, "llvm.loop", 9), LLVMMetadataAsValue(c, loop));
}

/* Keys j0 .. j0+n-1 transposed into kt (E x BC), so that a row's scores are a loop over
 * contiguous keys; columns past n repeat key j0+n-1 (their scores are masked). */
static void transpose_keys(ak *a, LLVMValueRef koff, LLVMValueRef j0, LLVMValueRef n)
{
    cg_em *e = a->e;
    LLVMValueRef bc = i64(a, BC), last = LLVMBuildSub(e->b, n, i64(a, 1), "");
    cg_loop lj = cg_em_loop_begin(e, a->fn, bc, "tkey");
    LLVMValueRef src = add(a, koff, mul(a, add(a, j0, imin(a, lj.i, last)), a->E));
    cg_loop le = cg_em_loop_begin(e, a->fn, a->E, "te");
    st(a, at(a, a->kt, le.i, bc, lj.i), cg_em_load(e, a->k, a->dt, add(a, src, le.i)));
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
    cg_em_loop_end(e, &le, a->E);
    LLVMPositionBuilderAtEnd(e->b, latch);
    no_vectorize(a);
    LLVMPositionBuilderAtEnd(e->b, le.done);
    cg_em_loop_end(e, &lj, bc);
}

/* The scores of group g's BR rows for the key block (BC columns; the last n - BC masked): each
 * q element times a row of kt, accumulated in order over E; then scaled and masked, with each
 * row's maximum. */
static void group_scores(ak *a, LLVMValueRef g, LLVMValueRef moff, LLVMValueRef j0, LLVMValueRef n)
{
    cg_em *e = a->e;
    LLVMBuilderRef b = e->b;
    LLVMValueRef bc = i64(a, BC), r0 = mul(a, g, i64(a, BR)), zero = i64(a, 0), qv[BR];
    cg_loop lz = cg_em_loop_begin(e, a->fn, i64(a, BR * BC), "sz");
    st(a, at(a, a->s, zero, zero, lz.i), cr(a, 0));
    cg_em_loop_end(e, &lz, i64(a, BR * BC));
    cg_loop le = cg_em_loop_begin(e, a->fn, a->E, "se");
    for (int r = 0; r < BR; r++)
        qv[r] = ld(a, at(a, a->qs, add(a, r0, i64(a, r)), a->E, le.i));
    cg_loop lj = cg_em_loop_begin(e, a->fn, bc, "skey");
    LLVMValueRef kx = ld(a, at(a, a->kt, le.i, bc, lj.i));
    for (int r = 0; r < BR; r++) {
        LLVMValueRef ps = at(a, a->s, i64(a, r), bc, lj.i);
        st(a, ps, fmuladd(a, qv[r], kx, ld(a, ps)));
    }
    cg_em_loop_end(e, &lj, bc);
    cg_em_loop_end(e, &le, a->E);
    LLVMValueRef last = LLVMBuildSub(b, a->L, i64(a, 1), ""), nlast = LLVMBuildSub(b, n, i64(a, 1), "");
    for (int r = 0; r < BR; r++) {
        LLVMValueRef i = imin(a, add(a, add(a, a->q0, r0), i64(a, r)), last);
        st(a, a->bmx[r], cr(a, -INFINITY));
        cg_loop lm = cg_em_loop_begin(e, a->fn, bc, "mkey");
        LLVMValueRef ps = at(a, a->s, i64(a, r), bc, lm.i);
        LLVMValueRef x = LLVMBuildFMul(b, ld(a, ps), a->scale, "score");
        LLVMValueRef off = LLVMBuildICmp(b, LLVMIntSGE, lm.i, n, "");
        if (a->causal)
            off = LLVMBuildOr(b, off, LLVMBuildICmp(b, LLVMIntSGT, add(a, j0, lm.i), i, ""), "");
        if (a->masked) {
            LLVMValueRef j = add(a, j0, imin(a, lm.i, nlast));
            LLVMValueRef mi = add(a, add(a, moff, mul(a, i, a->msl)), mul(a, j, a->mss));
            LLVMValueRef mv = cg_em_load(e, a->mask, a->mt, mi);
            if (a->mt == DL_BOOL)
                off = LLVMBuildOr(b, off, LLVMBuildNot(b, mv, ""), "");
            else
                x = LLVMBuildFAdd(b, x, mv, "");
        }
        x = LLVMBuildSelect(b, off, cr(a, -INFINITY), x, "");
        st(a, ps, x);
        st(a, a->bmx[r], maximum(a, ld(a, a->bmx[r]), x));
        cg_em_loop_end(e, &lm, bc);
    }
}

/* The online softmax step for group g: running maxima grown to cover the key block, scores
 * turned into weights p (summed into l), and each row's factor alpha for its accumulator. */
static void group_softmax(ak *a, LLVMValueRef g)
{
    cg_em *e = a->e;
    LLVMBuilderRef b = e->b;
    LLVMValueRef bc = i64(a, BC), zero = i64(a, 0);
    for (int r = 0; r < BR; r++) {
        LLVMValueRef row = add(a, mul(a, g, i64(a, BR)), i64(a, r));
        LLVMValueRef pm = at(a, a->mx, zero, zero, row), pl = at(a, a->sum, zero, zero, row);
        LLVMValueRef mold = ld(a, pm), mnew = maximum(a, mold, ld(a, a->bmx[r]));
        LLVMValueRef none = LLVMBuildFCmp(b, LLVMRealOEQ, mnew, cr(a, -INFINITY), "");
        LLVMValueRef shift = LLVMBuildSelect(b, none, cr(a, 0), mnew, "shift");
        LLVMValueRef alpha = emit_exp(a, LLVMBuildFSub(b, mold, shift, ""));
        st(a, pm, mnew);
        st(a, a->psum, cr(a, 0));
        cg_loop lj = cg_em_loop_begin(e, a->fn, bc, "pkey");
        LLVMValueRef ps = at(a, a->s, i64(a, r), bc, lj.i);
        LLVMValueRef pv = emit_exp(a, LLVMBuildFSub(b, ld(a, ps), shift, ""));
        st(a, ps, pv);
        st(a, a->psum, loose(LLVMBuildFAdd(b, ld(a, a->psum), pv, "")));
        cg_em_loop_end(e, &lj, bc);
        st(a, pl, fmuladd(a, ld(a, pl), alpha, ld(a, a->psum)));
        st(a, a->alpha[r], alpha);
    }
}

/* o += p * v over the block's n keys for group g, the group's accumulators first rescaled by
 * alpha and copied to og (which the optimizer keeps in registers when Ev is a small constant),
 * then each row of v read once for the BR rows. */
static void group_values(ak *a, LLVMValueRef g, LLVMValueRef voff, LLVMValueRef j0, LLVMValueRef n)
{
    cg_em *e = a->e;
    LLVMBuilderRef b = e->b;
    LLVMValueRef r0 = mul(a, g, i64(a, BR)), pr[BR], ri[BR], al[BR];
    for (int r = 0; r < BR; r++)
        ri[r] = i64(a, r), al[r] = ld(a, a->alpha[r]);
    cg_loop li = cg_em_loop_begin(e, a->fn, a->Ev, "oin");
    for (int r = 0; r < BR; r++)
        st(a, at(a, a->og, ri[r], a->Ev, li.i),
           LLVMBuildFMul(b, ld(a, at(a, a->o, add(a, r0, ri[r]), a->Ev, li.i)), al[r], ""));
    cg_em_loop_end(e, &li, a->Ev);
    cg_loop lj = cg_em_loop_begin(e, a->fn, n, "vkey");
    LLVMValueRef vrow = add(a, voff, mul(a, add(a, j0, lj.i), a->Ev));
    for (int r = 0; r < BR; r++)
        pr[r] = ld(a, at(a, a->s, ri[r], i64(a, BC), lj.i));
    cg_loop le = cg_em_loop_begin(e, a->fn, a->Ev, "ve");
    LLVMValueRef vx = cg_em_load(e, a->v, a->dt, add(a, vrow, le.i));
    for (int r = 0; r < BR; r++) {
        LLVMValueRef po = at(a, a->og, ri[r], a->Ev, le.i);
        st(a, po, fmuladd(a, pr[r], vx, ld(a, po)));
    }
    cg_em_loop_end(e, &le, a->Ev);
    cg_em_loop_end(e, &lj, n);
    cg_loop lo = cg_em_loop_begin(e, a->fn, a->Ev, "oout");
    for (int r = 0; r < BR; r++)
        st(a, at(a, a->o, add(a, r0, ri[r]), a->Ev, lo.i), ld(a, at(a, a->og, ri[r], a->Ev, lo.i)));
    cg_em_loop_end(e, &lo, a->Ev);
}

/* The block's rows that exist: o / l (0 when there are no keys). */
static void end_block(ak *a, LLVMValueRef ooff, LLVMValueRef rows)
{
    cg_em *e = a->e;
    LLVMBuilderRef b = e->b;
    LLVMValueRef keys = LLVMBuildICmp(b, LLVMIntSGT, a->S, i64(a, 0), ""), zero = i64(a, 0);
    cg_loop lr = cg_em_loop_begin(e, a->fn, rows, "orow");
    LLVMValueRef l = ld(a, at(a, a->sum, zero, zero, lr.i));
    LLVMValueRef orow = add(a, ooff, mul(a, add(a, a->q0, lr.i), a->Ev));
    cg_loop le = cg_em_loop_begin(e, a->fn, a->Ev, "oe");
    LLVMValueRef y = LLVMBuildFDiv(b, ld(a, at(a, a->o, lr.i, a->Ev, le.i)), l, "");
    cg_em_store(e, a->out, a->dt, add(a, orow, le.i), LLVMBuildSelect(b, keys, y, cr(a, 0), ""));
    cg_em_loop_end(e, &le, a->Ev);
    cg_em_loop_end(e, &lr, rows);
}

/* Stack space, all in the entry block: arrays sized by E and Ev, scalars mem2reg promotes. */
static void scratch(ak *a)
{
    LLVMBuilderRef b = a->e->b;
    a->s = LLVMBuildArrayAlloca(b, a->ct, i64(a, BR * BC), "scores");
    a->mx = LLVMBuildArrayAlloca(b, a->ct, i64(a, QB), "m");
    a->sum = LLVMBuildArrayAlloca(b, a->ct, i64(a, QB), "l");
    for (int r = 0; r < BR; r++) {
        a->bmx[r] = LLVMBuildAlloca(b, a->ct, "block_m");
        a->alpha[r] = LLVMBuildAlloca(b, a->ct, "alpha");
    }
    a->psum = LLVMBuildAlloca(b, a->ct, "block_l");
    a->qs = LLVMBuildArrayAlloca(b, a->ct, mul(a, i64(a, QB), a->E), "q_rows");
    a->o = LLVMBuildArrayAlloca(b, a->ct, mul(a, i64(a, QB), a->Ev), "o");
    a->kt = LLVMBuildArrayAlloca(b, a->ct, mul(a, i64(a, BC), a->E), "keys_t");
    a->og = LLVMBuildArrayAlloca(b, a->ct, mul(a, i64(a, BR), a->Ev), "o_group");
}

/* One block of query rows from a->q0 against the keys, in blocks of BC, group by group. */
static void emit_block(ak *a, LLVMValueRef qoff, LLVMValueRef koff, LLVMValueRef voff, LLVMValueRef moff,
                       LLVMValueRef ooff)
{
    cg_em *e = a->e;
    LLVMBuilderRef b = e->b;
    begin_block(a, qoff);
    LLVMValueRef rows = imin(a, i64(a, QB), LLVMBuildSub(b, a->L, a->q0, ""));
    LLVMValueRef ngroups = LLVMBuildSDiv(b, add(a, rows, i64(a, BR - 1)), i64(a, BR), "");
    LLVMValueRef jend = a->causal ? imin(a, add(a, a->q0, rows), a->S) : a->S;
    LLVMValueRef nkb = LLVMBuildSDiv(b, add(a, jend, i64(a, BC - 1)), i64(a, BC), "");
    cg_loop lk = cg_em_loop_begin(e, a->fn, nkb, "keys");
    LLVMValueRef j0 = mul(a, lk.i, i64(a, BC)), n = imin(a, i64(a, BC), LLVMBuildSub(b, jend, j0, ""));
    transpose_keys(a, koff, j0, n);
    cg_loop lg = cg_em_loop_begin(e, a->fn, ngroups, "group");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(e->c, a->fn, "group_done");
    LLVMValueRef nv = n;
    if (a->causal) {
        /* Skip the groups whose every row comes before the block's first key; the others
         * take v's rows up to their last row's. */
        LLVMValueRef lastrow = add(a, a->q0, add(a, mul(a, lg.i, i64(a, BR)), i64(a, BR - 1)));
        LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(e->c, a->fn, "group_work");
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, j0, lastrow, ""), next, work);
        LLVMPositionBuilderAtEnd(b, work);
        nv = imin(a, n, add(a, LLVMBuildSub(b, lastrow, j0, ""), i64(a, 1)));
    }
    group_scores(a, lg.i, moff, j0, n);
    group_softmax(a, lg.i);
    group_values(a, lg.i, voff, j0, nv);
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, next);
    cg_em_loop_end(e, &lg, ngroups);
    cg_em_loop_end(e, &lk, nkb);
    end_block(a, ooff, rows);
}

bool cg_cpu_emit_attention(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                           char *err, size_t errlen)
{
    const dl_op *op = k->ops[0];
    if (k->nops != 1 || op->code != DL_OP_SDPA || op->res[0].type.rank < 2) {
        snprintf(err, errlen, "'%s' is not an attention kernel (a bug in dlc)",
                 ir_op_info(op->code)->name);
        return false;
    }
    cg_em e;
    LLVMValueRef fn = cg_em_begin(&e, j, m, p, k->name), bufs = LLVMGetParam(fn, 0);
    LLVMBuilderRef b = e.b;
    const dl_type *qt = &op->in[0]->type, *kt = &op->in[1]->type, *vt = &op->in[2]->type,
                  *ot = &op->res[0].type;
    ak a = {.e = &e, .fn = fn, .ct = cg_em_compute_type(&e, qt->dtype), .dt = qt->dtype,
            .causal = IR_OP_ATTR(bool, op, "causal"), .masked = op->nin > 3};
    a.L = cg_em_dim(&e, qt->dim[qt->rank - 2]), a.E = cg_em_dim(&e, qt->dim[qt->rank - 1]);
    a.S = cg_em_dim(&e, kt->dim[kt->rank - 2]), a.Ev = cg_em_dim(&e, vt->dim[vt->rank - 1]);
    scratch(&a);
    a.q = cg_em_buffer(&e, bufs, op->in[0]), a.k = cg_em_buffer(&e, bufs, op->in[1]);
    a.v = cg_em_buffer(&e, bufs, op->in[2]), a.out = cg_em_buffer(&e, bufs, &op->res[0]);
    if (ir_attr_find(op->nattr, op->attr, "scale"))
        a.scale = cr(&a, IR_OP_ATTR(float, op, "scale"));
    else {    /* 1 / sqrt(E), E perhaps symbolic */
        LLVMValueRef root = cg_em_intrinsic1(&e, "llvm.sqrt", LLVMBuildSIToFP(b, a.E, e.f64, ""));
        LLVMValueRef s = LLVMBuildFDiv(b, LLVMConstReal(e.f64, 1), root, "");
        a.scale = a.ct == e.f64 ? s : LLVMBuildFPTrunc(b, s, a.ct, "scale");
    }
    int nbd = ot->rank - 2;
    LLVMValueRef sq[DL_MAX_RANK], sk[DL_MAX_RANK], sv[DL_MAX_RANK], sm[DL_MAX_RANK], ob[DL_MAX_RANK];
    bstrides(&e, qt, nbd + 2, sq), bstrides(&e, kt, nbd + 2, sk), bstrides(&e, vt, nbd + 2, sv);
    if (a.masked) {
        a.mask = cg_em_buffer(&e, bufs, op->in[3]);
        a.mt = op->in[3]->type.dtype;
        bstrides(&e, &op->in[3]->type, nbd + 2, sm);
        a.msl = sm[nbd], a.mss = sm[nbd + 1];
    }
    LLVMValueRef nb = i64(&a, 1);
    for (int d = 0; d < nbd; d++)
        nb = mul(&a, nb, ob[d] = cg_em_dim(&e, ot->dim[d]));

    cg_loop lb = cg_em_loop_begin(&e, fn, nb, "batch");
    LLVMValueRef rem = lb.i, qoff = i64(&a, 0), koff = qoff, voff = qoff, moff = qoff;
    for (int d = nbd - 1; d >= 0; d--) {
        LLVMValueRef c = LLVMBuildSRem(b, rem, ob[d], "");
        rem = LLVMBuildSDiv(b, rem, ob[d], "");
        qoff = add(&a, qoff, mul(&a, c, sq[d])), koff = add(&a, koff, mul(&a, c, sk[d]));
        voff = add(&a, voff, mul(&a, c, sv[d]));
        if (a.masked)
            moff = add(&a, moff, mul(&a, c, sm[d]));
    }
    LLVMValueRef ooff = mul(&a, lb.i, mul(&a, a.L, a.Ev));
    LLVMValueRef nqb = LLVMBuildSDiv(b, add(&a, a.L, i64(&a, QB - 1)), i64(&a, QB), "");
    cg_loop lq = cg_em_loop_begin(&e, fn, nqb, "rows");
    a.q0 = mul(&a, lq.i, i64(&a, QB));
    emit_block(&a, qoff, koff, voff, moff, ooff);
    cg_em_loop_end(&e, &lq, nqb);
    cg_em_loop_end(&e, &lb, nb);
    LLVMBuildRetVoid(b);
    cg_em_end(&e);
    return true;
}
