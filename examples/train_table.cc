// What `escala train --data penguins.csv --label species --model mlp --out penguins.bundle` does,
// from C++: the library's one-call training from a table (escala/train/estimator.h). The bundle
// it writes is the command's, to rounding; the test suite checks that.
//
//   example_train_table [penguins.csv] [out.bundle]
#include <cstdio>
#include <optional>
#include <string>

#include "escala/core/communicator.h"
#include "escala/data/dataset.h"
#include "escala/train/estimator.h"

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : ESCALA_EXAMPLE_DATA "/penguins.csv";
  const std::string out = argc > 2 ? argv[2] : "penguins.bundle";
  try {
    auto comm = escala::MakeSelfCommunicator();  // or a job's: escala/distributed/connect.h
    escala::data::DatasetOptions read;
    read.label_column = "species";
    auto table = escala::data::Dataset::Open({path}, read).ReadTable();

    escala::train::TrainSpec spec;  // every field defaults as `escala train` does
    spec.label = "species";
    spec.model = "mlp";
    auto outcome = escala::train::TrainTable(spec, std::move(table), std::nullopt, *comm);

    outcome.bundle.Save(out);
    std::printf("trained %s (%s); wrote %s\n", outcome.bundle.model->Describe().c_str(),
                outcome.result.stop_reason.c_str(), out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
