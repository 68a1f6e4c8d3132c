// TfvrWinogradInput / TfvrWinogradOutput: the two memory-bound halves of a Winograd F(4x4, 3x3) convolution
// (Lavin & Gray, CVPR 2016), each in one pass over memory, float32, CPU. The 36 GEMMs between them
// (V[36, P, C] x U[36, C, K]) are TensorFlow's batched matmul (oneDNN); the kernel transform U = G g G^T and the
// gradient are TF ops in tfvr/ops/winograd.py. Built into the same library as the DCN kernel by
// `python -m tfvr.ops.build`.
//
// Layout: x is NHWC [N, H, W, C]. A 3x3 conv with stride 1, "SAME" padding (pad = dilation) and dilation d in {1, 2,
// ...} is computed on each of the d x d sub-grids (phase (py, px): rows py, py + d, ...) as an undilated 3x3 conv;
// every sub-grid is cut into th x tw output tiles of 4x4 (th = ceil(ceil(H / d) / 4), the same for every phase), each
// reading a 6x6 input tile (zeros outside the map). Tile index p = ((n * d * d + py * d + px) * th + ti) * tw + tj,
// P = N d^2 th tw.
//   TfvrWinogradInput:  x -> V [36, P, C], V[i * 6 + j, p, :] = (B^T d_p B)[i, j] for the 6x6 tile d_p.
//   TfvrWinogradOutput: M [36, P, K], bias [K] -> y [N, H, W, K] = A^T m_p A + bias (then LeakyReLU(alpha) if
//                       `lrelu`), the 4x4 tiles put back in place, the part outside the map dropped.
// Both loop over tiles on TF's intra-op pool (tensorflow_cpu_worker_threads), each tile over channel chunks of 64
// contiguous floats (vectorised: AVX2 / AVX-512 clones picked at load time).

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

#include "tf_op_common.h"

namespace tfvr {
namespace {

#define TFVR_INLINE inline __attribute__((always_inline))

constexpr int kChunk = 64;  // channels per inner pass (6 x 6 x 64 floats of scratch = 9 KiB, in L1)

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Grid {
  int64_t n, h, w, d, th, tw;
  int64_t tiles() const { return n * d * d * th * tw; }
};

Grid MakeGrid(int64_t n, int64_t h, int64_t w, int64_t d) {
  return Grid{n, h, w, d, CeilDiv(CeilDiv(h, d), 4), CeilDiv(CeilDiv(w, d), 4)};
}

// V and M are split into `chunks` tensors along the tile axis (chunk i: tiles [i P / chunks, (i + 1) P / chunks)),
// so that no buffer is much larger than a few MiB: glibc serves allocations above 32 MiB with a fresh mmap, and
// every call then pays a page fault per 4 KiB (measured: 18k faults, 70 ms of system time for one 75 MB V).
struct Chunks {
  std::vector<float*> base;     // chunk i's [36, tiles_i, C] data
  std::vector<int64_t> start;   // chunks + 1 tile boundaries
  TFVR_INLINE int Find(int64_t p, int hint) const {
    while (p >= start[hint + 1]) ++hint;
    return hint;
  }
};

std::vector<int64_t> ChunkStarts(int64_t tiles, int64_t chunks) {
  std::vector<int64_t> s(chunks + 1);
  for (int64_t i = 0; i <= chunks; ++i) s[i] = i * tiles / chunks;
  return s;
}

int FirstChunk(const std::vector<int64_t>& start, int64_t p) {
  return static_cast<int>(std::upper_bound(start.begin(), start.end(), p) - start.begin()) - 1;
}

// B^T applied to 6 vectors of length cn: o_i = sum_k BT[i][k] s_k.
TFVR_INLINE void Bt6(const float* const s[6], float* const o[6], int cn) {
  const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
  float *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3], *o4 = o[4], *o5 = o[5];
#pragma GCC ivdep
  for (int c = 0; c < cn; ++c) {
    const float d0 = s0[c], d1 = s1[c], d2 = s2[c], d3 = s3[c], d4 = s4[c], d5 = s5[c];
    o0[c] = 4.f * d0 - 5.f * d2 + d4;
    o1[c] = -4.f * (d1 + d2) + (d3 + d4);
    o2[c] = 4.f * (d1 - d2) + (d4 - d3);
    o3[c] = 2.f * (d3 - d1) + (d4 - d2);
    o4[c] = 2.f * (d1 - d3) + (d4 - d2);
    o5[c] = 4.f * d1 - 5.f * d3 + d5;
  }
}

// A^T applied to 6 vectors: o_0..3.
TFVR_INLINE void At6(const float* const s[6], float* const o[4], int cn) {
  const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5];
  float *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
#pragma GCC ivdep
  for (int c = 0; c < cn; ++c) {
    const float a = s1[c] + s2[c], b = s1[c] - s2[c], e = s3[c] + s4[c], f = s3[c] - s4[c];
    o0[c] = s0[c] + a + e;
    o1[c] = b + 2.f * f;
    o2[c] = a + 4.f * e;
    o3[c] = b + 8.f * f + s5[c];
  }
}

