// Fused sheaf-Laplacian kernels for full d x d restriction maps (graphlearn.ops.sheaf,
// backend "cpu"). The specification is graphlearn/ops/sheaf.py (plain PyTorch).
//
// Maps F [E, 2, d, d]: F[e, 0] = F_{row(e) <| e}, F[e, 1] = F_{col(e) <| e}.
// Node signals x [N, d, f]. The coboundary of x on edge e is
//
//   r_e = F[e, 0] x_row - F[e, 1] x_col                    (d x f)
//
// and the (unnormalised) sheaf Laplacian is L_F = delta^T delta:
//
//   (L_F x)_v = sum_{e: v = row} F[e,0]^T r_e - sum_{e: v = col} F[e,1]^T r_e.
//
// This form needs neither the off-diagonal blocks -F_v^T F_u nor the diagonal blocks
// sum F_v^T F_v: per edge two (d x d)(d x f) products forward. No atomics: while
// threads * N * d * f values fit the caller's budget, one pass over the edges adds
// into per-thread [N, d, f] partials (maps read once); beyond it, the coboundary is
// stored and the node sums run over the incidence CSR of sheaf_graph (rowptr by node;
// perm[p] = k, the directed edge: k < E is row(k) <| k, k >= E is col(k - E) <| (k - E)).
//
// Backward of L = <g, L_F x> = <delta g, delta x>, with s_e = (delta g)_e:
//   grad x        = L_F g = delta^T s
//   grad F[e, 0]  =   r_e g_row^T + s_e x_row^T
//   grad F[e, 1]  = -(r_e g_col^T + s_e x_col^T)
//
// The degree kernel: D_v = sum_{incidences i of v} F_i^T F_i ([N, d, d]); its
// backward is grad F_i = F_i (G_v + G_v^T).
//
// The Householder kernel (the orthogonal maps): Q = H_1 ... H_k per matrix, forward
// and backward in O(k d^2) per matrix, without the batched products of the WY form.
// The matrix-exponential kernel (the orthogonal_exp maps): Taylor scaling and squaring
// per matrix, forward and its exact adjoint, in thread-local buffers.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

namespace {

constexpr int64_t kEdgeGrain = 512;
constexpr int64_t kNodeGrain = 32;

void check_long(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kLong && t.is_contiguous(),
              "sheaf: ", name, " must be a contiguous int64 CPU tensor");
}

void check_like(const torch::Tensor& t, const torch::Tensor& ref, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == ref.scalar_type() && t.is_contiguous(),
              "sheaf: ", name, " must be a contiguous CPU tensor of dtype ", ref.scalar_type());
}

// Stalk dimension d and channels f: compile-time for the common shapes (the loops
// unroll and vectorise), runtime otherwise (kD or kF = 0).
template <int kD, int kF>
struct Dims {
  int64_t d_, f_;
  inline int64_t d() const { return kD > 0 ? kD : d_; }
  inline int64_t f() const { return kF > 0 ? kF : f_; }
};

// One edge's coboundary r = F_a xa - F_b xb (d x f) into re.
template <typename T, int kD, int kF>
inline void edge_coboundary(const T* __restrict fa, const T* __restrict fb,
                            const T* __restrict xa, const T* __restrict xb, T* __restrict re,
                            Dims<kD, kF> dims) {
  // j outer: the d rows of r are independent accumulators (no add-latency chain)
  const int64_t d = dims.d(), f = dims.f();
  for (int64_t t = 0; t < d * f; ++t) re[t] = T(0);
  for (int64_t j = 0; j < d; ++j) {
    const T* __restrict xaj = xa + j * f;
    const T* __restrict xbj = xb + j * f;
    for (int64_t i = 0; i < d; ++i) {
      const T a = fa[i * d + j], b = fb[i * d + j];
      T* __restrict ri = re + i * f;
      for (int64_t k = 0; k < f; ++k) ri[k] += a * xaj[k] - b * xbj[k];
    }
  }
}

// out += sign F^T re (d x f).
template <typename T, int kD, int kF>
inline void add_transposed(const T* __restrict fi, const T* __restrict re, T sign,
                           T* __restrict out, Dims<kD, kF> dims) {
  const int64_t d = dims.d(), f = dims.f();
  for (int64_t i = 0; i < d; ++i) {
    const T* __restrict ri = re + i * f;
    for (int64_t j = 0; j < d; ++j) {
      const T c = sign * fi[i * d + j];
      T* __restrict oj = out + j * f;
      for (int64_t q = 0; q < f; ++q) oj[q] += c * ri[q];
    }
  }
}

// r_e = F[e,0] x_row - F[e,1] x_col for every edge (parallel over edges).
template <typename T, int kD, int kF>
void coboundary(const T* F, const T* x, const int64_t* row, const int64_t* col, T* r,
                int64_t E, Dims<kD, kF> dims) {
  const int64_t dd = dims.d() * dims.d(), df = dims.d() * dims.f();
  at::parallel_for(0, E, kEdgeGrain, [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      const T* fr = F + 2 * e * dd;
      edge_coboundary(fr, fr + dd, x + row[e] * df, x + col[e] * df, r + e * df, dims);
    }
  });
}

