// Fused generalized relational SpMM on CPU (graphlearn.ops, backend "cpu").
//
//   out[i] = REDUCE_{(j -> i, r) in E}  w_e * phi(rel[r], x[j])
//
// The specification is graphlearn/ops/reference.py; the feature layout (batch of
// B queries of width d folded into D = B*d columns, rotate's real/imag halves,
// PNA's [mean | max | min | std] blocks) is documented in graphlearn/ops/spec.py.
//
// Memory: O(V*D) -- no [E, D] message tensor in forward or backward; each thread
// keeps a few D-wide scratch rows.
//
// Targets may be fewer than sources: the CSR (rowptr) has one row per output row,
// the CSC (colptr) one column per row of x (RelGraph's num_targets).
//
// Forward: rows of the CSR (by target) split into edge-balanced chunks, one per
// thread (at::parallel_for); each row's in-edges are reduced into its output row
// while the next edge's x row is prefetched. max/min/pna keep the first edge
// attaining each extreme (strict comparison). When a backward can follow, max/min
// save those edges' CSR positions (int32 [V, D]); pna saves only a var > 0 mask
// (uint8 [V, D]) and its backward finds the max and min edges again (two int32
// arrays cost more to write than one recomputation of the messages).
//
// Backward, without locks or atomics:
//  1. (max/min/pna) one pass over the CSR rows: the (feature, gradient) pairs
//     that max/min send to their arg edges (saved; for pna, found again by
//     recomputing the row's messages: the first edge whose message equals the
//     saved extreme) are grouped by edge (each row owns its segment), and PNA's
//     dense mean/std gradient is folded into two per-target coefficient rows,
//     d loss / d m_e = A_i + Bc_i * m_e.
//  2. one pass over the CSC (by source): thread t owns a chunk of source nodes
//     j; for each out-edge e = (j -> i, r) at CSR position k it rebuilds
//     g_e = d loss / d m_e (grad_out[i] for sum, /n for mean, A_i + Bc_i * m_e
//     plus the routed pairs for pna, the routed pairs alone for max/min) and,
//     in one loop over the features,
//       grad_x[j]      += w_e * J_x(phi)^T g_e     (row j belongs to this thread)
//       grad_w[k]       = <g_e, phi(rel[r], x[j])> (edge k is visited once)
//       partial[t][r]  += w_e * J_rel(phi)^T g_e   (per-thread, summed at the end)
//
// Messages are computed as w * (phi) with the same operation order as the
// reference and built with -ffp-contract=off, so max/min ties resolve identically.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

enum MessageCode : int { MSG_NONE = 0, MSG_ADD = 1, MSG_MUL = 2, MSG_ROTATE = 3 };
enum ReduceCode : int { RED_SUM = 0, RED_MEAN = 1, RED_MAX = 2, RED_MIN = 3, RED_PNA = 4 };

struct Layout {
  int64_t D;        // features per node = B * d
  int64_t B;        // queries
  int64_t d;        // block width
  int64_t rstride;  // column offset between query blocks of rel (0: shared)
  int64_t rwidth;   // columns of rel
};

// m = w * phi(rel, x) for all D features: written into out, or added to it (kAdd).
template <typename T, int M, bool kAdd = false>
inline void message(const T* __restrict x, const T* __restrict r, T w, T* __restrict out,
                    const Layout& L) {
  const int64_t d = L.d;
  for (int64_t b = 0; b < L.B; ++b) {
    const T* __restrict xb = x + b * d;
    const T* __restrict rb = r + b * L.rstride;
    T* __restrict ob = out + b * d;
    if constexpr (M == MSG_NONE) {
      for (int64_t f = 0; f < d; ++f) { const T v = w * xb[f]; ob[f] = kAdd ? ob[f] + v : v; }
    } else if constexpr (M == MSG_ADD) {
      for (int64_t f = 0; f < d; ++f) { const T v = w * (rb[f] + xb[f]); ob[f] = kAdd ? ob[f] + v : v; }
    } else if constexpr (M == MSG_MUL) {
      for (int64_t f = 0; f < d; ++f) { const T v = w * (rb[f] * xb[f]); ob[f] = kAdd ? ob[f] + v : v; }
    } else {
      const int64_t h = d / 2;
      for (int64_t f = 0; f < h; ++f) {
        const T xr = xb[f], xi = xb[f + h], rr = rb[f], ri = rb[f + h];
        const T re = w * (xr * rr - xi * ri), im = w * (xr * ri + xi * rr);
        ob[f] = kAdd ? ob[f] + re : re;
        ob[f + h] = kAdd ? ob[f + h] + im : im;
      }
    }
  }
}

