// One decoding step of Causette's Transformer, for one new token per row, written in C++.
//
// Built by causette/inference/native.py (g++ -O3 -march=native -pthread, once per machine,
// cached on disk) and called through ctypes: no PyTorch header, no Python object, only float
// pointers. What it computes is DecodeStep's (decode_step.py) for the dense models of both
// families: RMSNorm or LayerNorm, RoPE or a position table, grouped-query attention over the
// cached keys 0..pos (or the last `window` ones), SwiGLU, GELU (tanh) or ReLU², optional
// biases, QK-norm and logit soft-capping. native.py checks the model first and falls back to
// the AOTInductor step (compiled.py) for anything else.
//
// Why a hand-written step: at batch 1 a token is ~20 matrix-vector products that read every
// weight once; their speed is the memory's. A dot product with one accumulator is a chain of
// dependent fused multiply-adds (each waits ~4 cycles for the previous one); here each tile
// computes several output rows at once, with one accumulator per row and per batch row, so
// that the multiply-adds are independent and each load of x serves every row of the tile.
//
// Vectors: GCC/Clang vector extensions (`vector_size`), which the compiler lowers to the
// widest registers the target has (AVX-512 here, AVX2, NEON...) or to scalar code.

#include <algorithm>
#include <atomic>
#include <thread>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pthread.h>

namespace {

constexpr int W = 16;  // floats per vector
typedef float vf __attribute__((vector_size(W * sizeof(float))));
typedef float vf_u __attribute__((vector_size(W * sizeof(float)), aligned(4)));  // unaligned access

inline vf load(const float* p) { return *reinterpret_cast<const vf_u*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vf_u*>(p) = v; }
// The sum of a vector's lanes, as a tree (halves added together): a few instructions, where a
// loop over the lanes would be 15 dependent scalar additions.
typedef float vf8 __attribute__((vector_size(8 * sizeof(float))));
typedef float vf4 __attribute__((vector_size(4 * sizeof(float))));
inline float hsum(vf v) {
  vf8 a, b;
  std::memcpy(&a, &v, sizeof a);
  std::memcpy(&b, reinterpret_cast<const char*>(&v) + sizeof a, sizeof b);
  a += b;
  vf4 c, d;
  std::memcpy(&c, &a, sizeof c);
  std::memcpy(&d, reinterpret_cast<const char*>(&a) + sizeof c, sizeof d);
  c += d;
  return (c[0] + c[2]) + (c[1] + c[3]);
}

// The configuration, in the order native.py writes it (`ints` then `floats`).
struct Cfg {
  int64_t n_layer, C, H, KV, D, hidden, V, norm, mlp, pos, bias, qk_norm, window, softcap_on;
  float eps, softcap;
};
enum { NORM_RMS = 0, NORM_LAYER = 1 };
enum { MLP_SWIGLU = 0, MLP_GELU = 1, MLP_RELU2 = 2 };
enum { POS_ROPE = 0, POS_TABLE = 1 };

// Weight pointers: 6 for the model, then PER_LAYER per block (nullptr where absent).
enum { G_WTE, G_POS, G_SIN, G_NORMF_W, G_NORMF_B, G_LM_HEAD, N_GLOBAL };
enum { L_N1W, L_N1B, L_QKV_W, L_QKV_B, L_QN, L_KN, L_PROJ_W, L_PROJ_B, L_N2W, L_N2B, L_UP_W, L_UP_B,
       L_DOWN_W, L_DOWN_B, PER_LAYER };

// Y[b, o] (+)= bias[o] + sum_i X[b, i] W[o, i] for the output rows o in [o0, o1), every batch
// row b < B. W is (n_out, n_in), row-major (nn.Linear's layout).
//
// A tile computes R output rows for NB batch rows with R*NB*U independent accumulators (U:
// the inner loop unrolled U times, each step with its own accumulators). Measured on the
// demo shape (bench/LOG.md): batch 1, R=4 U=4 reads the weights at the speed of a plain sum
// of them (one accumulator per row was 1.35x slower); batch 8, R=2 NB=4 U=2 runs near the
// core's multiply-add peak.
template <int R, int NB, int U>
__attribute__((always_inline)) inline void tile(const float* X, int64_t n_in, const float* Wt, int64_t o, int64_t b0,
                                                float* out_vals) {
  vf acc[R][NB][U];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < NB; ++b)
      for (int u = 0; u < U; ++u) acc[r][b][u] = vf{};
  int64_t i = 0;
  for (; i + W * U <= n_in; i += W * U)
    for (int u = 0; u < U; ++u) {
      vf xs[NB];
      for (int b = 0; b < NB; ++b) xs[b] = load(X + (b0 + b) * n_in + i + u * W);
      for (int r = 0; r < R; ++r) {
        vf w = load(Wt + (o + r) * n_in + i + u * W);
        for (int b = 0; b < NB; ++b) acc[r][b][u] += w * xs[b];
      }
    }
  vf sum[R][NB];  // the U accumulators of each pair, then the inputs left (fewer than W*U)
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < NB; ++b) {
      sum[r][b] = acc[r][b][0];
      for (int u = 1; u < U; ++u) sum[r][b] += acc[r][b][u];
    }
  for (; i + W <= n_in; i += W)
    for (int r = 0; r < R; ++r) {
      vf w = load(Wt + (o + r) * n_in + i);
      for (int b = 0; b < NB; ++b) sum[r][b] += w * load(X + (b0 + b) * n_in + i);
    }
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < NB; ++b) {
      float s = hsum(sum[r][b]);
      for (int64_t j = i; j < n_in; ++j) s += Wt[(o + r) * n_in + j] * X[(b0 + b) * n_in + j];
      out_vals[r * NB + b] = s;
    }
}

