#!/usr/bin/env bash
# The concurrent parts of escala that ThreadSanitizer can check with Debian's libraries (see
# below): a separate build (the `tsan` preset, build/tsan) that CI does not run for time; run it
# after changing threads or locks (docs/reliability.md).
#
#   scripts/tsan-tests.sh [ctest args...]     e.g. scripts/tsan-tests.sh -j2 --repeat until-fail:3
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset tsan >/dev/null
targets=(escala_core_tests escala_data_tests escala_dist_tests escala_serving_tests)
cmake --build --preset tsan --target "${targets[@]}"
# The suites whose threads are escala's own: the size-1 and thread communicators and their
# reductions, progress reporting, the in-memory loader's prefetch thread, the HTTP endpoint (its
# own epoll server) and its metrics, the ring's framing and peer links, connecting a job.
# oneTBB, gRPC and abseil come from Debian without ThreadSanitizer. So the parallel loops run on
# one thread here (ESCALA_NUM_THREADS=1: work stealing inside an uninstrumented libtbb is reported
# as races), tests/tsan_suppressions.txt ignores the memory calls made from inside those
# libraries, and the suites built on gRPC's callback API (coordinator, ring collectives,
# prediction server) are left out: their reports come from gRPC's header code, instrumented,
# meeting its library code, not instrumented, and cannot be told from real races without a
# ThreadSanitizer build of gRPC (docs/reliability.md).
ESCALA_NUM_THREADS=1 \
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$(pwd)/tests/tsan_suppressions.txt:${TSAN_OPTIONS:-}" \
  ctest --preset tsan -R '^(SelfCommunicator|ThreadCommunicator|Reduce|Progress|Connect|LinkedPeers|InFrame|TlsCredentials|Loader|HttpEndpoint|Metrics|RelayedFailure|RestOnly|ModelManager|VersionPolicy)\.' "$@"
