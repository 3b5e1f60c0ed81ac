/* fastnn C kernels: the one header.
 *
 * Every kernel exists for float32 (suffix _f32) and float64 (suffix _f64).
 * The kernel files are templates compiled once per dtype by csrc/template.h, so one body
 * of code serves both dtypes.
 *
 * Conventions: inputs first, then outputs, then n_threads. Arrays are C-contiguous,
 * shapes are given explicitly, and nothing here knows about Python. Reductions use
 * fixed-size blocks combined in a fixed order, so results do not depend on n_threads.
 */
#ifndef FASTNN_H
#define FASTNN_H

#include <stddef.h>
#include <stdint.h>

/* ---- OpenMP shim: the only place that mentions OpenMP's runtime ---------------- */
#ifdef _OPENMP
#include <omp.h>
#define FASTNN_HAVE_OPENMP 1
#else
#define FASTNN_HAVE_OPENMP 0
#endif

/* Below this many elements a kernel runs on one thread: waking a sleeping OpenMP worker
 * (they must sleep, see fastnn/backend.py) costs ~10-20 us, more than it saves on a
 * 128 x 512 activation (measured: 8 us serial, 22 us on two threads). */
#define FASTNN_PARALLEL_MIN 131072
/* Work estimates weigh elements by their cost, so kernels with a transcendental function per
 * element (exp, log, tanh, erf) go parallel at fewer elements than a select or a copy. */
#define FASTNN_TRANSCENDENTAL_COST 16
/* Row block for reductions: partial sums per block, blocks summed in order. */
#define FASTNN_BLOCK_ROWS 64

/* Runtime dispatch: hot serial loops (the functions marked FASTNN_CLONES) are compiled for
 * AVX-512 (x86-64-v4), AVX2/FMA (x86-64-v3) and baseline x86-64, and one path is picked when
 * the extension loads (no -march=native needed for speed). v4 brings 64-bit vector
 * multiplies: the dropout hash runs 2x faster (measured). csrc/template.h compiles each
 * kernel family once per path (kernel names get the suffix _v4, _v3 or _base) and
 * csrc/dispatch.c binds every public kernel name to one of them at load time (GNU ifunc);
 * the environment variable FASTNN_CPU=baseline|avx2|avx512 forces a path the CPU supports.
 * FASTNN_DISPATCH is 0 where there is one path only (not GCC on x86-64 Linux, or a
 * -march=native build, FASTNN_NATIVE=1): then kernels keep their plain names. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(FASTNN_NO_CLONES)
#define FASTNN_DISPATCH 1
#else
#define FASTNN_DISPATCH 0
#endif
/* FASTNN_CLONES is defined by csrc/template.h for each path (a target attribute). */

/* The CPU path the kernels run on: 2 AVX-512 (x86-64-v4), 1 AVX2/FMA (x86-64-v3),
 * 0 baseline x86-64, -1 a build without runtime dispatch. */
int fastnn_cpu_path(void);
/* The best path this CPU supports (-1 without runtime dispatch). */
int fastnn_cpu_supported(void);
/* The path FASTNN_CPU asked for when the extension loaded: -1 not set (or "auto"),
 * -2 a value that is not a path name (then the best supported path runs). */
int fastnn_cpu_requested(void);

int fastnn_have_openmp(void);

/* ---- activations ---------------------------------------------------------------- */
enum fastnn_activation {
    ACT_LINEAR = 0, ACT_RELU = 1, ACT_LEAKY_RELU = 2, ACT_ELU = 3, ACT_SELU = 4,
    ACT_SIGMOID = 5, ACT_TANH = 6, ACT_GELU = 7, ACT_SWISH = 8, ACT_SOFTPLUS = 9,
    ACT_SOFTSIGN = 10, ACT_HARD_SIGMOID = 11, ACT_MISH = 12, ACT_EXPONENTIAL = 13,
    ACT_SOFTMAX = 14, ACT_LOG_SOFTMAX = 15
};
#define FASTNN_N_ACTIVATIONS 16

#define FASTNN_SELU_ALPHA 1.6732632423543772848170429916717
#define FASTNN_SELU_SCALE 1.0507009873554804934193349852946

/* Y = act(Z + b); Z is overwritten with Z + b (the pre-activation) when b is given.
 * Y may be Z. b may be NULL. */
void bias_act_forward_f32(float *Z, const float *b, int act, double alpha,
                          float *Y, ptrdiff_t n, ptrdiff_t m, int n_threads);
void bias_act_forward_f64(double *Z, const double *b, int act, double alpha,
                          double *Y, ptrdiff_t n, ptrdiff_t m, int n_threads);
/* dZ = dY * act'(Z) (elementwise activations, from Y where the math allows) or the
 * row-wise Jacobian product (softmax, log_softmax); db = column sums of dZ if db != NULL.
 * dZ may be dY. */
void act_backward_f32(const float *dY, const float *Z, const float *Y, int act, double alpha,
                      float *dZ, float *db, ptrdiff_t n, ptrdiff_t m, int n_threads);
void act_backward_f64(const double *dY, const double *Z, const double *Y, int act, double alpha,
                      double *dZ, double *db, ptrdiff_t n, ptrdiff_t m, int n_threads);
