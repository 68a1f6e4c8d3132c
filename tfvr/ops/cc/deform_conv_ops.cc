// TfvrDeformIm2col / TfvrDeformIm2colGrad: the sampling half of modulated deformable convolution (DCNv2).
// The convolution itself is a matmul of the columns with the kernel, done in Python by TF's own (oneDNN / cuBLAS)
// matmul, as torchvision and mmcv do (deformable_im2col + GEMM). The gradient is registered in
// tfvr/ops/deform_conv.py. Built by `python -m tfvr.ops.build`.
//
// CPU: both ops run on TF's intra-op thread pool and shard over bands of output rows, so every task reads and
// writes whole, contiguous column rows. The forward writes each column entry once. In the backward, offsets can send
// any band's samples anywhere in the image, so the scatter-add into grad_x is made race-free with private buffers:
// band 0 adds into grad_x, band b > 0 into its own zeroed copy, and the copies are summed into grad_x afterwards
// (the number of bands is capped so the copies stay within max(512 MiB, 4 × |x|)).
//
// Element type T (attr "T") of x, cols, grad_cols and grad_x: float, half or bfloat16; offsets, masks and their
// gradients are float32. Values are read into float, all arithmetic and every sum is in float, and a result is
// rounded to T once when stored: for 16-bit T the backward accumulates grad_x in float32 buffers and rounds at the
// end. The float32 instantiation runs the same operations as the former float-only kernels (bit-identical results).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "deform_conv.h"
#include "tf_op_common.h"
#include "tensorflow/core/framework/numeric_types.h"
#if GOOGLE_CUDA
#include "tensorflow/core/framework/device_base.h"
#include "xla/stream_executor/stream.h"
#endif

namespace tfvr {

REGISTER_OP("TfvrDeformIm2col")
    .Input("x: T")
    .Input("offset: float")
    .Input("mask: float")
    .Input("pads: int32")
    .Output("cols: T")
    .Attr("T: {float, half, bfloat16} = DT_FLOAT")
    .Attr("kernel_size: list(int) >= 2")
    .Attr("strides: list(int) >= 2")
    .Attr("dilations: list(int) >= 2")
    .Attr("offset_groups: int >= 1")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x, offset, mask;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 4, &offset));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 4, &mask));
      std::vector<int64_t> ks;
      TF_RETURN_IF_ERROR(c->GetAttr("kernel_size", &ks));
      DimensionHandle kc;
      TF_RETURN_IF_ERROR(c->Multiply(c->Dim(x, 3), ks[0] * ks[1], &kc));
      c->set_output(0, c->MakeShape({c->Dim(x, 0), c->Dim(offset, 1), c->Dim(offset, 2), kc}));
      return Status();
    })
    .Doc("Modulated deformable im2col, NHWC: cols[n, i, j, k*C + c]. See tfvr/ops/cc/deform_conv.h.");

REGISTER_OP("TfvrDeformIm2colGrad")
    .Input("x: T")
    .Input("offset: float")
    .Input("mask: float")
    .Input("pads: int32")
    .Input("grad_cols: T")
    .Output("grad_x: T")
    .Output("grad_offset: float")
    .Output("grad_mask: float")
    .Attr("T: {float, half, bfloat16} = DT_FLOAT")
    .Attr("kernel_size: list(int) >= 2")
    .Attr("strides: list(int) >= 2")
    .Attr("dilations: list(int) >= 2")
    .Attr("offset_groups: int >= 1")
    .SetShapeFn([](InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(1));
      c->set_output(2, c->input(2));
      return Status();
    })
    .Doc("Gradients of TfvrDeformIm2col with respect to x, offset and mask.");

