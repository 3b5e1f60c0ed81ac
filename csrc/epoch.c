/* The compiled training epoch: the steps of fit() for a chain of layers without a return
 * to Python per batch. Each step does what fastnn/training/trainer.py's step does with the
 * layers' forward and backward (fastnn/layers/), kernel for kernel and in the same order,
 * on the buffers the layers own (fastnn/training/compiled_epoch.py hands them over), so
 * the weights, the loss and the metric come out with the Python loop's bits. What the
 * Python loop pays per step (the interpreter, ~100k instructions on the benchmark's small
 * nets) is what this saves.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include <string.h>
#include <time.h>
#include "fastnn.h"

static double epoch_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if EPOCH_SPLIT_SAMPLES != 3
#error "epoch_median3 takes the median of EPOCH_SPLIT_SAMPLES = 3 samples"
#endif
static double epoch_median3(const double *t)
{
    double a = t[0], b = t[1], c = t[2];
    if (a > b) { double x = a; a = b; b = x; }
    if (b > c) b = c;
    return a > b ? a : b;
}

/* The way (fastnn_split_choice: 1 to `ways`) the next call of a product takes, and whether
 * it is timed for a measurement. */
static int epoch_next_way(fastnn_split_choice *c, int ways, int *measuring)
{
    *measuring = c->way == 0 || c->way > ways || c->since > c->interval;
    if (!*measuring) return c->way;
    int next = 1;  /* each way in turn: the one with the fewest samples */
    for (int w = 2; w <= ways; w++)
        if (c->n[w - 1] < c->n[next - 1]) next = w;
    return next;
}

/* fastnn/optimizers/base.py's _norm_scale: clip / max(norm, clip); 0 for an infinite norm
 * (NaN for any non-finite one when global), NaN for a NaN norm */
static double epoch_norm_scale(double norm, double clip, int global)
{
    if (norm <= clip) return 1.0;
    if (norm > clip && (isfinite(norm) || !global)) return clip / norm;
    return NAN;
}

static void epoch_record(fastnn_split_choice *c, int ways, int way, int measuring, double dt)
{
    if (!measuring) {
        c->since++;
        if (dt > EPOCH_SPLIT_SLOW * c->expected && c->since >= EPOCH_SPLIT_MIN_CALLS)
            c->since = c->interval + 1;  /* contention, perhaps: measure again */
        return;
    }
    /* a way may have its samples already: a choice kept from a product that had more ways */
    if (c->n[way - 1] < EPOCH_SPLIT_SAMPLES) c->t[way - 1][c->n[way - 1]++] = dt;
    for (int w = 0; w < ways; w++)
        if (c->n[w] < EPOCH_SPLIT_SAMPLES) return;
    int chosen = 1;
    double best = epoch_median3(c->t[0]);
    for (int w = 2; w <= ways; w++) {
        double med = epoch_median3(c->t[w - 1]);
        if (med < best) {
            best = med;
            chosen = w;
        }
    }
    if (c->interval == 0) c->interval = EPOCH_SPLIT_RECHECK;
    else if (chosen == c->way) c->interval = c->interval * 2 < EPOCH_SPLIT_MAX_RECHECK
                                                 ? c->interval * 2 : EPOCH_SPLIT_MAX_RECHECK;
    else c->interval = EPOCH_SPLIT_RECHECK;
    c->way = chosen;
    c->expected = best;
    for (int w = 0; w < EPOCH_SPLIT_WAYS; w++) c->n[w] = 0;
    c->since = 0;
}

#define FASTNN_TEMPLATE "epoch.c"
#include "template.h"

#else /* template body */

/* The optimizer's rule on elements [off, off + size) of run u, at the step's learning rate
 * and count, the gradient scaled by gs (clipping by norm): every rule is elementwise, so
 * pieces updated in any order, on any thread, give the bits of one call over the run. */