template <int R, int NB, int U>
inline void put(const float* vals, const float* bias, int64_t n_out, int64_t o, int64_t b0, int rows, float* Y,
                bool accumulate) {
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < NB; ++b) {
      float v = vals[r * NB + b] + (bias ? bias[o + r] : 0.f);
      float* y = Y + (b0 + b) * n_out + o + r;
      *y = accumulate ? *y + v : v;
    }
}

// Output rows [o0, o1): tiles of R rows (the weights of a tile stay in L1 while every group of
// NB batch rows uses them), then the remaining rows one at a time.
template <int R, int NB, int U>
void tiles(const float* X, int64_t B, int64_t n_in, const float* Wt, const float* bias, int64_t n_out, int64_t o0,
           int64_t o1, float* Y, bool accumulate) {
  float vals[R * NB];
  int64_t o = o0;
  for (; o + R <= o1; o += R) {
    int64_t b = 0;
    for (; b + NB <= B; b += NB) {
      tile<R, NB, U>(X, n_in, Wt, o, b, vals);
      put<R, NB, U>(vals, bias, n_out, o, b, R, Y, accumulate);
    }
    for (; b < B; ++b) {
      tile<R, 1, U>(X, n_in, Wt, o, b, vals);
      put<R, 1, U>(vals, bias, n_out, o, b, R, Y, accumulate);
    }
  }
  for (; o < o1; ++o)
    for (int64_t b = 0; b < B; ++b) {
      tile<1, 1, U>(X, n_in, Wt, o, b, vals);
      put<1, 1, U>(vals, bias, n_out, o, b, 1, Y, accumulate);
    }
}

// Batch 1, the case that matters most: the same tiles, written directly into y.
template <bool ACC, bool BIAS>
void matvec(const float* x, int64_t n_in, const float* Wt, const float* bias, int64_t o0, int64_t o1, float* y) {
  constexpr int R = 4;
  float vals[R];
  int64_t o = o0;
  for (; o + R <= o1; o += R) {
    tile<R, 1, 4>(x, n_in, Wt, o, 0, vals);
    for (int r = 0; r < R; ++r) {
      float v = BIAS ? vals[r] + bias[o + r] : vals[r];
      y[o + r] = ACC ? y[o + r] + v : v;
    }
  }
  for (; o < o1; ++o) {
    tile<1, 1, 4>(x, n_in, Wt, o, 0, vals);
    float v = BIAS ? vals[0] + bias[o] : vals[0];
    y[o] = ACC ? y[o] + v : v;
  }
}