// Attributes and input checks shared by both ops and both devices.
class DeformOpBase : public OpKernel {
 public:
  explicit DeformOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    std::vector<int32_t> ks, st, dl;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("kernel_size", &ks));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("strides", &st));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dilations", &dl));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("offset_groups", &groups_));
    OP_REQUIRES(ctx, ks.size() == 2 && st.size() == 2 && dl.size() == 2,
                InvalidArgument("kernel_size, strides and dilations must have 2 entries"));
    OP_REQUIRES(ctx, ks[0] > 0 && ks[1] > 0 && st[0] > 0 && st[1] > 0 && dl[0] > 0 && dl[1] > 0,
                InvalidArgument("kernel_size, strides and dilations must be positive"));
    kh_ = ks[0];
    kw_ = ks[1];
    sh_ = st[0];
    sw_ = st[1];
    dh_ = dl[0];
    dw_ = dl[1];
  }

 protected:
  // The forward op's start: `p` from the inputs and its output cols [N, Ho, Wo, kh*kw*C]; false when the op is
  // done (an error was set, or cols is empty).
  bool StartForward(OpKernelContext* ctx, DeformParams* p, Tensor** cols) {
    if (!Params(ctx, p)) return false;
    const Status st = ctx->allocate_output(0, TensorShape({p->n, p->ho, p->wo, p->k() * p->c}), cols);
    if (!st.ok()) {
      ctx->SetStatus(st);
      return false;
    }
    return (*cols)->NumElements() != 0;
  }

  // The gradient op's outputs grad_x, grad_offset, grad_mask (shaped as x, offset, mask), after checking that
  // grad_cols (input 4) is [N, Ho, Wo, kh*kw*C].
  static Status AllocateGrads(OpKernelContext* ctx, const DeformParams& p, Tensor** grad_x, Tensor** grad_offset,
                              Tensor** grad_mask) {
    const Tensor& grad_cols = ctx->input(4);
    if (grad_cols.shape() != TensorShape({p.n, p.ho, p.wo, p.k() * p.c}))
      return InvalidArgument("grad_cols must be [N, Ho, Wo, kh*kw*C], got ", grad_cols.shape().DebugString());
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, ctx->input(0).shape(), grad_x));
    TF_RETURN_IF_ERROR(ctx->allocate_output(1, ctx->input(1).shape(), grad_offset));
    return ctx->allocate_output(2, ctx->input(2).shape(), grad_mask);
  }

  // Fills `p` from the inputs; false (with the error set) when they do not fit together.
  bool Params(OpKernelContext* ctx, DeformParams* p) {
    const Tensor& x = ctx->input(0);
    const Tensor& offset = ctx->input(1);
    const Tensor& mask = ctx->input(2);
    const Tensor& pads = ctx->input(3);
    auto fail = [ctx](const std::string& msg) {
      ctx->CtxFailure(__FILE__, __LINE__, InvalidArgument(msg));
      return false;
    };
    if (x.dims() != 4 || offset.dims() != 4 || mask.dims() != 4) return fail("x, offset and mask must be 4-D");
    if (pads.NumElements() != 2) return fail("pads must hold (top, left)");
    const int64_t k = static_cast<int64_t>(kh_) * kw_;
    p->n = x.dim_size(0);
    p->h = x.dim_size(1);
    p->w = x.dim_size(2);
    p->c = x.dim_size(3);
    p->ho = offset.dim_size(1);
    p->wo = offset.dim_size(2);
    if (p->c % groups_ != 0) return fail("offset_groups must divide the input channels");
    if (offset.dim_size(0) != p->n || offset.dim_size(3) != 2 * groups_ * k)
      return fail("offset must be [N, Ho, Wo, 2*offset_groups*kh*kw], got " + offset.shape().DebugString());
    if (mask.dim_size(0) != p->n || mask.dim_size(1) != p->ho || mask.dim_size(2) != p->wo ||
        mask.dim_size(3) != groups_ * k)
      return fail("mask must be [N, Ho, Wo, offset_groups*kh*kw], got " + mask.shape().DebugString());
    auto pv = pads.flat<int32_t>();
    p->ph = pv(0);
    p->pw = pv(1);
    p->kh = kh_;
    p->kw = kw_;
    p->sh = sh_;
    p->sw = sw_;
    p->dh = dh_;
    p->dw = dw_;
    p->groups = groups_;
    return true;
  }

  int kh_, kw_, sh_, sw_, dh_, dw_, groups_;
};