static void FN(epoch_update_piece)(fastnn_epoch *e, const fastnn_epoch_run *u, ptrdiff_t off,
                                   ptrdiff_t size, double gs, int nt)
{
#define AT(q) ((q) ? (REAL *)(q) + off : NULL)
    REAL *p = AT(u->p), *s1 = AT(u->s1), *s2 = AT(u->s2), *s3 = AT(u->s3);
    const REAL *g = AT(u->g);
#undef AT
    double lr = e->step_lr, cv = e->clipvalue;
    double decay = u->decay ? e->weight_decay * lr : 0.0;
    int64_t t = e->iterations + 1;
    switch (e->opt_kind) {
    case EPOCH_OPT_SGD:
        PUBLIC(sgd_update)(p, g, s1, lr, e->momentum, e->nesterov, decay, gs, cv, size, nt);
        break;
    case EPOCH_OPT_ADAM:
        PUBLIC(adam_update)(p, g, s1, s2, s3, lr, e->beta_1, e->beta_2, e->epsilon, t, decay,
                            gs, cv, size, nt);
        break;
    case EPOCH_OPT_RMSPROP:
        PUBLIC(rmsprop_update)(p, g, s1, s2, s3, lr, e->rho, e->momentum, e->epsilon, decay, gs,
                               cv, size, nt);
        break;
    case EPOCH_OPT_ADAGRAD:
        PUBLIC(adagrad_update)(p, g, s1, lr, e->epsilon, decay, gs, cv, size, nt);
        break;
    case EPOCH_OPT_ADAMAX:
        PUBLIC(adamax_update)(p, g, s1, s2, lr, e->beta_1, e->beta_2, e->epsilon, t, decay, gs,
                              cv, size, nt);
        break;
    case EPOCH_OPT_NADAM:
        PUBLIC(nadam_update)(p, g, s1, s2, lr, e->beta_1, e->beta_2, e->epsilon, t, e->u_product,
                             decay, gs, cv, size, nt);
        break;
    }
}

/* A Dense layer's kernel update, block by block of its weight gradient (matmul_then_f); never
 * under clipping by norm (the scale needs every gradient), hence the unscaled gradient */
typedef struct {
    fastnn_epoch *e;
    const fastnn_epoch_run *u;
    ptrdiff_t n;  /* the kernel's columns */
    int nt;
} FN(epoch_then_arg);

static void FN(epoch_update_block)(void *arg, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t c0,
                                   ptrdiff_t c1)
{
    const FN(epoch_then_arg) *a = (const FN(epoch_then_arg) *)arg;
    if (c0 == 0 && c1 == a->n) {
        FN(epoch_update_piece)(a->e, a->u, r0 * a->n, (r1 - r0) * a->n, 1.0, a->nt);
        return;
    }
    for (ptrdiff_t r = r0; r < r1; r++)
        FN(epoch_update_piece)(a->e, a->u, r * a->n + c0, c1 - c0, 1.0, a->nt);
}

/* A Dense layer's product `which` (0 forward, 1 weight gradient, 2 input gradient): under
 * the adaptive policy, in chunks (split_geometry) on this thread or over fastnn's threads,
 * whichever measured faster: the chunks' bits either way, those of the Python loop's
 * products under the policy (fastnn/threads.py). With `update`, the layer's kernel is
 * updated from each block of the weight gradient C as it is made. */
static void FN(epoch_matmul)(fastnn_epoch *e, fastnn_epoch_layer *d, int which, ptrdiff_t nb,
                             const REAL *A, int ta, const REAL *B, int tb, REAL *C, ptrdiff_t m,
                             ptrdiff_t n, ptrdiff_t k, int update)
{
    ptrdiff_t per;
    int columns;
    FN(epoch_then_arg) arg = {e, &d->kernel_run, n, 1};
    matmul_then_f then = update ? FN(epoch_update_block) : NULL;
    if (e->split_threads < 1 || !split_geometry(m, n, k, &per, &columns)) {
        PUBLIC(matmul)(A, ta, B, tb, C, m, n, k);
        arg.nt = e->update_threads;
        if (update) FN(epoch_update_block)(&arg, 0, m, 0, n);
        return;
    }
    fastnn_split_choice *c = &d->choice[which];
    if (e->split_threads < 2 || nb != (e->batch_size < e->rows ? e->batch_size : e->rows)) {
        /* one thread allowed; or a short last batch: the choice made for full ones, untimed */
        int threads = e->split_threads >= 2 && c->way >= 2 ? e->split_threads : 1;
        PUBLIC(matmul_split_then)(A, ta, B, tb, C, m, n, k, per, columns, threads, then, &arg,
                                  c->way == 2);
        return;
    }
    int ways = update ? 3 : 2;
    int measuring, way = epoch_next_way(c, ways, &measuring);
    double t0 = epoch_clock();
    PUBLIC(matmul_split_then)(A, ta, B, tb, C, m, n, k, per, columns,
                              way >= 2 ? e->split_threads : 1, then, &arg, way == 2);
    epoch_record(c, ways, way, measuring, epoch_clock() - t0);
}

