/* One pass of csrc/template.h: the kernel body FASTNN_TEMPLATE for float, then for double,
 * with kernel names suffixed by FASTNN_ISA (empty without runtime dispatch). */
#define REAL float
#define FN(name) FASTNN_CAT(name##_f32, FASTNN_ISA)
#define PUBLIC(name) name##_f32
#define M(fn) fn##f
#define REAL_MIN_NORMAL FLT_MIN
#define RBITS uint32_t
#include FASTNN_TEMPLATE
#undef REAL
#undef FN
#undef PUBLIC
#undef M
#undef REAL_MIN_NORMAL
#undef RBITS

#define REAL double
#define FN(name) FASTNN_CAT(name##_f64, FASTNN_ISA)
#define PUBLIC(name) name##_f64
#define M(fn) fn
#define REAL_MIN_NORMAL DBL_MIN
#define RBITS uint64_t
#include FASTNN_TEMPLATE
#undef REAL
#undef FN
#undef PUBLIC
#undef M
#undef REAL_MIN_NORMAL
#undef RBITS