// Backward of one edge e = (j -> i, r) in one pass over the features, given
// g = d loss / d m_e with m_e = w * phi(rel_r, x_j):
//   gx   += w * J_x(phi)^T g        gr += w * J_rel(phi)^T g
//   returns <g, phi> = d loss / d w
// g is formed on the fly:
//   kPna = false:  g = ga * scale                  (sum: grad_out[i]; mean: scale 1/n)
//   kPna = true:   g = ga + gb * m_e               (PNA's mean/std terms: A_i + Bc_i m_e)
// gx / gr may point at scratch when their gradient is not wanted. With a shared
// rel (rstride 0) the B query blocks accumulate into the same gr entries.
template <typename T, int M, bool kPna>
inline T edge_backward(const T* __restrict x, const T* __restrict r, const T* __restrict ga,
                       const T* __restrict gb, T scale, T w, T* __restrict gx,
                       T* __restrict gr, const Layout& L) {
  const int64_t d = L.d;
  T dw = 0;
  for (int64_t b = 0; b < L.B; ++b) {
    const T* __restrict xb = x + b * d;
    const T* __restrict rb = r + b * L.rstride;
    const T* __restrict gab = ga + b * d;
    const T* __restrict gbb = kPna ? gb + b * d : ga;
    T* __restrict gxb = gx + b * d;
    T* __restrict grb = gr + b * L.rstride;
    if constexpr (M == MSG_NONE) {
#pragma omp simd reduction(+ : dw)
      for (int64_t f = 0; f < d; ++f) {
        const T phi = xb[f];
        const T gv = kPna ? gab[f] + gbb[f] * (w * phi) : gab[f] * scale;
        dw += gv * phi;
        gxb[f] += w * gv;
      }
    } else if constexpr (M == MSG_ADD) {
#pragma omp simd reduction(+ : dw)
      for (int64_t f = 0; f < d; ++f) {
        const T phi = rb[f] + xb[f];
        const T gv = kPna ? gab[f] + gbb[f] * (w * phi) : gab[f] * scale;
        dw += gv * phi;
        gxb[f] += w * gv;
        grb[f] += w * gv;
      }
    } else if constexpr (M == MSG_MUL) {
#pragma omp simd reduction(+ : dw)
      for (int64_t f = 0; f < d; ++f) {
        const T xv = xb[f], rv = rb[f];
        const T phi = rv * xv;
        const T gv = kPna ? gab[f] + gbb[f] * (w * phi) : gab[f] * scale;
        dw += gv * phi;
        gxb[f] += w * (rv * gv);
        grb[f] += w * (xv * gv);
      }
    } else {
      const int64_t h = d / 2;
#pragma omp simd reduction(+ : dw)
      for (int64_t f = 0; f < h; ++f) {
        const T xr = xb[f], xi = xb[f + h], rr = rb[f], ri = rb[f + h];
        const T p_re = xr * rr - xi * ri, p_im = xr * ri + xi * rr;
        const T g_re = kPna ? gab[f] + gbb[f] * (w * p_re) : gab[f] * scale;
        const T g_im = kPna ? gab[f + h] + gbb[f + h] * (w * p_im) : gab[f + h] * scale;
        dw += g_re * p_re + g_im * p_im;
        gxb[f] += w * (g_re * rr + g_im * ri);
        gxb[f + h] += w * (g_im * rr - g_re * ri);
        grb[f] += w * (g_re * xr + g_im * xi);
        grb[f + h] += w * (g_im * xr - g_re * xi);
      }
    }
  }
  return dw;
}

// edge_backward for MSG_MUL with one relation row shared by the B query blocks
// (rstride 0) and a dense g = ga * scale (sum, mean). The generic loop nests f < d
// inside b < B, so for small d (the sheaf layer's stalks: d = 4 or 8) every block
// ends in a horizontal sum for dw and a dependent add into the same d entries of gr.
// Here the relation row is repeated to D (rexp), one loop over all D features
// updates gx and collects x * g (tmp), and tmp is folded into gr in kFold-wide
// independent lanes when d divides kFold. Same sums, another order.
template <typename T>
inline T edge_backward_shared_mul(const T* __restrict x, const T* __restrict r,
                                  const T* __restrict ga, T scale, T w, T* __restrict gx,
                                  T* __restrict gr, const Layout& L, T* __restrict rexp,
                                  T* __restrict tmp) {
  constexpr int64_t kFold = 16;
  const int64_t d = L.d, D = L.D;
  for (int64_t b = 0; b < L.B; ++b) std::copy(r, r + d, rexp + b * d);
  T dw = 0;
#pragma omp simd reduction(+ : dw)
  for (int64_t c = 0; c < D; ++c) {
    const T gv = ga[c] * scale, xv = x[c], rv = rexp[c];
    dw += gv * (rv * xv);
    gx[c] += w * (rv * gv);
    tmp[c] = xv * gv;
  }
  if (kFold % d == 0 && D % kFold == 0) {
    T acc[kFold] = {};
    for (int64_t c = 0; c < D; c += kFold) {
#pragma omp simd
      for (int64_t l = 0; l < kFold; ++l) acc[l] += tmp[c + l];
    }
    for (int64_t l = 0; l < kFold; ++l) gr[l % d] += w * acc[l];
  } else {
    for (int64_t b = 0; b < L.B; ++b)
      for (int64_t f = 0; f < d; ++f) gr[f] += w * tmp[b * d + f];
  }
  return dw;
}

// The same for the sparse max/min part: n pairs (feature, gradient), the feature
// encoded as (block b << 16) | f. Touches only the features concerned.
template <typename T, int M>
inline T sparse_edge_backward(const T* __restrict x, const T* __restrict r,
                              const int32_t* __restrict code, const T* __restrict val, int64_t n,
                              T w, T* __restrict gx, T* __restrict gr, const Layout& L) {
  const int64_t d = L.d, h = d / 2;
  T dw = 0;
  for (int64_t p = 0; p < n; ++p) {
    const int64_t b = code[p] >> 16, f = code[p] & 0xffff;
    const int64_t c = b * d + f, rc = b * L.rstride + f;
    const T v = val[p];
    if constexpr (M == MSG_NONE) {
      dw += v * x[c];
      gx[c] += w * v;
    } else if constexpr (M == MSG_ADD) {
      dw += v * (r[rc] + x[c]);
      gx[c] += w * v;
      gr[rc] += w * v;
    } else if constexpr (M == MSG_MUL) {
      const T xv = x[c], rv = r[rc];
      dw += v * (rv * xv);
      gx[c] += w * (rv * v);
      gr[rc] += w * (xv * v);
    } else {
      const bool imag = f >= h;
      const int64_t c_re = imag ? c - h : c, rc_re = imag ? rc - h : rc;
      const T xr = x[c_re], xi = x[c_re + h], rr = r[rc_re], ri = r[rc_re + h];
      if (!imag) {  // g = (v, 0)
        dw += v * (xr * rr - xi * ri);
        gx[c_re] += w * (v * rr);
        gx[c_re + h] += w * (-(v * ri));
        gr[rc_re] += w * (v * xr);
        gr[rc_re + h] += w * (-(v * xi));
      } else {  // g = (0, v)
        dw += v * (xr * ri + xi * rr);
        gx[c_re] += w * (v * ri);
        gx[c_re + h] += w * (v * rr);
        gr[rc_re] += w * (v * xi);
        gr[rc_re + h] += w * (v * xr);
      }
    }
  }
  return dw;
}