// ------------------------------------------------------------------------------------------------------- CPU
namespace {

// Element conversions: identities for float.
inline float ToF(float v) { return v; }
inline float ToF(Eigen::half v) { return static_cast<float>(v); }
// bfloat16 <-> float as plain integer arithmetic, branch-free, so the loops over a group's channels vectorise
// (Eigen's conversions branch on NaN per value; in im2col's store they made the bfloat16 forward slower than the
// float32 one). Same results as Eigen's: the top 16 bits, rounded to nearest even; NaN -> quiet NaN, sign kept.
inline float ToF(Eigen::bfloat16 v) {
  uint16_t h;
  std::memcpy(&h, &v, sizeof h);
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
template <typename T>
inline T FromF(float v) { return static_cast<T>(v); }
template <>
inline float FromF<float>(float v) { return v; }
template <>
inline Eigen::bfloat16 FromF<Eigen::bfloat16>(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7FC0u;
  const uint16_t h = static_cast<uint16_t>((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
  Eigen::bfloat16 b;
  std::memcpy(&b, &h, sizeof b);
  return b;
}

// dst[j] = sum_i wt[i] · src[i][j], j < cg (CG > 0: cg == CG, known when compiling). The four sources never alias
// dst (x and cols are different tensors; `zeros` is the op's own).
template <typename T, int CG>
__attribute__((always_inline)) inline void Blend4(T* __restrict dst, const T* const* src, const float* wt,
                                                  int64_t cg) {
  const T* __restrict s0 = src[0];
  const T* __restrict s1 = src[1];
  const T* __restrict s2 = src[2];
  const T* __restrict s3 = src[3];
  const float w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3];
  const int64_t n = CG > 0 ? CG : cg;
  for (int64_t j = 0; j < n; ++j)
    dst[j] = FromF<T>(w0 * ToF(s0[j]) + w1 * ToF(s1[j]) + w2 * ToF(s2[j]) + w3 * ToF(s3[j]));
}

// bfloat16, 8 channels at a time with GCC/Clang vector types: left alone, GCC keeps this loop scalar for 16-bit
// types (its cost model), which made the bfloat16 im2col twice as slow as the float32 one. The same arithmetic
// as the scalar FromF / ToF above (bit-identical columns).
typedef uint16_t U16x8 __attribute__((vector_size(16)));
typedef uint32_t U32x8 __attribute__((vector_size(32)));
typedef float F32x8 __attribute__((vector_size(32)));

inline F32x8 LoadBf16x8(const Eigen::bfloat16* p) {
  U16x8 h;
  std::memcpy(&h, p, sizeof h);
  const U32x8 u = __builtin_convertvector(h, U32x8) << 16;
  F32x8 f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline void StoreBf16x8(Eigen::bfloat16* p, F32x8 f) {
  U32x8 u;
  std::memcpy(&u, &f, sizeof u);
  const U32x8 rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const U32x8 nan = ((u >> 16) & 0x8000u) | 0x7FC0u;
  const U32x8 is_nan = (u & 0x7FFFFFFFu) > 0x7F800000u;  // all ones where NaN
  const U16x8 h = __builtin_convertvector((nan & is_nan) | (rounded & ~is_nan), U16x8);
  std::memcpy(p, &h, sizeof h);
}

template <int CG>
__attribute__((always_inline)) inline void Blend4Bf16(Eigen::bfloat16* __restrict dst,
                                                      const Eigen::bfloat16* const* src, const float* wt) {
  static_assert(CG % 8 == 0, "8 channels at a time");
  for (int j = 0; j < CG; j += 8) {
    const F32x8 v = wt[0] * LoadBf16x8(src[0] + j) + wt[1] * LoadBf16x8(src[1] + j) +
                    wt[2] * LoadBf16x8(src[2] + j) + wt[3] * LoadBf16x8(src[3] + j);
    StoreBf16x8(dst + j, v);
  }
}

// The backward's two channel loops for bfloat16 (cg a multiple of 8), vectorised the same way. dot[i] = sum_j
// d[j]·src[i][j] sums 8 lanes at a time, then the lanes in order: float32 throughout, in another order than the
// scalar loop (which GCC cannot vectorise without reassociating).
inline void Dot4Bf16(const Eigen::bfloat16* d, const Eigen::bfloat16* const* src, int64_t cg, float* dot) {
  F32x8 acc[4] = {};
  for (int64_t j = 0; j < cg; j += 8) {
    const F32x8 dj = LoadBf16x8(d + j);
    for (int i = 0; i < 4; ++i) acc[i] += dj * LoadBf16x8(src[i] + j);
  }
  for (int i = 0; i < 4; ++i) {
    float sum = 0.f;
    for (int l = 0; l < 8; ++l) sum += acc[i][l];
    dot[i] = sum;
  }
}

// dst[j] += coef · d[j], j < cg (dst: float32 grad_x).
inline void AddScaledBf16(float* __restrict dst, float coef, const Eigen::bfloat16* __restrict d, int64_t cg) {
  for (int64_t j = 0; j < cg; j += 8) {
    F32x8 v;
    std::memcpy(&v, dst + j, sizeof v);
    v += coef * LoadBf16x8(d + j);
    std::memcpy(dst + j, &v, sizeof v);
  }
}

// Columns of output rows [row_begin, row_end) of the flattened (n, oy) range. `zeros` holds c zeros of type T.
template <typename T>
__attribute__((always_inline)) inline void Im2colRowsT(const DeformParams& p, const T* x, const float* offset,
                                                       const float* mask, T* cols, const T* zeros,
                                                       int64_t row_begin, int64_t row_end) {
  const int64_t k_n = p.k(), cg = p.cg(), c = p.c;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.ho, oy = r % p.ho;
    const T* xn = x + n * p.h * p.w * c;
    for (int64_t ox = 0; ox < p.wo; ++ox) {
      const int64_t pix = r * p.wo + ox;
      const float* off = offset + pix * 2 * p.groups * k_n;
      const float* msk = mask + pix * p.groups * k_n;
      T* col = cols + pix * k_n * c;
      for (int64_t k = 0; k < k_n; ++k) {
        const float by = BaseY(p, oy, k), bx = BaseX(p, ox, k);
        for (int64_t g = 0; g < p.groups; ++g) {
          const int64_t gk = g * k_n + k;
          T* dst = col + k * c + g * cg;
          const Corners s = Locate(by + off[2 * gk], bx + off[2 * gk + 1], p.h, p.w);
          if (!s.inside) {
            std::fill(dst, dst + cg, FromF<T>(0.f));
            continue;
          }
          const float m = msk[gk];
          const T* src[4];
          float wt[4];
          for (int i = 0; i < 4; ++i) {
            src[i] = s.idx[i] >= 0 ? xn + s.idx[i] * c + g * cg : zeros;
            wt[i] = s.w[i] * m;
          }
          if constexpr (std::is_same_v<T, Eigen::bfloat16>) {
            if (cg == 8) { Blend4Bf16<8>(dst, src, wt); continue; }
            if (cg == 16) { Blend4Bf16<16>(dst, src, wt); continue; }
            if (cg == 32) { Blend4Bf16<32>(dst, src, wt); continue; }
          }
          switch (cg) {  // the usual group widths with a compile-time trip count: straight vector code
            case 4: Blend4<T, 4>(dst, src, wt, cg); break;
            case 8: Blend4<T, 8>(dst, src, wt, cg); break;
            case 16: Blend4<T, 16>(dst, src, wt, cg); break;
            case 32: Blend4<T, 32>(dst, src, wt, cg); break;
            default: Blend4<T, 0>(dst, src, wt, cg);
          }
        }
      }
    }
  }
}

// Backward over output rows [row_begin, row_end) of the flattened (n, oy) range; grad_x entries are added to gx
// (float32, laid out like x).
template <typename T>
__attribute__((always_inline)) inline void Col2imRowsT(const DeformParams& p, const T* x, const float* offset,
                                                       const float* mask, const T* grad_cols, float* gx,
                                                       float* grad_offset, float* grad_mask, const T* zeros,
                                                       int64_t row_begin, int64_t row_end) {
  const int64_t k_n = p.k(), cg = p.cg(), c = p.c;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.ho, oy = r % p.ho;
    const T* xn = x + n * p.h * p.w * c;
    float* gxn = gx + n * p.h * p.w * c;
    for (int64_t ox = 0; ox < p.wo; ++ox) {
      const int64_t pix = r * p.wo + ox;
      const float* off = offset + pix * 2 * p.groups * k_n;
      const float* msk = mask + pix * p.groups * k_n;
      float* goff = grad_offset + pix * 2 * p.groups * k_n;
      float* gmsk = grad_mask + pix * p.groups * k_n;
      const T* dcol = grad_cols + pix * k_n * c;
      for (int64_t k = 0; k < k_n; ++k) {
        const float by = BaseY(p, oy, k), bx = BaseX(p, ox, k);
        for (int64_t g = 0; g < p.groups; ++g) {
          const int64_t gk = g * k_n + k;
          const Corners s = Locate(by + off[2 * gk], bx + off[2 * gk + 1], p.h, p.w);
          if (!s.inside) {
            goff[2 * gk] = goff[2 * gk + 1] = 0.f;
            gmsk[gk] = 0.f;
            continue;
          }
          const T* d = dcol + k * c + g * cg;
          const T* src[4];
          for (int i = 0; i < 4; ++i) src[i] = s.idx[i] >= 0 ? xn + s.idx[i] * c + g * cg : zeros;
          float dot[4] = {0.f, 0.f, 0.f, 0.f};
          if constexpr (std::is_same_v<T, Eigen::bfloat16>) {
            if (cg % 8 == 0) Dot4Bf16(d, src, cg, dot);
          }
          if (!std::is_same_v<T, Eigen::bfloat16> || cg % 8 != 0) {
            for (int64_t j = 0; j < cg; ++j) {
              const float dj = ToF(d[j]);
              dot[0] += dj * ToF(src[0][j]);
              dot[1] += dj * ToF(src[1][j]);
              dot[2] += dj * ToF(src[2][j]);
              dot[3] += dj * ToF(src[3][j]);
            }
          }
          const float m = msk[gk];
          const float hy = 1.f - s.ly, hx = 1.f - s.lx;
          gmsk[gk] = s.w[0] * dot[0] + s.w[1] * dot[1] + s.w[2] * dot[2] + s.w[3] * dot[3];
          goff[2 * gk] = m * (hx * (dot[2] - dot[0]) + s.lx * (dot[3] - dot[1]));
          goff[2 * gk + 1] = m * (hy * (dot[1] - dot[0]) + s.ly * (dot[3] - dot[2]));
          for (int i = 0; i < 4; ++i) {
            if (s.idx[i] < 0) continue;
            const float coef = m * s.w[i];
            float* dst = gxn + s.idx[i] * c + g * cg;
            if constexpr (std::is_same_v<T, Eigen::bfloat16>) {
              if (cg % 8 == 0) {
                AddScaledBf16(dst, coef, d, cg);
                continue;
              }
            }
            for (int64_t j = 0; j < cg; ++j) dst[j] += coef * ToF(d[j]);
          }
        }
      }
    }
  }
}

// One vectorised (target_clones) entry point per element type; the template bodies are inlined into each clone.
#define TFVR_ROWS_FOR(T, SUFFIX)                                                                                  \
  TFVR_VECTORIZE void Im2colRows##SUFFIX(const DeformParams& p, const T* x, const float* offset, const float* mask,  \
                                         T* cols, const T* zeros, int64_t row_begin, int64_t row_end) {           \
    Im2colRowsT<T>(p, x, offset, mask, cols, zeros, row_begin, row_end);                                         \
  }                                                                                                               \
  TFVR_VECTORIZE void Col2imRows##SUFFIX(const DeformParams& p, const T* x, const float* offset, const float* mask,  \
                                         const T* grad_cols, float* gx, float* grad_offset, float* grad_mask,     \
                                         const T* zeros, int64_t row_begin, int64_t row_end) {                    \
    Col2imRowsT<T>(p, x, offset, mask, grad_cols, gx, grad_offset, grad_mask, zeros, row_begin, row_end);        \
  }                                                                                                               \
  inline void Im2colRows(const DeformParams& p, const T* x, const float* offset, const float* mask, T* cols,      \
                         const T* zeros, int64_t row_begin, int64_t row_end) {                                    \
    Im2colRows##SUFFIX(p, x, offset, mask, cols, zeros, row_begin, row_end);                                      \
  }                                                                                                               \
  inline void Col2imRows(const DeformParams& p, const T* x, const float* offset, const float* mask,               \
                         const T* grad_cols, float* gx, float* grad_offset, float* grad_mask, const T* zeros,     \
                         int64_t row_begin, int64_t row_end) {                                                    \
    Col2imRows##SUFFIX(p, x, offset, mask, grad_cols, gx, grad_offset, grad_mask, zeros, row_begin, row_end);    \
  }