void matmul_rows(const float* X, int64_t B, int64_t n_in, const float* Wt, const float* bias, int64_t n_out,
                 int64_t o0, int64_t o1, float* Y, bool accumulate) {
  if (B == 1) {
    if (accumulate)
      bias ? matvec<true, true>(X, n_in, Wt, bias, o0, o1, Y) : matvec<true, false>(X, n_in, Wt, bias, o0, o1, Y);
    else
      bias ? matvec<false, true>(X, n_in, Wt, bias, o0, o1, Y) : matvec<false, false>(X, n_in, Wt, bias, o0, o1, Y);
  } else if (B >= 4) {
    tiles<2, 4, 2>(X, B, n_in, Wt, bias, n_out, o0, o1, Y, accumulate);
  } else {
    tiles<4, 1, 4>(X, B, n_in, Wt, bias, n_out, o0, o1, Y, accumulate);
  }
}

// The part [lo, hi) of n items that thread `tid` of `nt` takes, in multiples of `unit`.
inline void share(int64_t n, int64_t unit, int tid, int nt, int64_t& lo, int64_t& hi) {
  int64_t units = (n + unit - 1) / unit;
  int64_t a = units * tid / nt, z = units * (tid + 1) / nt;
  lo = std::min(n, a * unit);
  hi = std::min(n, z * unit);
}

// Threads wait for each other ~30 times per step (after each matrix product). OpenMP's own
// barrier sleeps at once under OMP_WAIT_POLICY=PASSIVE (what Causette sets: utils/threads.py)
// and a wake-up costs tens of microseconds: 2 threads were 3-10x *slower* than one. This one
// spins (a step lasts a fraction of a millisecond), and yields the core after a while in case
// the other thread is not running (a busy machine).
inline void pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

struct Barrier {
  std::atomic<int> count{0}, gen{0};
  void wait(int nt) {
    if (nt <= 1) return;
    int g = gen.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) == nt - 1) {
      count.store(0, std::memory_order_relaxed);
      gen.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; gen.load(std::memory_order_acquire) == g; ++spins) {
      if (spins < 30000)  // ~0.5 ms
        pause();
      else
        std::this_thread::yield();
    }
  }
};

// The helper threads of a step, started at the first step that asks for them and kept. Between
// two steps (the Python code that picks the next token: ~0.1 ms) a helper spins for up to
// SPIN_US before it sleeps: a sleeping thread woken on a busy machine may wait milliseconds for
// a core (OpenMP's passive threads did: bench/LOG.md). Not used with 1 thread.
constexpr int SPIN_US = 2000;

struct Pool {
  std::mutex busy;                        // one step at a time uses the helpers
  std::mutex m;
  std::condition_variable cv;
  std::atomic<uint64_t> epoch{0};         // +1 for each job
  std::atomic<int> pending{0};            // helpers still in the current job
  void (*job)(void*, int, int) = nullptr;
  void* ctx = nullptr;
  int nt = 1;
  int started = 0;

  void worker(int tid, uint64_t seen) {  // seen: the epoch before its first job
    for (;;) {
      auto t0 = std::chrono::steady_clock::now();
      for (int spins = 0; epoch.load(std::memory_order_acquire) == seen; ++spins) {
        pause();
        if ((spins & 255) == 255 &&
            std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(SPIN_US)) {
          std::unique_lock<std::mutex> lk(m);
          cv.wait(lk, [&] { return epoch.load(std::memory_order_acquire) != seen; });
        }
      }
      seen = epoch.load(std::memory_order_acquire);
      if (tid < nt) job(ctx, tid, nt);
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  // Runs job(ctx, tid, n) for tid = 0 (this thread) .. n-1.
  void run(void (*f)(void*, int, int), void* c, int n) {
    while (started < n - 1) {
      int tid = ++started;
      uint64_t now = epoch.load(std::memory_order_acquire);
      std::thread([this, tid, now] { worker(tid, now); }).detach();
    }
    job = f;
    ctx = c;
    nt = n;
    pending.store(started, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m);
      epoch.fetch_add(1, std::memory_order_acq_rel);
    }
    cv.notify_all();
    f(c, 0, n);
    for (int spins = 0; pending.load(std::memory_order_acquire) > 0; ++spins)
      if (spins < 4000)
        pause();
      else
        std::this_thread::yield();
  }
};

Pool* pool = nullptr;  // never freed: detached threads live as long as the process
std::mutex pool_lock;

void forget_pool_after_fork() { pool = nullptr; }  // a forked child has none of the threads

void norm(const Cfg& c, const float* x, const float* w, const float* b, float* y, int64_t n) {
  if (c.norm == NORM_RMS) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += (double)x[i] * x[i];
    float r = 1.0f / std::sqrt((float)(ss / n) + c.eps);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * r * w[i];
  } else {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    double mean = s / n, var = 0.0;
    for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
    float m = (float)mean, r = 1.0f / std::sqrt((float)(var / n) + c.eps);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * r * w[i] + (b ? b[i] : 0.f);
  }
}

