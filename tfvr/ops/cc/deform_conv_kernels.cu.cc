// CUDA kernels of TfvrDeformIm2col / TfvrDeformIm2colGrad: the same algorithm as the CPU kernels in
// deform_conv_ops.cc (one thread per (output pixel, kernel tap, offset group), looping over the group's channels).
// The backward scatter-adds into grad_x with atomicAdd. Compiled by `python -m tfvr.ops.build --cuda`.
//
// Element type T of x / cols / grad_x: float, __half or __nv_bfloat16. Values are read into float, every sum is a
// float sum, and results are rounded to T once when stored. For 16-bit T the scatter-add of grad_x goes into a
// float32 buffer (float atomics), converted to T by one more kernel, so the gradient is not rounded per addition.
// The float instantiation is the former float-only code, operation for operation.
#if GOOGLE_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "deform_conv.h"

namespace tfvr {
namespace {

constexpr int kThreads = 256;

inline int Blocks(int64_t work) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 64 ? b : 65535 * 64);
}

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Work item t = (pix * K + k) * G + g: neighbouring threads handle neighbouring groups of one tap, so their
// column writes are contiguous.
struct WorkItem {
  int64_t g, k, pix, n, gk;  // offset group, kernel tap, output pixel (n, oy, ox), batch index, g * K + k
  Corners s;                 // the bilinear corners of the tap's sampling position
};

__device__ __forceinline__ WorkItem Decode(const DeformParams& p, const float* offset, int64_t t) {
  const int64_t k_n = p.k();
  WorkItem w;
  w.g = t % p.groups;
  w.k = (t / p.groups) % k_n;
  w.pix = t / (p.groups * k_n);
  const int64_t ox = w.pix % p.wo, oy = (w.pix / p.wo) % p.ho;
  w.n = w.pix / (p.wo * p.ho);
  w.gk = w.g * k_n + w.k;
  const float* off = offset + w.pix * 2 * p.groups * k_n;
  w.s = Locate(BaseY(p, oy, w.k) + off[2 * w.gk], BaseX(p, ox, w.k) + off[2 * w.gk + 1], p.h, p.w);
  return w;
}

// Grid-stride loop over the work items of `p`.
#define TFVR_FOR_EACH_ITEM(p, t)                                                                        \
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x,                         \
               t##_total = (p).n * (p).ho * (p).wo * (p).k() * (p).groups;                              \
       t < t##_total; t += static_cast<int64_t>(blockDim.x) * gridDim.x)

template <typename T>
__global__ void Im2colKernel(DeformParams p, const T* __restrict__ x, const float* __restrict__ offset,
                             const float* __restrict__ mask, T* __restrict__ cols) {
  const int64_t k_n = p.k(), cg = p.cg(), c = p.c;
  TFVR_FOR_EACH_ITEM(p, t) {
    const WorkItem it = Decode(p, offset, t);
    const int64_t g = it.g, k = it.k, pix = it.pix, n = it.n, gk = it.gk;
    const Corners& s = it.s;
    T* dst = cols + pix * k_n * c + k * c + g * cg;
    const float m = mask[pix * p.groups * k_n + gk];
    const T* xg = x + n * p.h * p.w * c + g * cg;
    for (int64_t j = 0; j < cg; ++j) {
      float v = 0.f;
      for (int i = 0; i < 4; ++i)
        if (s.idx[i] >= 0) v += s.w[i] * ToFloat(xg[s.idx[i] * c + j]);
      dst[j] = FromFloat<T>(m * v);
    }
  }
}

