// A global operator new that counts allocations while counting is on: tests use it to show that
// hot loops allocate nothing in steady state. It replaces operator new process-wide, so only the
// test binaries that count link it (the data tests and the no-allocation tests).
#ifndef ESCALA_TESTS_TEST_UTIL_COUNTING_NEW_H_
#define ESCALA_TESTS_TEST_UTIL_COUNTING_NEW_H_

namespace escala::testing {

void StartCountingAllocations();
// Stops counting; returns the allocations since StartCountingAllocations().
long StopCountingAllocations();

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_COUNTING_NEW_H_
