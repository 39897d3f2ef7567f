// A global operator new that counts allocations while counting is on. Linked only into the
// no-allocation test binary (it replaces operator new process-wide).
#ifndef ESCALA_TESTS_TEST_UTIL_COUNTING_NEW_H_
#define ESCALA_TESTS_TEST_UTIL_COUNTING_NEW_H_

namespace escala::testing {

void StartCountingAllocations();
// Stops counting; returns the allocations since StartCountingAllocations().
long StopCountingAllocations();

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_COUNTING_NEW_H_
