// Three ordered stages on oneTBB, the readers' parse loop (not features::Pipeline): a serial
// producer, parallel workers and a serial consumer that sees items in production order. Items
// are preallocated tokens that circulate, so steady-state operation allocates nothing; the token
// count bounds memory.
#ifndef ESCALA_SRC_DATA_ORDERED_STAGES_H_
#define ESCALA_SRC_DATA_ORDERED_STAGES_H_

#include <functional>
#include <span>

namespace escala::data::internal {

// produce(token) fills a token and returns false when there is nothing more; work(token) runs in
// parallel; consume(token) runs serially in production order. Exceptions from any stage stop the
// pipeline and propagate to the caller.
void RunOrderedStages(std::span<void* const> tokens, const std::function<bool(void*)>& produce,
                      const std::function<void(void*)>& work,
                      const std::function<void(void*)>& consume);

}  // namespace escala::data::internal

#endif  // ESCALA_SRC_DATA_ORDERED_STAGES_H_