// Software prefetch of a row that the next edge will gather (the rows are random,
// so the hardware prefetcher only catches up after the first misses).
inline void prefetch_row(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
}

// Chunk boundaries over rows [0, V) with about equal (edges + rows) per chunk.
std::vector<int64_t> balanced_chunks(const int64_t* ptr, int64_t V, int64_t chunks) {
  const int64_t E = ptr[V];
  const double total = static_cast<double>(E + V);
  std::vector<int64_t> bounds(chunks + 1);
  bounds[0] = 0;
  for (int64_t c = 1; c < chunks; ++c) {
    const double target = total * static_cast<double>(c) / static_cast<double>(chunks);
    int64_t lo = bounds[c - 1], hi = V;  // first i with ptr[i] + i >= target
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (static_cast<double>(ptr[mid] + mid) < target) lo = mid + 1; else hi = mid;
    }
    bounds[c] = lo;
  }
  bounds[chunks] = V;
  return bounds;
}

// One chunk per thread; a single chunk (run inline, no thread wake-up) for small work.
int64_t num_chunks(int64_t V, int64_t E, int64_t D) {
  if ((E + V) * std::max<int64_t>(D, 1) < (int64_t(1) << 15)) return 1;
  return std::max<int64_t>(1, std::min<int64_t>(V, at::get_num_threads()));
}

template <typename T>
struct Forward {
  const int64_t* rowptr;
  const int64_t* col;
  const int64_t* etype;
  const T* x;
  const T* rel;     // nullptr for MSG_NONE
  const T* weight;  // nullptr: all ones
  T* out;
  int32_t* arg;     // max/min, when a backward can follow: argmax or argmin; else nullptr
  uint8_t* varpos;  // pna, when a backward can follow: var > 0 (0 or 1); else nullptr
  int64_t rows;     // CSR rows = output rows (targets); may be fewer than the rows of x
  T eps;
  Layout L;
};

// Branch-free select of an int32 index, written so that GCC if-converts and
// vectorises the loops (a plain `c ? kk : a[f]` store is left as control flow).
inline int32_t pick(bool c, int32_t if_true, int32_t if_false) {
  const int32_t mask = -static_cast<int32_t>(c);
  return (if_true & mask) | (if_false & ~mask);
}

// The reduction loops live in small functions with __restrict parameters: GCC
// drops aliasing assumptions for locals more readily than for parameters, and
// these loops only vectorise when it knows the streams are disjoint.
template <typename T, bool kMax>
inline void extreme_update(const T* __restrict m, T* __restrict acc, int32_t* __restrict arg,
                           int64_t D, int32_t k) {
  for (int64_t f = 0; f < D; ++f) {
    const T v = m[f], cur = acc[f];
    const bool better = kMax ? v > cur : v < cur;  // strict: the first extreme edge wins
    acc[f] = better ? v : cur;
    arg[f] = pick(better, k, arg[f]);
  }
}

// Value-only variants, when no backward will need the arguments (inference or pna).
template <typename T, bool kMax>
inline void extreme_update_value(const T* __restrict m, T* __restrict acc, int64_t D) {
  for (int64_t f = 0; f < D; ++f) {
    const T v = m[f], cur = acc[f];
    acc[f] = (kMax ? v > cur : v < cur) ? v : cur;
  }
}

// PNA's variance uses sums shifted by the row's first message K (as the reference):
// var = E[(m - K)^2] - E[m - K]^2, which does not cancel when |mean| >> spread.
template <typename T>
inline void pna_update_value(const T* __restrict m, const T* __restrict shift,
                             T* __restrict sum, T* __restrict dsum, T* __restrict sq,
                             T* __restrict hi, T* __restrict lo, int64_t D) {
  for (int64_t f = 0; f < D; ++f) {
    const T v = m[f], h = hi[f], l = lo[f], e = v - shift[f];
    sum[f] += v;
    dsum[f] += e;
    sq[f] += e * e;
    hi[f] = v > h ? v : h;
    lo[f] = v < l ? v : l;
  }
}

// One query block of PNA's output: [mean | max | min | std], std = sqrt(relu(var) + eps).
template <typename T, bool kVarpos>
inline void pna_finalize(const T* __restrict sum, const T* __restrict dsum, const T* __restrict sq,
                         const T* __restrict hi, const T* __restrict lo, T* __restrict ob,
                         uint8_t* __restrict varpos, int64_t d, T n, T eps) {
  for (int64_t f = 0; f < d; ++f) {
    const T mean = sum[f] / n, dmean = dsum[f] / n;
    const T var = sq[f] / n - dmean * dmean;
    const bool pos = var > T(0);
    ob[f] = mean;
    ob[d + f] = hi[f];
    ob[2 * d + f] = lo[f];
    ob[3 * d + f] = std::sqrt((pos ? var : T(0)) + eps);
    if constexpr (kVarpos) varpos[f] = static_cast<uint8_t>(pos);
  }
}