/* PReLU with one slope per column: Y = X > 0 ? X : a * X */
void prelu_forward_f32(const float *X, const float *a, float *Y, ptrdiff_t n, ptrdiff_t m, int n_threads);
void prelu_forward_f64(const double *X, const double *a, double *Y, ptrdiff_t n, ptrdiff_t m, int n_threads);
void prelu_backward_f32(const float *dY, const float *X, const float *a, float *dX, float *da,
                        ptrdiff_t n, ptrdiff_t m, int n_threads);
void prelu_backward_f64(const double *dY, const double *X, const double *a, double *dX, double *da,
                        ptrdiff_t n, ptrdiff_t m, int n_threads);
/* Maxout: X is (n, m*k) grouped as m units of k pieces; Y (n, m); argmax (n, m). */
void maxout_forward_f32(const float *X, float *Y, int32_t *arg, ptrdiff_t n, ptrdiff_t m, ptrdiff_t k, int n_threads);
void maxout_forward_f64(const double *X, double *Y, int32_t *arg, ptrdiff_t n, ptrdiff_t m, ptrdiff_t k, int n_threads);
void maxout_backward_f32(const float *dY, const int32_t *arg, float *dX, ptrdiff_t n, ptrdiff_t m, ptrdiff_t k, int n_threads);
void maxout_backward_f64(const double *dY, const int32_t *arg, double *dX, ptrdiff_t n, ptrdiff_t m, ptrdiff_t k, int n_threads);

/* ---- losses: each returns the SUM over rows of the per-row loss and writes dP, the
 * gradient of (that sum * scale) with respect to P. dP may be NULL (loss only); row_loss,
 * if not NULL, receives each row's loss (for per-sample weights). ---------------------- */
enum fastnn_loss {
    LOSS_MSE = 0, LOSS_MAE = 1, LOSS_HUBER = 2, LOSS_BCE = 3, LOSS_BCE_LOGITS = 4,
    LOSS_CCE = 5, LOSS_KLD = 6, LOSS_HINGE = 7
};
#define FASTNN_N_LOSSES 8
double elementwise_loss_f32(const float *P, const float *T, int loss, double param, double scale,
                            float *dP, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads);
double elementwise_loss_f64(const double *P, const double *T, int loss, double param, double scale,
                            double *dP, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads);
/* Softmax + cross-entropy, fused. Z holds logits (from_logits) or probabilities.
 * T is one-hot / soft targets (n, m) or labels (n,) for the sparse variant.
 * dZ = scale * (softmax(Z) - T): the gradient with respect to the logits. */
double softmax_cross_entropy_f32(const float *Z, const float *T, int from_logits, double scale,
                                 float *dZ, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads);
double softmax_cross_entropy_f64(const double *Z, const double *T, int from_logits, double scale,
                                 double *dZ, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads);
double sparse_softmax_cross_entropy_f32(const float *Z, const int64_t *labels, int from_logits,
                                        double scale, float *dZ, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads);
double sparse_softmax_cross_entropy_f64(const double *Z, const int64_t *labels, int from_logits,
                                        double scale, double *dZ, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads);

/* ---- reductions ------------------------------------------------------------------ */
/* out[j] = sum_i X[i, j] (fixed order over i). */
void col_sum_f32(const float *X, float *out, ptrdiff_t n, ptrdiff_t m, int n_threads);
void col_sum_f64(const double *X, double *out, ptrdiff_t n, ptrdiff_t m, int n_threads);
/* The rows i of P (n, m) whose np.argmax equals labels[i] (sparse accuracy's hits). */
int64_t argmax_hits_f32(const float *P, const int64_t *labels, ptrdiff_t n, ptrdiff_t m);
int64_t argmax_hits_f64(const double *P, const int64_t *labels, ptrdiff_t n, ptrdiff_t m);
/* The rows whose argmax is T's row's argmax (categorical accuracy's hits). */
int64_t argmax_match_hits_f32(const float *P, const float *T, ptrdiff_t n, ptrdiff_t m);
int64_t argmax_match_hits_f64(const double *P, const double *T, ptrdiff_t n, ptrdiff_t m);
/* The n elements with (P > threshold) == (T > 0.5), compared in the dtype (binary
 * accuracy's hits). */
int64_t threshold_hits_f32(const float *P, const float *T, double threshold, ptrdiff_t n);
int64_t threshold_hits_f64(const double *P, const double *T, double threshold, ptrdiff_t n);
/* sum of squares of a flat array, accumulated in double, fixed block order. */
double sum_squares_f32(const float *x, ptrdiff_t n, int n_threads);
double sum_squares_f64(const double *x, ptrdiff_t n, int n_threads);
/* 1 when none of the n elements is NaN or +-inf, else 0. */
int all_finite_f32(const float *x, ptrdiff_t n, int n_threads);
int all_finite_f64(const double *x, ptrdiff_t n, int n_threads);
/* out row i = src row index[i], rows of row_bytes bytes (any dtype). Returns -1, or the
 * position of the first index outside [0, n) (then nothing is written). */
