/* Classifies the held-out digits with the compiled model: no dlc, no Python, just the library
 * `dlc train.dl -o libdigits.so` wrote (its header declares mlp_create, mlp_forward, ...).
 *
 *     dlc run train.dl                          # trains, writes digits_mlp.safetensors
 *     dlc train.dl -o libdigits.so              # the library and libdigits.h
 *     cc classify.c -I. -L. -ldigits -Wl,-rpath,'$ORIGIN' -o classify
 *     ./classify digits_mlp.safetensors data/digits_test.csv
 *
 * The test file has one digit per line: 64 pixel values 0..16, then the label. */
#include "libdigits.h"

#include <stdio.h>
#include <stdlib.h>

enum { PIXELS = 64, CLASSES = 10, MAX_DIGITS = 100000 };

/* Reads up to MAX_DIGITS lines of "p0,...,p63,label" into x (scaled to [0, 1], as the train
 * block's scale=1/16 does) and labels. The number of digits, or -1 after printing why. */
static long read_digits(const char *path, float *x, int *labels)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    long n = 0;
    int v;
    while (n < MAX_DIGITS && fscanf(f, "%d", &v) == 1) {
        for (int i = 0; i < PIXELS + 1; i++) {
            if (i > 0 && fscanf(f, " ,%d", &v) != 1) {
                fprintf(stderr, "%s: line %ld: expected %d comma-separated integers\n", path, n + 1, PIXELS + 1);
                fclose(f);
                return -1;
            }
            if (i < PIXELS)
                x[n * PIXELS + i] = (float)v / 16;
            else
                labels[n] = v;
        }
        n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s WEIGHTS.safetensors DIGITS.csv\n", argv[0]);
        return 2;
    }
    float *x = malloc(sizeof *x * MAX_DIGITS * PIXELS), *logits = malloc(sizeof *logits * MAX_DIGITS * CLASSES);
    int *labels = malloc(sizeof *labels * MAX_DIGITS);
    if (!x || !logits || !labels) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    long n = read_digits(argv[2], x, labels);
    if (n < 0)
        return 1;

    char err[512];
    mlp *m = mlp_create(argv[1], err, sizeof err);     /* the trained weights */
    if (!m) {
        fprintf(stderr, "mlp_create: %s\n", err);
        return 1;
    }
    if (mlp_forward(m, n, x, logits) != DLC_OK) {      /* all n digits as one batch */
        fprintf(stderr, "mlp_forward: %s\n", mlp_last_error(m));
        mlp_destroy(m);
        return 1;
    }
    long correct = 0;
    for (long i = 0; i < n; i++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (logits[i * CLASSES + c] > logits[i * CLASSES + best])
                best = c;
        correct += best == labels[i];
    }
    printf("classify: %ld of %ld held-out digits right: accuracy %.4f\n", correct, n, n ? (double)correct / n : 0.0);
    mlp_destroy(m);
    free(x);
    free(logits);
    free(labels);
    return 0;
}
