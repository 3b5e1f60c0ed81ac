/* Compiles a kernel file once per dtype and, with runtime dispatch, once per CPU path.
 * Every csrc/<family>.c is laid out as
 *
 *     #ifndef REAL
 *     ... includes and dtype-independent code ...
 *     #define FASTNN_TEMPLATE "<family>.c"
 *     #include "template.h"
 *     #else
 *     ... the kernels, written with REAL (float or double), FN(name) (name_f32 or name_f64),
 *     M(fn) (the math function for REAL: expf or exp), REAL_MIN_NORMAL and RBITS (the
 *     unsigned integer of REAL's width, for bit manipulation), PUBLIC(name) (the public
 *     name_f32 or name_f64, to call a kernel of another family) ...
 *     #endif
 *
 * so one body of code serves float32 and float64. With runtime dispatch (FASTNN_DISPATCH,
 * see fastnn.h) the body is compiled three times per dtype: FN(name) is then name_f32_v4,
 * name_f32_v3 or name_f32_base, and FASTNN_CLONES (put before a hot static loop) makes that
 * loop AVX-512, AVX2/FMA or baseline code. Only the marked loops change between the paths:
 * the rest of every kernel is the same baseline code in each, so each path gives the bits
 * it gave when these were GCC target_clones. csrc/dispatch.c binds the public names.
 * (No include guard: once per file.) */
#include <float.h>
#include <stdint.h>

#ifndef FASTNN_CAT
#define FASTNN_CAT_(a, b) a##b
#define FASTNN_CAT(a, b) FASTNN_CAT_(a, b)
#endif

#if FASTNN_DISPATCH
#define FASTNN_ISA _v4
#define FASTNN_CLONES __attribute__((target("arch=x86-64-v4")))
#include "template_dtypes.h"
#undef FASTNN_ISA
#undef FASTNN_CLONES

#define FASTNN_ISA _v3
#define FASTNN_CLONES __attribute__((target("arch=x86-64-v3")))
#include "template_dtypes.h"
#undef FASTNN_ISA
#undef FASTNN_CLONES

/* baseline: kept out of line, as the target_clones default was */
#define FASTNN_ISA _base
#define FASTNN_CLONES __attribute__((noinline))
#include "template_dtypes.h"
#undef FASTNN_ISA
#undef FASTNN_CLONES
#else
#define FASTNN_ISA
#define FASTNN_CLONES
#include "template_dtypes.h"
#undef FASTNN_ISA
#undef FASTNN_CLONES
#endif

#undef FASTNN_TEMPLATE