template <typename T>
__global__ void Col2imKernel(DeformParams p, const T* __restrict__ x, const float* __restrict__ offset,
                             const float* __restrict__ mask, const T* __restrict__ grad_cols,
                             float* __restrict__ grad_x, float* __restrict__ grad_offset,
                             float* __restrict__ grad_mask) {
  const int64_t k_n = p.k(), cg = p.cg(), c = p.c;
  TFVR_FOR_EACH_ITEM(p, t) {
    const WorkItem it = Decode(p, offset, t);
    const int64_t g = it.g, k = it.k, pix = it.pix, n = it.n, gk = it.gk;
    const Corners& s = it.s;
    float* goff = grad_offset + pix * 2 * p.groups * k_n;
    float* gmsk = grad_mask + pix * p.groups * k_n;
    if (!s.inside) {
      goff[2 * gk] = goff[2 * gk + 1] = 0.f;
      gmsk[gk] = 0.f;
      continue;
    }
    const float m = mask[pix * p.groups * k_n + gk];
    const T* d = grad_cols + pix * k_n * c + k * c + g * cg;
    const T* xg = x + n * p.h * p.w * c + g * cg;
    float* gxg = grad_x + n * p.h * p.w * c + g * cg;
    float dot[4] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t j = 0; j < cg; ++j) {
      const float dj = ToFloat(d[j]);
      for (int i = 0; i < 4; ++i) {
        if (s.idx[i] < 0) continue;
        dot[i] += dj * ToFloat(xg[s.idx[i] * c + j]);
        atomicAdd(gxg + s.idx[i] * c + j, m * s.w[i] * dj);
      }
    }
    const float hy = 1.f - s.ly, hx = 1.f - s.lx;
    gmsk[gk] = s.w[0] * dot[0] + s.w[1] * dot[1] + s.w[2] * dot[2] + s.w[3] * dot[3];
    goff[2 * gk] = m * (hx * (dot[2] - dot[0]) + s.lx * (dot[3] - dot[1]));
    goff[2 * gk + 1] = m * (hy * (dot[1] - dot[0]) + s.ly * (dot[3] - dot[2]));
  }
}

#undef TFVR_FOR_EACH_ITEM

template <typename T>
__global__ void RoundKernel(int64_t size, const float* __restrict__ src, T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < size;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    dst[i] = FromFloat<T>(src[i]);
}

template <typename T>
void Im2col(cudaStream_t stream, const DeformParams& p, const void* x, const float* offset, const float* mask,
            void* cols) {
  const int64_t work = p.n * p.ho * p.wo * p.k() * p.groups;
  if (work == 0) return;
  Im2colKernel<T><<<Blocks(work), kThreads, 0, stream>>>(p, static_cast<const T*>(x), offset, mask,
                                                           static_cast<T*>(cols));
}

template <typename T>
void Col2im(cudaStream_t stream, const DeformParams& p, const void* x, const float* offset, const float* mask,
            const void* grad_cols, float* grad_x_acc, float* grad_offset, float* grad_mask) {
  cudaMemsetAsync(grad_x_acc, 0, sizeof(float) * p.n * p.h * p.w * p.c, stream);
  const int64_t work = p.n * p.ho * p.wo * p.k() * p.groups;
  if (work == 0) return;
  Col2imKernel<T><<<Blocks(work), kThreads, 0, stream>>>(p, static_cast<const T*>(x), offset, mask,
                                                           static_cast<const T*>(grad_cols), grad_x_acc,
                                                           grad_offset, grad_mask);
}

template <typename T>
void Col2imRounded(cudaStream_t stream, const DeformParams& p, const void* x, const float* offset,
                   const float* mask, const void* grad_cols, void* grad_x, float* grad_x_acc, float* grad_offset,
                   float* grad_mask) {
  Col2im<T>(stream, p, x, offset, mask, grad_cols, grad_x_acc, grad_offset, grad_mask);
  const int64_t size = p.n * p.h * p.w * p.c;
  if (size == 0) return;
  RoundKernel<T><<<Blocks(size), kThreads, 0, stream>>>(size, grad_x_acc, static_cast<T*>(grad_x));
}

}  // namespace

void DeformIm2colGpu(cudaStream_t stream, const DeformParams& p, DType dtype, const void* x, const float* offset,
                     const float* mask, void* cols) {
  switch (dtype) {
    case DType::kFloat:
      return Im2col<float>(stream, p, x, offset, mask, cols);
    case DType::kHalf:
      return Im2col<__half>(stream, p, x, offset, mask, cols);
    case DType::kBFloat16:
      return Im2col<__nv_bfloat16>(stream, p, x, offset, mask, cols);
  }
}

void DeformIm2colGradGpu(cudaStream_t stream, const DeformParams& p, DType dtype, const void* x,
                         const float* offset, const float* mask, const void* grad_cols, void* grad_x,
                         float* grad_x_acc, float* grad_offset, float* grad_mask) {
  switch (dtype) {
    case DType::kFloat:  // accumulate straight into grad_x, as before
      return Col2im<float>(stream, p, x, offset, mask, grad_cols, static_cast<float*>(grad_x), grad_offset,
                           grad_mask);
    case DType::kHalf:
      return Col2imRounded<__half>(stream, p, x, offset, mask, grad_cols, grad_x, grad_x_acc, grad_offset,
                                   grad_mask);
    case DType::kBFloat16:
      return Col2imRounded<__nv_bfloat16>(stream, p, x, offset, mask, grad_cols, grad_x, grad_x_acc, grad_offset,
                                          grad_mask);
  }
}

}  // namespace tfvr
#endif  // GOOGLE_CUDA
