# Declarations of the C kernels in csrc/ (the header is csrc/fastnn.h), made once here and
# cimported by the wrappers in _ckernels.pyx.
from libc.stdint cimport int32_t, int64_t

cdef extern from "fastnn.h" nogil:
    int fastnn_have_openmp()

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
                                float *dP, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double elementwise_loss_f64(const double *P, const double *T, int loss, double param, double scale,
                                double *dP, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double softmax_cross_entropy_f32(const float *Z, const float *T, int from_logits, double scale,
                                     float *dZ, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double softmax_cross_entropy_f64(const double *Z, const double *T, int from_logits, double scale,
                                     double *dZ, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double sparse_softmax_cross_entropy_f32(const float *Z, const int64_t *labels, int from_logits,
                                            double scale, float *dZ, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double sparse_softmax_cross_entropy_f64(const double *Z, const int64_t *labels, int from_logits,
                                            double scale, double *dZ, Py_ssize_t n, Py_ssize_t m, int n_threads)

    # reductions.c
    void col_sum_f32(const float *X, float *out, Py_ssize_t n, Py_ssize_t m, int n_threads)
    void col_sum_f64(const double *X, double *out, Py_ssize_t n, Py_ssize_t m, int n_threads)
    double sum_squares_f32(const float *x, Py_ssize_t n, int n_threads)
    double sum_squares_f64(const double *x, Py_ssize_t n, int n_threads)

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
