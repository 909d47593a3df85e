// One decoding step of Causette's Transformer, for one new token per row, written in C++.
//
// Built by causette/inference/backends/native.py (g++ -O3 -march=native -pthread, once per machine,
// cached on disk) and called through ctypes: no PyTorch header, no Python object, only float
// pointers. What it computes is the model's own step (Transformer.step_kv) for the dense models of both
// families: RMSNorm or LayerNorm, RoPE or a position table, grouped-query attention over the
// cached keys 0..pos (or the last `window` ones), SwiGLU, GELU (tanh) or ReLU², optional
// biases, QK-norm and logit soft-capping. native.py checks the model first and falls back to
// the AOTInductor step (aoti.py) for anything else.
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
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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
#if defined(__AVX512F__)
  return _mm512_reduce_add_ps(reinterpret_cast<__m512>(v));
#endif
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

// exp of each lane (Cephes' expf: 2^n times a degree-6 polynomial on [-ln2/2, ln2/2], relative
// error ~1e-7, like the libm's): the SiLU/GELU of the MLP and the softmax call it thousands of
// times per token, where one scalar std::exp at a time cost ~10% of the step.
typedef int32_t vi __attribute__((vector_size(W * sizeof(int32_t))));
inline vf vexp(vf x) {
  const vf hi = vf{} + 88.3762626647949f, lo = vf{} - 87.3365447504f;
  x = x > hi ? hi : x;  // lane-wise select
  x = x < lo ? lo : x;
  vf t = x * 1.44269504088896341f + 0.5f;
  vi n = __builtin_convertvector(t, vi);          // truncates toward zero...
  vf nf = __builtin_convertvector(n, vf);
  vi below = nf > t;                               // ...so one less where that rounded up
  n += below;                                      // (a true comparison is -1)
  nf = __builtin_convertvector(n, vf);
  vf r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
  vf p = vf{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  vi bits = (n + 127) << 23;
  vf scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// f applied to n floats, W at a time (the last ones through a padded vector).
template <class F>
inline void each(float* dst, const float* a, const float* b, int64_t n, F f) {
  int64_t i = 0;
  for (; i + W <= n; i += W) store(dst + i, f(load(a + i), b ? load(b + i) : vf{}));
  if (i < n) {
    float ta[W] = {}, tb[W] = {}, td[W];
    std::memcpy(ta, a + i, (n - i) * sizeof(float));
    if (b) std::memcpy(tb, b + i, (n - i) * sizeof(float));
    store(td, f(load(ta), load(tb)));
    std::memcpy(dst + i, td, (n - i) * sizeof(float));
  }
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
template <int R, int NB, int U, bool EXACT = false>  // EXACT: n_in is a multiple of W*U
__attribute__((always_inline)) inline void tile(const float* X, int64_t n_in, const float* Wt, int64_t o, int64_t b0,
                                                float* out_vals) {
  vf acc[R][NB][U];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < NB; ++b)
      for (int u = 0; u < U; ++u) acc[r][b][u] = vf{};
  int64_t i = 0;
  for (; i + W * U <= n_in; i += W * U)
    for (int u = 0; u < U; ++u) {
      if (NB == 1)  // the rows two tiles ahead, on their way from memory (-17% time, batch 1)
        for (int r = 0; r < R; ++r) __builtin_prefetch(Wt + (o + 2 * R + r) * n_in + i + u * W, 0, 1);
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
  if (EXACT) {  // no input left: the short epilogue (a tile of 4x256 has only 64 multiply-adds)
    for (int r = 0; r < R; ++r)
      for (int b = 0; b < NB; ++b) out_vals[r * NB + b] = hsum(sum[r][b]);
    return;
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
template <bool ACC, bool BIAS, bool EXACT>
void matvec(const float* x, int64_t n_in, const float* Wt, const float* bias, int64_t o0, int64_t o1, float* y) {
  constexpr int R = 4;
  float vals[R];
  int64_t o = o0;
  for (; o + R <= o1; o += R) {
    tile<R, 1, 4, EXACT>(x, n_in, Wt, o, 0, vals);
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
    auto f = accumulate ? (bias ? matvec<true, true, false> : matvec<true, false, false>)
                        : (bias ? matvec<false, true, false> : matvec<false, false, false>);
    if (n_in % (W * 4) == 0)
      f = accumulate ? (bias ? matvec<true, true, true> : matvec<true, false, true>)
                     : (bias ? matvec<false, true, true> : matvec<false, false, true>);
    f(X, n_in, Wt, bias, o0, o1, Y);
  } else if (B >= 4) {
    tiles<2, 4, 2>(X, B, n_in, Wt, bias, n_out, o0, o1, Y, accumulate);
  } else {
    tiles<4, 1, 4>(X, B, n_in, Wt, bias, n_out, o0, o1, Y, accumulate);
  }
}

inline void pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Threads. A step is a sequence of phases (a matrix product, the attention of every head...),
// each cut into units (e.g. 32 output rows) that the threads take one at a time from a shared
// counter; the thread that calls the step takes units too and goes on to the next phase when
// every unit of this one is done. A helper thread that the system does not run for a while
// (a busy machine) then costs nothing: the others take its units. (A fixed split with a
// barrier after each phase waited for it ~30 times per step: 2 threads were then up to 50x
// slower than one on the shared machine of bench/LOG.md; OpenMP's passive barriers 3-10x.)
//
// Between phases and between steps a helper spins, for up to SPIN_US, then sleeps until the
// next phase: a thread woken on a busy machine may wait milliseconds for a core.
constexpr int SPIN_US = 2000;

struct Pool {
  // phase number (16 bits) | units in the phase (24 bits) | next unit to take (24 bits)
  std::atomic<uint64_t> ctr{0};
  std::atomic<int64_t> done{0};      // units of the current phase finished
  void (*fn)(void*, int64_t) = nullptr;
  void* ctx = nullptr;
  std::mutex m;
  std::condition_variable cv;
  std::atomic<int> sleepers{0};
  std::mutex busy;                   // one step at a time publishes phases
  int started = 0;

  static int64_t units(uint64_t v) { return (int64_t)((v >> 24) & 0xFFFFFF); }
  static int64_t next(uint64_t v) { return (int64_t)(v & 0xFFFFFF); }

  // Takes and runs one unit of the current phase; false when there was none left.
  bool take() {
    uint64_t v = ctr.load(std::memory_order_acquire);
    if (next(v) >= units(v)) return false;
    v = ctr.fetch_add(1, std::memory_order_acq_rel);
    if (next(v) >= units(v)) return false;
    fn(ctx, next(v));
    done.fetch_add(1, std::memory_order_acq_rel);
    return true;
  }

  void helper() {
    auto idle_since = std::chrono::steady_clock::now();
    for (uint64_t spins = 1;; ++spins) {
      if (take()) {
        spins = 0;
        idle_since = std::chrono::steady_clock::now();
        continue;
      }
      if (spins % 16 == 0)  // let the calling thread have the core if the system put us on it
        std::this_thread::yield();
      else
        pause();
      if (spins % 1024 == 0 &&
          std::chrono::steady_clock::now() - idle_since > std::chrono::microseconds(SPIN_US)) {
        uint64_t seen = ctr.load(std::memory_order_seq_cst);
        std::unique_lock<std::mutex> lk(m);
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        cv.wait(lk, [&] { return ctr.load(std::memory_order_seq_cst) != seen; });
        sleepers.fetch_sub(1, std::memory_order_seq_cst);
        idle_since = std::chrono::steady_clock::now();
      }
    }
  }

  void ensure(int helpers) {
    while (started < helpers) {
      ++started;
      std::thread([this] { helper(); }).detach();
    }
  }

  // f(ctx, u) for u = 0 .. n-1, this thread and the helpers together; returns when all are done.
  void run(int64_t n, void (*f)(void*, int64_t), void* c) {
    fn = f;
    ctx = c;
    done.store(0, std::memory_order_relaxed);
    uint64_t phase = (ctr.load(std::memory_order_relaxed) >> 48) + 1;
    ctr.store(((phase & 0xFFFF) << 48) | ((uint64_t)n << 24), std::memory_order_seq_cst);
    if (sleepers.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lk(m);
      cv.notify_all();
    }
    while (take()) {
    }
    for (int spins = 0; done.load(std::memory_order_acquire) < n; ++spins)
      if (spins < 1000)
        pause();
      else
        std::this_thread::yield();  // the helper that holds the last unit may need this core
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
  float *x, *h, *qkv, *att, *up, *act;  // scratch
  int64_t n_qkv, n_up;
  Pool* team = nullptr;  // nullptr: this thread alone

  const float* lw(int64_t layer, int k) const { return w[N_GLOBAL + layer * PER_LAYER + k]; }

  // f(u) for u in 0 .. n-1 (a phase), shared with the helpers when there are any.
  template <class F>
  void pfor(int64_t n, F&& f) {
    if (team == nullptr || n <= 1) {
      for (int64_t u = 0; u < n; ++u) f(u);
      return;
    }
    team->run(n, [](void* ctx, int64_t u) { (*static_cast<F*>(ctx))(u); }, &f);
  }

  // Y (+)= X W^T (+ bias) for `rows` rows of X, in units of ROWS output rows.
  void linear(const float* X, int64_t rows, int64_t n_in, const float* Wt, const float* bias, int64_t n_out_,
              float* Y, bool accumulate) {
    constexpr int64_t ROWS = 32;
    pfor((n_out_ + ROWS - 1) / ROWS, [&](int64_t u) {
      matmul_rows(X, rows, n_in, Wt, bias, n_out_, u * ROWS, std::min(n_out_, (u + 1) * ROWS), Y, accumulate);
    });
  }

  void norm_rows(const float* src, const float* nw, const float* nb, float* dst) {
    pfor(B, [&](int64_t b) { norm(c, src + b * c.C, nw, nb, dst + b * c.C, c.C); });
  }

  // Queries/keys: QK-norm, RoPE; key and value into the cache (one unit per token); then the
  // attention of each (token, query head) pair.
  void attention(int64_t layer) {
    const int64_t H = c.H, KV = c.KV, D = c.D, G = H / KV;
    pfor(B, [&](int64_t b) {
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
        // slot p of the row, or p mod L in a sliding window's ring buffer of L >= window slots
        std::memcpy(kc[layer] + ((cr * KV + g) * L + p % L) * D, k + g * D, D * sizeof(float));
        std::memcpy(vc[layer] + ((cr * KV + g) * L + p % L) * D, v + g * D, D * sizeof(float));
      }
    });
    const float scale = 1.0f / std::sqrt((float)D);
    pfor(B * H, [&](int64_t bh) {
      static thread_local std::vector<float> scores;
      int64_t b = bh / H, hh = bh % H, g = hh / G, p = pos[b], cr = crow ? crow[b] : b;
      int64_t j0 = c.window > 0 ? std::max<int64_t>(0, p - c.window + 1) : 0;
      const float* q = qkv + b * n_qkv + hh * D;
      const float* K = kc[layer] + (cr * KV + g) * L * D;
      const float* Vv = vc[layer] + (cr * KV + g) * L * D;
      const int64_t n = p + 1 - j0;  // the keys it sees: positions j0 .. p, in slots j mod L
      if ((int64_t)scores.size() < n) scores.resize(n);
      float* s = scores.data();
      float m = -INFINITY;
      for (int64_t j = j0; j <= p; ++j) {
        s[j - j0] = dot(q, K + (j % L) * D, D) * scale;
        m = std::max(m, s[j - j0]);
      }
      each(s, s, nullptr, n, [m](vf v, vf) { return vexp(v - m); });
      float total = 0.f;
      for (int64_t j = 0; j < n; ++j) total += s[j];
      float* y = att + b * H * D + hh * D;
      std::fill(y, y + D, 0.f);
      for (int64_t j = j0; j <= p; ++j) {
        float pj = s[j - j0] / total;
        const float* vj = Vv + (j % L) * D;
        int64_t i = 0;
        for (; i + W <= D; i += W) store(y + i, load(y + i) + pj * load(vj + i));
        for (; i < D; ++i) y[i] += pj * vj[i];
      }
    });
  }

  void activate() {
    const int64_t hid = c.hidden, per_row = (hid + 255) / 256;  // pieces of 256 per row
    pfor(B * per_row, [&](int64_t t) {
      int64_t b = t / per_row, i = (t % per_row) * 256, n = std::min<int64_t>(256, hid - i);
      const float* z = up + b * n_up + i;
      float* a = act + b * hid + i;
      if (c.mlp == MLP_SWIGLU)  // silu(gate) * up
        each(a, z, z + hid, n, [](vf g, vf u) { return g / (1.0f + vexp(-g)) * u; });
      else if (c.mlp == MLP_GELU)  // tanh approximation, tanh(y) = 1 - 2 / (exp(2y) + 1)
        each(a, z, nullptr, n, [](vf x, vf) {
          vf y = 0.7978845608028654f * (x + 0.044715f * x * x * x);
          return 0.5f * x * (2.0f - 2.0f / (vexp(2.0f * y) + 1.0f));
        });
      else  // relu2
        each(a, z, nullptr, n, [](vf x, vf) {
          x = x > 0.0f ? x : vf{};
          return x * x;
        });
    });
  }

  void run() {
    const int64_t C = c.C;
    pfor(B, [&](int64_t b) {
      const float* e = w[G_WTE] + tokens[b] * C;
      for (int64_t i = 0; i < C; ++i) x[b * C + i] = e[i];
      if (c.pos == POS_TABLE) {
        const float* t = w[G_POS] + pos[b] * C;
        for (int64_t i = 0; i < C; ++i) x[b * C + i] += t[i];
      }
    });
    for (int64_t l = 0; l < c.n_layer; ++l) {
      norm_rows(x, lw(l, L_N1W), lw(l, L_N1B), h);
      linear(h, B, C, lw(l, L_QKV_W), lw(l, L_QKV_B), n_qkv, qkv, false);
      attention(l);
      linear(att, B, c.H * c.D, lw(l, L_PROJ_W), lw(l, L_PROJ_B), C, x, true);
      norm_rows(x, lw(l, L_N2W), lw(l, L_N2B), h);
      linear(h, B, C, lw(l, L_UP_W), lw(l, L_UP_B), n_up, up, false);
      activate();
      linear(act, B, c.hidden, lw(l, L_DOWN_W), lw(l, L_DOWN_B), C, x, true);
    }
    // the final norm of the rows whose logits are wanted, gathered at the start of h
    pfor(n_out, [&](int64_t j) { norm(c, x + (out ? out[j] : j) * C, w[G_NORMF_W], w[G_NORMF_B], h + j * C, C); });
    linear(h, n_out, C, w[G_LM_HEAD], nullptr, c.V, logits, false);
    if (c.softcap_on)
      pfor(n_out, [&](int64_t j) {
        for (int64_t i = j * c.V; i < (j + 1) * c.V; ++i) logits[i] = c.softcap * std::tanh(logits[i] / c.softcap);
      });
  }
};

}  // namespace

extern "C" {

// The version of this interface (native.py checks it after loading).
int causette_native_version() { return 3; }

// One step: see Step. `ints` = n_layer, n_embd, n_head, n_kv_head, head_dim, hidden, vocab,
// norm, mlp, pos, bias, qk_norm, window (0: none), softcap on, block_size; `floats` = eps,
// softcap. With a sliding window, a cache of L < block_size slots is a ring buffer (position p
// in slot p mod L, L >= window; causette/model/kvcache.py on main); otherwise p < L.
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
  const int64_t block_size = ints[14];  // rows of the position tables
  c.eps = floats[0]; c.softcap = floats[1];
  s.w = weights; s.B = B; s.L = L; s.tokens = tokens; s.pos = pos; s.kc = kc; s.vc = vc; s.logits = logits;
  s.crow = crow; s.out = out; s.n_out = out ? n_out : B;
  s.n_qkv = (c.H + 2 * c.KV) * c.D;
  s.n_up = c.mlp == MLP_SWIGLU ? 2 * c.hidden : c.hidden;
  for (int64_t b = 0; b < B; ++b) {
    if (tokens[b] < 0 || tokens[b] >= c.V || pos[b] < 0 || pos[b] >= block_size) return 1;
    if (pos[b] >= L && (c.window == 0 || L < c.window)) return 1;  // past the cache, and no ring
    if ((crow ? crow[b] : b) < 0 || (crow ? crow[b] : b) >= cache_rows) return 1;
  }
  for (int64_t j = 0; out && j < n_out; ++j)
    if (out[j] < 0 || out[j] >= B) return 1;
  int nt = nthreads < 1 ? 1 : std::min(nthreads, 64);
  static thread_local std::vector<float> scratch;
  size_t need = B * (2 * c.C + s.n_qkv + c.H * c.D + s.n_up + c.hidden) + 64;
  if (scratch.size() < need) scratch.resize(need);
  float* p = scratch.data();
  s.x = p; p += B * c.C;
  s.h = p; p += B * c.C;
  s.qkv = p; p += B * s.n_qkv;
  s.att = p; p += B * c.H * c.D;
  s.up = p; p += B * s.n_up;
  s.act = p;
  std::unique_lock<std::mutex> mine;
  if (nt > 1) {
    {
      std::lock_guard<std::mutex> lk(pool_lock);
      if (pool == nullptr) {
        static bool registered = false;
        if (!registered) pthread_atfork(nullptr, nullptr, forget_pool_after_fork);
        registered = true;
        pool = new Pool;
      }
      mine = std::unique_lock<std::mutex>(pool->busy, std::try_to_lock);
      if (mine.owns_lock()) {  // else another step holds the helpers: this one runs alone
        pool->ensure(nt - 1);
        s.team = pool;
      }
    }
  }
  s.run();
  return 0;
}

}  // extern "C"
