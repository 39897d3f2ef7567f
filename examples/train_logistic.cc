// Trains a logistic regression from C++: predict a penguin's sex from its measurements, species
// and island, on the bundled Palmer penguins table.
//
//   example_train_logistic [path/to/penguins.csv] [out.bundle]
//
// Shows the library's whole training loop: read a CSV into a Table, fit a feature pipeline
// (impute, standardise, one-hot), train with L-BFGS, evaluate on held-out rows, save a model
// bundle and load it back for predictions.
#include <cstdio>
#include <string>
#include <vector>

#include "escala/core/communicator.h"
#include "escala/data/csv.h"
#include "escala/data/split.h"
#include "escala/features/pipeline.h"
#include "escala/io/bundle.h"
#include "escala/models/linear.h"
#include "escala/train/trainer.h"

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : ESCALA_EXAMPLE_DATA "/penguins.csv";
  const std::string out = argc > 2 ? argv[2] : "penguins_sex.bundle";
  try {
    escala::data::CsvOptions csv;
    csv.row_ids = true;
    escala::data::Table table = escala::data::ReadCsv(path, csv);

    // Keep rows whose label is known; split 80/20 by row identity.
    std::vector<std::int64_t> labelled;
    const auto& sex = table.column("sex");
    for (std::int64_t i = 0; i < table.num_rows(); ++i) {
      if (!sex.is_missing(i)) labelled.push_back(i);
    }
    table = table.Take(labelled);
    const auto split = escala::data::SplitTrainValidation(table.row_ids(), 0.2, 7);
    const auto train = table.Take(split.train);
    const auto valid = table.Take(split.valid);

    auto comm = escala::MakeSelfCommunicator();
    auto pipeline = escala::features::Pipeline::FromSpec(
        "impute(median) | impute(most_frequent) | standardize | onehot(species, island)");
    escala::features::FitOptions fit;
    fit.exclude = {"sex", "year"};
    pipeline.Fit(train, fit, *comm);

    auto labels = [](const escala::data::Table& t) {
      std::vector<float> y;
      for (std::int64_t i = 0; i < t.num_rows(); ++i) {
        y.push_back(t.column("sex").category(i) == "male" ? 1.0f : 0.0f);
      }
      return y;
    };
    escala::MatrixF x, xv;
    pipeline.Transform(train, &x);
    pipeline.Transform(valid, &xv);
    const auto y = labels(train), yv = labels(valid);

    auto model = std::make_shared<escala::models::LinearModel>(escala::models::Task::kBinary,
                                                               pipeline.num_outputs());
    escala::train::TrainOptions options;
    options.optimizer.name = "lbfgs";
    options.optimizer.l2 = 1e-3f;
    options.progress = false;
    escala::train::Trainer trainer(*model, options, *comm);
    escala::train::DataShard vs{std::as_const(xv).view(), yv, {}};
    const auto result = trainer.Fit({std::as_const(x).view(), y, {}}, &vs);
    std::printf("validation: %s\n", result.valid.ToString().c_str());

    escala::io::ModelBundle bundle;
    bundle.name = "penguins-sex";
    bundle.label = "sex";
    bundle.class_names = {"female", "male"};
    bundle.pipeline = pipeline;
    bundle.model = model;
    for (const auto& [k, v] : result.valid.values) bundle.metrics["valid_" + k] = v;
    bundle.Save(out);

    // Load it back and predict from raw columns, as a server would.
    const auto loaded =
        std::make_shared<const escala::io::ModelBundle>(escala::io::ModelBundle::Load(out));
    escala::io::Predictor predictor(loaded);
    escala::MatrixF p;
    predictor.PredictTable(valid, &p);
    std::printf("wrote %s; P(male) of the first held-out penguin: %.3f (label: %s)\n", out.c_str(),
                p(0, 0), std::string(valid.column("sex").category(0)).c_str());
    return result.valid.at("accuracy") > 0.8 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