// Tile coordinates of tile p: (n, py, px, ti, tj).
struct TilePos {
  int64_t n, py, px, ti, tj;
};
TFVR_INLINE TilePos Locate(const Grid& g, int64_t p) {
  TilePos t;
  t.tj = p % g.tw;
  p /= g.tw;
  t.ti = p % g.th;
  p /= g.th;
  const int64_t phase = p % (g.d * g.d);
  t.n = p / (g.d * g.d);
  t.py = phase / g.d;
  t.px = phase % g.d;
  return t;
}

TFVR_VECTORIZE void InputTiles(const Grid& g, int64_t c_all, const float* x, const float* zeros,
                                    const Chunks& v_chunks, int64_t begin, int64_t end) {
  float t[6][6][kChunk];  // t[i][l] = sum_k BT[i][k] d[k][l]
  int ci = FirstChunk(v_chunks.start, begin);
  for (int64_t p = begin; p < end; ++p) {
    ci = v_chunks.Find(p, ci);
    const int64_t plane = (v_chunks.start[ci + 1] - v_chunks.start[ci]) * c_all;  // V[q] stride in this chunk
    float* v = v_chunks.base[ci] + (p - v_chunks.start[ci]) * c_all;
    const TilePos tp = Locate(g, p);
    int64_t rows[6], cols[6];
    for (int k = 0; k < 6; ++k) {
      rows[k] = tp.py + g.d * (4 * tp.ti + k - 1);
      cols[k] = tp.px + g.d * (4 * tp.tj + k - 1);
    }
    for (int64_t c0 = 0; c0 < c_all; c0 += kChunk) {
      const int cn = static_cast<int>(std::min<int64_t>(kChunk, c_all - c0));
      for (int l = 0; l < 6; ++l) {
        const bool col_in = cols[l] >= 0 && cols[l] < g.w;
        const float* s[6];
        for (int k = 0; k < 6; ++k) {
          s[k] = (col_in && rows[k] >= 0 && rows[k] < g.h) ? x + ((tp.n * g.h + rows[k]) * g.w + cols[l]) * c_all + c0
                                                          : zeros;
        }
        float* o[6] = {t[0][l], t[1][l], t[2][l], t[3][l], t[4][l], t[5][l]};
        Bt6(s, o, cn);
      }
      for (int i = 0; i < 6; ++i) {
        const float* s[6] = {t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5]};
        float* o[6];
        for (int j = 0; j < 6; ++j) o[j] = v + (i * 6 + j) * plane + c0;
        Bt6(s, o, cn);
      }
    }
  }
}