// y_v = sum over v's incidences of +-F_i^T r_e (parallel over nodes, CSR by node).
template <typename T, int kD, int kF>
void coboundary_adjoint(const T* F, const T* r, const int64_t* rowptr, const int64_t* perm,
                        T* y, int64_t N, int64_t E, Dims<kD, kF> dims) {
  const int64_t dd = dims.d() * dims.d(), df = dims.d() * dims.f();
  at::parallel_for(0, N, kNodeGrain, [&](int64_t begin, int64_t end) {
    for (int64_t v = begin; v < end; ++v) {
      T* yv = y + v * df;
      for (int64_t t = 0; t < df; ++t) yv[t] = T(0);
      for (int64_t p = rowptr[v]; p < rowptr[v + 1]; ++p) {
        const int64_t k = perm[p];
        const bool second = k >= E;
        const int64_t e = second ? k - E : k;
        add_transposed(F + (2 * e + (second ? 1 : 0)) * dd, r + e * df,
                       second ? T(-1) : T(1), yv, dims);
      }
    }
  });
}

// One incidence's map gradient, out = sign (r_e g_u^T + s_e x_u^T) (d x d), u the
// incidence's node: accumulated as outer products over the channels,
// out[i, :] += r[i, q] g_u[:, q] + s[i, q] x_u[:, q], with g_u and x_u transposed
// into scratch (gt, xt: f x d) so the inner loop runs over d contiguous.
template <typename T, int kD, int kF>
inline void incidence_map_grad(const T* __restrict re, const T* __restrict se,
                               const T* __restrict xu, const T* __restrict gu, T sign,
                               T* __restrict gt, T* __restrict xt, T* __restrict out,
                               Dims<kD, kF> dims) {
  const int64_t d = dims.d(), f = dims.f();
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t q = 0; q < f; ++q) {
      gt[q * d + j] = gu[j * f + q];
      xt[q * d + j] = xu[j * f + q];
    }
  }
  for (int64_t t = 0; t < d * d; ++t) out[t] = T(0);
  for (int64_t q = 0; q < f; ++q) {  // q outer: the d rows are independent
    const T* __restrict gq = gt + q * d;
    const T* __restrict xq = xt + q * d;
    for (int64_t i = 0; i < d; ++i) {
      const T a = sign * re[i * f + q], b = sign * se[i * f + q];
      T* __restrict oi = out + i * d;
      for (int64_t j = 0; j < d; ++j) oi[j] += a * gq[j] + b * xq[j];
    }
  }
}

// grad F[e, side] for every edge from the stored coboundaries r and s (the CSR path).
template <typename T, int kD, int kF>
void map_grad(const T* r, const T* s, const T* x, const T* g, const int64_t* row,
              const int64_t* col, T* gF, int64_t E, Dims<kD, kF> dims) {
  const int64_t d = dims.d(), f = dims.f(), dd = d * d, df = d * f;
  at::parallel_for(0, E, kEdgeGrain, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(2 * df);
    for (int64_t e = begin; e < end; ++e) {
      for (int side = 0; side < 2; ++side) {
        const int64_t u = side == 0 ? row[e] : col[e];
        incidence_map_grad(r + e * df, s + e * df, x + u * df, g + u * df,
                           side == 0 ? T(1) : T(-1), scratch.data(), scratch.data() + df,
                           gF + (2 * e + side) * dd, dims);
      }
    }
  });
}

// Edge-parallel L_F x in one pass over the maps (each read once): every thread adds
// its edges' F^T r into its own [N, d, f] partial (partial[t]); no coboundary is
// stored. The forward of the small-graph path.
template <typename T, int kD, int kF>
void laplacian_edges(const T* F, const T* x, const int64_t* row, const int64_t* col,
                     T* partial, int64_t N, int64_t E, Dims<kD, kF> dims) {
  const int64_t d = dims.d(), f = dims.f(), dd = d * d, df = d * f;
  at::parallel_for(0, E, kEdgeGrain, [&](int64_t begin, int64_t end) {
    T* y = partial + at::get_thread_num() * N * df;
    std::vector<T> scratch(df);
    T* re = scratch.data();
    for (int64_t e = begin; e < end; ++e) {
      const T* fr = F + 2 * e * dd;
      const T* fc = fr + dd;
      edge_coboundary(fr, fc, x + row[e] * df, x + col[e] * df, re, dims);
      add_transposed(fr, re, T(1), y + row[e] * df, dims);
      add_transposed(fc, re, T(-1), y + col[e] * df, dims);
    }
  });
}

// Its backward in one pass: per edge r (recomputed from x) and s = (delta g)_e, the
// maps' gradient written once, grad x = delta^T s into per-thread partials.
template <typename T, int kD, int kF>
void laplacian_edges_backward(const T* F, const T* x, const T* g, const int64_t* row,
                              const int64_t* col, T* gF, T* partial, int64_t N, int64_t E,
                              Dims<kD, kF> dims) {
  const int64_t d = dims.d(), f = dims.f(), dd = d * d, df = d * f;
  at::parallel_for(0, E, kEdgeGrain, [&](int64_t begin, int64_t end) {
    T* gx = partial != nullptr ? partial + at::get_thread_num() * N * df : nullptr;
    std::vector<T> scratch(4 * df);
    T* re = scratch.data();
    T* se = re + df;
    T* gt = se + df;
    T* xt = gt + df;
    for (int64_t e = begin; e < end; ++e) {
      const T* fr = F + 2 * e * dd;
      const T* fc = fr + dd;
      const int64_t u0 = row[e], u1 = col[e];
      edge_coboundary(fr, fc, g + u0 * df, g + u1 * df, se, dims);
      if (gx != nullptr) {
        add_transposed(fr, se, T(1), gx + u0 * df, dims);
        add_transposed(fc, se, T(-1), gx + u1 * df, dims);
      }
      if (gF == nullptr) continue;
      edge_coboundary(fr, fc, x + u0 * df, x + u1 * df, re, dims);
      for (int side = 0; side < 2; ++side) {
        const int64_t u = side == 0 ? u0 : u1;
        incidence_map_grad(re, se, x + u * df, g + u * df, side == 0 ? T(1) : T(-1), gt, xt,
                           gF + (2 * e + side) * dd, dims);
      }
    }
  });
}

