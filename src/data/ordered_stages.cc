#include "data/ordered_stages.h"

#include <mutex>
#include <vector>

#include <tbb/parallel_pipeline.h>

#include "escala/core/error.h"
#include "escala/core/parallel.h"

namespace escala::data::internal {

void RunOrderedStages(std::span<void* const> tokens, const std::function<bool(void*)>& produce,
                      const std::function<void(void*)>& work,
                      const std::function<void(void*)>& consume) {
  ESCALA_ASSERT(!tokens.empty());
  if (NumThreads() <= 1 || tokens.size() == 1) {
    void* t = tokens[0];
    while (produce(t)) {
      work(t);
      consume(t);
    }
    return;
  }
  std::mutex mu;
  std::vector<void*> free_tokens(tokens.begin(), tokens.end());  // guarded by mu
  tbb::parallel_pipeline(
      tokens.size(),
      tbb::make_filter<void, void*>(tbb::filter_mode::serial_in_order,
                                    [&](tbb::flow_control& fc) -> void* {
                                      void* t;
                                      {
                                        std::lock_guard lock(mu);
                                        ESCALA_ASSERT(!free_tokens.empty());
                                        t = free_tokens.back();
                                        free_tokens.pop_back();
                                      }
                                      if (!produce(t)) {
                                        std::lock_guard lock(mu);
                                        free_tokens.push_back(t);
                                        fc.stop();
                                        return nullptr;
                                      }
                                      return t;
                                    }) &
          tbb::make_filter<void*, void*>(tbb::filter_mode::parallel,
                                         [&](void* t) {
                                           work(t);
                                           return t;
                                         }) &
          tbb::make_filter<void*, void>(tbb::filter_mode::serial_in_order, [&](void* t) {
            consume(t);
            std::lock_guard lock(mu);
            free_tokens.push_back(t);
          }));
}

}  // namespace escala::data::internal