TFVR_ROWS_FOR(float, F32)
TFVR_ROWS_FOR(Eigen::half, F16)
TFVR_ROWS_FOR(Eigen::bfloat16, BF16)
#undef TFVR_ROWS_FOR

// One unit per work item (the items are already coarse and equal-sized).
void ParallelTasks(OpKernelContext* ctx, int64_t total, const std::function<void(int64_t, int64_t)>& fn) {
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  pool->ParallelFor(total,
                    tensorflow::thread::ThreadPool::SchedulingParams(
                        tensorflow::thread::ThreadPool::SchedulingStrategy::kFixedBlockSize, std::nullopt, 1),
                    fn);
}

}  // namespace

template <typename T>
class DeformIm2colCpuOp : public DeformOpBase {
 public:
  using DeformOpBase::DeformOpBase;

  void Compute(OpKernelContext* ctx) override {
    DeformParams p;
    Tensor* cols = nullptr;
    if (!StartForward(ctx, &p, &cols)) return;
    const std::vector<T> zeros(p.c, FromF<T>(0.f));
    const T* x = ctx->input(0).flat<T>().data();
    const float* offset = ctx->input(1).flat<float>().data();
    const float* mask = ctx->input(2).flat<float>().data();
    T* out = cols->flat<T>().data();
    const int64_t row_cost = p.wo * p.k() * (p.c * 10 + p.groups * 40);
    auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
    pool->ParallelFor(p.n * p.ho, row_cost, [&](int64_t b, int64_t e) {
      Im2colRows(p, x, offset, mask, out, zeros.data(), b, e);
    });
  }
};