void rope(float* x, int64_t D, const float* cs, const float* sn) {
  int64_t h = D / 2;
  for (int64_t i = 0; i < h; ++i) {
    float a = x[i], b = x[i + h];
    x[i] = a * cs[i] - b * sn[i];
    x[i + h] = a * sn[i] + b * cs[i];
  }
}

inline float dot(const float* a, const float* b, int64_t n) {
  vf acc0 = vf{}, acc1 = vf{};
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    acc0 += load(a + i) * load(b + i);
    acc1 += load(a + i + W) * load(b + i + W);
  }
  for (; i + W <= n; i += W) acc0 += load(a + i) * load(b + i);
  float s = hsum(acc0 + acc1);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

struct Step {
  Cfg c;
  const float* const* w;
  int64_t B, L;
  const int64_t* tokens;
  const int64_t* pos;
  const int64_t* crow;   // the cache row of each token (nullptr: token b, row b)
  int64_t n_out;         // rows whose logits are wanted...
  const int64_t* out;    // ...which ones (nullptr: all, in order)
  float* const* kc;
  float* const* vc;
  float* logits;
  // scratch
  float *x, *h, *qkv, *att, *up, *act, *scores;
  int64_t n_qkv, n_up;
  Barrier sync;
  void barrier(int nt) { sync.wait(nt); }

  const float* lw(int64_t layer, int k) const { return w[N_GLOBAL + layer * PER_LAYER + k]; }

  void linear(const float* X, int64_t n_in, const float* Wt, const float* bias, int64_t n_out, float* Y,
              bool accumulate, int tid, int nt, int64_t rows = -1) {
    int64_t lo, hi;
    share(n_out, 8, tid, nt, lo, hi);
    matmul_rows(X, rows < 0 ? B : rows, n_in, Wt, bias, n_out, lo, hi, Y, accumulate);
  }

  void norm_rows(const float* src, const float* nw, const float* nb, float* dst, int tid, int nt) {
    int64_t lo, hi;
    share(B, 1, tid, nt, lo, hi);
    for (int64_t b = lo; b < hi; ++b) norm(c, src + b * c.C, nw, nb, dst + b * c.C, c.C);
  }

  // Queries/keys: QK-norm, RoPE; key and value into the cache; then attention, one
  // (row, query head) pair at a time, shared among the threads.
  void attention(int64_t layer, int tid, int nt) {
    const int64_t H = c.H, KV = c.KV, D = c.D, G = H / KV;
    int64_t lo, hi;
    share(B, 1, tid, nt, lo, hi);
    for (int64_t b = lo; b < hi; ++b) {
      float* q = qkv + b * n_qkv;
      float* k = q + H * D;
      float* v = k + KV * D;
      int64_t p = pos[b], cr = crow ? crow[b] : b;
      if (c.qk_norm) {
        Cfg rms = c;
        rms.norm = NORM_RMS;
        for (int64_t j = 0; j < H; ++j) norm(rms, q + j * D, lw(layer, L_QN), nullptr, q + j * D, D);
        for (int64_t j = 0; j < KV; ++j) norm(rms, k + j * D, lw(layer, L_KN), nullptr, k + j * D, D);
      }
      if (c.pos == POS_ROPE) {
        const float* cs = w[G_POS] + p * (D / 2);
        const float* sn = w[G_SIN] + p * (D / 2);
        for (int64_t j = 0; j < H; ++j) rope(q + j * D, D, cs, sn);
        for (int64_t j = 0; j < KV; ++j) rope(k + j * D, D, cs, sn);
      }
      for (int64_t g = 0; g < KV; ++g) {
        std::memcpy(kc[layer] + ((cr * KV + g) * L + p) * D, k + g * D, D * sizeof(float));
        std::memcpy(vc[layer] + ((cr * KV + g) * L + p) * D, v + g * D, D * sizeof(float));
      }
    }
    barrier(nt);
    share(B * H, 1, tid, nt, lo, hi);
    const float scale = 1.0f / std::sqrt((float)D);
    float* s = scores + (int64_t)tid * L;
    for (int64_t bh = lo; bh < hi; ++bh) {
      int64_t b = bh / H, hh = bh % H, g = hh / G, p = pos[b], cr = crow ? crow[b] : b;
      int64_t j0 = c.window > 0 ? std::max<int64_t>(0, p - c.window + 1) : 0;
      const float* q = qkv + b * n_qkv + hh * D;
      const float* K = kc[layer] + (cr * KV + g) * L * D;
      const float* Vv = vc[layer] + (cr * KV + g) * L * D;
      float m = -INFINITY;
      for (int64_t j = j0; j <= p; ++j) {
        s[j] = dot(q, K + j * D, D) * scale;
        m = std::max(m, s[j]);
      }
      float total = 0.f;
      for (int64_t j = j0; j <= p; ++j) {
        s[j] = std::exp(s[j] - m);
        total += s[j];
      }
      float* y = att + b * H * D + hh * D;
      std::fill(y, y + D, 0.f);
      for (int64_t j = j0; j <= p; ++j) {
        float pj = s[j] / total;
        const float* vj = Vv + j * D;
        int64_t i = 0;
        for (; i + W <= D; i += W) store(y + i, load(y + i) + pj * load(vj + i));
        for (; i < D; ++i) y[i] += pj * vj[i];
      }
    }
  }