// Per-thread partials are used while they stay small (threads * N * d * f values
// within the caller's byte budget); larger graphs take the CSR path (coboundary
// stored, node sums over the incidence CSR, maps read twice).

// Calls f(Dims<kD, kF>{d, f}) with compile-time sizes for the shipped configs' shapes
// (sheaf_rec 8 x 8, sheaf_gae 4 x 8, ogbl-ddi's sheaf encoder 4 x 64); few of them, to
// keep the build short.
template <typename Fn>
void dispatch_dims(int64_t d, int64_t f, Fn&& fn) {
#define GRAPHLEARN_SHEAF_DIMS(D, F) \
  if (d == D && f == F) return fn(Dims<D, F>{d, f});
  GRAPHLEARN_SHEAF_DIMS(8, 8)
  GRAPHLEARN_SHEAF_DIMS(4, 8)
  GRAPHLEARN_SHEAF_DIMS(4, 64)
#undef GRAPHLEARN_SHEAF_DIMS
  fn(Dims<0, 0>{d, f});
}

// Calls f(Dims<kD, 0>{d, 0}) with a compile-time d for the common stalk dimensions.
template <typename Fn>
void dispatch_d(int64_t d, Fn&& fn) {
  if (d == 2) return fn(Dims<2, 0>{d, 0});
  if (d == 4) return fn(Dims<4, 0>{d, 0});
  if (d == 8) return fn(Dims<8, 0>{d, 0});
  if (d == 16) return fn(Dims<16, 0>{d, 0});
  fn(Dims<0, 0>{d, 0});
}

void check_laplacian_args(const torch::Tensor& maps, const torch::Tensor& x,
                          const torch::Tensor& row, const torch::Tensor& col,
                          const torch::Tensor& rowptr, const torch::Tensor& perm) {
  TORCH_CHECK(maps.dim() == 4 && maps.size(1) == 2 && maps.size(2) == maps.size(3),
              "sheaf: maps must be [E, 2, d, d]");
  TORCH_CHECK(x.dim() == 3 && x.size(1) == maps.size(2), "sheaf: x must be [N, d, f]");
  check_like(maps, x, "maps");
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous(), "sheaf: x must be a contiguous CPU tensor");
  for (auto* t : {&row, &col, &rowptr, &perm}) check_long(*t, "an index");
  TORCH_CHECK(row.numel() == maps.size(0) && col.numel() == maps.size(0) &&
                  perm.numel() == 2 * maps.size(0) && rowptr.numel() == x.size(0) + 1,
              "sheaf: index sizes do not match maps [E, ...] and x [N, ...]");
}

bool use_partials(const torch::Tensor& x, int64_t budget_bytes) {
  return int64_t(at::get_num_threads()) * x.numel() * int64_t(x.element_size()) <=
         budget_bytes;
}

// Sum of the per-thread partials [threads, N, d, f] -> [N, d, f].
torch::Tensor reduce_partials(const torch::Tensor& partial) {
  return partial.size(0) == 1 ? partial[0] : partial.sum(0);
}

// -> [L_F x, r] (r: the coboundary, kept for the backward of the CSR path; undefined
// on the partials path, whose backward recomputes it)
std::vector<torch::Tensor> laplacian_forward(torch::Tensor maps, torch::Tensor x,
                                             torch::Tensor row, torch::Tensor col,
                                             torch::Tensor rowptr, torch::Tensor perm,
                                             int64_t partial_budget_bytes) {
  check_laplacian_args(maps, x, row, col, rowptr, perm);
  const int64_t E = maps.size(0), d = maps.size(2), N = x.size(0), f = x.size(2);
  torch::Tensor y, r;
  if (use_partials(x, partial_budget_bytes)) {
    auto partial = torch::zeros({at::get_num_threads(), N, d, f}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sheaf_laplacian_forward", [&] {
      dispatch_dims(d, f, [&](auto dims) {
        laplacian_edges<scalar_t>(maps.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                  row.data_ptr<int64_t>(), col.data_ptr<int64_t>(),
                                  partial.data_ptr<scalar_t>(), N, E, dims);
      });
    });
    return {reduce_partials(partial), r};
  }
  r = torch::empty({E, d, f}, x.options());
  y = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sheaf_laplacian_forward", [&] {
    dispatch_dims(d, f, [&](auto dims) {
      coboundary<scalar_t>(maps.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                           row.data_ptr<int64_t>(), col.data_ptr<int64_t>(),
                           r.data_ptr<scalar_t>(), E, dims);
      coboundary_adjoint<scalar_t>(maps.data_ptr<scalar_t>(), r.data_ptr<scalar_t>(),
                                   rowptr.data_ptr<int64_t>(), perm.data_ptr<int64_t>(),
                                   y.data_ptr<scalar_t>(), N, E, dims);
    });
  });
  return {y, r};
}