template <typename T>
class DeformIm2colGradCpuOp : public DeformOpBase {
 public:
  using DeformOpBase::DeformOpBase;

  void Compute(OpKernelContext* ctx) override {
    DeformParams p;
    if (!Params(ctx, &p)) return;
    Tensor *grad_x = nullptr, *grad_offset = nullptr, *grad_mask = nullptr;
    OP_REQUIRES_OK(ctx, AllocateGrads(ctx, p, &grad_x, &grad_offset, &grad_mask));
    const Tensor& grad_cols = ctx->input(4);
    const int64_t x_size = grad_x->NumElements();
    T* gx_out = grad_x->flat<T>().data();
    if (grad_offset->NumElements() == 0 || x_size == 0) {
      std::fill(gx_out, gx_out + x_size, FromF<T>(0.f));
      return;
    }
    constexpr bool kF32 = std::is_same<T, float>::value;

    const int threads = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
    const int64_t rows = p.n * p.ho;
    const int64_t x_bytes = std::max<int64_t>(x_size * static_cast<int64_t>(sizeof(float)), 1);
    const int64_t budget = std::max<int64_t>(int64_t{512} << 20, 4 * x_bytes);
    const int64_t bands = std::max<int64_t>(1, std::min<int64_t>({threads, rows, 1 + budget / x_bytes}));
    // float32 accumulators: band 0 adds into grad_x itself for float (as before), into the first float buffer of
    // `scratch` for 16-bit T, which is rounded into grad_x at the end.
    const int64_t buffers = (bands - 1) + (kF32 ? 0 : 1);
    Tensor scratch;
    float* scr = nullptr;
    if (buffers > 0) {
      OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_FLOAT, TensorShape({buffers * x_size}), &scratch));
      scr = scratch.flat<float>().data();
    }
    float* gx = kF32 ? reinterpret_cast<float*>(gx_out) : scr;
    float* extra = kF32 ? scr : scr + x_size;  // the buffers of bands 1 .. bands-1
    const std::vector<T> zeros(p.c, FromF<T>(0.f));
    const T* x = ctx->input(0).flat<T>().data();
    const float* offset = ctx->input(1).flat<float>().data();
    const float* mask = ctx->input(2).flat<float>().data();
    const T* gc = grad_cols.flat<T>().data();
    float* goff = grad_offset->flat<float>().data();
    float* gmsk = grad_mask->flat<float>().data();

    ParallelTasks(ctx, bands, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        float* target = b == 0 ? gx : extra + (b - 1) * x_size;
        std::fill(target, target + x_size, 0.f);
        Col2imRows(p, x, offset, mask, gc, target, goff, gmsk, zeros.data(), rows * b / bands,
                   rows * (b + 1) / bands);
      }
    });
    if (bands > 1 || !kF32) {
      auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
      const int64_t chunk = 4096;
      pool->ParallelFor((x_size + chunk - 1) / chunk, chunk * bands, [&](int64_t begin, int64_t end) {
        const int64_t lo = begin * chunk, hi = std::min(end * chunk, x_size);
        for (int64_t b = 1; b < bands; ++b) {
          const float* src = extra + (b - 1) * x_size;
          for (int64_t i = lo; i < hi; ++i) gx[i] += src[i];
        }
        if (!kF32)
          for (int64_t i = lo; i < hi; ++i) gx_out[i] = FromF<T>(gx[i]);
      });
    }
  }
};