  void activate(int tid, int nt) {
    int64_t hid = c.hidden, lo, hi;
    share(B * hid, 64, tid, nt, lo, hi);
    for (int64_t t = lo; t < hi; ++t) {
      int64_t b = t / hid, i = t % hid;
      if (c.mlp == MLP_SWIGLU) {
        float g = up[b * n_up + i], u = up[b * n_up + hid + i];
        act[t] = g / (1.0f + std::exp(-g)) * u;
      } else if (c.mlp == MLP_GELU) {
        float z = up[b * n_up + i];
        act[t] = 0.5f * z * (1.0f + std::tanh(0.7978845608028654f * (z + 0.044715f * z * z * z)));
      } else {
        float z = std::max(up[b * n_up + i], 0.f);
        act[t] = z * z;
      }
    }
  }

  void run(int tid, int nt) {
    const int64_t C = c.C;
    {
      int64_t lo, hi;
      share(B, 1, tid, nt, lo, hi);
      for (int64_t b = lo; b < hi; ++b) {
        const float* e = w[G_WTE] + tokens[b] * C;
        for (int64_t i = 0; i < C; ++i) x[b * C + i] = e[i];
        if (c.pos == POS_TABLE) {
          const float* t = w[G_POS] + pos[b] * C;
          for (int64_t i = 0; i < C; ++i) x[b * C + i] += t[i];
        }
      }
    }
    barrier(nt);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      norm_rows(x, lw(l, L_N1W), lw(l, L_N1B), h, tid, nt);
      barrier(nt);
      linear(h, C, lw(l, L_QKV_W), lw(l, L_QKV_B), n_qkv, qkv, false, tid, nt);
      barrier(nt);
      attention(l, tid, nt);
      barrier(nt);
      linear(att, c.H * c.D, lw(l, L_PROJ_W), lw(l, L_PROJ_B), C, x, true, tid, nt);
      barrier(nt);
      norm_rows(x, lw(l, L_N2W), lw(l, L_N2B), h, tid, nt);
      barrier(nt);
      linear(h, C, lw(l, L_UP_W), lw(l, L_UP_B), n_up, up, false, tid, nt);
      barrier(nt);
      activate(tid, nt);
      barrier(nt);
      linear(act, c.hidden, lw(l, L_DOWN_W), lw(l, L_DOWN_B), C, x, true, tid, nt);
      barrier(nt);
    }
    {  // the final norm of the rows whose logits are wanted, gathered at the start of h
      int64_t lo, hi;
      share(n_out, 1, tid, nt, lo, hi);
      for (int64_t j = lo; j < hi; ++j)
        norm(c, x + (out ? out[j] : j) * C, w[G_NORMF_W], w[G_NORMF_B], h + j * C, C);
    }
    barrier(nt);
    linear(h, C, w[G_LM_HEAD], nullptr, c.V, logits, false, tid, nt, n_out);  // those rows only
    if (c.softcap_on) {
      int64_t lo, hi;
      share(n_out * c.V, 64, tid, nt, lo, hi);
      for (int64_t i = lo; i < hi; ++i) logits[i] = c.softcap * std::tanh(logits[i] / c.softcap);
    }
  }
};

}  // namespace

