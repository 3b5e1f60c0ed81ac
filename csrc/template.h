/* Compiles a kernel file once per dtype. Every csrc/<family>.c is laid out as
 *
 *     #ifndef REAL
 *     ... includes and dtype-independent code ...
 *     #define FASTNN_TEMPLATE "<family>.c"
 *     #include "template.h"
 *     #else
 *     ... the kernels, written with REAL (float or double), FN(name) (name_f32 or name_f64),
 *     M(fn) (the math function for REAL: expf or exp), REAL_MIN_NORMAL and RBITS (the
 *     unsigned integer of REAL's width, for bit manipulation) ...
 *     #endif
 *
 * so one body of code serves float32 and float64. (No include guard: once per file.) */
#include <float.h>
#include <stdint.h>

#define REAL float
#define FN(name) name##_f32
#define M(fn) fn##f
#define REAL_MIN_NORMAL FLT_MIN
#define RBITS uint32_t
#include FASTNN_TEMPLATE
#undef REAL
#undef FN
#undef M
#undef REAL_MIN_NORMAL
#undef RBITS

#define REAL double
#define FN(name) name##_f64
#define M(fn) fn
#define REAL_MIN_NORMAL DBL_MIN
#define RBITS uint64_t
#include FASTNN_TEMPLATE
#undef REAL
#undef FN
#undef M
#undef REAL_MIN_NORMAL
#undef RBITS

#undef FASTNN_TEMPLATE
