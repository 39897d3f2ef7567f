// Trains a multilayer perceptron from C++: classify penguin species (three classes) from the
// bundled Palmer penguins table, with early stopping on a held-out split.
//
//   example_train_mlp [path/to/penguins.csv] [out.bundle]
#include <cstdio>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/data/csv.h"
#include "escala/data/split.h"
#include "escala/features/pipeline.h"
#include "escala/io/bundle.h"
#include "escala/models/mlp.h"
#include "escala/train/labels.h"
#include "escala/train/trainer.h"

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : ESCALA_EXAMPLE_DATA "/penguins.csv";
  const std::string out = argc > 2 ? argv[2] : "penguins_species.bundle";
  try {
    escala::data::CsvOptions csv;
    csv.row_ids = true;
    const escala::data::Table table = escala::data::ReadCsv(path, csv);
    const auto split = escala::data::SplitTrainValidation(table.row_ids(), 0.25, 3);
    const auto train = table.Take(split.train);
    const auto valid = table.Take(split.valid);

    auto comm = escala::MakeSelfCommunicator();
    auto pipeline = escala::features::Pipeline::FromSpec(
        "impute(median) | impute(most_frequent) | standardize | onehot(island, sex)");
    escala::features::FitOptions fit;
    fit.exclude = {"species", "year"};
    pipeline.Fit(train, fit, *comm);

    // The classes as the data has them (merged over all ranks), and labels as class indices.
    const auto classes = escala::train::ClassNames(train, "species", *comm);
    auto labels = [&](const escala::data::Table& t) {
      return escala::train::EncodeLabels(t, "species", classes);
    };
    escala::MatrixF x, xv;
    pipeline.Transform(train, &x);
    pipeline.Transform(valid, &xv);
    const auto y = labels(train), yv = labels(valid);

    escala::models::MlpSpec spec;
    spec.task = escala::models::Task::kMulticlass;
    spec.num_features = pipeline.num_outputs();
    spec.num_classes = static_cast<int>(classes.size());
    spec.hidden = {32, 16};
    auto model = std::make_shared<escala::models::Mlp>(spec);
    escala::train::TrainOptions options;
    options.optimizer.name = "adam";
    options.optimizer.lr = 0.01f;
    options.epochs = 60;
    options.batch_size = 32;
    options.early_stopping.patience = 8;
    options.progress = false;
    escala::train::Trainer trainer(*model, options, *comm);
    escala::train::DataShard vs{std::as_const(xv).view(), yv, {}};
    const auto result = trainer.Fit({std::as_const(x).view(), y, {}}, &vs);
    std::printf("%s after %zu epochs (%s)\nvalidation: %s\n", model->Describe().c_str(),
                result.history.size(), result.stop_reason.c_str(), result.valid.ToString().c_str());

    escala::io::ModelBundle bundle;
    bundle.name = "penguins-species";
    bundle.label = "species";
    bundle.class_names = classes;
    bundle.pipeline = pipeline;
    bundle.model = model;
    bundle.history = result.history;
    bundle.Save(out);
    std::printf("wrote %s\n", out.c_str());
    return result.valid.at("accuracy") > 0.9 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