// -> [grad maps (or undefined), grad x (or undefined)]; r undefined: the partials path
std::vector<torch::Tensor> laplacian_backward(torch::Tensor maps, torch::Tensor x,
                                              std::optional<torch::Tensor> r,
                                              torch::Tensor grad, torch::Tensor row,
                                              torch::Tensor col, torch::Tensor rowptr,
                                              torch::Tensor perm, bool need_maps,
                                              bool need_x) {
  check_laplacian_args(maps, x, row, col, rowptr, perm);
  check_like(grad, x, "grad");
  TORCH_CHECK(grad.sizes() == x.sizes(), "sheaf: grad must have x's shape");
  const int64_t E = maps.size(0), d = maps.size(2), N = x.size(0), f = x.size(2);
  torch::Tensor grad_maps, grad_x;
  if (need_maps) grad_maps = torch::empty_like(maps);
  if (!r.has_value() || !r->defined()) {
    torch::Tensor partial;
    if (need_x) partial = torch::zeros({at::get_num_threads(), N, d, f}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sheaf_laplacian_backward", [&] {
      dispatch_dims(d, f, [&](auto dims) {
        laplacian_edges_backward<scalar_t>(
            maps.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
            row.data_ptr<int64_t>(), col.data_ptr<int64_t>(),
            need_maps ? grad_maps.data_ptr<scalar_t>() : nullptr,
            need_x ? partial.data_ptr<scalar_t>() : nullptr, N, E, dims);
      });
    });
    if (need_x) grad_x = reduce_partials(partial);
    return {grad_maps, grad_x};
  }
  check_like(*r, x, "r");
  auto s = torch::empty({E, d, f}, x.options());
  if (need_x) grad_x = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sheaf_laplacian_backward", [&] {
    const scalar_t* F = maps.data_ptr<scalar_t>();
    dispatch_dims(d, f, [&](auto dims) {
      coboundary<scalar_t>(F, grad.data_ptr<scalar_t>(), row.data_ptr<int64_t>(),
                           col.data_ptr<int64_t>(), s.data_ptr<scalar_t>(), E, dims);
      if (need_x) {
        coboundary_adjoint<scalar_t>(F, s.data_ptr<scalar_t>(), rowptr.data_ptr<int64_t>(),
                                     perm.data_ptr<int64_t>(), grad_x.data_ptr<scalar_t>(),
                                     N, E, dims);
      }
      if (need_maps) {
        map_grad<scalar_t>(r->data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                           x.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                           row.data_ptr<int64_t>(), col.data_ptr<int64_t>(),
                           grad_maps.data_ptr<scalar_t>(), E, dims);
      }
    });
  });
  return {grad_maps, grad_x};
}

// D_v = sum_i F_i^T F_i over v's incidences ([N, d, d]).
// c = a b for d x d row-major matrices.
template <typename T, int kD>
inline void mat_mul(const T* __restrict a, const T* __restrict b, T* __restrict c,
                    Dims<kD, 0> dims) {
  const int64_t d = dims.d();
  for (int64_t i = 0; i < d; ++i) {
    T* __restrict ci = c + i * d;
    for (int64_t q = 0; q < d; ++q) ci[q] = T(0);
    for (int64_t j = 0; j < d; ++j) {
      const T aij = a[i * d + j];
      const T* __restrict bj = b + j * d;
      for (int64_t q = 0; q < d; ++q) ci[q] += aij * bj[q];
    }
  }
}

#if defined(__GNUC__)
// 8 x 8 float32 (sheaf_rec's stalks): each row of b in one 8-wide vector, c_i = sum_j
// a_ij b_j. GCC left the loop above scalar here.
typedef float Float8 __attribute__((vector_size(32)));
template <>
inline void mat_mul<float, 8>(const float* __restrict a, const float* __restrict b,
                              float* __restrict c, Dims<8, 0>) {
  Float8 rows[8];
  for (int j = 0; j < 8; ++j) __builtin_memcpy(&rows[j], b + j * 8, sizeof(Float8));
  for (int i = 0; i < 8; ++i) {
    Float8 acc = rows[0] * a[i * 8];
    for (int j = 1; j < 8; ++j) acc += rows[j] * a[i * 8 + j];
    __builtin_memcpy(c + i * 8, &acc, sizeof(Float8));
  }
}
#endif

torch::Tensor degree_forward(torch::Tensor maps, torch::Tensor rowptr, torch::Tensor perm) {
  TORCH_CHECK(maps.dim() == 4 && maps.size(1) == 2 && maps.size(2) == maps.size(3) &&
                  maps.device().is_cpu() && maps.is_contiguous(),
              "sheaf: maps must be a contiguous CPU [E, 2, d, d] tensor");
  check_long(rowptr, "rowptr");
  check_long(perm, "perm");
  TORCH_CHECK(perm.numel() == 2 * maps.size(0), "sheaf: perm must have 2E entries");
  const int64_t E = maps.size(0), N = rowptr.numel() - 1;
  auto D = torch::empty({N, maps.size(2), maps.size(2)}, maps.options());
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "sheaf_degree_forward", [&] {
   dispatch_d(maps.size(2), [&](auto dims) {
    const int64_t d = dims.d(), dd = d * d;
    const scalar_t* F = maps.data_ptr<scalar_t>();
    scalar_t* out = D.data_ptr<scalar_t>();
    const int64_t* ptr = rowptr.data_ptr<int64_t>();
    const int64_t* pm = perm.data_ptr<int64_t>();
    at::parallel_for(0, N, kNodeGrain, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        scalar_t* __restrict dv = out + v * dd;
        for (int64_t t = 0; t < dd; ++t) dv[t] = scalar_t(0);
        for (int64_t p = ptr[v]; p < ptr[v + 1]; ++p) {
          const int64_t k = pm[p];
          const int64_t e = k >= E ? k - E : k;
          const scalar_t* __restrict fi = F + (2 * e + (k >= E ? 1 : 0)) * dd;
          for (int64_t i = 0; i < d; ++i) {  // D += F^T F: D[j, q] += F[i, j] F[i, q]
            const scalar_t* __restrict fr = fi + i * d;
            for (int64_t j = 0; j < d; ++j) {
              const scalar_t a = fr[j];
              scalar_t* __restrict dj = dv + j * d;
              for (int64_t q = 0; q < d; ++q) dj[q] += a * fr[q];
            }
          }
        }
      }
    });
   });
  });
  return D;
}