/* forward through every layer in order; returns the output (the last layer's) */
static REAL *FN(epoch_forward)(fastnn_epoch *e, const REAL *xb, ptrdiff_t nb)
{
    int nt = e->n_threads;
    e->tensors[0] = (void *)xb;
    for (ptrdiff_t l = 0; l < e->n_layers; l++) {
        fastnn_epoch_layer *d = &e->layers[l];
        const REAL *x = (const REAL *)e->tensors[d->in0];
        REAL *Y = (REAL *)d->Y;
        switch (d->kind) {
        case EPOCH_DENSE:
            FN(epoch_matmul)(e, d, 0, nb, x, 0, (const REAL *)d->W, 0, (REAL *)d->Z, nb,
                             d->units, d->in, 0);
            PUBLIC(bias_act_forward)((REAL *)d->Z, (const REAL *)d->b, d->act, d->alpha, Y, nb,
                                     d->units, nt);
            break;
        case EPOCH_ACTIVATION:  /* without a bias the kernel does not write its input */
            PUBLIC(bias_act_forward)((REAL *)x, NULL, d->act, d->alpha, Y, nb, d->units, nt);
            break;
        case EPOCH_DROPOUT:
            PUBLIC(dropout_apply)(x, d->rate, d->scale, 0.0, 0.0, d->seed, d->counter++, Y,
                                  d->keep, nb * d->units, nt);
            break;
        case EPOCH_BATCHNORM:
            PUBLIC(batchnorm_forward_train)(x, (const REAL *)d->W, (const REAL *)d->b, d->eps,
                                            d->momentum, (REAL *)d->moving_mean,
                                            (REAL *)d->moving_var, Y, (REAL *)d->mean,
                                            (REAL *)d->invstd, nb, d->units, nt);
            break;
        case EPOCH_ADD: {  /* np.add(x0, x1, out=y) */
            const REAL *x1 = (const REAL *)e->tensors[d->in1];
            for (ptrdiff_t i = 0; i < nb * d->units; i++) Y[i] = x[i] + x1[i];
            break;
        }
        }
        e->tensors[l + 1] = Y;
    }
    return (REAL *)e->tensors[e->n_layers];
}

/* the loss summed over the batch's rows; its gradient (of the batch mean) into e->grad.
 * With per-sample weights wb, as Trainer._batch_loss: each row's gradient times its weight
 * (in the model's dtype) and the sum of the row losses weighted by a float64 dot product */
static double FN(epoch_loss)(fastnn_epoch *e, const REAL *out, const void *yb, ptrdiff_t nb,
                             const REAL *wb)
{
    ptrdiff_t m = e->layers[e->n_layers - 1].units;
    double scale = 1.0 / (double)(nb > 1 ? nb : 1), sum;
    REAL *grad = (REAL *)e->grad;
    double *rows = wb ? e->row_loss : NULL;
    switch (e->loss_kind) {
    case EPOCH_LOSS_SPARSE_SOFTMAX_CE:
        sum = PUBLIC(sparse_softmax_cross_entropy)(out, (const int64_t *)yb, e->from_logits,
                                                   scale, grad, rows, nb, m, e->n_threads);
        break;
    case EPOCH_LOSS_SOFTMAX_CE:
        sum = PUBLIC(softmax_cross_entropy)(out, (const REAL *)yb, e->from_logits, scale, grad,
                                            rows, nb, m, e->n_threads);
        break;
    default:
        sum = PUBLIC(elementwise_loss)(out, (const REAL *)yb, e->loss_code, e->loss_param,
                                       scale, grad, rows, nb, m, e->n_threads);
    }
    if (!wb) return sum;
    for (ptrdiff_t i = 0; i < nb; i++) {
        for (ptrdiff_t j = 0; j < m; j++) grad[i * m + j] *= wb[i];
        e->w64[i] = (double)wb[i];
    }
    double weighted;  /* np.dot(rows, w): a (1, nb) @ (nb, 1) product is numpy's dot */
    matmul_f64(e->row_loss, 0, e->w64, 0, &weighted, 1, 1, nb);
    return weighted;
}

