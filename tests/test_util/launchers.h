// Stand-ins and commands for the launcher tests: a Slurm `srun` that starts the tasks of one node
// with the variables Slurm gives each task.
#ifndef ESCALA_TESTS_TEST_UTIL_LAUNCHERS_H_
#define ESCALA_TESTS_TEST_UTIL_LAUNCHERS_H_

#include <string>

#include <sys/stat.h>

#include "test_util/temp_dir.h"

namespace escala::testing {

// Writes `srun` into `dir`: FAKE_SLURM_NTASKS tasks (default 2) of the command after its options.
inline void WriteFakeSrun(const TempDir& dir) {
  const std::string srun = dir.File("srun");
  WriteFile(srun,
            "#!/bin/sh\n"
            "while [ \"${1#-}\" != \"$1\" ]; do shift; done\n"
            "n=${FAKE_SLURM_NTASKS:-2}; i=0; pids=\n"
            "while [ $i -lt $n ]; do\n"
            "  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NODEID=0 SLURM_NTASKS=$n \\\n"
            "  SLURM_NTASKS_PER_NODE=$n SLURM_JOB_ID=777 SLURM_JOB_NODELIST='localhost' \"$@\" &\n"
            "  pids=\"$pids $!\"; i=$((i+1))\n"
            "done\n"
            "rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc\n");
  chmod(srun.c_str(), 0755);
}

}  // namespace escala::testing

#endif  // ESCALA_TESTS_TEST_UTIL_LAUNCHERS_H_