TFVR_VECTORIZE void OutputTiles(const Grid& g, int64_t k_all, const Chunks& m_chunks, const float* bias,
                                     bool lrelu, float alpha, float* y, int64_t begin, int64_t end) {
  float t[6][4][kChunk];  // t[i][s] = sum_j m[i][j] AT[s][j]
  float z[4][4][kChunk];
  int ci = FirstChunk(m_chunks.start, begin);
  for (int64_t p = begin; p < end; ++p) {
    ci = m_chunks.Find(p, ci);
    const int64_t plane = (m_chunks.start[ci + 1] - m_chunks.start[ci]) * k_all;
    const float* m = m_chunks.base[ci] + (p - m_chunks.start[ci]) * k_all;
    const TilePos tp = Locate(g, p);
    for (int64_t k0 = 0; k0 < k_all; k0 += kChunk) {
      const int kn = static_cast<int>(std::min<int64_t>(kChunk, k_all - k0));
      for (int i = 0; i < 6; ++i) {
        const float* s[6];
        for (int j = 0; j < 6; ++j) s[j] = m + (i * 6 + j) * plane + k0;
        float* o[4] = {t[i][0], t[i][1], t[i][2], t[i][3]};
        At6(s, o, kn);
      }
      for (int c = 0; c < 4; ++c) {
        const float* s[6] = {t[0][c], t[1][c], t[2][c], t[3][c], t[4][c], t[5][c]};
        float* o[4] = {z[0][c], z[1][c], z[2][c], z[3][c]};
        At6(s, o, kn);
      }
      for (int r = 0; r < 4; ++r) {
        const int64_t row = tp.py + g.d * (4 * tp.ti + r);
        if (row >= g.h) break;
        for (int c = 0; c < 4; ++c) {
          const int64_t col = tp.px + g.d * (4 * tp.tj + c);
          if (col >= g.w) break;
          float* dst = y + ((tp.n * g.h + row) * g.w + col) * k_all + k0;
          const float* src = z[r][c];
          const float* b = bias + k0;
          if (lrelu) {
#pragma GCC ivdep
            for (int k = 0; k < kn; ++k) {
              const float val = src[k] + b[k];
              dst[k] = std::max(val, 0.f) + alpha * std::min(val, 0.f);  // = val > 0 ? val : alpha val, branch-free
            }
          } else {
#pragma GCC ivdep
            for (int k = 0; k < kn; ++k) dst[k] = src[k] + b[k];
          }
        }
      }
    }
  }
}

void ParallelTiles(OpKernelContext* ctx, int64_t tiles, int64_t cost_per_tile,
                   const std::function<void(int64_t, int64_t)>& fn) {
  auto* pool = ctx->device()->tensorflow_cpu_worker_threads()->workers;
  pool->ParallelFor(tiles, cost_per_tile, fn);
}

REGISTER_OP("TfvrWinogradInput")
    .Input("x: float")
    .Output("v: chunks * float")
    .Attr("dilation: int >= 1 = 1")
    .Attr("chunks: int >= 1 = 1")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle x;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 4, &x));
      int64_t d, chunks;
      TF_RETURN_IF_ERROR(c->GetAttr("dilation", &d));
      TF_RETURN_IF_ERROR(c->GetAttr("chunks", &chunks));
      DimensionHandle n = c->Dim(x, 0), h = c->Dim(x, 1), w = c->Dim(x, 2);
      std::vector<int64_t> start;
      if (c->ValueKnown(n) && c->ValueKnown(h) && c->ValueKnown(w)) {
        start = ChunkStarts(MakeGrid(c->Value(n), c->Value(h), c->Value(w), d).tiles(), chunks);
      }
      for (int64_t i = 0; i < chunks; ++i) {
        DimensionHandle p = start.empty() ? c->UnknownDim() : c->MakeDim(start[i + 1] - start[i]);
        c->set_output(i, c->MakeShape({c->MakeDim(36), p, c->Dim(x, 3)}));
      }
      return Status();
    })
    .Doc("Winograd F(4x4, 3x3) input transform: NHWC x -> V[36, P, C] (B^T d B per 6x6 tile), see winograd_ops.cc.");

REGISTER_OP("TfvrWinogradOutput")
    .Input("m: chunks * float")
    .Input("bias: float")
    .Output("y: float")
    .Attr("height: int >= 1")
    .Attr("width: int >= 1")
    .Attr("dilation: int >= 1 = 1")
    .Attr("lrelu: bool = false")
    .Attr("alpha: float = 0.2")
    .Attr("chunks: int >= 1 = 1")
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle m;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &m));
      int64_t h, w, d, chunks;
      TF_RETURN_IF_ERROR(c->GetAttr("chunks", &chunks));
      DimensionHandle p = c->Dim(m, 1), k = c->Dim(m, 2);
      for (int64_t i = 1; i < chunks; ++i) {
        ShapeHandle mi;
        TF_RETURN_IF_ERROR(c->WithRank(c->input(i), 3, &mi));
        TF_RETURN_IF_ERROR(c->Add(p, c->Dim(mi, 1), &p));
      }
      TF_RETURN_IF_ERROR(c->GetAttr("height", &h));
      TF_RETURN_IF_ERROR(c->GetAttr("width", &w));
      TF_RETURN_IF_ERROR(c->GetAttr("dilation", &d));
      const int64_t per_image = MakeGrid(1, h, w, d).tiles();  // the batch is P / per_image
      DimensionHandle n = c->UnknownDim();
      if (c->ValueKnown(p)) n = c->MakeDim(c->Value(p) / per_image);
      c->set_output(0, c->MakeShape({n, c->MakeDim(h), c->MakeDim(w), k}));
      return Status();
    })
    .Doc("Winograd F(4x4, 3x3) output transform: M[36, P, K] -> NHWC y = A^T m A + bias (+ LeakyReLU), cropped.");

