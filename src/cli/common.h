// Helpers shared by the `escala` subcommands: dataset flags, the worker's communicator, label
// encoding.
#ifndef ESCALA_CLI_COMMON_H_
#define ESCALA_CLI_COMMON_H_

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "escala/core/communicator.h"
#include "escala/data/dataset.h"
#include "escala/data/table.h"

namespace escala::cli {

// Flags that say how to read data files (format, CSV dialect, bad-row policy).
struct DataFlags {
  std::string format = "auto";
  std::string delimiter = ",";
  bool no_header = false;
  int skip_lines = 0;
  std::string comment;
  std::string on_error = "fail";
  std::vector<std::string> na_values;
  std::vector<std::string> types;  // "col:type"

  void Register(CLI::App* cmd);
  data::DatasetOptions ToOptions() const;
  // These flags with the categorical inputs of a fitted pipeline that `files` hold, inferred as
  // something else, read as categorical (unless a --column-type names them): a file to score
  // whose category column is all empty, or holds codes that look like numbers, is read as the
  // model was fitted.
  DataFlags WithCategoricalInputs(const data::Schema& inputs,
                                  const std::vector<std::string>& files) const;
};

// The communicator of this process: a worker of a distributed job when the environment says so
// (escala launch, torchrun, Slurm, Open MPI variables), else a single process.
std::unique_ptr<Communicator> MakeWorkerCommunicator();

// Reads this worker's shard of a dataset as a table, logging what was read and skipped. Labels
// kept apart from the features (NPY's <stem>.labels.npy, LIBSVM) become the column `label`.
data::Table ReadShard(const std::vector<std::string>& files, const DataFlags& flags,
                      const Communicator& comm, const std::string& what,
                      const std::string& label = "");
data::Table ReadShard(const data::Dataset& dataset, const Communicator& comm,
                      const std::string& what);
// The dataset the flags name, with `label` as its label column (see ReadShard), its CSV numbers
// held as float32 when asked (data::DatasetOptions::float32_numbers).
data::Dataset OpenDataset(const std::vector<std::string>& files, const DataFlags& flags,
                          const std::string& label = "", bool float32_numbers = false);

// The files a --data/--valid list names (globs and directories expanded): what an output flag
// must not overwrite (see CheckOutputIsNotInput in escala/core/file_util.h).
std::vector<std::string> InputPaths(const std::vector<std::string>& specs, const DataFlags& flags);

}  // namespace escala::cli

#endif  // ESCALA_CLI_COMMON_H_