// grad F_i = F_i (G_v + G_v^T) for every incidence i of node v.
torch::Tensor degree_backward(torch::Tensor maps, torch::Tensor grad, torch::Tensor rowptr,
                              torch::Tensor perm) {
  check_like(grad, maps, "grad");
  check_long(rowptr, "rowptr");
  check_long(perm, "perm");
  const int64_t E = maps.size(0), N = rowptr.numel() - 1;
  TORCH_CHECK(grad.dim() == 3 && grad.size(0) == N && grad.size(1) == maps.size(2) &&
                  grad.size(2) == maps.size(2),
              "sheaf: grad must be [N, d, d]");
  auto gF = torch::empty_like(maps);
  AT_DISPATCH_FLOATING_TYPES(maps.scalar_type(), "sheaf_degree_backward", [&] {
   dispatch_d(maps.size(2), [&](auto dims) {
    const int64_t d = dims.d(), dd = d * d;
    const scalar_t* F = maps.data_ptr<scalar_t>();
    const scalar_t* G = grad.data_ptr<scalar_t>();
    scalar_t* out = gF.data_ptr<scalar_t>();
    const int64_t* ptr = rowptr.data_ptr<int64_t>();
    const int64_t* pm = perm.data_ptr<int64_t>();
    at::parallel_for(0, N, kNodeGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> sym(dd);
      for (int64_t v = begin; v < end; ++v) {
        if (ptr[v] == ptr[v + 1]) continue;
        const scalar_t* gv = G + v * dd;
        for (int64_t j = 0; j < d; ++j)
          for (int64_t q = 0; q < d; ++q) sym[j * d + q] = gv[j * d + q] + gv[q * d + j];
        for (int64_t p = ptr[v]; p < ptr[v + 1]; ++p) {
          const int64_t k = pm[p];
          const int64_t e = k >= E ? k - E : k;
          const int64_t off = (2 * e + (k >= E ? 1 : 0)) * dd;
          mat_mul<scalar_t>(F + off, sym.data(), out + off, dims);
        }
      }
    });
   });
  });
  return gF;
}

// Householder products Q = H_1 ... H_k, H_j = I - tau_j v_j v_j^T, tau_j = 2 / |v_j|^2,
// one d x d matrix per row of V [M, k, d], built in a thread-local buffer: Q <- Q H_j
// is Q - (Q v_j)(tau_j v_j)^T.
template <typename T, int kD>
void householder_forward_impl(const T* V, T* Q, int64_t M, int64_t k, Dims<kD, 0> dims) {
  const int64_t d = dims.d(), dd = d * d;
  at::parallel_for(0, M, 64, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(d);
    T* qv = scratch.data();
    for (int64_t m = begin; m < end; ++m) {
      T* __restrict q = Q + m * dd;
      for (int64_t t = 0; t < dd; ++t) q[t] = T(0);
      for (int64_t r = 0; r < d; ++r) q[r * d + r] = T(1);
      for (int64_t j = 0; j < k; ++j) {
        const T* __restrict v = V + (m * k + j) * d;
        T norm = T(0);
        for (int64_t c = 0; c < d; ++c) norm += v[c] * v[c];
        const T tau = T(2) / norm;
        for (int64_t r = 0; r < d; ++r) {
          T acc = T(0);
          for (int64_t c = 0; c < d; ++c) acc += q[r * d + c] * v[c];
          qv[r] = acc * tau;
        }
        for (int64_t r = 0; r < d; ++r)
          for (int64_t c = 0; c < d; ++c) q[r * d + c] -= qv[r] * v[c];
      }
    }
  });
}

// Backward, O(k d^2) per matrix, walking the reflections from the last:
//   P_k = Q, P_{j-1} = P_j H_j (H_j is an involution); B_k = G, B_{j-1} = B_j H_j.
//   With a = P_{j-1} v = -P_j v and b = B_j v:
//   dL/dv_j = -tau (P_{j-1}^T b + B_j^T a) + tau^2 (a . b) v.
template <typename T, int kD>
void householder_backward_impl(const T* V, const T* Q, const T* G, T* gV, int64_t M,
                               int64_t k, Dims<kD, 0> dims) {
  const int64_t d = dims.d(), dd = d * d;
  at::parallel_for(0, M, 64, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch(2 * dd + 5 * d);
    T* P = scratch.data();
    T* B = P + dd;
    T* pv = B + dd;
    T* bv = pv + d;
    T* ptb = bv + d;
    T* bta = ptb + d;
    T* tv = bta + d;
    for (int64_t m = begin; m < end; ++m) {
      for (int64_t t = 0; t < dd; ++t) {
        P[t] = Q[m * dd + t];
        B[t] = G[m * dd + t];
      }
      for (int64_t j = k - 1; j >= 0; --j) {
        const T* __restrict v = V + (m * k + j) * d;
        T* __restrict gv = gV + (m * k + j) * d;
        T norm = T(0);
        for (int64_t c = 0; c < d; ++c) norm += v[c] * v[c];
        const T tau = T(2) / norm;
        for (int64_t r = 0; r < d; ++r) {
          T p = T(0), b = T(0);
          for (int64_t c = 0; c < d; ++c) {
            p += P[r * d + c] * v[c];
            b += B[r * d + c] * v[c];
          }
          pv[r] = p;  // P_j v = -a
          bv[r] = b;  // B_j v = b
        }
        for (int64_t c = 0; c < d; ++c) tv[c] = tau * v[c];
        // B_j^T a = -B_j^T (P_j v), before B is updated
        for (int64_t c = 0; c < d; ++c) bta[c] = T(0);
        for (int64_t r = 0; r < d; ++r) {
          const T a = -pv[r];
          for (int64_t c = 0; c < d; ++c) bta[c] += B[r * d + c] * a;
        }
        T ab = T(0);
        for (int64_t r = 0; r < d; ++r) ab -= pv[r] * bv[r];
        // P <- P_{j-1} = P_j - (P_j v)(tau v)^T; B <- B_{j-1} = B_j - (B_j v)(tau v)^T
        for (int64_t r = 0; r < d; ++r) {
          for (int64_t c = 0; c < d; ++c) {
            P[r * d + c] -= pv[r] * tv[c];
            B[r * d + c] -= bv[r] * tv[c];
          }
        }
        for (int64_t c = 0; c < d; ++c) ptb[c] = T(0);
        for (int64_t r = 0; r < d; ++r) {
          const T b = bv[r];
          for (int64_t c = 0; c < d; ++c) ptb[c] += P[r * d + c] * b;
        }
        for (int64_t c = 0; c < d; ++c)
          gv[c] = -tau * (ptb[c] + bta[c]) + tau * tau * ab * v[c];
      }
    }
  });
}