class WinogradInputOp : public OpKernel {
 public:
  explicit WinogradInputOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dilation", &dilation_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("chunks", &chunks_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    OP_REQUIRES(ctx, x.dims() == 4, InvalidArgument("TfvrWinogradInput: x must be NHWC, got rank ", x.dims()));
    const Grid g = MakeGrid(x.dim_size(0), x.dim_size(1), x.dim_size(2), dilation_);
    const int64_t c = x.dim_size(3);
    Chunks v;
    v.start = ChunkStarts(g.tiles(), chunks_);
    for (int64_t i = 0; i < chunks_; ++i) {
      Tensor* vi = nullptr;
      OP_REQUIRES_OK(ctx, ctx->allocate_output(i, TensorShape({36, v.start[i + 1] - v.start[i], c}), &vi));
      v.base.push_back(vi->flat<float>().data());
    }
    if (g.tiles() == 0 || c == 0) return;
    const std::vector<float> zeros(kChunk, 0.f);
    const float* xp = x.flat<float>().data();
    ParallelTiles(ctx, g.tiles(), c * 40, [&](int64_t b, int64_t e) { InputTiles(g, c, xp, zeros.data(), v, b, e); });
  }

 private:
  int64_t dilation_, chunks_;
};

class WinogradOutputOp : public OpKernel {
 public:
  explicit WinogradOutputOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("height", &h_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("width", &w_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("dilation", &dilation_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("lrelu", &lrelu_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("alpha", &alpha_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("chunks", &chunks_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& bias = ctx->input(chunks_);
    Chunks m;
    m.start.push_back(0);
    int64_t k = -1;
    for (int64_t i = 0; i < chunks_; ++i) {
      const Tensor& mi = ctx->input(i);
      OP_REQUIRES(ctx, mi.dims() == 3 && mi.dim_size(0) == 36 && (k < 0 || mi.dim_size(2) == k),
                  InvalidArgument("TfvrWinogradOutput: m[", i, "] must be [36, P_i, K], got ", mi.shape().DebugString()));
      k = mi.dim_size(2);
      m.start.push_back(m.start.back() + mi.dim_size(1));
      m.base.push_back(const_cast<float*>(mi.flat<float>().data()));
    }
    const int64_t tiles = m.start.back();
    OP_REQUIRES(ctx, bias.dims() == 1 && bias.dim_size(0) == k,
                InvalidArgument("TfvrWinogradOutput: bias must be [", k, "], got ", bias.shape().DebugString()));
    const int64_t per_image = MakeGrid(1, h_, w_, dilation_).tiles();
    OP_REQUIRES(ctx, tiles % per_image == 0,
                InvalidArgument("TfvrWinogradOutput: m has ", tiles, " tiles, not a multiple of the ", per_image,
                                " of one ", h_, "x", w_, " map with dilation ", dilation_));
    const int64_t n = tiles / per_image;
    const Grid g = MakeGrid(n, h_, w_, dilation_);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({n, h_, w_, k}), &y));
    if (g.tiles() == 0 || k == 0) return;
    const float* bp = bias.flat<float>().data();
    float* yp = y->flat<float>().data();
    ParallelTiles(ctx, g.tiles(), k * 60,
                  [&](int64_t b, int64_t e) { OutputTiles(g, k, m, bp, lrelu_, alpha_, yp, b, e); });
  }

 private:
  int64_t h_, w_, dilation_, chunks_;
  bool lrelu_;
  float alpha_;
};

REGISTER_KERNEL_BUILDER(Name("TfvrWinogradInput").Device(DEVICE_CPU), WinogradInputOp);
REGISTER_KERNEL_BUILDER(Name("TfvrWinogradOutput").Device(DEVICE_CPU), WinogradOutputOp);

}  // namespace
}  // namespace tfvr
