#!/usr/bin/env bash
# The concurrent parts of escala under ThreadSanitizer: the communicators (threads and the gRPC
# ring), the coordinator and job sessions, the loaders' prefetch threads, the prediction server
# with its model manager and dynamic batching, and the parallel readers. A separate build
# (the `tsan` preset, build/tsan) that CI does not run for time; run it after changing any of
# those (docs/reliability.md).
#
#   scripts/tsan-tests.sh [ctest args...]     e.g. scripts/tsan-tests.sh -R Batching
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset tsan >/dev/null
targets=(escala_core_tests escala_data_tests escala_dist_tests escala_serving_tests
  escala_serving_integration_tests escala_train_tests)
cmake --build --preset tsan --target "${targets[@]}"
# The tests of those binaries by suite (ctest names are Suite.Test); second_deadlock_stack helps
# read lock-order reports.
TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}" \
  ctest --preset tsan -R '^(SelfCommunicator|ThreadCommunicator|Reduce|Parallel|Progress|Coordinator|Connect|GrpcRing|GrpcRingFailures|LinkedPeers|RelayedFailure|Listeners|InFrame|Tls|TlsCredentials|Loader|StreamingLoader|Stream|Csv|Dataset|Serving|ServingLimits|ServingSecurity|ModelManager|HttpEndpoint|Codec|Metrics|Trainer|TrainerBackend|Selection)\.' "$@"