extern "C" {

// The version of this interface (native.py checks it after loading).
int causette_native_version() { return 2; }

// One step: see Step. `ints` = n_layer, n_embd, n_head, n_kv_head, head_dim, hidden, vocab,
// norm, mlp, pos, bias, qk_norm, window (0: none), softcap on; `floats` = eps, softcap.
// `N` tokens, token b at position pos[b] of cache row crow[b] (crow nullptr: row b); the caches
// are (cache_rows, n_kv_head, L, head_dim) float32, contiguous. Decoding: one token per row.
// Prefill of a prompt: its tokens as N rows of one cache row, each seeing the keys up to its
// own position (written by this call for the earlier ones). Logits (n_out, vocab) for the
// tokens listed in `out` (nullptr: every token, n_out = N).
// Returns 0, or 1 (and computes nothing) when a token, a position or a row is out of range.
int causette_decode_step(const int64_t* ints, const float* floats, const float* const* weights, int64_t N,
                         int64_t L, int64_t cache_rows, const int64_t* tokens, const int64_t* pos,
                         const int64_t* crow, int64_t n_out, const int64_t* out, float* const* kc, float* const* vc,
                         float* logits, int nthreads) {
  const int64_t B = N;
  Step s;
  Cfg& c = s.c;
  c.n_layer = ints[0]; c.C = ints[1]; c.H = ints[2]; c.KV = ints[3]; c.D = ints[4]; c.hidden = ints[5];
  c.V = ints[6]; c.norm = ints[7]; c.mlp = ints[8]; c.pos = ints[9]; c.bias = ints[10]; c.qk_norm = ints[11];
  c.window = ints[12]; c.softcap_on = ints[13];
  c.eps = floats[0]; c.softcap = floats[1];
  s.w = weights; s.B = B; s.L = L; s.tokens = tokens; s.pos = pos; s.kc = kc; s.vc = vc; s.logits = logits;
  s.crow = crow; s.out = out; s.n_out = out ? n_out : B;
  s.n_qkv = (c.H + 2 * c.KV) * c.D;
  s.n_up = c.mlp == MLP_SWIGLU ? 2 * c.hidden : c.hidden;
  for (int64_t b = 0; b < B; ++b) {
    if (tokens[b] < 0 || tokens[b] >= c.V || pos[b] < 0 || pos[b] >= L) return 1;
    if ((crow ? crow[b] : b) < 0 || (crow ? crow[b] : b) >= cache_rows) return 1;
  }
  for (int64_t j = 0; out && j < n_out; ++j)
    if (out[j] < 0 || out[j] >= B) return 1;
  int nt = nthreads < 1 ? 1 : std::min(nthreads, 64);
  static thread_local std::vector<float> scratch;
  size_t need = B * (2 * c.C + s.n_qkv + c.H * c.D + s.n_up + c.hidden) + (size_t)nt * L + 64;
  if (scratch.size() < need) scratch.resize(need);
  float* p = scratch.data();
  s.x = p; p += B * c.C;
  s.h = p; p += B * c.C;
  s.qkv = p; p += B * s.n_qkv;
  s.att = p; p += B * c.H * c.D;
  s.up = p; p += B * s.n_up;
  s.act = p; p += B * c.hidden;
  s.scores = p;
  Pool* p_ = nullptr;
  if (nt > 1) {
    std::lock_guard<std::mutex> lk(pool_lock);
    if (pool == nullptr) {
      static bool registered = false;
      if (!registered) pthread_atfork(nullptr, nullptr, forget_pool_after_fork);
      registered = true;
      pool = new Pool;
    }
    p_ = pool;
  }
  std::unique_lock<std::mutex> mine;
  if (p_ != nullptr) mine = std::unique_lock<std::mutex>(p_->busy, std::try_to_lock);
  if (p_ == nullptr || !mine.owns_lock()) {  // one thread, or another step holds the helpers
    s.run(0, 1);
  } else {
    p_->run([](void* c, int tid, int n) { static_cast<Step*>(c)->run(tid, n); }, &s, nt);
  }
  return 0;
}

}  // extern "C"
