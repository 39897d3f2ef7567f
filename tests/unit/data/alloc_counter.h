// Counts heap allocations (global operator new) while enabled: tests use it to show that hot
// loops allocate nothing in steady state. The replacement operators live in alloc_counter.cc.
#ifndef ESCALA_TESTS_UNIT_DATA_ALLOC_COUNTER_H_
#define ESCALA_TESTS_UNIT_DATA_ALLOC_COUNTER_H_

namespace escala::testing {

void StartCountingAllocations();
// Stops counting and returns the number of allocations since the start.
long StopCountingAllocations();

}  // namespace escala::testing

#endif  // ESCALA_TESTS_UNIT_DATA_ALLOC_COUNTER_H_
