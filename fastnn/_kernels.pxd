# Declarations of the C kernels in csrc/ (the header is csrc/fastnn.h), made once here and
# cimported by the wrappers in _ckernels.pyx.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t

cdef extern from "fastnn.h" nogil:
    int fastnn_have_openmp()
    int fastnn_cpu_path()
    int fastnn_cpu_supported()
    int fastnn_cpu_requested()

    # The codes and constants of the header, read from it here so that no number is written
    # twice (tests/kernels/test_header_constants.py holds the Python tables to these).
    enum fastnn_activation:
        ACT_LINEAR
        ACT_RELU
        ACT_LEAKY_RELU
        ACT_ELU
        ACT_SELU
        ACT_SIGMOID
        ACT_TANH
        ACT_GELU
        ACT_SWISH
        ACT_SOFTPLUS
        ACT_SOFTSIGN
        ACT_HARD_SIGMOID
        ACT_MISH
        ACT_EXPONENTIAL
        ACT_SOFTMAX
        ACT_LOG_SOFTMAX
    enum: FASTNN_N_ACTIVATIONS
    double FASTNN_SELU_ALPHA
    double FASTNN_SELU_SCALE

    enum fastnn_loss:
        LOSS_MSE
        LOSS_MAE
        LOSS_HUBER
        LOSS_BCE
        LOSS_BCE_LOGITS
        LOSS_CCE
        LOSS_KLD
        LOSS_HINGE
    enum: FASTNN_N_LOSSES

    # activations.c
    void bias_act_forward_f32(float *Z, const float *b, int act, double alpha, float *Y,
                              Py_ssize_t n, Py_ssize_t m, int n_threads)
    void bias_act_forward_f64(double *Z, const double *b, int act, double alpha, double *Y,
                              Py_ssize_t n, Py_ssize_t m, int n_threads)
    void act_backward_f32(const float *dY, const float *Z, const float *Y, int act, double alpha,
                          float *dZ, float *db, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void act_backward_f64(const double *dY, const double *Z, const double *Y, int act, double alpha,
                          double *dZ, double *db, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void prelu_forward_f32(const float *X, const float *a, float *Y, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void prelu_forward_f64(const double *X, const double *a, double *Y, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void prelu_backward_f32(const float *dY, const float *X, const float *a, float *dX, float *da,
                            Py_ssize_t n, Py_ssize_t m, int n_threads)
    void prelu_backward_f64(const double *dY, const double *X, const double *a, double *dX, double *da,
                            Py_ssize_t n, Py_ssize_t m, int n_threads)
    void maxout_forward_f32(const float *X, float *Y, int32_t *arg, Py_ssize_t n, Py_ssize_t m, Py_ssize_t k, int n_threads)
    void maxout_forward_f64(const double *X, double *Y, int32_t *arg, Py_ssize_t n, Py_ssize_t m, Py_ssize_t k, int n_threads)
    void maxout_backward_f32(const float *dY, const int32_t *arg, float *dX, Py_ssize_t n, Py_ssize_t m, Py_ssize_t k, int n_threads)
    void maxout_backward_f64(const double *dY, const int32_t *arg, double *dX, Py_ssize_t n, Py_ssize_t m, Py_ssize_t k, int n_threads)

    # losses.c
    double elementwise_loss_f32(const float *P, const float *T, int loss, double param, double scale,
                                float *dP, double *row_loss, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double elementwise_loss_f64(const double *P, const double *T, int loss, double param, double scale,
                                double *dP, double *row_loss, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double softmax_cross_entropy_f32(const float *Z, const float *T, int from_logits, double scale,
                                     float *dZ, double *row_loss, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double softmax_cross_entropy_f64(const double *Z, const double *T, int from_logits, double scale,
                                     double *dZ, double *row_loss, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double sparse_softmax_cross_entropy_f32(const float *Z, const int64_t *labels, int from_logits,
                                            double scale, float *dZ, double *row_loss, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double sparse_softmax_cross_entropy_f64(const double *Z, const int64_t *labels, int from_logits,
                                            double scale, double *dZ, double *row_loss, Py_ssize_t n, Py_ssize_t m, int n_threads)

    # reductions.c
    void col_sum_f32(const float *X, float *out, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void col_sum_f64(const double *X, double *out, Py_ssize_t n, Py_ssize_t m, int n_threads)
    int64_t argmax_hits_f32(const float *P, const int64_t *labels, Py_ssize_t n, Py_ssize_t m)
    int64_t argmax_hits_f64(const double *P, const int64_t *labels, Py_ssize_t n, Py_ssize_t m)
    int64_t argmax_match_hits_f32(const float *P, const float *T, Py_ssize_t n, Py_ssize_t m)
    int64_t argmax_match_hits_f64(const double *P, const double *T, Py_ssize_t n, Py_ssize_t m)
    int64_t threshold_hits_f32(const float *P, const float *T, double threshold, Py_ssize_t n)
    int64_t threshold_hits_f64(const double *P, const double *T, double threshold, Py_ssize_t n)
    double sum_squares_f32(const float *x, Py_ssize_t n, int n_threads)
    double sum_squares_f64(const double *x, Py_ssize_t n, int n_threads)
    int all_finite_f32(const float *x, Py_ssize_t n, int n_threads)
    int all_finite_f64(const double *x, Py_ssize_t n, int n_threads)
    # named take_rows_c here: the Python wrapper is take_rows
    Py_ssize_t take_rows_c "take_rows"(const void *src, const int64_t *index, void *out, Py_ssize_t n,
                                       Py_ssize_t n_index, Py_ssize_t row_bytes, int n_threads)
    Py_ssize_t read_rows_c "read_rows"(int fd, int64_t offset, const int64_t *index, void *out,
                                       Py_ssize_t n, Py_ssize_t n_index, Py_ssize_t row_bytes,
                                       int n_threads)

    # embedding.c
    Py_ssize_t embedding_forward_f32(const float *codes, const float *W, float *out, int64_t *index,
                                     Py_ssize_t n, Py_ssize_t rows, Py_ssize_t cols, int n_threads)
    Py_ssize_t embedding_forward_f64(const double *codes, const double *W, double *out,
                                     int64_t *index, Py_ssize_t n, Py_ssize_t rows, Py_ssize_t cols,
                                     int n_threads)
    Py_ssize_t embedding_backward_f32(const float *dY, const int64_t *index, float *dW, Py_ssize_t n,
                                      Py_ssize_t rows, Py_ssize_t cols, int n_threads)
    Py_ssize_t embedding_backward_f64(const double *dY, const int64_t *index, double *dW,
                                      Py_ssize_t n, Py_ssize_t rows, Py_ssize_t cols, int n_threads)

    # merging.c
    void concat_columns_f32(const float *const *xs, const Py_ssize_t *widths, Py_ssize_t k,
                            float *out, Py_ssize_t n, int n_threads)
    void concat_columns_f64(const double *const *xs, const Py_ssize_t *widths, Py_ssize_t k,
                            double *out, Py_ssize_t n, int n_threads)
    void split_columns_f32(const float *dY, const Py_ssize_t *widths, Py_ssize_t k,
                           float *const *outs, Py_ssize_t n, int n_threads)
    void split_columns_f64(const double *dY, const Py_ssize_t *widths, Py_ssize_t k,
                           double *const *outs, Py_ssize_t n, int n_threads)

    # optimizers.c
    void sgd_update_f32(float *p, const float *g, float *v, double lr, double momentum, int nesterov,
                        double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void sgd_update_f64(double *p, const double *g, double *v, double lr, double momentum, int nesterov,
                        double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void adam_update_f32(float *p, const float *g, float *m, float *v, float *vhat, double lr,
                         double beta_1, double beta_2, double epsilon, int64_t step, double decay,
                         double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void adam_update_f64(double *p, const double *g, double *m, double *v, double *vhat, double lr,
                         double beta_1, double beta_2, double epsilon, int64_t step, double decay,
                         double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void adamax_update_f32(float *p, const float *g, float *m, float *u, double lr, double beta_1,
                           double beta_2, double epsilon, int64_t step, double decay, double gscale,
                           double clipvalue, Py_ssize_t n, int n_threads)
    void adamax_update_f64(double *p, const double *g, double *m, double *u, double lr, double beta_1,
                           double beta_2, double epsilon, int64_t step, double decay, double gscale,
                           double clipvalue, Py_ssize_t n, int n_threads)
    void nadam_update_f32(float *p, const float *g, float *m, float *v, double lr, double beta_1,
                          double beta_2, double epsilon, int64_t step, double u_product,
                          double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void nadam_update_f64(double *p, const double *g, double *m, double *v, double lr, double beta_1,
                          double beta_2, double epsilon, int64_t step, double u_product,
                          double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void rmsprop_update_f32(float *p, const float *g, float *v, float *mom, float *avg, double lr,
                            double rho, double momentum, double epsilon, double decay, double gscale,
                            double clipvalue, Py_ssize_t n, int n_threads)
    void rmsprop_update_f64(double *p, const double *g, double *v, double *mom, double *avg, double lr,
                            double rho, double momentum, double epsilon, double decay, double gscale,
                            double clipvalue, Py_ssize_t n, int n_threads)
    void adagrad_update_f32(float *p, const float *g, float *acc, double lr, double epsilon,
                            double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void adagrad_update_f64(double *p, const double *g, double *acc, double lr, double epsilon,
                            double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)

    void lion_update_f32(float *p, const float *g, float *m, double lr, double beta_1, double beta_2,
                         double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void lion_update_f64(double *p, const double *g, double *m, double lr, double beta_1, double beta_2,
                         double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void adadelta_update_f32(float *p, const float *g, float *acc_grad, float *acc_delta, double lr,
                             double rho, double epsilon, double decay, double gscale, double clipvalue,
                             Py_ssize_t n, int n_threads)
    void adadelta_update_f64(double *p, const double *g, double *acc_grad, double *acc_delta, double lr,
                             double rho, double epsilon, double decay, double gscale, double clipvalue,
                             Py_ssize_t n, int n_threads)
    void ftrl_update_f32(float *p, const float *g, float *acc, float *linear, double lr,
                         double lr_power, double l1, double l2, double l2_shrinkage, double beta,
                         double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    void ftrl_update_f64(double *p, const double *g, double *acc, double *linear, double lr,
                         double lr_power, double l1, double l2, double l2_shrinkage, double beta,
                         double decay, double gscale, double clipvalue, Py_ssize_t n, int n_threads)
    int lamb_update_f32(float *p, const float *g, float *m, float *v, double lr, double beta_1,
                        double beta_2, double epsilon, int64_t step, double decay, double gscale,
                        double clipvalue, Py_ssize_t n, int n_threads)
    int lamb_update_f64(double *p, const double *g, double *m, double *v, double lr, double beta_1,
                        double beta_2, double epsilon, int64_t step, double decay, double gscale,
                        double clipvalue, Py_ssize_t n, int n_threads)
    int adafactor_update_f32(float *p, const float *g, float *r, float *c, float *v, double lr,
                             double beta_2_decay, double epsilon_1, double epsilon_2,
                             double clip_threshold, int64_t step, double decay, double gscale,
                             double clipvalue, Py_ssize_t n_mats, Py_ssize_t rows, Py_ssize_t cols,
                             int n_threads)
    int adafactor_update_f64(double *p, const double *g, double *r, double *c, double *v, double lr,
                             double beta_2_decay, double epsilon_1, double epsilon_2,
                             double clip_threshold, int64_t step, double decay, double gscale,
                             double clipvalue, Py_ssize_t n_mats, Py_ssize_t rows, Py_ssize_t cols,
                             int n_threads)

    void ema_update_f32(float *average, const float *value, double momentum, Py_ssize_t n,
                        int n_threads)
    void ema_update_f64(double *average, const double *value, double momentum, Py_ssize_t n,
                        int n_threads)

    # normalization.c
    void batchnorm_forward_train_f32(const float *X, const float *gamma, const float *beta, double eps,
                                     double momentum, float *moving_mean, float *moving_var, float *Y,
                                     float *mean, float *invstd, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void batchnorm_forward_train_f64(const double *X, const double *gamma, const double *beta, double eps,
                                     double momentum, double *moving_mean, double *moving_var, double *Y,
                                     double *mean, double *invstd, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void batchnorm_backward_f32(const float *dY, const float *X, const float *mean, const float *invstd,
                                const float *gamma, float *dX, float *dgamma, float *dbeta,
                                Py_ssize_t n, Py_ssize_t m, int n_threads)
    void batchnorm_backward_f64(const double *dY, const double *X, const double *mean, const double *invstd,
                                const double *gamma, double *dX, double *dgamma, double *dbeta,
                                Py_ssize_t n, Py_ssize_t m, int n_threads)
    void col_affine_f32(const float *X, const float *shift, const float *scale, const float *offset,
                        float *Y, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void col_affine_f64(const double *X, const double *shift, const double *scale, const double *offset,
                        double *Y, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void layernorm_forward_f32(const float *X, const float *gamma, const float *beta, double eps,
                               float *Y, float *mean, float *rstd, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void layernorm_forward_f64(const double *X, const double *gamma, const double *beta, double eps,
                               double *Y, double *mean, double *rstd, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void layernorm_backward_f32(const float *dY, const float *X, const float *gamma, const float *mean,
                                const float *rstd, float *dX, float *dgamma, float *dbeta,
                                Py_ssize_t n, Py_ssize_t m, int n_threads)
    void layernorm_backward_f64(const double *dY, const double *X, const double *gamma, const double *mean,
                                const double *rstd, double *dX, double *dgamma, double *dbeta,
                                Py_ssize_t n, Py_ssize_t m, int n_threads)

    # dropout.c
    uint64_t fastnn_random_key(uint64_t seed, uint64_t counter)
    uint64_t fastnn_keep_threshold32(double rate)
    void random_words_u64(uint64_t seed, uint64_t counter, uint64_t *out, Py_ssize_t n, int n_threads)
    void dropout_apply_f32(const float *X, double rate, double scale, double shift, double fill,
                           uint64_t seed, uint64_t counter, float *out, uint8_t *mask, Py_ssize_t n,
                           int n_threads)
    void dropout_apply_f64(const double *X, double rate, double scale, double shift, double fill,
                           uint64_t seed, uint64_t counter, double *out, uint8_t *mask, Py_ssize_t n,
                           int n_threads)
    void dropout_backward_f32(const float *dY, const uint8_t *mask, double scale, float *dX,
                              Py_ssize_t n, int n_threads)
    void dropout_backward_f64(const double *dY, const uint8_t *mask, double scale, double *dX,
                              Py_ssize_t n, int n_threads)
    void gaussian_noise_apply_f32(const float *X, double stddev, int multiplicative, uint64_t seed,
                                  uint64_t counter, float *out, Py_ssize_t n, int n_threads)
    void gaussian_noise_apply_f64(const double *X, double stddev, int multiplicative, uint64_t seed,
                                  uint64_t counter, double *out, Py_ssize_t n, int n_threads)

    # regularizers.c
    double l1_l2_penalty_f32(const float *w, double l1, double l2, double scale, float *grad,
                             Py_ssize_t n, int n_threads)
    double l1_l2_penalty_f64(const double *w, double l1, double l2, double scale, double *grad,
                             Py_ssize_t n, int n_threads)
    void norm_constraint_f32(float *W, double min_value, double max_value, double rate, int unit,
                             Py_ssize_t P, Py_ssize_t R, Py_ssize_t Q, int n_threads)
    void norm_constraint_f64(double *W, double min_value, double max_value, double rate, int unit,
                             Py_ssize_t P, Py_ssize_t R, Py_ssize_t Q, int n_threads)
    void non_neg_f32(float *W, Py_ssize_t n, int n_threads)
    void non_neg_f64(double *W, Py_ssize_t n, int n_threads)

    # products.c
    # named *_c here: the Python wrappers have the plain names
    int blas_bind_c "blas_bind"(void *sgemm, void *dgemm, void *sgemv, void *dgemv,
                                void *sdot, void *ddot, void *ssyrk, void *dsyrk, int ilp64)
    int blas_bound_c "blas_bound"()
    void matmul_f32(const float *A, int trans_a, const float *B, int trans_b, float *C,
                    Py_ssize_t m, Py_ssize_t n, Py_ssize_t k)
    void matmul_f64(const double *A, int trans_a, const double *B, int trans_b, double *C,
                    Py_ssize_t m, Py_ssize_t n, Py_ssize_t k)
    void matmul_split_f32(const float *A, int trans_a, const float *B, int trans_b, float *C,
                          Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, Py_ssize_t per,
                          int columns, int n_threads)
    void matmul_split_f64(const double *A, int trans_a, const double *B, int trans_b,
                          double *C, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, Py_ssize_t per,
                          int columns, int n_threads)
    void matmul_split_quiesce_c "matmul_split_quiesce"()
    int split_geometry_c "split_geometry"(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                          Py_ssize_t *per, int *columns)

    # epoch.c
    enum fastnn_epoch_op:
        EPOCH_DENSE
        EPOCH_ACTIVATION
        EPOCH_DROPOUT
        EPOCH_BATCHNORM
        EPOCH_ADD
    enum fastnn_epoch_loss:
        EPOCH_LOSS_ELEMENTWISE
        EPOCH_LOSS_SOFTMAX_CE
        EPOCH_LOSS_SPARSE_SOFTMAX_CE
    enum fastnn_epoch_optimizer:
        EPOCH_OPT_SGD
        EPOCH_OPT_ADAM
        EPOCH_OPT_RMSPROP
        EPOCH_OPT_ADAGRAD
        EPOCH_OPT_ADAMAX
        EPOCH_OPT_NADAM
    enum fastnn_epoch_clip:
        EPOCH_CLIP_NONE
        EPOCH_CLIP_NORM
        EPOCH_CLIP_GLOBAL_NORM
    enum: FASTNN_EPOCH_MAX_RUNS
    enum: FASTNN_EPOCH_MAX_METRICS
    enum: FASTNN_EPOCH_MAX_PENALTIES
    enum: EPOCH_SPLIT_SAMPLES
    enum: EPOCH_SPLIT_WAYS
    enum: EPOCH_SPLIT_RECHECK
    enum: EPOCH_SPLIT_MAX_RECHECK
    enum: EPOCH_SPLIT_MIN_CALLS
    enum: EPOCH_SPLIT_CHUNKS
    enum: EPOCH_SPLIT_ALIGN
    enum: EPOCH_SPLIT_MIN_MACS
    double EPOCH_SPLIT_SLOW
    ctypedef struct fastnn_split_choice:
        int way
        int n[3]
        double t[3][3]
        double expected
        int64_t since, interval
    ctypedef struct fastnn_epoch_run:
        void *p
        void *g
        void *s1
        void *s2
        void *s3
        Py_ssize_t size
        int decay
    ctypedef struct fastnn_epoch_layer:
        int kind
        Py_ssize_t in0, in1
        int needs, want0, want1
        fastnn_split_choice choice[3]
        Py_ssize_t in_ "in"
        Py_ssize_t units
        int act
        double alpha
        int preact
        int fused_grad
        int need_dx
        void *W
        void *b
        void *dW
        void *db
        void *Z
        void *Y
        void *dX
        double rate, scale
        uint64_t seed, counter
        uint8_t *keep
        double eps, momentum
        void *moving_mean
        void *moving_var
        void *mean
        void *invstd
        int fused_update
        fastnn_epoch_run kernel_run
    ctypedef struct fastnn_epoch_penalty:
        void *w
        void *g
        Py_ssize_t size
        double l1, l2
    ctypedef struct fastnn_epoch:
        const void *x
        const void *y
        Py_ssize_t rows, x_cols, y_cols, batch_size
        int y_labels
        const int64_t *order
        void *xb
        void *yb
        const void *w
        void *wb
        double *row_loss
        double *w64
        Py_ssize_t n_layers
        fastnn_epoch_layer *layers
        void **tensors
        void **grads
        int loss_kind, loss_code, from_logits
        double loss_param
        void *grad
        int n_metrics
        int metric_kind[8]
        double metric_threshold[8]
        int64_t metric_hits[8]
        int n_penalties
        fastnn_epoch_penalty penalties[64]
        int opt_kind, nesterov, n_runs, optimizing
        fastnn_epoch_run runs[64]
        double lr, weight_decay, beta_1, beta_2, epsilon, momentum, rho, clipvalue
        double u_product
        int clip_mode, n_norm_grads
        double clip_norm
        const void *norm_g[64]
        Py_ssize_t norm_size[64]
        double *lrs
        int64_t iterations
        int n_threads, update_threads
        int split_threads
        double loss_total
        int64_t seen
    Py_ssize_t epoch_steps_f32(fastnn_epoch *e, Py_ssize_t first, Py_ssize_t count)
    Py_ssize_t epoch_steps_f64(fastnn_epoch *e, Py_ssize_t first, Py_ssize_t count)
