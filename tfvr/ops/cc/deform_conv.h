// Modulated deformable im2col (DCNv2), NHWC, shared by the CPU kernels (deform_conv_ops.cc) and the CUDA kernels
// (deform_conv_kernels.cu.cc). Layouts as in tfvr/ops/deform_conv.py:
//   x [N, H, W, C]; offset [N, Ho, Wo, 2*G*K] (channel 2*(g*K+k) = dy, +1 = dx, torchvision's order);
//   mask [N, Ho, Wo, G*K]; cols [N, Ho, Wo, K*C], column k*C + c (k = i*kw + j), so cols @ kernel.reshape(K*C, O)
//   is the convolution. Bilinear sampling reads zeros outside the image, as torchvision.ops.deform_conv2d.
#ifndef TFVR_OPS_CC_DEFORM_CONV_H_
#define TFVR_OPS_CC_DEFORM_CONV_H_

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define TFVR_HD __host__ __device__ inline
#else
#define TFVR_HD inline
#endif

namespace tfvr {

struct DeformParams {
  int64_t n, h, w, c, ho, wo;
  int kh, kw, sh, sw, ph, pw, dh, dw, groups;
  TFVR_HD int64_t k() const { return static_cast<int64_t>(kh) * kw; }
  TFVR_HD int64_t cg() const { return c / groups; }
};

// The four bilinear corners of one sample. idx = y * W + x of the corner pixel, or -1 where the corner lies
// outside the image (it reads zero). `inside` is false when the whole sample is out (-1 < y < H, -1 < x < W fails):
// then the value and every gradient are zero, as torchvision's bilinear_interpolate / get_coordinate_weight.
struct Corners {
  int64_t idx[4];
  float w[4];  // (y0,x0), (y0,x1), (y1,x0), (y1,x1): (1-ly)(1-lx), (1-ly)lx, ly(1-lx), ly lx
  float ly, lx;
  bool inside;
};

TFVR_HD Corners Locate(float py, float px, int64_t h, int64_t w) {
  Corners s;
  s.inside = py > -1.f && px > -1.f && py < static_cast<float>(h) && px < static_cast<float>(w);
  if (!s.inside) {
    for (int i = 0; i < 4; ++i) {
      s.idx[i] = -1;
      s.w[i] = 0.f;
    }
    s.ly = s.lx = 0.f;
    return s;
  }
  const float y0f = floorf(py), x0f = floorf(px);
  const int64_t y0 = static_cast<int64_t>(y0f), x0 = static_cast<int64_t>(x0f);
  s.ly = py - y0f;
  s.lx = px - x0f;
  const float hy = 1.f - s.ly, hx = 1.f - s.lx;
  s.w[0] = hy * hx;
  s.w[1] = hy * s.lx;
  s.w[2] = s.ly * hx;
  s.w[3] = s.ly * s.lx;
  const bool y0_ok = y0 >= 0, y1_ok = y0 + 1 < h, x0_ok = x0 >= 0, x1_ok = x0 + 1 < w;
  s.idx[0] = (y0_ok && x0_ok) ? y0 * w + x0 : -1;
  s.idx[1] = (y0_ok && x1_ok) ? y0 * w + x0 + 1 : -1;
  s.idx[2] = (y1_ok && x0_ok) ? (y0 + 1) * w + x0 : -1;
  s.idx[3] = (y1_ok && x1_ok) ? (y0 + 1) * w + x0 + 1 : -1;
  return s;
}

// Sampling position of kernel tap k for output pixel (oy, ox), before the learned offset.
TFVR_HD float BaseY(const DeformParams& p, int64_t oy, int64_t k) {
  return static_cast<float>(oy * p.sh - p.ph + (k / p.kw) * p.dh);
}
TFVR_HD float BaseX(const DeformParams& p, int64_t ox, int64_t k) {
  return static_cast<float>(ox * p.sw - p.pw + (k % p.kw) * p.dw);
}

}  // namespace tfvr

namespace tfvr {
// Element types of x / cols / grad_x (offsets, masks and their gradients are always float32; every sum is
// accumulated in float32). kHalf is IEEE binary16 (Eigen::half = __half), kBFloat16 is bfloat16
// (Eigen::bfloat16 = __nv_bfloat16): same 16-bit layouts, so the host passes raw pointers.
enum class DType { kFloat = 0, kHalf = 1, kBFloat16 = 2 };
}  // namespace tfvr

#if GOOGLE_CUDA
// Launchers in deform_conv_kernels.cu.cc. They take the raw stream, so nvcc compiles that file without TensorFlow's
// or Eigen's headers (seconds instead of a minute, and no dependence on the CUDA version TF's headers expect).
#include <cuda_runtime.h>

namespace tfvr {
// x, cols: `dtype` elements.
void DeformIm2colGpu(cudaStream_t stream, const DeformParams& p, DType dtype, const void* x, const float* offset,
                     const float* mask, void* cols);
// x, grad_cols, grad_x: `dtype` elements. For kHalf / kBFloat16, `grad_x_acc` is float32 scratch of |x| elements
// (grad_x is accumulated there with float atomics, then rounded once into grad_x); unused (may be null) for kFloat.
void DeformIm2colGradGpu(cudaStream_t stream, const DeformParams& p, DType dtype, const void* x,
                         const float* offset, const float* mask, const void* grad_cols, void* grad_x,
                         float* grad_x_acc, float* grad_offset, float* grad_mask);
}  // namespace tfvr
#endif  // GOOGLE_CUDA

#endif  // TFVR_OPS_CC_DEFORM_CONV_H_
