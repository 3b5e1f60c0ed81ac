/* Runtime CPU dispatch: binds each public kernel name (bias_act_forward_f32, ...) to the
 * copy csrc/template.h compiled for the CPU path chosen when the extension loads.
 *
 * The binding is a GNU indirect function (ifunc): the dynamic loader calls a resolver here
 * once per name while it loads the extension, before any code of the extension runs, and
 * every later call goes straight to the chosen copy (as GCC's target_clones did). The
 * resolvers pick the best path the CPU supports, as target_clones would, unless the
 * environment variable FASTNN_CPU names a path: baseline, avx2 or avx512 (auto: the best).
 * A path the CPU lacks is not taken (the best supported one runs instead, and fastnn/ops.py
 * warns); the variable is read once, at load: set it before importing fastnn.
 *
 * A new kernel joins with one line in the list at the end: FASTNN_KERNEL(name), its name
 * without the dtype suffix. (Without that line the extension fails to import, naming the
 * missing symbol name_f32.) */
#include "fastnn.h"

#if FASTNN_DISPATCH

extern char **environ;

static int fastnn_path = -3;           /* not chosen yet */
static int fastnn_supported = 0, fastnn_requested = -1;

/* 1 when the NUL-terminated s starts with prefix. Hand-written, like the rest of the
 * choice: resolvers run while the loader is still relocating the extension, so they call
 * no library function but the compiler's own CPU probe. */
static int fastnn_starts_with(const char *s, const char *prefix)
{
    while (*prefix) if (*s++ != *prefix++) return 0;
    return 1;
}

static int fastnn_equals(const char *s, const char *t)
{
    while (*t) if (*s++ != *t++) return 0;
    return *s == '\0';
}

static int fastnn_choose_path(void)
{
    if (fastnn_path != -3) return fastnn_path;
    __builtin_cpu_init();
    fastnn_supported = __builtin_cpu_supports("x86-64-v4") ? 2
                       : __builtin_cpu_supports("x86-64-v3") ? 1 : 0;
    fastnn_requested = -1;
    for (char **e = environ; e && *e; e++) {
        if (!fastnn_starts_with(*e, "FASTNN_CPU=")) continue;
        const char *v = *e + 11;
        if (fastnn_equals(v, "baseline")) fastnn_requested = 0;
        else if (fastnn_equals(v, "avx2")) fastnn_requested = 1;
        else if (fastnn_equals(v, "avx512")) fastnn_requested = 2;
        else if (fastnn_equals(v, "auto") || fastnn_equals(v, "")) fastnn_requested = -1;
        else fastnn_requested = -2;
    }
    fastnn_path = fastnn_requested >= 0 && fastnn_requested < fastnn_supported
                  ? fastnn_requested : fastnn_supported;
    return fastnn_path;
}

int fastnn_cpu_path(void) { return fastnn_choose_path(); }
int fastnn_cpu_supported(void) { fastnn_choose_path(); return fastnn_supported; }
int fastnn_cpu_requested(void) { fastnn_choose_path(); return fastnn_requested; }

#define FASTNN_BIND(f)                                                                 \
    extern __typeof__(f) f##_v4, f##_v3, f##_base;                                      \
    static __typeof__(f) *fastnn_resolve_##f(void)                                      \
    {                                                                                   \
        int path = fastnn_choose_path();                                                \
        return path == 2 ? f##_v4 : path == 1 ? f##_v3 : f##_base;                      \
    }                                                                                   \
    __typeof__(f) f __attribute__((ifunc("fastnn_resolve_" #f)));
#define FASTNN_KERNEL(name) FASTNN_BIND(name##_f32) FASTNN_BIND(name##_f64)

#else /* one path: the kernels are compiled under their public names */

int fastnn_cpu_path(void) { return -1; }
int fastnn_cpu_supported(void) { return -1; }
int fastnn_cpu_requested(void) { return -1; }

#define FASTNN_KERNEL(name)

#endif

/* every public kernel of csrc/, by family file */
/* activations.c */
FASTNN_KERNEL(bias_act_forward)
FASTNN_KERNEL(act_backward)
FASTNN_KERNEL(prelu_forward)
FASTNN_KERNEL(prelu_backward)
FASTNN_KERNEL(maxout_forward)
FASTNN_KERNEL(maxout_backward)
/* losses.c */
FASTNN_KERNEL(elementwise_loss)
FASTNN_KERNEL(softmax_cross_entropy)
FASTNN_KERNEL(sparse_softmax_cross_entropy)
/* reductions.c */
FASTNN_KERNEL(col_sum)
FASTNN_KERNEL(sum_squares)
FASTNN_KERNEL(all_finite)
FASTNN_KERNEL(argmax_hits)
FASTNN_KERNEL(argmax_match_hits)
FASTNN_KERNEL(threshold_hits)
/* products.c */
FASTNN_KERNEL(matmul)
FASTNN_KERNEL(matmul_split)
FASTNN_KERNEL(matmul_split_then)
/* epoch.c */
FASTNN_KERNEL(epoch_steps)
/* embedding.c */
FASTNN_KERNEL(embedding_forward)
FASTNN_KERNEL(embedding_backward)
/* merging.c */
FASTNN_KERNEL(concat_columns)
FASTNN_KERNEL(split_columns)
/* optimizers.c */
FASTNN_KERNEL(sgd_update)
FASTNN_KERNEL(adam_update)
FASTNN_KERNEL(adamax_update)
FASTNN_KERNEL(nadam_update)
FASTNN_KERNEL(rmsprop_update)
FASTNN_KERNEL(adagrad_update)
FASTNN_KERNEL(lion_update)
FASTNN_KERNEL(adadelta_update)
FASTNN_KERNEL(ftrl_update)
FASTNN_KERNEL(lamb_update)
FASTNN_KERNEL(adafactor_update)
FASTNN_KERNEL(ema_update)
/* regularizers.c */
FASTNN_KERNEL(l1_l2_penalty)
FASTNN_KERNEL(norm_constraint)
FASTNN_KERNEL(non_neg)
/* normalization.c */
FASTNN_KERNEL(batchnorm_forward_train)
FASTNN_KERNEL(batchnorm_backward)
FASTNN_KERNEL(layernorm_forward)
FASTNN_KERNEL(layernorm_backward)
FASTNN_KERNEL(col_affine)
/* dropout.c */
FASTNN_KERNEL(dropout_apply)
FASTNN_KERNEL(dropout_backward)
FASTNN_KERNEL(gaussian_noise_apply)