/* A gradient g for tensor t: the first one is kept, later ones are added into it (a
 * buffer nobody reads again in this step), as fastnn/functional.py's backward does. */
static void FN(epoch_route)(fastnn_epoch *e, ptrdiff_t t, REAL *g, ptrdiff_t size)
{
    REAL *have = (REAL *)e->grads[t];
    if (!have) {
        e->grads[t] = g;
        return;
    }
    for (ptrdiff_t i = 0; i < size; i++) have[i] += g[i];
}

/* backward from e->grad through the layers whose output needs a gradient, in reverse;
 * every layer's backward writes its input gradient over the one it received (the model
 * hands them scratch dy), but Dense's and Add's second */
static void FN(epoch_backward)(fastnn_epoch *e, ptrdiff_t nb)
{
    int nt = e->n_threads;
    for (ptrdiff_t t = 0; t <= e->n_layers; t++) e->grads[t] = NULL;
    e->grads[e->n_layers] = e->grad;
    for (ptrdiff_t l = e->n_layers - 1; l >= 0; l--) {
        fastnn_epoch_layer *d = &e->layers[l];
        if (!d->needs) continue;
        REAL *dy = (REAL *)e->grads[l + 1], *dx = dy;
        e->grads[l + 1] = NULL;
        const REAL *x = (const REAL *)e->tensors[d->in0];
        switch (d->kind) {
        case EPOCH_DENSE:
            if (d->fused_grad) {
                if (d->db) PUBLIC(col_sum)(dy, (REAL *)d->db, nb, d->units, nt);
            } else {
                PUBLIC(act_backward)(dy, d->preact ? (const REAL *)d->Z : NULL,
                                     (const REAL *)d->Y, d->act, d->alpha, dy, (REAL *)d->db, nb,
                                     d->units, nt);
            }
            /* the input gradient first: a fused update changes W as dW is made */
            if (d->need_dx) {
                FN(epoch_matmul)(e, d, 2, nb, dy, 0, (const REAL *)d->W, 1, (REAL *)d->dX, nb,
                                 d->in, d->units, 0);
                dx = (REAL *)d->dX;
            }
            if (d->dW)
                FN(epoch_matmul)(e, d, 1, nb, x, 1, dy, 0, (REAL *)d->dW, d->in, d->units, nb,
                                 d->fused_update && e->optimizing);
            break;
        case EPOCH_ACTIVATION:
            PUBLIC(act_backward)(dy, d->preact ? x : NULL, (const REAL *)d->Y, d->act, d->alpha,
                                 dy, NULL, nb, d->units, nt);
            break;
        case EPOCH_DROPOUT:
            PUBLIC(dropout_backward)(dy, d->keep, d->scale, dy, nb * d->units, nt);
            break;
        case EPOCH_BATCHNORM:
            PUBLIC(batchnorm_backward)(dy, x, (const REAL *)d->mean, (const REAL *)d->invstd,
                                       (const REAL *)d->W, d->need_dx ? dy : NULL,
                                       (REAL *)d->dW, (REAL *)d->db, nb, d->units, nt);
            break;
        case EPOCH_ADD:  /* dy for the first input, a copy for the second */
            if (d->need_dx && d->want1)
                memcpy(d->dX, dy, (size_t)(nb * d->units) * sizeof(REAL));
            break;
        }
        if (!d->need_dx) continue;
        if (d->want0) FN(epoch_route)(e, d->in0, dx, nb * d->in);
        if (d->kind == EPOCH_ADD && d->want1)
            FN(epoch_route)(e, d->in1, (REAL *)d->dX, nb * d->units);
    }
}

/* the runs not updated during the backward (fused_update), clipped by norm as
 * Optimizer._update clips: the same sum_squares calls, sums and sqrt in the same order */
