// The training loop allocates nothing per batch: allocations grow with epochs (validation,
// history, the epoch's shuffle), not with batches.
#include <gtest/gtest.h>

#include "escala/core/communicator.h"
#include "escala/models/factory.h"
#include "escala/train/trainer.h"
#include "test_util/counting_new.h"
#include "test_util/synthetic.h"

namespace escala::train {
namespace {

long AllocationsForEpochs(int epochs, const testing::SyntheticData& data) {
  models::ModelSpec spec;
  spec.kind = "mlp";
  spec.task = models::Task::kBinary;
  spec.num_features = data.x.cols();
  spec.hidden = {32, 16};
  spec.dropout = 0.1f;
  auto model = models::MakeModel(spec);
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 32;
  o.threads = 2;
  o.progress = false;
  auto comm = MakeSelfCommunicator();
  Trainer trainer(*model, o, *comm);
  testing::StartCountingAllocations();
  trainer.Fit({data.x.view(), data.y, {}}, nullptr);
  return testing::StopCountingAllocations();
}

TEST(NoAllocation, TrainingStepsAllocateNothing) {
  const auto data = testing::MakeSynthetic(4096, 10, 2, 3);  // 128 batches per epoch
  const long one = AllocationsForEpochs(1, data);
  const long five = AllocationsForEpochs(5, data);
  const double per_extra_epoch = static_cast<double>(five - one) / 4.0;
  RecordProperty("allocations_per_epoch", static_cast<int>(per_extra_epoch));
  EXPECT_LT(per_extra_epoch, 16.0) << "allocations grow with batches (" << one << " for 1 epoch, "
                                   << five << " for 5 epochs of 128 batches)";
}

}  // namespace
}  // namespace escala::train