#if defined(__GNUC__)
// 8 x 8 float32 (sheaf_rec's stalks): the same steps with each row and each column of
// P, B (and Q) held as 8-wide vectors, so that the products P v, B^T a, P^T b and the
// rank-one updates are vector operations (GCC left the loops above scalar).
inline Float8 load8(const float* p) {
  Float8 v;
  __builtin_memcpy(&v, p, sizeof(Float8));
  return v;
}

inline void store8(float* p, Float8 v) { __builtin_memcpy(p, &v, sizeof(Float8)); }

inline float dot8(Float8 a, Float8 b) {
  const Float8 p = a * b;
  return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

// cols[c] = column c of the row-major 8 x 8 matrix m.
inline void columns8(const float* m, Float8* cols) {
  for (int c = 0; c < 8; ++c)
    for (int r = 0; r < 8; ++r) cols[c][r] = m[r * 8 + c];
}

void householder_forward_f8(const float* V, float* Q, int64_t M, int64_t k) {
  at::parallel_for(0, M, 64, [&](int64_t begin, int64_t end) {
    Float8 cols[8];  // columns of Q
    for (int64_t m = begin; m < end; ++m) {
      for (int c = 0; c < 8; ++c) {
        cols[c] = Float8{};
        cols[c][c] = 1.0f;
      }
      for (int64_t j = 0; j < k; ++j) {
        const Float8 v = load8(V + (m * k + j) * 8);
        const float tau = 2.0f / dot8(v, v);
        Float8 qv = cols[0] * v[0];  // Q v
        for (int c = 1; c < 8; ++c) qv += cols[c] * v[c];
        qv *= tau;
        for (int c = 0; c < 8; ++c) cols[c] -= qv * v[c];  // Q - (tau Q v) v^T
      }
      float* q = Q + m * 64;
      for (int r = 0; r < 8; ++r)
        for (int c = 0; c < 8; ++c) q[r * 8 + c] = cols[c][r];
    }
  });
}

void householder_backward_f8(const float* V, const float* Q, const float* G, float* gV,
                             int64_t M, int64_t k) {
  at::parallel_for(0, M, 64, [&](int64_t begin, int64_t end) {
    Float8 p_rows[8], p_cols[8], b_rows[8], b_cols[8];
    for (int64_t m = begin; m < end; ++m) {
      for (int r = 0; r < 8; ++r) {
        p_rows[r] = load8(Q + m * 64 + r * 8);
        b_rows[r] = load8(G + m * 64 + r * 8);
      }
      columns8(Q + m * 64, p_cols);
      columns8(G + m * 64, b_cols);
      for (int64_t j = k - 1; j >= 0; --j) {
        const Float8 v = load8(V + (m * k + j) * 8);
        const float tau = 2.0f / dot8(v, v);
        Float8 pv = p_cols[0] * v[0], bv = b_cols[0] * v[0];  // P_j v, B_j v
        for (int c = 1; c < 8; ++c) {
          pv += p_cols[c] * v[c];
          bv += b_cols[c] * v[c];
        }
        Float8 bta = b_rows[0] * (-pv[0]);  // B_j^T a, a = -P_j v
        for (int r = 1; r < 8; ++r) bta += b_rows[r] * (-pv[r]);
        const float ab = -dot8(pv, bv);
        const Float8 tv = v * tau;
        for (int r = 0; r < 8; ++r) {  // P_{j-1} = P_j - (P_j v)(tau v)^T, same for B
          p_rows[r] -= tv * pv[r];
          b_rows[r] -= tv * bv[r];
        }
        for (int c = 0; c < 8; ++c) {
          p_cols[c] -= pv * tv[c];
          b_cols[c] -= bv * tv[c];
        }
        Float8 ptb = p_rows[0] * bv[0];  // P_{j-1}^T b
        for (int r = 1; r < 8; ++r) ptb += p_rows[r] * bv[r];
        store8(gV + (m * k + j) * 8, (ptb + bta) * (-tau) + v * (tau * tau * ab));
      }
    }
  });
}
#endif

torch::Tensor householder_forward(torch::Tensor vectors) {
  TORCH_CHECK(vectors.dim() == 3 && vectors.device().is_cpu() && vectors.is_contiguous(),
              "householder: vectors must be a contiguous CPU [M, k, d] tensor");
  const int64_t M = vectors.size(0), k = vectors.size(1), d = vectors.size(2);
  auto Q = torch::empty({M, d, d}, vectors.options());
#if defined(__GNUC__)
  if (d == 8 && vectors.scalar_type() == torch::kFloat) {
    householder_forward_f8(vectors.data_ptr<float>(), Q.data_ptr<float>(), M, k);
    return Q;
  }
#endif
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "householder_forward", [&] {
    dispatch_d(d, [&](auto dims) {
      householder_forward_impl<scalar_t>(vectors.data_ptr<scalar_t>(), Q.data_ptr<scalar_t>(),
                                         M, k, dims);
    });
  });
  return Q;
}