static void FN(epoch_update)(fastnn_epoch *e)
{
    int nt = e->update_threads;
    double scale = 1.0;
    if (e->clip_mode == EPOCH_CLIP_GLOBAL_NORM) {
        double total = 0.0;
        for (int i = 0; i < e->n_norm_grads; i++)
            total += PUBLIC(sum_squares)((const REAL *)e->norm_g[i], e->norm_size[i], nt);
        scale = epoch_norm_scale(sqrt(total), e->clip_norm, 1);
    }
    for (int r = 0; r < e->n_runs; r++) {
        const fastnn_epoch_run *u = &e->runs[r];
        double gs = scale;
        if (e->clip_mode == EPOCH_CLIP_NORM)  /* a run is one variable here */
            gs = epoch_norm_scale(sqrt(PUBLIC(sum_squares)((const REAL *)u->g, u->size, nt)),
                                  e->clip_norm, 0);
        FN(epoch_update_piece)(e, u, 0, u->size, gs, nt);
    }
}

ptrdiff_t FN(epoch_steps)(fastnn_epoch *e, ptrdiff_t first, ptrdiff_t count)
{
    size_t y_row = e->y_labels ? sizeof(int64_t) : (size_t)e->y_cols * sizeof(REAL);
    ptrdiff_t out_cols = e->layers[e->n_layers - 1].units;
    for (ptrdiff_t s = first; s < first + count; s++) {
        ptrdiff_t lo = s * e->batch_size;
        ptrdiff_t nb = e->rows - lo < e->batch_size ? e->rows - lo : e->batch_size;
        const REAL *xb;
        const void *yb;
        if (e->order) {
            const int64_t *rows = e->order + lo;
            ptrdiff_t bad = take_rows(e->x, rows, e->xb, e->rows, nb,
                                              (ptrdiff_t)(e->x_cols * sizeof(REAL)), e->n_threads);
            if (bad < 0)
                bad = take_rows(e->y, rows, e->yb, e->rows, nb, (ptrdiff_t)y_row,
                                        e->n_threads);
            if (bad >= 0) return -1 - (lo + bad);
            xb = (const REAL *)e->xb;
            yb = e->yb;
        } else {
            xb = (const REAL *)e->x + lo * e->x_cols;
            yb = (const char *)e->y + lo * y_row;
        }
        const REAL *wb = NULL;
        if (e->w) {
            if (e->order) {
                take_rows(e->w, e->order + lo, e->wb, e->rows, nb, (ptrdiff_t)sizeof(REAL),
                          e->n_threads);
                wb = (const REAL *)e->wb;
            } else {
                wb = (const REAL *)e->w + lo;
            }
        }
        const REAL *out = FN(epoch_forward)(e, xb, nb);
        double loss = FN(epoch_loss)(e, out, yb, nb, wb) / (double)nb;
        e->step_lr = e->lrs ? e->lrs[s - first] : e->lr;
        /* Nadam's _prepare_step, before the backward: a fused kernel update reads it */
        if (e->optimizing && e->opt_kind == EPOCH_OPT_NADAM)
            e->u_product *= nadam_u(e->beta_1, e->iterations + 1);
        FN(epoch_backward)(e, nb);
        for (int r = 0; r < e->n_penalties; r++) {  /* Trainer._penalize_and_update */
            fastnn_epoch_penalty *q = &e->penalties[r];
            loss += PUBLIC(l1_l2_penalty)((const REAL *)q->w, q->l1, q->l2, 1.0, (REAL *)q->g,
                                          q->size, e->n_threads);
        }
        if (e->optimizing) {
            FN(epoch_update)(e);
            e->iterations++;
        }
        e->loss_total += loss * (double)nb;
        e->seen += nb;
        for (int k = 0; k < e->n_metrics; k++) {
            int64_t h = 0;
            switch (e->metric_kind[k]) {
            case 1: h = PUBLIC(argmax_hits)(out, (const int64_t *)yb, nb, out_cols); break;
            case 2: h = PUBLIC(argmax_match_hits)(out, (const REAL *)yb, nb, out_cols); break;
            case 3:
                h = PUBLIC(threshold_hits)(out, (const REAL *)yb, e->metric_threshold[k],
                                           nb * out_cols);
                break;
            }
            e->metric_hits[k] += h;
        }
    }
    return 0;
}

#endif