// PNA's dense gradient coefficients for one block (see route_extremes):
// gb = grad_out block, ob = saved [mean|max|min|std] block.
template <typename T>
inline void pna_coef(const T* __restrict gb, const T* __restrict ob,
                     const uint8_t* __restrict varpos, T* __restrict A, T* __restrict Bc,
                     int64_t d, T n) {
  for (int64_t f = 0; f < d; ++f) {
    const T g_mean = gb[f], g_sd = gb[3 * d + f], mean = ob[f], sd = ob[3 * d + f];
    // d std / d m_e = [var > 0] (m_e - mean) / (n std)
    const T slope = g_sd / (n * sd);
    const T bc = varpos[f] != 0 ? slope : T(0);
    Bc[f] = bc;
    A[f] = g_mean / n - bc * mean;
  }
}

template <typename T, int M, int R>
void forward_impl(const Forward<T>& a) {
  const Layout L = a.L;
  const int64_t D = L.D, d = L.d;
  const int64_t out_width = (R == RED_PNA) ? 4 * D : D;
  const int64_t E = a.rowptr[a.rows];
  const int64_t chunks = num_chunks(a.rows, E, L.D);
  const std::vector<int64_t> bounds = balanced_chunks(a.rowptr, a.rows, chunks);
  constexpr int64_t kTile = 512;
  const int64_t tile_blocks = std::max<int64_t>(1, std::min<int64_t>(L.B, kTile / std::max<int64_t>(d, 1)));
  const int64_t tile = std::max<int64_t>(tile_blocks * d, 1);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    // Scratch: the message, and PNA's sum / shift / shifted sum / shifted sum of squares /
    // max / min, each one tile.
    const int64_t nbuf = (R == RED_PNA) ? 7 : 1;
    std::vector<T> scratch(nbuf * tile);
    T* __restrict m = scratch.data();
    T* __restrict acc_s = m + tile;
    T* __restrict acc_q = m + 2 * tile;
    T* __restrict acc_x = m + 3 * tile;
    T* __restrict acc_n = m + 4 * tile;
    T* __restrict acc_k = m + 5 * tile;
    T* __restrict acc_d = m + 6 * tile;
    for (int64_t i = bounds[c0]; i < bounds[c1]; ++i) {
      const int64_t start = a.rowptr[i], end = a.rowptr[i + 1];
      T* __restrict o = a.out + i * out_width;
      if (start == end) {  // no in-edges: every statistic is 0
        std::fill(o, o + out_width, T(0));
        if (a.arg) std::fill(a.arg + i * D, a.arg + (i + 1) * D, -1);
        if (a.varpos) std::fill(a.varpos + i * D, a.varpos + (i + 1) * D, uint8_t(0));
        continue;
      }
      if constexpr (R == RED_SUM || R == RED_MEAN) {
        // Accumulate straight into the output row (0 + m_0 + m_1 + ..., like index_add_).
        std::fill(o, o + D, T(0));
        for (int64_t k = start; k < end; ++k) {
          if (k + 1 < E) prefetch_row(a.x + a.col[k + 1] * D, D * sizeof(T));
          const T w = a.weight ? a.weight[k] : T(1);
          const T* r = (M == MSG_NONE) ? a.x : a.rel + a.etype[k] * L.rwidth;
          message<T, M, true>(a.x + a.col[k] * D, r, w, o, L);
        }
      } else {
        // max/min/pna keep several D-wide accumulators: walk the features in tiles of
        // whole query blocks (about kTile features) so that they stay in L1.
        for (int64_t b0 = 0; b0 < L.B; b0 += tile_blocks) {
          Layout Lt = L;
          Lt.B = std::min(tile_blocks, L.B - b0);
          const int64_t f0 = b0 * d, tw = Lt.B * d;
          T* acc = (R == RED_PNA) ? acc_s : o + f0;
          int32_t* t_arg = a.arg ? a.arg + i * D + f0 : nullptr;
          for (int64_t k = start; k < end; ++k) {
            if (k + 1 < end) prefetch_row(a.x + a.col[k + 1] * D + f0, tw * sizeof(T));
            const T w = a.weight ? a.weight[k] : T(1);
            const T* r = (M == MSG_NONE) ? a.x : a.rel + a.etype[k] * L.rwidth + b0 * L.rstride;
            message<T, M>(a.x + a.col[k] * D + f0, r, w, m, Lt);
            const int32_t kk = static_cast<int32_t>(k);
            if (k == start) {  // the first edge initialises every statistic
              std::copy(m, m + tw, acc);
              if (t_arg) std::fill(t_arg, t_arg + tw, kk);
              if constexpr (R == RED_PNA) {
                std::copy(m, m + tw, acc_x);
                std::copy(m, m + tw, acc_n);
                std::copy(m, m + tw, acc_k);  // the shift: deviations start at 0
                std::fill(acc_d, acc_d + tw, T(0));
                std::fill(acc_q, acc_q + tw, T(0));
              }
            } else if constexpr (R == RED_MAX || R == RED_MIN) {
              if (t_arg) extreme_update<T, R == RED_MAX>(m, acc, t_arg, tw, kk);
              else extreme_update_value<T, R == RED_MAX>(m, acc, tw);
            } else {  // PNA: sum, shifted sums, max, min in one pass
              pna_update_value<T>(m, acc_k, acc_s, acc_d, acc_q, acc_x, acc_n, tw);
            }
          }
          if constexpr (R == RED_PNA) {  // block b of out: [mean | max | min | std]
            const T n = static_cast<T>(end - start);
            uint8_t* vp = a.varpos ? a.varpos + i * D + f0 : nullptr;
            for (int64_t b = 0; b < Lt.B; ++b) {
              const int64_t c = b * d;
              if (vp)  // the mask only when a backward can follow
                pna_finalize<T, true>(acc_s + c, acc_d + c, acc_q + c, acc_x + c, acc_n + c,
                                      o + 4 * (f0 + c), vp + c, d, n, a.eps);
              else
                pna_finalize<T, false>(acc_s + c, acc_d + c, acc_q + c, acc_x + c, acc_n + c,
                                       o + 4 * (f0 + c), nullptr, d, n, a.eps);
            }
          }
        }
      }
      if constexpr (R == RED_MEAN) {
        const T n = static_cast<T>(end - start);
        for (int64_t f = 0; f < D; ++f) o[f] = o[f] / n;
      }
    }
  });
}