torch::Tensor householder_backward(torch::Tensor vectors, torch::Tensor Q, torch::Tensor grad) {
  TORCH_CHECK(vectors.dim() == 3 && vectors.device().is_cpu() && vectors.is_contiguous(),
              "householder: vectors must be a contiguous CPU [M, k, d] tensor");
  check_like(Q, vectors, "Q");
  check_like(grad, vectors, "grad");
  const int64_t M = vectors.size(0), k = vectors.size(1), d = vectors.size(2);
  TORCH_CHECK(Q.dim() == 3 && Q.size(0) == M && Q.size(1) == d && Q.size(2) == d &&
                  grad.sizes() == Q.sizes(),
              "householder: Q and grad must be [M, d, d]");
  auto gV = torch::empty_like(vectors);
#if defined(__GNUC__)
  if (d == 8 && vectors.scalar_type() == torch::kFloat) {
    householder_backward_f8(vectors.data_ptr<float>(), Q.data_ptr<float>(),
                            grad.data_ptr<float>(), gV.data_ptr<float>(), M, k);
    return gV;
  }
#endif
  AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "householder_backward", [&] {
    dispatch_d(d, [&](auto dims) {
      householder_backward_impl<scalar_t>(vectors.data_ptr<scalar_t>(), Q.data_ptr<scalar_t>(),
                                          grad.data_ptr<scalar_t>(), gV.data_ptr<scalar_t>(),
                                          M, k, dims);
    });
  });
  return gV;
}

// Matrix exponential (the orthogonal_exp maps): exp(A) per d x d matrix of A [M, d, d] by
// scaling and squaring, exp(A) = T_m(A / 2^s)^(2^s), T_m the degree-m Taylor polynomial by
// Horner's scheme, O_m = I + X / m, O_k = I + X O_{k+1} / k, T = O_1, with s per matrix the
// smallest power with |A|_F / 2^s <= theta (graphlearn.nn.sheaf.matrix_exp's "taylor"
// method, which picks one s for the whole batch; it passes m and theta). The backward is the exact adjoint of those steps,
// recomputed in a thread-local buffer as transposes (so every product is a plain a b):
//   squaring S_{j+1} = S_j^2:       G <- G S_j^T + S_j^T G
//   Horner   O_k = I + X O_{k+1}/k:  gX += G O_{k+1}^T / k,  G <- X^T G / k
// and gA = gX / 2^s (s is piecewise constant in A).

template <typename T>
inline void transpose(const T* __restrict a, T* __restrict out, int64_t d) {
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) out[j * d + i] = a[i * d + j];
}

// s = max(0, ceil(log2(|A|_F / theta))) and X = A / 2^s into x.
template <typename T, int kD>
inline int64_t scaled_input(const T* a, T* x, double theta, Dims<kD, 0> dims) {
  const int64_t dd = dims.d() * dims.d();
  double norm = 0.0;
  for (int64_t t = 0; t < dd; ++t) norm += double(a[t]) * double(a[t]);
  norm = std::sqrt(norm);
  const int64_t s = norm > theta ? int64_t(std::ceil(std::log2(norm / theta))) : 0;
  const T scale = T(std::ldexp(1.0, int(-s)));
  for (int64_t t = 0; t < dd; ++t) x[t] = a[t] * scale;
  return s;
}

// Horner's steps for X (left = true: O_k = I + X O_{k+1} / k) or for X^T given as x
// (left = false: O_k^T = I + O_{k+1}^T X^T / k), O_m = I + X / m: steps + (k - 1) * dd
// holds O_k (or O_k^T); steps[0] is T_m(X) (or its transpose).
template <typename T, int kD>
inline void taylor_steps(const T* x, T* steps, int64_t degree, bool left, Dims<kD, 0> dims) {
  const int64_t d = dims.d(), dd = d * d;
  T* top = steps + (degree - 1) * dd;
  for (int64_t t = 0; t < dd; ++t) top[t] = x[t] / T(degree);
  for (int64_t r = 0; r < d; ++r) top[r * d + r] += T(1);
  for (int64_t k = degree - 1; k >= 1; --k) {
    T* o = steps + (k - 1) * dd;
    if (left)
      mat_mul<T>(x, steps + k * dd, o, dims);
    else
      mat_mul<T>(steps + k * dd, x, o, dims);
    const T inv = T(1) / T(k);
    for (int64_t t = 0; t < dd; ++t) o[t] *= inv;
    for (int64_t r = 0; r < d; ++r) o[r * d + r] += T(1);
  }
}

template <typename T, int kD>
void matrix_exp_forward_impl(const T* A, T* out, int64_t M, int64_t degree, double theta,
                             Dims<kD, 0> dims) {
  const int64_t dd = dims.d() * dims.d();
  at::parallel_for(0, M, 64, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch((degree + 2) * dd);
    T* x = scratch.data();
    T* tmp = x + dd;
    T* steps = tmp + dd;
    for (int64_t m = begin; m < end; ++m) {
      const int64_t s = scaled_input<T>(A + m * dd, x, theta, dims);
      taylor_steps<T>(x, steps, degree, true, dims);
      T* o = out + m * dd;
      for (int64_t t = 0; t < dd; ++t) o[t] = steps[t];
      for (int64_t j = 0; j < s; ++j) {
        mat_mul<T>(o, o, tmp, dims);
        for (int64_t t = 0; t < dd; ++t) o[t] = tmp[t];
      }
    }
  });
}

