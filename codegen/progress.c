/* Training progress on stderr and in the JSON-lines log (codegen/progress.h). A terminal gets a
 * bar redrawn at most ten times a second; anything else one line per epoch, so logs stay short. */
#include "codegen/progress.h"

#include "support/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct cg_progress {
    bool        quiet, tty;
    FILE       *log;
    int64_t     epochs, nbatches;
    int         nmetrics;
    const char *const *names;
    /* This epoch: sums weighted by samples, the clock. */
    double      loss_sum, metric_sum[64], t0, t_last, last_draw;   /* t_last: the last step's end */
    int64_t     samples, first_batch;
    double      run_t0;
    int64_t     run_batches;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

cg_progress *cg_progress_create(bool quiet, const char *log, bool append, int64_t epochs,
                                int64_t nbatches, int nmetrics, const char *const *names,
                                char *err, size_t errlen)
{
    cg_progress *p = sup_malloc(sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *p = (cg_progress){.quiet = quiet, .tty = isatty(STDERR_FILENO), .epochs = epochs,
                       .nbatches = nbatches, .nmetrics = nmetrics < 64 ? nmetrics : 64,
                       .names = names, .run_t0 = now()};
    if (log && !(p->log = fopen(log, append ? "a" : "w"))) {
        snprintf(err, errlen, "cannot open log '%s': %s", log, strerror(errno));
        sup_free(p);
        return NULL;
    }
    return p;
}

void cg_progress_epoch_begin(cg_progress *p, int64_t epoch, int64_t first_batch)
{
    (void)epoch;
    p->loss_sum = 0;
    memset(p->metric_sum, 0, sizeof p->metric_sum);
    p->samples = 0;
    p->first_batch = first_batch;
    p->t0 = p->t_last = now();
    p->last_draw = 0;
}

static void metrics_text(FILE *out, const cg_progress *p, const char *prefix, double loss, const double *m)
{
    fprintf(out, "  %sloss %.4f", prefix, loss);
    for (int i = 0; i < p->nmetrics; i++)
        fprintf(out, "  %s%s %.4f", prefix, p->names[i], m[i]);
}

void cg_progress_step(cg_progress *p, int64_t epoch, int64_t batch, int64_t step, int64_t n,
                      double loss, const double *metrics, double lr, double grad_norm)
{
    p->loss_sum += loss * (double)n;
    for (int i = 0; i < p->nmetrics; i++)
        p->metric_sum[i] += metrics[i] * (double)n;
    p->samples += n;
    p->run_batches++;
    if (p->log) {
        fprintf(p->log, "{\"event\": \"step\", \"epoch\": %lld, \"batch\": %lld, \"step\": %lld, "
                "\"loss\": %.9g", (long long)epoch + 1, (long long)batch, (long long)step, loss);
        for (int i = 0; i < p->nmetrics; i++)
            fprintf(p->log, ", \"%s\": %.9g", p->names[i], metrics[i]);
        fprintf(p->log, ", \"lr\": %.9g, \"grad_norm\": %.9g}\n", lr, grad_norm);
    }
    double t = p->t_last = now();
    if (p->quiet || !p->tty || (t - p->last_draw < 0.1 && batch < p->nbatches))
        return;
    p->last_draw = t;
    double rate = (double)p->samples / (t - p->t0 > 1e-9 ? t - p->t0 : 1e-9);
    double per_batch = (t - p->run_t0) / (double)p->run_batches;
    double eta = per_batch * (double)((p->epochs - epoch - 1) * p->nbatches + p->nbatches - batch);
    int width = 24, fill = (int)(width * batch / (p->nbatches ? p->nbatches : 1));
    fprintf(stderr, "\r\033[Kepoch %lld/%lld [", (long long)epoch + 1, (long long)p->epochs);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %lld/%lld", (long long)batch, (long long)p->nbatches);
    metrics_text(stderr, p, "", loss, metrics);
    fprintf(stderr, "  %.0f samples/s  ETA %d:%02d", rate, (int)(eta / 60), (int)eta % 60);
    fflush(stderr);
}

void cg_progress_epoch_end(cg_progress *p, int64_t epoch, const double *valid)
{
    /* Training throughput: the epoch's batches, not its validation. */
    double secs = (p->samples ? p->t_last : now()) - p->t0, n = p->samples ? (double)p->samples : 1;
    double m[64];
    for (int i = 0; i < p->nmetrics; i++)
        m[i] = p->metric_sum[i] / n;
    if (p->log) {
        fprintf(p->log, "{\"event\": \"epoch\", \"epoch\": %lld, \"loss\": %.9g", (long long)epoch + 1,
                p->loss_sum / n);
        for (int i = 0; i < p->nmetrics; i++)
            fprintf(p->log, ", \"%s\": %.9g", p->names[i], m[i]);
        if (valid) {
            fprintf(p->log, ", \"valid_loss\": %.9g", valid[0]);
            for (int i = 0; i < p->nmetrics; i++)
                fprintf(p->log, ", \"valid_%s\": %.9g", p->names[i], valid[1 + i]);
        }
        fprintf(p->log, ", \"samples_per_s\": %.1f, \"seconds\": %.3f}\n", (double)p->samples / secs, secs);
        fflush(p->log);
    }
    if (p->quiet)
        return;
    if (p->tty)
        fputs("\r\033[K", stderr);
    fprintf(stderr, "epoch %lld/%lld", (long long)epoch + 1, (long long)p->epochs);
    metrics_text(stderr, p, "", p->loss_sum / n, m);
    if (valid)
        metrics_text(stderr, p, "valid_", valid[0], valid + 1);
    fprintf(stderr, "  %.0f samples/s  %.2f s\n", (double)p->samples / secs, secs);
}

void cg_progress_finish(cg_progress *p)
{
    if (p && !p->quiet && p->tty)
        fputs("\r\033[K", stderr);
    if (p && p->log)
        fflush(p->log);
}

void cg_progress_destroy(cg_progress *p)
{
    if (!p)
        return;
    if (p->log)
        fclose(p->log);
    sup_free(p);
}