template <typename T>
struct Backward {
  const int64_t* rowptr;
  const int64_t* colptr;
  const int64_t* csc_row;
  const int64_t* csc_pos;
  const int64_t* col;
  const int64_t* etype;
  const T* x;
  const T* rel;
  const T* weight;
  const T* out;    // pna: the saved statistics
  const T* grad_out;
  const int32_t* arg;  // max/min: the saved argmax or argmin
  const uint8_t* varpos;
  T* grad_x;       // nullptr: not needed
  T* grad_rel_partial;  // [threads, R, rwidth] or nullptr
  T* grad_w;       // CSR order, or nullptr
  int64_t V;        // sources: rows of x, CSC columns
  int64_t rows;     // targets: CSR rows, rows of out and grad_out
  int64_t rel_rows;
  Layout L;
};

// Storage that is not zeroed: these buffers are written in full before they are
// read, and a zeroing pass over hundreds of MB costs as much as the writes.
template <typename T>
struct Buffer {
  std::unique_ptr<T[]> p;
  void allocate(int64_t n) { p.reset(new T[std::max<int64_t>(n, 1)]); }
  T* data() const { return p.get(); }
  T& operator[](int64_t i) const { return p[i]; }
};

// Marks, per feature not found yet, edge k when its message equals the saved
// extreme; returns how many features are still without an edge.
template <typename T>
inline int64_t mark_first(const T* __restrict m, const T* __restrict ext,
                          int32_t* __restrict arg, int64_t D, int32_t k) {
  int64_t missing = 0;
  for (int64_t f = 0; f < D; ++f) {
    const int32_t cur = arg[f];
    const bool hit = (cur < 0) & (m[f] == ext[f]);
    const int32_t next = pick(hit, k, cur);
    arg[f] = next;
    missing += next < 0;
  }
  return missing;
}

// Target-side preparation of the max/min/pna backward (one pass over the CSR rows).
//
// max/min: the forward saved the arg edges. pna: the forward saved the extremes, not
// their edges; row i recomputes its in-edges' messages in CSR order and takes, per
// feature, the first edge whose message equals the saved max (min): the edge the
// forward's strict comparison kept (same messages, same rounding; a NaN extreme,
// which equals nothing, was kept from the first edge).
//
// max/min send grad_out[i, c] to exactly one edge per (i, c). Rather than having
// every edge scan its target's rows, the pairs (c, gradient) of row i are grouped
// by edge: row i's pairs fill its own segment of `idx`/`val` (D pairs per extreme),
// and edge k's pairs are idx/val[off[k] : off[k + 1]] (k a CSR position), c encoded
// as (block << 16) | feature-in-block. Rows are independent, so the pass is
// parallel and lock-free. The backward then costs max/min O(V*D + E) instead of
// O(E*D) (pna: plus the O(E*D) recomputation).
//
// PNA's mean and std terms are dense: d loss / d m_e = A_i + Bc_i * m_e with
//   Bc_i = [var > 0] g_std / (n std),  A_i = g_mean / n - Bc_i * mean,
// written to coef[i] = [A_i | Bc_i] (2D values).
template <typename T>
struct Routed {
  Buffer<int64_t> off;  // [E + 1]
  Buffer<int32_t> idx;  // feature c = b * d + f, encoded (b << 16) | f
  Buffer<T> val;        // gradient routed to that edge and feature
  Buffer<T> coef;       // pna: [V, 2D]
};