template <typename T, int kD>
void matrix_exp_backward_impl(const T* A, const T* G, T* gA, int64_t M, int64_t degree,
                              double theta, Dims<kD, 0> dims) {
  const int64_t d = dims.d(), dd = d * d;
  at::parallel_for(0, M, 64, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch((degree + 6) * dd);
    std::vector<T> squares;  // S_0^T .. S_{s-1}^T
    T* x = scratch.data();
    T* xt = x + dd;
    T* g = xt + dd;
    T* tmp = g + dd;
    T* tmp2 = tmp + dd;
    T* gx = tmp2 + dd;
    T* steps = gx + dd;  // O_k^T
    for (int64_t m = begin; m < end; ++m) {
      const int64_t s = scaled_input<T>(A + m * dd, x, theta, dims);
      transpose<T>(x, xt, d);
      taylor_steps<T>(xt, steps, degree, false, dims);
      squares.resize(s * dd);
      if (s > 0) {
        for (int64_t t = 0; t < dd; ++t) squares[t] = steps[t];
        for (int64_t j = 1; j < s; ++j)  // S_j^T = S_{j-1}^T S_{j-1}^T
          mat_mul<T>(squares.data() + (j - 1) * dd, squares.data() + (j - 1) * dd,
                     squares.data() + j * dd, dims);
      }
      for (int64_t t = 0; t < dd; ++t) g[t] = G[m * dd + t];
      for (int64_t j = s - 1; j >= 0; --j) {  // through S_{j+1} = S_j S_j
        const T* sjt = squares.data() + j * dd;
        mat_mul<T>(g, sjt, tmp, dims);   // G S_j^T
        mat_mul<T>(sjt, g, tmp2, dims);  // S_j^T G
        for (int64_t t = 0; t < dd; ++t) g[t] = tmp[t] + tmp2[t];
      }
      for (int64_t t = 0; t < dd; ++t) gx[t] = T(0);
      for (int64_t k = 1; k < degree; ++k) {  // through O_k = I + X O_{k+1} / k
        const T inv = T(1) / T(k);
        mat_mul<T>(g, steps + k * dd, tmp, dims);  // G O_{k+1}^T
        for (int64_t t = 0; t < dd; ++t) gx[t] += inv * tmp[t];
        mat_mul<T>(xt, g, tmp2, dims);  // X^T G
        for (int64_t t = 0; t < dd; ++t) g[t] = inv * tmp2[t];
      }
      const T scale = T(std::ldexp(1.0, int(-s)));
      for (int64_t t = 0; t < dd; ++t)  // O_m = I + X / m
        gA[m * dd + t] = (gx[t] + g[t] / T(degree)) * scale;
    }
  });
}

void check_matrices(const torch::Tensor& a, const char* name) {
  TORCH_CHECK(a.dim() == 3 && a.size(1) == a.size(2) && a.device().is_cpu() &&
                  a.is_contiguous(),
              "matrix_exp: ", name, " must be a contiguous CPU [M, d, d] tensor");
}

torch::Tensor matrix_exp_forward(torch::Tensor a, int64_t degree, double theta) {
  check_matrices(a, "a");
  TORCH_CHECK(degree >= 1, "matrix_exp: degree must be >= 1");
  TORCH_CHECK(theta > 0, "matrix_exp: theta must be > 0");
  auto out = torch::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "matrix_exp_forward", [&] {
    dispatch_d(a.size(1), [&](auto dims) {
      matrix_exp_forward_impl<scalar_t>(a.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                                        a.size(0), degree, theta, dims);
    });
  });
  return out;
}

torch::Tensor matrix_exp_backward(torch::Tensor a, torch::Tensor grad, int64_t degree,
                                  double theta) {
  check_matrices(a, "a");
  check_like(grad, a, "grad");
  TORCH_CHECK(grad.sizes() == a.sizes(), "matrix_exp: grad must have the shape of a");
  TORCH_CHECK(degree >= 1, "matrix_exp: degree must be >= 1");
  TORCH_CHECK(theta > 0, "matrix_exp: theta must be > 0");
  auto gA = torch::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "matrix_exp_backward", [&] {
    dispatch_d(a.size(1), [&](auto dims) {
      matrix_exp_backward_impl<scalar_t>(a.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>(),
                                         gA.data_ptr<scalar_t>(), a.size(0), degree, theta,
                                         dims);
    });
  });
  return gA;
}

}  // namespace

void register_sheaf(pybind11::module_& m) {
  m.def("sheaf_laplacian_forward", &laplacian_forward,
        "sheaf L_F x from full maps -> [L_F x, coboundary r]");
  m.def("sheaf_laplacian_backward", &laplacian_backward,
        "sheaf L_F x backward -> [grad maps, grad x]");
  m.def("sheaf_degree_forward", &degree_forward, "sum of F^T F per node -> [N, d, d]");
  m.def("sheaf_degree_backward", &degree_backward, "degree backward -> grad maps");
  m.def("householder_forward", &householder_forward, "H_1 ... H_k per row of [M, k, d]");
  m.def("householder_backward", &householder_backward, "householder backward -> grad vectors");
  m.def("matrix_exp_forward", &matrix_exp_forward, "exp(A) per [M, d, d] matrix (Taylor)");
  m.def("matrix_exp_backward", &matrix_exp_backward, "matrix_exp backward -> grad A");
}
