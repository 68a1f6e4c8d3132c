// CUDA kernels of TfvrDeformIm2col / TfvrDeformIm2colGrad: the same algorithm as the CPU kernels in
// deform_conv_ops.cc (one thread per (output pixel, kernel tap, offset group), looping over the group's channels).
// The backward scatter-adds into grad_x with atomicAdd. Compiled by `python -m tfvr.ops.build --cuda`.
#if GOOGLE_CUDA
#include "deform_conv.h"

namespace tfvr {
namespace {

constexpr int kThreads = 256;

inline int Blocks(int64_t work) {
  const int64_t b = (work + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 * 64 ? b : 65535 * 64);
}

// Work item t = (pix * K + k) * G + g: neighbouring threads handle neighbouring groups of one tap, so their
// column writes are contiguous.
__global__ void Im2colKernel(DeformParams p, const float* __restrict__ x, const float* __restrict__ offset,
                             const float* __restrict__ mask, float* __restrict__ cols) {
  const int64_t k_n = p.k(), cg = p.cg(), c = p.c;
  const int64_t total = p.n * p.ho * p.wo * k_n * p.groups;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t g = t % p.groups;
    const int64_t k = (t / p.groups) % k_n;
    const int64_t pix = t / (p.groups * k_n);
    const int64_t ox = pix % p.wo, oy = (pix / p.wo) % p.ho, n = pix / (p.wo * p.ho);
    const int64_t gk = g * k_n + k;
    const float* off = offset + pix * 2 * p.groups * k_n;
    const Corners s = Locate(BaseY(p, oy, k) + off[2 * gk], BaseX(p, ox, k) + off[2 * gk + 1], p.h, p.w);
    float* dst = cols + pix * k_n * c + k * c + g * cg;
    const float m = mask[pix * p.groups * k_n + gk];
    const float* xg = x + n * p.h * p.w * c + g * cg;
    for (int64_t j = 0; j < cg; ++j) {
      float v = 0.f;
      for (int i = 0; i < 4; ++i)
        if (s.idx[i] >= 0) v += s.w[i] * xg[s.idx[i] * c + j];
      dst[j] = m * v;
    }
  }
}

__global__ void Col2imKernel(DeformParams p, const float* __restrict__ x, const float* __restrict__ offset,
                             const float* __restrict__ mask, const float* __restrict__ grad_cols,
                             float* __restrict__ grad_x, float* __restrict__ grad_offset,
                             float* __restrict__ grad_mask) {
  const int64_t k_n = p.k(), cg = p.cg(), c = p.c;
  const int64_t total = p.n * p.ho * p.wo * k_n * p.groups;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t g = t % p.groups;
    const int64_t k = (t / p.groups) % k_n;
    const int64_t pix = t / (p.groups * k_n);
    const int64_t ox = pix % p.wo, oy = (pix / p.wo) % p.ho, n = pix / (p.wo * p.ho);
    const int64_t gk = g * k_n + k;
    const float* off = offset + pix * 2 * p.groups * k_n;
    float* goff = grad_offset + pix * 2 * p.groups * k_n;
    float* gmsk = grad_mask + pix * p.groups * k_n;
    const Corners s = Locate(BaseY(p, oy, k) + off[2 * gk], BaseX(p, ox, k) + off[2 * gk + 1], p.h, p.w);
    if (!s.inside) {
      goff[2 * gk] = goff[2 * gk + 1] = 0.f;
      gmsk[gk] = 0.f;
      continue;
    }
    const float m = mask[pix * p.groups * k_n + gk];
    const float* d = grad_cols + pix * k_n * c + k * c + g * cg;
    const float* xg = x + n * p.h * p.w * c + g * cg;
    float* gxg = grad_x + n * p.h * p.w * c + g * cg;
    float dot[4] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t j = 0; j < cg; ++j) {
      const float dj = d[j];
      for (int i = 0; i < 4; ++i) {
        if (s.idx[i] < 0) continue;
        dot[i] += dj * xg[s.idx[i] * c + j];
        atomicAdd(gxg + s.idx[i] * c + j, m * s.w[i] * dj);
      }
    }
    const float hy = 1.f - s.ly, hx = 1.f - s.lx;
    gmsk[gk] = s.w[0] * dot[0] + s.w[1] * dot[1] + s.w[2] * dot[2] + s.w[3] * dot[3];
    goff[2 * gk] = m * (hx * (dot[2] - dot[0]) + s.lx * (dot[3] - dot[1]));
    goff[2 * gk + 1] = m * (hy * (dot[1] - dot[0]) + s.ly * (dot[3] - dot[2]));
  }
}

}  // namespace

void DeformIm2colGpu(cudaStream_t stream, const DeformParams& p, const float* x, const float* offset,
                     const float* mask, float* cols) {
  const int64_t work = p.n * p.ho * p.wo * p.k() * p.groups;
  if (work == 0) return;
  Im2colKernel<<<Blocks(work), kThreads, 0, stream>>>(p, x, offset, mask, cols);
}

void DeformIm2colGradGpu(cudaStream_t stream, const DeformParams& p, const float* x, const float* offset,
                         const float* mask, const float* grad_cols, float* grad_x, float* grad_offset,
                         float* grad_mask) {
  cudaMemsetAsync(grad_x, 0, sizeof(float) * p.n * p.h * p.w * p.c, stream);
  const int64_t work = p.n * p.ho * p.wo * p.k() * p.groups;
  if (work == 0) return;
  Col2imKernel<<<Blocks(work), kThreads, 0, stream>>>(p, x, offset, mask, grad_cols, grad_x, grad_offset,
                                                          grad_mask);
}

}  // namespace tfvr
#endif  // GOOGLE_CUDA