template <typename T, int M, int R>
Routed<T> route_extremes(const Backward<T>& a) {
  const Layout L = a.L;
  const int64_t D = L.D, d = L.d, V = a.rows;  // walks the target rows
  const int64_t E = a.rowptr[V];
  const int64_t out_width = (R == RED_PNA) ? 4 * D : D;
  constexpr int num_args = (R == RED_PNA) ? 2 : 1;  // pna: max and min
  const int64_t per_row = num_args * D;
  Routed<T> rt;
  rt.off.allocate(E + 1);
  // Row bases: per_row pairs for every row with in-edges.
  std::vector<int64_t> base(V + 1);
  base[0] = 0;
  for (int64_t i = 0; i < V; ++i)
    base[i + 1] = base[i] + (a.rowptr[i + 1] > a.rowptr[i] ? per_row : 0);
  rt.idx.allocate(base[V]);
  rt.val.allocate(base[V]);
  if constexpr (R == RED_PNA) rt.coef.allocate(V * 2 * D);
  rt.off[E] = base[V];
  const int64_t chunks = num_chunks(V, E, D);
  const std::vector<int64_t> bounds = balanced_chunks(a.rowptr, V, chunks);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<int64_t> cursor;
    // pna: one message row, the row's saved [max | min], their first edges.
    std::vector<T> scratch((R == RED_PNA) ? 3 * std::max<int64_t>(D, 1) : 0);
    T* m = scratch.data();
    T* ext = m + D;
    std::vector<int32_t> found((R == RED_PNA) ? per_row : 0);
    for (int64_t i = bounds[c0]; i < bounds[c1]; ++i) {
      const int64_t k0 = a.rowptr[i], k1 = a.rowptr[i + 1], n = k1 - k0;
      if (n == 0) continue;
      const T* gi = a.grad_out + i * out_width;
      const int32_t* args = (R == RED_PNA) ? found.data() : a.arg + i * D;
      if constexpr (R == RED_PNA) {
        const T* oi = a.out + i * out_width;
        for (int s = 0; s < num_args; ++s)  // block b = [mean | max | min | std]
          for (int64_t b = 0; b < L.B; ++b)
            std::copy(oi + b * 4 * d + (s + 1) * d, oi + b * 4 * d + (s + 2) * d,
                      ext + s * D + b * d);
        std::fill(found.begin(), found.end(), -1);
        for (int64_t k = k0; k < k1; ++k) {  // the first edge attaining each extreme
          if (k + 1 < k1) prefetch_row(a.x + a.col[k + 1] * D, D * sizeof(T));
          const T w = a.weight ? a.weight[k] : T(1);
          const T* r = (M == MSG_NONE) ? a.x : a.rel + a.etype[k] * L.rwidth;
          message<T, M>(a.x + a.col[k] * D, r, w, m, L);
          int64_t missing = 0;
          for (int s = 0; s < num_args; ++s)
            missing += mark_first<T>(m, ext + s * D, found.data() + s * D, D,
                                     static_cast<int32_t>(k));
          if (missing == 0) break;
        }
        for (int64_t c = 0; c < per_row; ++c)
          if (found[c] < 0) found[c] = static_cast<int32_t>(k0);  // NaN extreme: first edge
      }
      // Counting sort of the row's (c, arg) pairs by edge.
      cursor.assign(n + 1, 0);
      for (int64_t c = 0; c < per_row; ++c) ++cursor[args[c] - k0 + 1];
      for (int64_t e = 0; e < n; ++e) cursor[e + 1] += cursor[e];
      for (int64_t e = 0; e < n; ++e) rt.off[k0 + e] = base[i] + cursor[e];
      for (int s = 0; s < num_args; ++s) {
        const int32_t* arg = args + s * D;
        for (int64_t b = 0; b < L.B; ++b) {
          for (int64_t f = 0; f < d; ++f) {
            const int64_t c = b * d + f;
            const int64_t pos = base[i] + cursor[arg[c] - k0]++;
            const int64_t src = (R == RED_PNA) ? b * 4 * d + (s + 1) * d + f : c;
            rt.idx[pos] = static_cast<int32_t>((b << 16) | f);
            rt.val[pos] = gi[src];
          }
        }
      }
      if constexpr (R == RED_PNA) {
        const T* oi = a.out + i * out_width;
        const uint8_t* vp = a.varpos + i * D;
        T* A = rt.coef.data() + i * 2 * D;
        T* Bc = A + D;
        const T nn = static_cast<T>(n);
        for (int64_t b = 0; b < L.B; ++b) {
          pna_coef<T>(gi + b * 4 * d, oi + b * 4 * d, vp + b * d, A + b * d, Bc + b * d, d, nn);
        }
      }
    }
  });
  return rt;
}

template <typename T, int M, int R>
void backward_impl(const Backward<T>& a) {
  const Layout L = a.L;
  const int64_t D = L.D;
  const int64_t E = a.rowptr[a.rows];
  const int64_t chunks = num_chunks(a.V, E, L.D);
  const std::vector<int64_t> bounds = balanced_chunks(a.colptr, a.V, chunks);
  const int64_t partial_size = a.rel_rows * L.rwidth;
  constexpr bool kRouted = (R == RED_MAX || R == RED_MIN || R == RED_PNA);
  Routed<T> rt;
  if constexpr (kRouted) rt = route_extremes<T, M, R>(a);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    T* grel = a.grad_rel_partial ? a.grad_rel_partial + at::get_thread_num() * partial_size
                                 : nullptr;
    // Sinks for the gradients that are not wanted, [D] and [rwidth].
    const int64_t width = std::max<int64_t>(D, 1);
    std::vector<T> scratch(width + std::max<int64_t>(L.rwidth, 1), T(0));
    T* __restrict sink_x = scratch.data();
    T* __restrict sink_rel = sink_x + width;
    // MSG_MUL with a shared relation row and a dense gradient: edge_backward_shared_mul.
    constexpr bool kSharedCapable = M == MSG_MUL && (R == RED_SUM || R == RED_MEAN);
    const bool shared_mul = kSharedCapable && L.rstride == 0 && L.B > 1;
    std::vector<T> shared_scratch(shared_mul ? 2 * width : 0);
    T* __restrict rexp = shared_scratch.data();
    T* __restrict tmp = rexp + (shared_mul ? width : 0);
    for (int64_t j = bounds[c0]; j < bounds[c1]; ++j) {
      const T* xj = a.x + j * D;
      T* gxj = a.grad_x ? a.grad_x + j * D : sink_x;
      for (int64_t s = a.colptr[j]; s < a.colptr[j + 1]; ++s) {
        const int64_t i = a.csc_row[s];
        const int64_t k = a.csc_pos[s];
        if (s + 1 < E) {  // the next edge's target-side rows
          const int64_t i_next = a.csc_row[s + 1], k_next = a.csc_pos[s + 1];
          if constexpr (R == RED_SUM || R == RED_MEAN) {
            prefetch_row(a.grad_out + i_next * D, D * sizeof(T));
          } else {
            const int64_t p0 = rt.off[k_next], p1 = rt.off[k_next + 1];
            prefetch_row(rt.idx.data() + p0, (p1 - p0) * sizeof(int32_t));
            prefetch_row(rt.val.data() + p0, (p1 - p0) * sizeof(T));
            if constexpr (R == RED_PNA)
              prefetch_row(rt.coef.data() + i_next * 2 * D, 2 * D * sizeof(T));
          }
        }
        const T w = a.weight ? a.weight[k] : T(1);
        // MSG_NONE reads no relation: point at valid memory that is never used.
        const T* r = (M == MSG_NONE) ? xj : a.rel + a.etype[k] * L.rwidth;
        T* gr = grel ? grel + a.etype[k] * L.rwidth : sink_rel;
        T dw = 0;
        if constexpr (R == RED_SUM || R == RED_MEAN) {
          const T scale = (R == RED_MEAN) ? T(1) / static_cast<T>(a.rowptr[i + 1] - a.rowptr[i])
                                          : T(1);
          if (kSharedCapable && shared_mul)
            dw = edge_backward_shared_mul<T>(xj, r, a.grad_out + i * D, scale, w, gxj, gr, L,
                                             rexp, tmp);
          else
            dw = edge_backward<T, M, false>(xj, r, a.grad_out + i * D, nullptr, scale, w, gxj,
                                            gr, L);
        } else if constexpr (R == RED_PNA) {  // dense mean/std terms: A_i + Bc_i * m_e
          const T* A = rt.coef.data() + i * 2 * D;
          dw = edge_backward<T, M, true>(xj, r, A, A + D, T(1), w, gxj, gr, L);
        }
        if constexpr (kRouted) {  // max/min pairs routed to this edge
          const int64_t p0 = rt.off[k];
          dw += sparse_edge_backward<T, M>(xj, r, rt.idx.data() + p0, rt.val.data() + p0,
                                           rt.off[k + 1] - p0, w, gxj, gr, L);
        }
        if (a.grad_w) a.grad_w[k] = dw;
      }
    }
  });
}