// Both ops for one device and element type T ("pads" is read on the host).
#define TFVR_REGISTER(DEVICE, T, FORWARD, GRAD)                                                                 \
  REGISTER_KERNEL_BUILDER(Name("TfvrDeformIm2col").Device(DEVICE).TypeConstraint<T>("T").HostMemory("pads"),    \
                          FORWARD<T>);                                                                          \
  REGISTER_KERNEL_BUILDER(Name("TfvrDeformIm2colGrad").Device(DEVICE).TypeConstraint<T>("T").HostMemory("pads"), \
                          GRAD<T>);
#define TFVR_REGISTER_CPU(T) TFVR_REGISTER(DEVICE_CPU, T, DeformIm2colCpuOp, DeformIm2colGradCpuOp)
TFVR_REGISTER_CPU(float)
TFVR_REGISTER_CPU(Eigen::half)
TFVR_REGISTER_CPU(Eigen::bfloat16)
#undef TFVR_REGISTER_CPU

// ------------------------------------------------------------------------------------------------------- GPU
#if GOOGLE_CUDA
using ::tensorflow::DEVICE_GPU;

cudaStream_t GpuStream(OpKernelContext* ctx) {
  return reinterpret_cast<cudaStream_t>(ctx->op_device_context()->stream()->platform_specific_handle().stream);
}