ptrdiff_t take_rows(const void *src, const int64_t *index, void *out, ptrdiff_t n,
                    ptrdiff_t n_index, ptrdiff_t row_bytes, int n_threads);
/* out row i = row index[i] of the n rows of row_bytes bytes stored in file descriptor fd
 * from byte offset on, read with pread (nothing is mapped into memory). Returns -1; the
 * position of the first index outside [0, n) (nothing is read); or -2 - i when reading
 * row i failed (errno says why, 0 when the file is shorter than its rows). */
ptrdiff_t read_rows(int fd, int64_t offset, const int64_t *index, void *out, ptrdiff_t n,
                    ptrdiff_t n_index, ptrdiff_t row_bytes, int n_threads);

/* ---- embedding (embedding.c) ------------------------------------------------------ */
/* out row i = W row codes[i], W (rows, cols); index[i] = codes[i] as an int64. Returns -1,
 * or the position of the first code that is not an integer in [0, rows) (NaN included);
 * then out is not written. */
ptrdiff_t embedding_forward_f32(const float *codes, const float *W, float *out, int64_t *index,
                                ptrdiff_t n, ptrdiff_t rows, ptrdiff_t cols, int n_threads);
ptrdiff_t embedding_forward_f64(const double *codes, const double *W, double *out, int64_t *index,
                                ptrdiff_t n, ptrdiff_t rows, ptrdiff_t cols, int n_threads);
/* dW (rows, cols) = 0, then dW[index[i]] += dY[i] for i = 0..n-1 in that order (a scatter-
 * add: the dense gradient of the lookup). Returns -1, or the position of the first index
 * outside [0, rows) (then dW is not written). */
ptrdiff_t embedding_backward_f32(const float *dY, const int64_t *index, float *dW, ptrdiff_t n,
                                 ptrdiff_t rows, ptrdiff_t cols, int n_threads);
ptrdiff_t embedding_backward_f64(const double *dY, const int64_t *index, double *dW, ptrdiff_t n,
                                 ptrdiff_t rows, ptrdiff_t cols, int n_threads);

/* ---- merging (merging.c) -------------------------------------------------------- */
/* out (n, w_0 + ... + w_{k-1}) = the k row-major inputs xs[j] (n, widths[j]) side by side
 * (Concatenate on axis -1). out must not overlap an input. */
void concat_columns_f32(const float *const *xs, const ptrdiff_t *widths, ptrdiff_t k, float *out,
                        ptrdiff_t n, int n_threads);
void concat_columns_f64(const double *const *xs, const ptrdiff_t *widths, ptrdiff_t k,
                        double *out, ptrdiff_t n, int n_threads);
/* The inverse: outs[j] (n, widths[j]), row-major, = dY's (n, w_0 + ... + w_{k-1}) columns
 * [w_0 + ... + w_{j-1}, ... + w_j). No out may overlap dY. */
void split_columns_f32(const float *dY, const ptrdiff_t *widths, ptrdiff_t k, float *const *outs,
                       ptrdiff_t n, int n_threads);
void split_columns_f64(const double *dY, const ptrdiff_t *widths, ptrdiff_t k,
                       double *const *outs, ptrdiff_t n, int n_threads);

/* ---- optimizers: in-place updates of one flat parameter ---------------------------- */
/* Every update first takes g <- clip(gscale * g, -clipvalue, clipvalue) (gscale = 1 and
 * clipvalue = INFINITY: no clipping; the grad buffer is not written) and
 * p <- p - p * decay (decoupled weight decay, decay = weight_decay * lr; 0: none), then
 * applies Keras 3's rule. `step` is the 1-based step number (iterations + 1). State
 * arrays have the parameter's size; optional ones may be NULL. Decaying state values
 * below the smallest normal number are stored as 0 (subnormals are 10-100x slower). */
/* SGD: v = momentum * v - lr * g; p += v, or p += momentum * v - lr * g (nesterov).
 * v == NULL: plain p -= lr * g. */