template <typename F>
void dispatch_message(int64_t code, F&& f) {
  switch (code) {
    case MSG_NONE: f(std::integral_constant<int, MSG_NONE>{}); break;
    case MSG_ADD: f(std::integral_constant<int, MSG_ADD>{}); break;
    case MSG_MUL: f(std::integral_constant<int, MSG_MUL>{}); break;
    case MSG_ROTATE: f(std::integral_constant<int, MSG_ROTATE>{}); break;
    default: TORCH_CHECK(false, "rspmm: unknown message code ", code);
  }
}

template <typename F>
void dispatch_reduce(int64_t code, F&& f) {
  switch (code) {
    case RED_SUM: f(std::integral_constant<int, RED_SUM>{}); break;
    case RED_MEAN: f(std::integral_constant<int, RED_MEAN>{}); break;
    case RED_MAX: f(std::integral_constant<int, RED_MAX>{}); break;
    case RED_MIN: f(std::integral_constant<int, RED_MIN>{}); break;
    case RED_PNA: f(std::integral_constant<int, RED_PNA>{}); break;
    default: TORCH_CHECK(false, "rspmm: unknown reduce code ", code);
  }
}

void check_index(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kLong && t.is_contiguous(),
              "rspmm: ", name, " must be a contiguous int64 CPU tensor");
}

void check_value(const torch::Tensor& t, const torch::Tensor& x, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == x.scalar_type() && t.is_contiguous(),
              "rspmm: ", name, " must be a contiguous CPU tensor of dtype ", x.scalar_type());
}

Layout make_layout(const torch::Tensor& x, const std::optional<torch::Tensor>& rel, int64_t B,
                   int64_t d, int64_t rstride, int64_t red) {
  Layout L{x.size(1), B, d, rstride, rel ? rel->size(1) : 0};
  TORCH_CHECK(B * d == L.D, "rspmm: batch ", B, " x block ", d, " != width ", L.D);
  // max/min/pna route (block, feature) pairs packed into 16 + 16 bits.
  TORCH_CHECK(red == RED_SUM || red == RED_MEAN || (B < (1 << 15) && d < (1 << 16)),
              "rspmm: max/min/pna support batch_size < 32768 and block width < 65536, got ",
              B, " and ", d);
  return L;
}

std::vector<torch::Tensor> rspmm_forward(torch::Tensor rowptr, torch::Tensor col,
                                         torch::Tensor etype, torch::Tensor x,
                                         std::optional<torch::Tensor> rel,
                                         std::optional<torch::Tensor> weight, int64_t msg,
                                         int64_t red, int64_t B, int64_t d, int64_t rstride,
                                         double eps, bool for_backward) {
  check_index(rowptr, "rowptr");
  check_index(col, "col");
  check_index(etype, "edge_type");
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2,
              "rspmm: x must be a contiguous 2-D CPU tensor");
  if (msg != MSG_NONE) {
    TORCH_CHECK(rel.has_value(), "rspmm: this message needs rel");
    check_value(*rel, x, "rel");
  }
  if (weight) check_value(*weight, x, "edge_weight");
  TORCH_CHECK(col.numel() < (int64_t(1) << 31), "rspmm: more than 2^31 - 1 edges");
  TORCH_CHECK(rowptr.numel() >= 1, "rspmm: rowptr must have at least one entry");
  const int64_t rows = rowptr.numel() - 1;  // targets; sources are the rows of x
  const Layout L = make_layout(x, rel, B, d, rstride, red);
  const int64_t out_width = red == RED_PNA ? 4 * L.D : L.D;
  auto out = torch::empty({rows, out_width}, x.options());
  torch::Tensor arg, varpos;
  if ((red == RED_MAX || red == RED_MIN) && for_backward) {
    arg = torch::empty({rows, L.D}, x.options().dtype(torch::kInt));
  }
  if (red == RED_PNA && for_backward) {
    varpos = torch::empty({rows, L.D}, x.options().dtype(torch::kByte));
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rspmm_forward", [&] {
    Forward<scalar_t> a{rowptr.data_ptr<int64_t>(),
                        col.data_ptr<int64_t>(),
                        etype.data_ptr<int64_t>(),
                        x.data_ptr<scalar_t>(),
                        msg != MSG_NONE ? rel->data_ptr<scalar_t>() : nullptr,
                        weight ? weight->data_ptr<scalar_t>() : nullptr,
                        out.data_ptr<scalar_t>(),
                        arg.defined() ? arg.data_ptr<int32_t>() : nullptr,
                        varpos.defined() ? varpos.data_ptr<uint8_t>() : nullptr,
                        rows,
                        static_cast<scalar_t>(eps),
                        L};
    dispatch_message(msg, [&](auto mc) {
      dispatch_reduce(red, [&](auto rc) {
        forward_impl<scalar_t, decltype(mc)::value, decltype(rc)::value>(a);
      });
    });
  });
  return {out, arg, varpos};
}