template <typename T>
constexpr DType DTypeOf();
template <>
constexpr DType DTypeOf<float>() { return DType::kFloat; }
template <>
constexpr DType DTypeOf<Eigen::half>() { return DType::kHalf; }
template <>
constexpr DType DTypeOf<Eigen::bfloat16>() { return DType::kBFloat16; }

template <typename T>
class DeformIm2colGpuOp : public DeformOpBase {
 public:
  using DeformOpBase::DeformOpBase;

  void Compute(OpKernelContext* ctx) override {
    DeformParams p;
    Tensor* cols = nullptr;
    if (!StartForward(ctx, &p, &cols)) return;
    DeformIm2colGpu(GpuStream(ctx), p, DTypeOf<T>(), ctx->input(0).flat<T>().data(),
                    ctx->input(1).flat<float>().data(), ctx->input(2).flat<float>().data(),
                    cols->flat<T>().data());
  }
};

template <typename T>
class DeformIm2colGradGpuOp : public DeformOpBase {
 public:
  using DeformOpBase::DeformOpBase;

  void Compute(OpKernelContext* ctx) override {
    DeformParams p;
    if (!Params(ctx, &p)) return;
    Tensor *grad_x = nullptr, *grad_offset = nullptr, *grad_mask = nullptr;
    OP_REQUIRES_OK(ctx, AllocateGrads(ctx, p, &grad_x, &grad_offset, &grad_mask));
    const Tensor& grad_cols = ctx->input(4);
    Tensor acc;
    float* acc_ptr = nullptr;
    if (!std::is_same<T, float>::value) {
      OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_FLOAT, ctx->input(0).shape(), &acc));
      acc_ptr = acc.flat<float>().data();
    }
    DeformIm2colGradGpu(GpuStream(ctx), p, DTypeOf<T>(), ctx->input(0).flat<T>().data(),
                        ctx->input(1).flat<float>().data(), ctx->input(2).flat<float>().data(),
                        grad_cols.flat<T>().data(), grad_x->flat<T>().data(), acc_ptr,
                        grad_offset->flat<float>().data(), grad_mask->flat<float>().data());
  }
};

#define TFVR_REGISTER_GPU(T) TFVR_REGISTER(DEVICE_GPU, T, DeformIm2colGpuOp, DeformIm2colGradGpuOp)
TFVR_REGISTER_GPU(float)
TFVR_REGISTER_GPU(Eigen::half)
TFVR_REGISTER_GPU(Eigen::bfloat16)
#undef TFVR_REGISTER_GPU
#endif  // GOOGLE_CUDA
#undef TFVR_REGISTER

}  // namespace tfvr
