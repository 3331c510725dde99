/* Trains the AOT library of tests/lit/aot/Inputs/tiny.dl from C, as `dlc run` trains it: the same
 * batches in the same order (no shuffling; the last batch of an epoch may be short, as
 * runtime/data.c's batcher makes it), one tiny_train_step per batch. Prints each step's loss
 * ("step I loss L", I counting micro-steps from 1) for tests/lit/aot/Inputs/losses.py to compare with
 * `dlc run --log`. Then a second instance takes SAVE_AFTER steps, tiny_save()s a checkpoint, and
 * a third, fresh one tiny_load()s it and takes the rest: every loss must repeat the first run's
 * bit for bit. The first instance's final state goes to FINAL (a checkpoint). With RUN_CKPT (a
 * checkpoint `dlc run` wrote after SAVE_AFTER steps), a fourth instance tiny_load()s it and
 * continues: its losses must be the first run's too.
 *
 *     train X.npy Y.npy BATCH EPOCHS SAVE_AFTER CKPT FINAL [RUN_CKPT]
 *
 * Compiled against the header dlc writes beside the library: cc -I DIR train.c -L DIR -ltiny. */
#include "libtiny.h"
#include "npy.h"

typedef struct data {
    npy     x, y;
    int64_t batch, nb, features;
} data;

/* Micro-step i (from 0) of a run: its batch's first sample and size. */
static void batch_of(const data *d, int64_t i, int64_t *first, int64_t *n)
{
    int64_t k = i % d->nb;
    *first = k * d->batch;
    *n = d->x.shape[0] - *first < d->batch ? d->x.shape[0] - *first : d->batch;
}

static int step(tiny *m, const data *d, int64_t i, float *loss)
{
    int64_t first, n;
    batch_of(d, i, &first, &n);
    int rc = tiny_train_step(m, n, (const float *)d->x.data + first * d->features,
                             (const int64_t *)d->y.data + first, loss);
    if (rc)
        printf("step %lld: error %d: %s\n", (long long)i + 1, rc, tiny_last_error(m));
    return rc;
}

static tiny *create(void)
{
    char err[512];
    tiny *m = tiny_create(NULL, err, sizeof err);
    if (!m)
        printf("tiny_create: %s\n", err);
    return m;
}

/* A fresh instance loads checkpoint `path` and takes steps [from, total): how many losses are
 * those of the first run (bit for bit), or -1 after an error. */
static int64_t continue_from(const char *path, const data *d, int64_t from, int64_t total, const float *losses)
{
    tiny *m = create();
    if (!m)
        return -1;
    int rc = tiny_load(m, path);
    if (rc) {
        printf("tiny_load: error %d: %s\n", rc, tiny_last_error(m));
        tiny_destroy(m);
        return -1;
    }
    int64_t same = 0;
    for (int64_t i = from; i < total; i++) {
        float loss;
        if (step(m, d, i, &loss)) {
            tiny_destroy(m);
            return -1;
        }
        if (memcmp(&loss, &losses[i], sizeof loss))
            printf("%s: step %lld loss %.9g, not %.9g\n", path, (long long)i + 1, loss, losses[i]);
        else
            same++;
    }
    tiny_destroy(m);
    return same;
}

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: train X.npy Y.npy BATCH EPOCHS SAVE_AFTER CKPT FINAL [RUN_CKPT]\n");
        return 2;
    }
    data d = {.batch = atoll(argv[3])};
    int64_t epochs = atoll(argv[4]), save_after = atoll(argv[5]);
    if (npy_read(argv[1], &d.x) || npy_read(argv[2], &d.y))
        return 1;
    if (d.x.kind != 'f' || d.x.ndim != 2 || d.y.kind != 'i' || d.y.ndim != 1 || d.y.shape[0] != d.x.shape[0] ||
        d.batch < 1) {
        fprintf(stderr, "train: x must be f32[N, F], y i64[N], BATCH positive\n");
        return 2;
    }
    d.features = d.x.shape[1];
    d.nb = (d.x.shape[0] + d.batch - 1) / d.batch;
    int64_t total = epochs * d.nb;
    if (save_after < 0 || save_after > total) {
        fprintf(stderr, "train: SAVE_AFTER must be in 0..%lld\n", (long long)total);
        return 2;
    }
    float *losses = malloc(sizeof *losses * (size_t)(total + 1));

    tiny *m = create();
    if (!m)
        return 1;
    for (int64_t i = 0; i < total; i++) {
        if (step(m, &d, i, &losses[i]))
            return 1;
        printf("step %lld loss %.9g\n", (long long)i + 1, losses[i]);
    }
    if (tiny_save(m, argv[7])) {
        printf("tiny_save: %s\n", tiny_last_error(m));
        return 1;
    }
    tiny_destroy(m);

    /* Stop after SAVE_AFTER steps, checkpoint, continue in a fresh instance. */
    int64_t same = 0;
    tiny *a = create();
    for (int64_t i = 0; a && i < save_after; i++) {
        float loss;
        if (step(a, &d, i, &loss))
            return 1;
        same += !memcmp(&loss, &losses[i], sizeof loss);
    }
    int rc = a ? tiny_save(a, argv[6]) : 1;
    if (rc) {
        printf("tiny_save: %s\n", a ? tiny_last_error(a) : "");
        return 1;
    }
    tiny_destroy(a);
    int64_t resumed = continue_from(argv[6], &d, save_after, total, losses);
    if (resumed < 0)
        return 1;
    same += resumed;
    printf("save after %lld, load, continue: %lld of %lld losses identical\n", (long long)save_after,
           (long long)same, (long long)total);
    int ok = same == total;
    if (argc == 9) {
        resumed = continue_from(argv[8], &d, save_after, total, losses);
        if (resumed < 0)
            return 1;
        printf("dlc run's checkpoint loaded, continued: %lld of %lld losses identical\n", (long long)resumed,
               (long long)(total - save_after));
        ok &= resumed == total - save_after;
    }
    free(losses);
    free(d.x.data);
    free(d.y.data);
    return ok ? 0 : 1;
}