std::vector<torch::Tensor> rspmm_backward(
    torch::Tensor rowptr, torch::Tensor colptr, torch::Tensor csc_row, torch::Tensor csc_pos,
    torch::Tensor col, torch::Tensor etype, torch::Tensor x, std::optional<torch::Tensor> rel,
    std::optional<torch::Tensor> weight, std::optional<torch::Tensor> out,
    torch::Tensor grad_out, std::optional<torch::Tensor> arg,
    std::optional<torch::Tensor> varpos, int64_t msg, int64_t red, int64_t B, int64_t d,
    int64_t rstride, bool need_x, bool need_rel, bool need_w) {
  check_index(rowptr, "rowptr");
  check_index(colptr, "colptr");
  check_index(csc_row, "csc_row");
  check_index(csc_pos, "csc_pos");
  check_index(col, "col");
  check_index(etype, "edge_type");
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && x.dim() == 2,
              "rspmm: x must be a contiguous 2-D CPU tensor");
  check_value(grad_out, x, "grad_out");
  if (msg != MSG_NONE) check_value(*rel, x, "rel");
  if (weight) check_value(*weight, x, "edge_weight");
  if (red == RED_MAX || red == RED_MIN) {
    TORCH_CHECK(arg && arg->scalar_type() == torch::kInt && arg->is_contiguous(),
                "rspmm: max/min backward needs the saved arg (int32)");
  }
  if (red == RED_PNA) {
    TORCH_CHECK(out.has_value(), "rspmm: pna backward needs the saved output");
    check_value(*out, x, "out");
    TORCH_CHECK(varpos && varpos->scalar_type() == torch::kByte && varpos->is_contiguous(),
                "rspmm: pna backward needs the saved var > 0 mask (uint8)");
  }
  const int64_t V = x.size(0);
  const int64_t rows = rowptr.numel() - 1;
  TORCH_CHECK(colptr.numel() == V + 1, "rspmm: colptr must have x.size(0) + 1 entries");
  TORCH_CHECK(rows >= 0 && grad_out.dim() == 2 && grad_out.size(0) == rows,
              "rspmm: grad_out must have one row per target (rowptr.numel() - 1)");
  const Layout L = make_layout(x, rel, B, d, rstride, red);
  need_rel = need_rel && msg != MSG_NONE;
  need_w = need_w && weight.has_value();
  torch::Tensor grad_x, grad_rel, grad_w, partial;
  if (need_x) grad_x = torch::zeros_like(x);
  if (need_w) grad_w = torch::empty({csc_pos.numel()}, x.options());
  const int64_t rel_rows = need_rel ? rel->size(0) : 0;
  if (need_rel) partial = torch::zeros({at::get_num_threads(), rel_rows, L.rwidth}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rspmm_backward", [&] {
    Backward<scalar_t> a{rowptr.data_ptr<int64_t>(),
                         colptr.data_ptr<int64_t>(),
                         csc_row.data_ptr<int64_t>(),
                         csc_pos.data_ptr<int64_t>(),
                         col.data_ptr<int64_t>(),
                         etype.data_ptr<int64_t>(),
                         x.data_ptr<scalar_t>(),
                         msg != MSG_NONE ? rel->data_ptr<scalar_t>() : nullptr,
                         weight ? weight->data_ptr<scalar_t>() : nullptr,
                         red == RED_PNA ? out->data_ptr<scalar_t>() : nullptr,
                         grad_out.data_ptr<scalar_t>(),
                         arg ? arg->data_ptr<int32_t>() : nullptr,
                         varpos ? varpos->data_ptr<uint8_t>() : nullptr,
                         need_x ? grad_x.data_ptr<scalar_t>() : nullptr,
                         need_rel ? partial.data_ptr<scalar_t>() : nullptr,
                         need_w ? grad_w.data_ptr<scalar_t>() : nullptr,
                         V,
                         rows,
                         rel_rows,
                         L};
    dispatch_message(msg, [&](auto mc) {
      dispatch_reduce(red, [&](auto rc) {
        backward_impl<scalar_t, decltype(mc)::value, decltype(rc)::value>(a);
      });
    });
  });
  if (need_rel) grad_rel = partial.sum(0);
  return {grad_x, grad_rel, grad_w};
}

}  // namespace

void register_sheaf(pybind11::module_& m);  // sheaf.cpp

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "graphlearn fused generalized relational SpMM (CPU)";
  m.def("forward", &rspmm_forward,
        "rspmm forward -> [out, arg (max/min), varpos (pna)]; the last two for a backward");
  m.def("backward", &rspmm_backward, "rspmm backward -> [grad_x, grad_rel, grad_w (CSR order)]");
  register_sheaf(m);
}
