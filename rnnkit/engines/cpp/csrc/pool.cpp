// The kernels' sequence buffers (gates, cell states, their gradients: (T, B, .) tensors of a few MB
// each) come from a pool that keeps freed blocks for the next call, as torch's CUDA caching allocator
// does on a GPU. From malloc, each training step's buffers were fresh pages: glibc returns a freed
// block this large to the kernel (munmap, or trimming the heap's top) and the next step takes a page
// fault per 4 KB to get it back, zeroed. LayerNorm-LSTM at (B, T, H) = (32, 100, 128) took 3,300-6,000
// page faults and 12-21 ms of system time per training step here, against about 70 for torch.nn.LSTM.
//
// Blocks are kept by size class (sizes rounded up to an eighth of their power of two, so sequences of
// nearby lengths share blocks) and handed out again for the same class only. Freed blocks wait in
// least-recently-freed order; past the cap (RNNKIT_CPU_POOL_MB, default 1024; 0 turns the pool off)
// the oldest are given back to the system. pool_empty() gives back all of them.
#include "common.h"

#include <ATen/EmptyTensor.h>
#include <cstdlib>
#include <list>
#include <mutex>
#include <unordered_map>

namespace rnnkit {

namespace {

// buffers below this many bytes come from torch's own allocator: malloc keeps blocks this small
constexpr size_t kPoolMinBytes = size_t(1) << 18;

size_t cap_from_env() {
  const char* v = std::getenv("RNNKIT_CPU_POOL_MB");
  if (v == nullptr || *v == '\0') return size_t(1024) << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(v, &end, 10);
  TORCH_CHECK(end != v && *end == '\0' && mb >= 0,
              "RNNKIT_CPU_POOL_MB must be a whole number of megabytes (0 turns the pool off), got '", v, "'");
  return size_t(mb) << 20;
}

// n rounded up to its size class: a multiple of 1/8 of n's power of two (at least 4 KB)
size_t size_class(size_t n) {
  size_t top = 1;
  while (top * 2 <= n) top *= 2;
  const size_t step = std::max<size_t>(4096, top / 8);
  return (n + step - 1) / step * step;
}

// new memory, aligned to 64 bytes as torch's CPU allocator aligns it
void* fresh(size_t bytes) {
  void* p = nullptr;
  TORCH_CHECK(posix_memalign(&p, 64, bytes) == 0 && p != nullptr, "rnnkit: out of memory allocating ", bytes,
              " bytes for a sequence buffer");
  return p;
}

struct Block {
  void* ptr;
  size_t bytes;
};

class BufferPool;
BufferPool* pool();  // the process's one pool (below); freed blocks go back to it

class BufferPool final : public c10::Allocator {
 public:
  explicit BufferPool(size_t cap) : cap_(cap) {}

  c10::DataPtr allocate(size_t n) override {
    const size_t bytes = size_class(std::max<size_t>(n, 1));
    void* p = take(bytes);
    if (p == nullptr) p = fresh(bytes);
    return {p, new Block{p, bytes}, &BufferPool::release, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  bool enabled() const { return cap_ > 0; }

  // given back to the system: every cached block
  void empty() {
    std::list<Block> gone;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      gone.swap(lru_);
      by_size_.clear();
      cached_ = 0;
    }
    for (const Block& b : gone) std::free(b.ptr);
  }

  // (bytes cached, bytes cap, allocations served from the cache, allocations that took new memory)
  std::vector<int64_t> stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {int64_t(cached_), int64_t(cap_), hits_, misses_};
  }

 private:
  using Iter = std::list<Block>::iterator;

  void* take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = by_size_.find(bytes);
    if (found == by_size_.end() || found->second.empty()) {
      ++misses_;
      return nullptr;
    }
    const Iter it = found->second.back();  // the most recently freed of its class: warmest in cache
    found->second.pop_back();
    void* p = it->ptr;
    cached_ -= it->bytes;
    lru_.erase(it);
    ++hits_;
    return p;
  }

  static void release(void* ctx) {
    Block* b = static_cast<Block*>(ctx);
    pool()->put(*b);
    delete b;
  }

  void put(const Block& b) {
    std::vector<void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (b.bytes > cap_) {
        evicted.push_back(b.ptr);
      } else {
        lru_.push_back(b);  // newest at the back, evicted from the front
        by_size_[b.bytes].push_back(std::prev(lru_.end()));
        cached_ += b.bytes;
        while (cached_ > cap_) {
          const Block old = lru_.front();
          auto& bin = by_size_[old.bytes];
          bin.erase(bin.begin());  // the oldest of its class is the front of its bin
          lru_.pop_front();
          cached_ -= old.bytes;
          evicted.push_back(old.ptr);
        }
      }
    }
    for (void* p : evicted) std::free(p);
  }

  std::mutex mutex_;
  std::list<Block> lru_;                                   // cached blocks, oldest first
  std::unordered_map<size_t, std::vector<Iter>> by_size_;  // size class -> its cached blocks, oldest first
  size_t cached_ = 0;
  const size_t cap_;
  int64_t hits_ = 0, misses_ = 0;
};

// never destroyed: tensors freed during interpreter shutdown still find it
BufferPool* pool() {
  static BufferPool* instance = new BufferPool(cap_from_env());
  return instance;
}

std::vector<int64_t> pool_stats() { return pool()->stats(); }

void pool_empty() { pool()->empty(); }

}  // namespace

Tensor seq_empty(at::IntArrayRef sizes, const at::TensorOptions& opts) {
  int64_t numel = 1;
  for (const int64_t s : sizes) numel *= s;
  const size_t bytes = size_t(numel) * opts.dtype().itemsize();
  if (!opts.device().is_cpu() || bytes < kPoolMinBytes || !pool()->enabled()) return at::empty(sizes, opts);
  return Tensor(at::detail::empty_generic(sizes, pool(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                          c10::typeMetaToScalarType(opts.dtype()), std::nullopt));
}

TORCH_LIBRARY_FRAGMENT(rnnkit_cpu, m) {
  m.def("pool_stats() -> int[]", &pool_stats);
  m.def("pool_empty() -> ()", &pool_empty);
}

}  // namespace rnnkit
