// Embeds the prediction server in a C++ program: trains a small model on the bundled penguins
// table, serves it on a free local port, queries it with escala's client, and shuts down.
//
//   example_embedded_server [path/to/penguins.csv]
#include <cstdio>
#include <string>

#include "escala/core/communicator.h"
#include "escala/data/csv.h"
#include "escala/features/pipeline.h"
#include "escala/io/bundle.h"
#include "escala/models/linear.h"
#include "escala/serving/client.h"
#include "escala/serving/server.h"
#include "escala/train/trainer.h"

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : ESCALA_EXAMPLE_DATA "/penguins.csv";
  try {
    // A bundle: pipeline + softmax model predicting the species.
    const auto table = escala::data::ReadCsv(path);
    auto comm = escala::MakeSelfCommunicator();
    auto bundle = std::make_shared<escala::io::ModelBundle>();
    bundle->pipeline = escala::features::Pipeline::FromSpec(
        "impute(median) | impute(most_frequent) | standardize | onehot(island, sex)");
    escala::features::FitOptions fit;
    fit.exclude = {"species"};
    bundle->pipeline.Fit(table, fit, *comm);
    escala::MatrixF x;
    bundle->pipeline.Transform(table, &x);
    bundle->class_names = {"Adelie", "Chinstrap", "Gentoo"};
    std::vector<float> y;
    for (std::int64_t i = 0; i < table.num_rows(); ++i) {
      const auto s = table.column("species").category(i);
      y.push_back(
          static_cast<float>(std::find(bundle->class_names.begin(), bundle->class_names.end(), s) -
                             bundle->class_names.begin()));
    }
    auto model = std::make_shared<escala::models::LinearModel>(escala::models::Task::kMulticlass,
                                                               bundle->pipeline.num_outputs(), 3);
    escala::train::TrainOptions options;
    options.optimizer.name = "lbfgs";
    options.optimizer.l2 = 1e-2f;
    options.progress = false;
    escala::train::Trainer(*model, options, *comm).Fit({std::as_const(x).view(), y, {}}, nullptr);
    bundle->model = model;
    bundle->label = "species";

    // Serve it.
    auto server = escala::serving::PredictionServer::Builder()
                      .SetGrpcAddress("127.0.0.1:0")
                      .SetHttpAddress("")
                      .AddModel("penguins", bundle)
                      .Build();
    std::printf("serving on port %d\n", server->grpc_port());

    // Query it as any client would: one tensor per raw column.
    escala::serving::Client client("127.0.0.1:" + std::to_string(server->grpc_port()));
    using escala::serving::Tensor;
    const auto result = client.Infer(
        "penguins",
        {Tensor::Bytes("island", {"Torgersen", "Biscoe"}),
         Tensor::Fp64("bill_length_mm", {39.1, 47.5}), Tensor::Fp64("bill_depth_mm", {18.7, 15.0}),
         Tensor::Fp64("flipper_length_mm", {181, 218}), Tensor::Fp64("body_mass_g", {3750, 5000}),
         Tensor::Bytes("sex", {"male", ""}),  // "" is missing: imputed
         Tensor::Fp64("year", {2007, 2009})});
    const auto& labels = result.output("label").bytes;
    std::printf("predicted: %s, %s\n", labels[0].c_str(), labels[1].c_str());
    server->Shutdown(std::chrono::seconds(5));
    return labels[0] == "Adelie" && labels[1] == "Gentoo" ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