void sgd_update_f32(float *p, const float *g, float *v, double lr, double momentum, int nesterov,
                    double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
void sgd_update_f64(double *p, const double *g, double *v, double lr, double momentum, int nesterov,
                    double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
/* Adam: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); vhat = max(vhat, v) if vhat (amsgrad);
 * p -= m * alpha / (sqrt(v or vhat) + eps), alpha = lr sqrt(1 - b2^t) / (1 - b1^t). */
void adam_update_f32(float *p, const float *g, float *m, float *v, float *vhat, double lr,
                     double beta_1, double beta_2, double epsilon, int64_t step, double decay,
                     double gscale, double clipvalue, ptrdiff_t n, int n_threads);
void adam_update_f64(double *p, const double *g, double *m, double *v, double *vhat, double lr,
                     double beta_1, double beta_2, double epsilon, int64_t step, double decay,
                     double gscale, double clipvalue, ptrdiff_t n, int n_threads);
/* Adamax: m += (g - m)(1 - b1); u = max(b2 u, |g|); p -= lr m / ((1 - b1^t)(u + eps)). */
void adamax_update_f32(float *p, const float *g, float *m, float *u, double lr, double beta_1,
                       double beta_2, double epsilon, int64_t step, double decay, double gscale,
                       double clipvalue, ptrdiff_t n, int n_threads);
void adamax_update_f64(double *p, const double *g, double *m, double *u, double lr, double beta_1,
                       double beta_2, double epsilon, int64_t step, double decay, double gscale,
                       double clipvalue, ptrdiff_t n, int n_threads);
/* Nadam (Keras 3, momentum schedule u_t = b1 (1 - 0.5 * 0.96^t)); u_product = u_1...u_t:
 * m, v as Adam; m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product);
 * p -= m_hat lr / (sqrt(v / (1 - b2^t)) + eps). */
void nadam_update_f32(float *p, const float *g, float *m, float *v, double lr, double beta_1,
                      double beta_2, double epsilon, int64_t step, double u_product,
                      double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
void nadam_update_f64(double *p, const double *g, double *m, double *v, double lr, double beta_1,
                      double beta_2, double epsilon, int64_t step, double u_product,
                      double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
/* Nadam's u_t = beta_1 * (1 - 0.5 * 0.96^t), rounded as fastnn/optimizers/adam.py's _u */
double nadam_u(double beta_1, int64_t t);
/* RMSprop: v = rho v + (1 - rho) g^2; avg = rho avg + (1 - rho) g (centered, avg != NULL);
 * inc = lr g / sqrt(v - avg^2 + eps) (or sqrt(v + eps)); mom = momentum mom + inc if mom;
 * p -= inc (or mom). */
void rmsprop_update_f32(float *p, const float *g, float *v, float *mom, float *avg, double lr,
                        double rho, double momentum, double epsilon, double decay, double gscale,
                        double clipvalue, ptrdiff_t n, int n_threads);
void rmsprop_update_f64(double *p, const double *g, double *v, double *mom, double *avg, double lr,
                        double rho, double momentum, double epsilon, double decay, double gscale,
                        double clipvalue, ptrdiff_t n, int n_threads);
/* Adagrad: acc += g^2; p -= lr g / sqrt(acc + eps). */
void adagrad_update_f32(float *p, const float *g, float *acc, double lr, double epsilon,
                        double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
void adagrad_update_f64(double *p, const double *g, double *acc, double lr, double epsilon,
                        double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);

/* Lion: p -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g. */
void lion_update_f32(float *p, const float *g, float *m, double lr, double beta_1, double beta_2,
                     double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
void lion_update_f64(double *p, const double *g, double *m, double lr, double beta_1, double beta_2,
                     double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
/* Adadelta: ag = rho ag + (1 - rho) g^2; d = -sqrt(ad + eps) g / sqrt(ag + eps);
 * ad = rho ad + (1 - rho) d^2; p += lr d. */
void adadelta_update_f32(float *p, const float *g, float *acc_grad, float *acc_delta, double lr,
                         double rho, double epsilon, double decay, double gscale, double clipvalue,
                         ptrdiff_t n, int n_threads);
void adadelta_update_f64(double *p, const double *g, double *acc_grad, double *acc_delta, double lr,
                         double rho, double epsilon, double decay, double gscale, double clipvalue,
                         ptrdiff_t n, int n_threads);
/* FTRL (Keras 3): na = acc + g^2; linear += g + 2 l2s p - (na^-pw - acc^-pw) / lr p;
 * p = (clip(linear, -l1, l1) - linear) / (na^-pw / lr + 2 (l2 + beta / (2 lr))); acc = na. */
void ftrl_update_f32(float *p, const float *g, float *acc, float *linear, double lr,
                     double lr_power, double l1, double l2, double l2_shrinkage, double beta,
                     double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
void ftrl_update_f64(double *p, const double *g, double *acc, double *linear, double lr,
                     double lr_power, double l1, double l2, double l2_shrinkage, double beta,
                     double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads);
/* Lamb: m, v as Adam; u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps);
 * p -= (||p|| / ||u||, or 1 if either is 0) lr u. Returns -1 if out of memory. */
int lamb_update_f32(float *p, const float *g, float *m, float *v, double lr, double beta_1,
                    double beta_2, double epsilon, int64_t step, double decay, double gscale,
                    double clipvalue, ptrdiff_t n, int n_threads);
int lamb_update_f64(double *p, const double *g, double *m, double *v, double lr, double beta_1,
                    double beta_2, double epsilon, int64_t step, double decay, double gscale,
                    double clipvalue, ptrdiff_t n, int n_threads);
/* Adafactor (Keras 3) on n_mats rows x cols matrices, r (n_mats, rows) and c (n_mats, cols)
 * factored second moments; v != NULL: not factored (r, c unused). -1 if out of memory. */
int adafactor_update_f32(float *p, const float *g, float *r, float *c, float *v, double lr,
                         double beta_2_decay, double epsilon_1, double epsilon_2,
                         double clip_threshold, int64_t step, double decay, double gscale,
                         double clipvalue, ptrdiff_t n_mats, ptrdiff_t rows, ptrdiff_t cols,
                         int n_threads);
int adafactor_update_f64(double *p, const double *g, double *r, double *c, double *v, double lr,
                         double beta_2_decay, double epsilon_1, double epsilon_2,
                         double clip_threshold, int64_t step, double decay, double gscale,
                         double clipvalue, ptrdiff_t n_mats, ptrdiff_t rows, ptrdiff_t cols,
                         int n_threads);

/* Moving average of the weights: average = m average + (1 - m) value, 1 - m in REAL. */
void ema_update_f32(float *average, const float *value, double momentum, ptrdiff_t n,
                    int n_threads);
void ema_update_f64(double *average, const double *value, double momentum, ptrdiff_t n,
                    int n_threads);

/* ---- normalization (normalization.c) --------------------------------------------- */
/* Batch norm, training: per column of X (n, m), mean and biased variance in one pass,
 * invstd = 1 / sqrt(var + eps), moving_* = moving_* * momentum + batch * (1 - momentum)
 * (skipped when moving_mean is NULL), Y = (X - mean) * gamma * invstd + beta.
 * gamma / beta may be NULL (scale=False / center=False). */
void batchnorm_forward_train_f32(const float *X, const float *gamma, const float *beta, double eps,
                                 double momentum, float *moving_mean, float *moving_var, float *Y,
                                 float *mean, float *invstd, ptrdiff_t n, ptrdiff_t m, int n_threads);
void batchnorm_forward_train_f64(const double *X, const double *gamma, const double *beta, double eps,
                                 double momentum, double *moving_mean, double *moving_var, double *Y,
                                 double *mean, double *invstd, ptrdiff_t n, ptrdiff_t m, int n_threads);
/* Batch norm backward through the batch mean and variance; dX, dgamma, dbeta may be NULL. */
void batchnorm_backward_f32(const float *dY, const float *X, const float *mean, const float *invstd,
                            const float *gamma, float *dX, float *dgamma, float *dbeta,
                            ptrdiff_t n, ptrdiff_t m, int n_threads);
void batchnorm_backward_f64(const double *dY, const double *X, const double *mean, const double *invstd,
                            const double *gamma, double *dX, double *dgamma, double *dbeta,
                            ptrdiff_t n, ptrdiff_t m, int n_threads);
/* Y = (X - shift) * scale + offset per column; shift / offset may be NULL. */
void col_affine_f32(const float *X, const float *shift, const float *scale, const float *offset,
                    float *Y, ptrdiff_t n, ptrdiff_t m, int n_threads);
void col_affine_f64(const double *X, const double *shift, const double *scale, const double *offset,
                    double *Y, ptrdiff_t n, ptrdiff_t m, int n_threads);
/* Layer norm over each row: Y = (X - mean) * rstd * gamma + beta; mean, rstd (n,) saved. */
void layernorm_forward_f32(const float *X, const float *gamma, const float *beta, double eps,
                           float *Y, float *mean, float *rstd, ptrdiff_t n, ptrdiff_t m, int n_threads);
void layernorm_forward_f64(const double *X, const double *gamma, const double *beta, double eps,
                           double *Y, double *mean, double *rstd, ptrdiff_t n, ptrdiff_t m, int n_threads);
void layernorm_backward_f32(const float *dY, const float *X, const float *gamma, const float *mean,
                            const float *rstd, float *dX, float *dgamma, float *dbeta,
                            ptrdiff_t n, ptrdiff_t m, int n_threads);
void layernorm_backward_f64(const double *dY, const double *X, const double *gamma, const double *mean,
                            const double *rstd, double *dX, double *dgamma, double *dbeta,
                            ptrdiff_t n, ptrdiff_t m, int n_threads);

/* ---- dropout family (dropout.c): counter-based random numbers -------------------- */
/* key = mix64(mix64(seed) + counter * G); word i = mix64(key + (i + 1) * G), SplitMix64. */
uint64_t fastnn_random_key(uint64_t seed, uint64_t counter);
uint64_t fastnn_keep_threshold32(double rate);
void random_words_u64(uint64_t seed, uint64_t counter, uint64_t *out, ptrdiff_t n, int n_threads);
/* out = X * scale + shift where element i is kept, fill where dropped; element i is kept when
 * u_i >= floor(rate * 2^32) (never when rate >= 1), u_i = low (i even) or high (i odd) 32 bits
 * of word i / 2. mask (may be NULL) gets 1 where kept, 0 where dropped, in the same pass.
 * Dropout: scale 1/(1-rate), shift = fill = 0. */
void dropout_apply_f32(const float *X, double rate, double scale, double shift, double fill,
                       uint64_t seed, uint64_t counter, float *out, uint8_t *mask, ptrdiff_t n,
                       int n_threads);
void dropout_apply_f64(const double *X, double rate, double scale, double shift, double fill,
                       uint64_t seed, uint64_t counter, double *out, uint8_t *mask, ptrdiff_t n,
                       int n_threads);
/* dX = dY * scale where mask != 0, +0 where mask == 0 (dropout's backward); dX may be dY. */
void dropout_backward_f32(const float *dY, const uint8_t *mask, double scale, float *dX, ptrdiff_t n,
                          int n_threads);
void dropout_backward_f64(const double *dY, const uint8_t *mask, double scale, double *dX,
                          ptrdiff_t n, int n_threads);
/* out = X + stddev * z (additive) or X * (1 + stddev * z) (multiplicative), z ~ N(0, 1)
 * by Box-Muller on words 2i, 2i + 1. */
void gaussian_noise_apply_f32(const float *X, double stddev, int multiplicative, uint64_t seed,
                              uint64_t counter, float *out, ptrdiff_t n, int n_threads);
void gaussian_noise_apply_f64(const double *X, double stddev, int multiplicative, uint64_t seed,
                              uint64_t counter, double *out, ptrdiff_t n, int n_threads);

/* ---- regularizers and constraints (regularizers.c) -------------------------------- */
/* Returns scale * (l1 * sum|w| + l2 * sum w^2); grad (may be NULL) += scale * (l1 sign(w)
 * + 2 l2 w), in the same pass. */
double l1_l2_penalty_f32(const float *w, double l1, double l2, double scale, float *grad,
                         ptrdiff_t n, int n_threads);
double l1_l2_penalty_f64(const double *w, double l1, double l2, double scale, double *grad,
                         ptrdiff_t n, int n_threads);
/* W viewed as (P, R, Q), norms over R: W *= (rate * clip(norm, min, max) + (1 - rate) * norm)
 * / (1e-7 + norm), or W /= (1e-7 + norm) when unit. In place. */
void norm_constraint_f32(float *W, double min_value, double max_value, double rate, int unit,
                         ptrdiff_t P, ptrdiff_t R, ptrdiff_t Q, int n_threads);
void norm_constraint_f64(double *W, double min_value, double max_value, double rate, int unit,
                         ptrdiff_t P, ptrdiff_t R, ptrdiff_t Q, int n_threads);
/* W = max(W, 0) in place. */
void non_neg_f32(float *W, ptrdiff_t n, int n_threads);
void non_neg_f64(double *W, ptrdiff_t n, int n_threads);

/* ---- matrix products from C (products.c) ------------------------------------------ */
/* fastnn calls the BLAS numpy was built with (one thread pool in the process): Python
 * looks its functions up once and binds them here. ilp64: the BLAS takes 64-bit integers.
 * Returns 0, or -1 when a pointer is missing (then nothing is bound). */
int blas_bind(void *sgemm, void *dgemm, void *sgemv, void *dgemv, void *sdot, void *ddot,
              void *ssyrk, void *dsyrk, int ilp64);
int blas_bound(void);
/* C (m, n), C-contiguous = A @ B with the very BLAS calls np.matmul makes for these
 * operands, hence its bits: A is (m, k), C-contiguous, or with trans_a the transpose of a
 * C-contiguous (k, m) array (B likewise, (k, n) or the transpose of (n, k)). m, n, k > 0.
 * The BLAS must be bound (blas_bound()). */
void matmul_f32(const float *A, int trans_a, const float *B, int trans_b, float *C,
                ptrdiff_t m, ptrdiff_t n, ptrdiff_t k);
void matmul_f64(const double *A, int trans_a, const double *B, int trans_b, double *C,
                ptrdiff_t m, ptrdiff_t n, ptrdiff_t k);
/* The adaptive policy's chunks of a product C (m, n) = A (m, k) B (k, n): returns 0 when it
 * is one BLAS call (too small), else 1 with the chunks' size *per (rows of C, or columns
 * when *columns). See EPOCH_SPLIT_CHUNKS. */
int split_geometry(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t *per, int *columns);
/* matmul as chunks of `per` rows of C (columns != 0: columns), each one BLAS call, on the
 * calling thread and up to n_threads - 1 of fastnn's worker threads taking chunks from a
 * counter as they come free (a thread taken off its core by another process delays the
 * chunk it holds, not the product; see products.c). With the BLAS at one thread, the bits
 * depend on the chunks only, not on the threads. */
void matmul_split_f32(const float *A, int trans_a, const float *B, int trans_b, float *C,
                      ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t per, int columns,
                      int n_threads);
void matmul_split_f64(const double *A, int trans_a, const double *B, int trans_b, double *C,
                      ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t per, int columns,
                      int n_threads);
/* A block of C, rows [r0, r1) by columns [c0, c1), whose values are final. */
typedef void (*matmul_then_f)(void *arg, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t c0,
                              ptrdiff_t c1);
/* matmul_split, then then(then_arg, block) on each chunk's block exactly once; every call
 * has returned when this returns. then_shared: by the thread that computed the chunk, while
 * it is in that core's cache (a worker's `then` cannot be taken over: the caller waits for
 * it, a scheduler time slice when another process holds the worker's core); else by the
 * calling thread. `then` may write only its own block's share of whatever it writes. */
void matmul_split_then_f32(const float *A, int trans_a, const float *B, int trans_b, float *C,
                           ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t per, int columns,
                           int n_threads, matmul_then_f then, void *then_arg, int then_shared);
void matmul_split_then_f64(const double *A, int trans_a, const double *B, int trans_b,
                           double *C, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t per,
                           int columns, int n_threads, matmul_then_f then, void *then_arg,
                           int then_shared);
/* Returns once no worker of matmul_split may still read operands of a product whose caller
 * has returned (one that took a chunk over from a late worker): call it before freeing
 * operands that were split. */
void matmul_split_quiesce(void);

/* ---- the compiled training epoch (epoch.c) ---------------------------------------- */
/* The steps of an epoch of a graph of layers (Dense, Activation, Dropout,
 * BatchNormalization, Add; a chain is the graph of a Sequential), run in C without returning
 * to Python: gather the batch, forward,
 * loss and its gradient, backward, optimizer update; the same kernels, BLAS calls and order
 * of operations as the Python loop (fastnn/training/compiled_epoch.py builds this from the
 * model's own buffers), hence the same bits. Pointers are void so one layout serves both
 * dtypes. */
enum fastnn_epoch_op { EPOCH_DENSE = 0, EPOCH_ACTIVATION = 1, EPOCH_DROPOUT = 2,
                       EPOCH_BATCHNORM = 3, EPOCH_ADD = 4 };
enum fastnn_epoch_loss { EPOCH_LOSS_ELEMENTWISE = 0, EPOCH_LOSS_SOFTMAX_CE = 1,
                         EPOCH_LOSS_SPARSE_SOFTMAX_CE = 2 };
enum fastnn_epoch_optimizer { EPOCH_OPT_SGD = 0, EPOCH_OPT_ADAM = 1, EPOCH_OPT_RMSPROP = 2,
                              EPOCH_OPT_ADAGRAD = 3, EPOCH_OPT_ADAMAX = 4,
                              EPOCH_OPT_NADAM = 5 };
/* gradient clipping by norm, as Optimizer._update (fastnn/optimizers/base.py) */
enum fastnn_epoch_clip { EPOCH_CLIP_NONE = 0, EPOCH_CLIP_NORM = 1, EPOCH_CLIP_GLOBAL_NORM = 2 };
#define FASTNN_EPOCH_MAX_METRICS 8
#define FASTNN_EPOCH_MAX_RUNS 64  /* runs of packed variables (weight decay splits them) */
/* The adaptive policy's choice for one product, as fastnn/threads.py's AdaptivePolicy makes
 * it (same constants): time each way (two; three for a product that updates its kernel,
 * see EPOCH_SPLIT_WAYS), EPOCH_SPLIT_SAMPLES calls each, keep the lowest median; measure
 * again after `interval` calls (doubling up to EPOCH_SPLIT_MAX_RECHECK while
 * the choice holds), or soon after a call EPOCH_SPLIT_SLOW times slower than expected. */
#define EPOCH_SPLIT_SAMPLES 3
#define EPOCH_SPLIT_RECHECK 256
#define EPOCH_SPLIT_MAX_RECHECK 4096
#define EPOCH_SPLIT_SLOW 4.0
#define EPOCH_SPLIT_MIN_CALLS 16
/* The adaptive policy's chunks (fastnn/threads.py: split_geometry, same constants): a
 * product of at least EPOCH_SPLIT_MIN_MACS multiply-adds is computed as EPOCH_SPLIT_CHUNKS
 * chunks of C's rows (or columns, when C has fewer rows than columns), a multiple of
 * EPOCH_SPLIT_ALIGN each, on one thread or several: the same bits either way. */
#define EPOCH_SPLIT_MIN_MACS (1 << 20)
#define EPOCH_SPLIT_CHUNKS 6
#define EPOCH_SPLIT_ALIGN 16
/* The ways: 1 the chunks in order on the calling thread, 2 split over fastnn's threads, 3
 * (a weight-gradient product that updates its kernel, see matmul_split_then) split, the
 * updates on the calling thread: robust when another process holds a worker's core. */
#define EPOCH_SPLIT_WAYS 3
typedef struct {
    int way;                       /* 0 not measured yet, else the way chosen */
    int n[EPOCH_SPLIT_WAYS];       /* samples taken of each way in this measurement */
    double t[EPOCH_SPLIT_WAYS][EPOCH_SPLIT_SAMPLES], expected;
    int64_t since, interval;
} fastnn_split_choice;
typedef struct {
    void *p, *g, *s1, *s2, *s3;   /* value, gradient, state slots (NULL: unused) */
    ptrdiff_t size;
    int decay;                    /* weight decay applies to this run */
} fastnn_epoch_run;
typedef struct {
    int kind;              /* enum fastnn_epoch_op */
    /* The graph: tensor 0 is the batch, tensor l + 1 the output of layer l; the layer reads
     * tensor in0 (and in1: Add's second input, else -1). Backward visits the layers whose
     * output needs a gradient (needs), in reverse, as fastnn/functional.py does. */
    ptrdiff_t in0, in1;
    int needs, want0, want1;   /* want: the input needs a gradient */
    ptrdiff_t in, units;   /* input and output widths (equal but for Dense) */
    int act;               /* Dense, Activation: enum fastnn_activation */
    double alpha;
    int preact;            /* the activation's backward needs its input: Y is its own buffer */
    int fused_grad;        /* Dense: the loss hands it dZ (softmax + cross-entropy) */
    int need_dx;           /* some input needs a gradient */
    void *W, *b;           /* Dense: kernel (in, units), bias; BatchNorm: gamma, beta (or NULL) */
    void *dW, *db;         /* their gradients, NULL when frozen (or absent) */
    fastnn_split_choice choice[3];   /* Dense, the adaptive thread policy: what measurement
                                      * chose for its forward, weight-gradient and input-
                                      * gradient products */
    void *Z, *Y, *dX;      /* (batch, units): Dense's pre-activation, every op's output (Dense:
                            * Y may be Z); Dense's input gradient (batch, in) or NULL; Add:
                            * its second input's gradient (a copy of dy) */
    double rate, scale;    /* Dropout: rate, 1 / (1 - rate) */
    uint64_t seed, counter;/* Dropout: the stream; counter: the next step's, advanced per step */
    uint8_t *keep;         /* Dropout: the keep-mask (batch, units) */
    double eps, momentum;  /* BatchNorm */
    void *moving_mean, *moving_var, *mean, *invstd;
    /* Dense: the optimizer's run of the kernel (g is dW), updated chunk by chunk as the
     * weight-gradient product makes them (by the thread that computed a chunk, while it is
     * in its cache, or by the calling thread: the way chosen), when fused_update; else the
     * kernel is in the epoch's runs */
    int fused_update;
    fastnn_epoch_run kernel_run;
} fastnn_epoch_layer;
/* An L1/L2 penalty on a trainable variable (regularizers.L1L2): its value and gradient */
typedef struct {
    void *w, *g;
    ptrdiff_t size;
    double l1, l2;
} fastnn_epoch_penalty;
#define FASTNN_EPOCH_MAX_PENALTIES 64
typedef struct {
    /* data: x (rows, x_cols) in the model's dtype; y: labels (int64, (rows,)) when
     * y_labels, else (rows, y_cols) in the model's dtype; order: the pass's permutation,
     * or NULL for batches in order (then x and y are read in place) */
    const void *x, *y;
    ptrdiff_t rows, x_cols, y_cols, batch_size;
    int y_labels;
    const int64_t *order;
    void *xb, *yb;                /* gather buffers (batch_size rows) */
    /* per-sample weights (rows,) in the model's dtype, or NULL; their gather buffer, and
     * float64 scratch of batch_size for each row's loss and the batch's weights */
    const void *w;
    void *wb;
    double *row_loss, *w64;
    ptrdiff_t n_layers;
    fastnn_epoch_layer *layers;
    void **tensors, **grads;      /* n_layers + 1 slots each: scratch of a step */
    /* loss */
    int loss_kind, loss_code, from_logits;
    double loss_param;
    void *grad;                   /* (batch, outputs) */
    /* metrics counted per step: kind 1 sparse categorical accuracy (argmax_hits), 2
     * categorical accuracy (argmax_match_hits), 3 binary accuracy (threshold_hits) */
    int n_metrics, metric_kind[FASTNN_EPOCH_MAX_METRICS];
    double metric_threshold[FASTNN_EPOCH_MAX_METRICS];
    int64_t metric_hits[FASTNN_EPOCH_MAX_METRICS];
    /* optimizer */
    /* the penalties of the regularized variables, in the order the Python loop adds them
     * (their gradients added after the backward; a regularized kernel is never fused) */
    int n_penalties;
    fastnn_epoch_penalty penalties[FASTNN_EPOCH_MAX_PENALTIES];
    /* runs: the optimizer's packed variables but the fused Dense kernels (updated in the
     * backward), in pieces; optimizing: there are variables to update (maybe all fused) */
    int opt_kind, nesterov, n_runs, optimizing;
    fastnn_epoch_run runs[FASTNN_EPOCH_MAX_RUNS];
    double lr, weight_decay, beta_1, beta_2, epsilon, momentum, rho, clipvalue;
    double u_product;             /* Nadam: u_1 * ... * u_t through the last step taken */
    /* Clipping by norm (no run is then updated in the backward): EPOCH_CLIP_NORM, each run
     * is one variable scaled by its own gradient's norm; EPOCH_CLIP_GLOBAL_NORM, every run
     * by the norm of the n_norm_grads gradients norm_g (sizes norm_size), the variables'
     * in the optimizer's order, their squares summed in that order. */
    int clip_mode, n_norm_grads;
    double clip_norm;
    const void *norm_g[FASTNN_EPOCH_MAX_RUNS];
    ptrdiff_t norm_size[FASTNN_EPOCH_MAX_RUNS];
    const double *lrs;            /* per-step learning rates (a schedule), or NULL: lr */
    int64_t iterations;           /* in: the optimizer's count; out: after the steps */
    double step_lr;               /* scratch of a step: its learning rate */
    int n_threads, update_threads;
    int split_threads;            /* the adaptive policy: Dense products in chunks on up to
                                   * this many threads (0: the fixed policy, one call) */
    /* sums over the steps run (in: so far this epoch) */
    double loss_total;
    int64_t seen;
} fastnn_epoch;
/* Runs batches [first, first + count) of the pass; returns 0, or -1 - i when index i of
 * order is outside the data (nothing of that step is run). */
ptrdiff_t epoch_steps_f32(fastnn_epoch *e, ptrdiff_t first, ptrdiff_t count);
ptrdiff_t epoch_steps_f64(fastnn_epoch *e, ptrdiff_t first, ptrdiff_t count);

#endif /* FASTNN_H */
