// Models trained by XGBoost, read into escala's tree ensemble: the JSON model format
// (`Booster.save_model("m.json")`) and its binary twin UBJSON (`"m.ubj"`), XGBoost 1.0 and later.
//
// What is read: the gbtree booster (and dart, whose tree weights scale the leaves), the trees'
// numeric splits (x < split_condition goes left), learned missing-value directions, categorical
// splits (a category in the node's set goes to XGBoost's right child; escala stores the set on
// its left, so the children are swapped), each node's hessian sum (cover) and each split's loss
// change (gain) — so importance and TreeSHAP contributions work on imported models — and the base
// score, turned into a margin as XGBoost does for the objective. Objectives:
//
//   reg:squarederror, reg:squaredlogerror, reg:pseudohubererror, reg:absoluteerror   identity
//   binary:logistic, binary:logitraw   sigmoid (escala predicts P(y = 1) for both)
//   multi:softprob, multi:softmax      softmax (escala predicts class probabilities for both)
//   count:poisson, reg:gamma, reg:tweedie   exp
//
// Everything else (gblinear, reg:logistic, ranking, survival, multi-target trees, vector leaves)
// is refused with kInvalidArgument naming what. The whole ensemble is used: XGBoost's
// best_iteration attribute (early stopping) is reported but does not cut trees, as
// Booster.predict() without iteration_range does.
//
// A categorical feature's input is its category code (pandas' `cat.codes`, a whole number); a
// code outside the node's set — an unseen one, a negative one — goes where XGBoost sends it. A
// missing category must be NaN: pandas writes -1 in `cat.codes`, which XGBoost's pandas path
// turns into NaN (the learned default direction), while a -1 given as a number is an invalid
// category (XGBoost's left child), so convert -1 to NaN before scoring.
#ifndef ESCALA_MODELS_XGBOOST_H_
#define ESCALA_MODELS_XGBOOST_H_

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "escala/models/tree_ensemble.h"

namespace escala::models {

struct XgboostModel {
  std::unique_ptr<TreeEnsemble> ensemble;
  // XGBoost's feature names, or "f0", "f1", ... (XGBoost's own default) when it has none.
  std::vector<std::string> feature_names;
  // Per feature: whether XGBoost declared it categorical (feature type "c").
  std::vector<bool> categorical;
  std::string objective;         // XGBoost's name: "binary:logistic"
  std::array<int, 3> version{};  // the XGBoost version that wrote the file
  int best_iteration = -1;       // from the attributes, when early stopping recorded one
};

// Whether `bytes` look like an XGBoost model file: a JSON object or a UBJSON one ('{' first).
bool LooksLikeXgboostModel(std::string_view bytes);

// Parses XGBoost's JSON or UBJSON (told apart by their first bytes). `what` names the source in
// errors (a path). kInvalidArgument for a file that does not parse (with the parser's byte
// offset), an unsupported booster, objective or version, or an inconsistent tree (naming the
// tree, the node and the field).
XgboostModel ParseXgboostModel(std::string_view bytes, std::string_view what);

}  // namespace escala::models

#endif  // ESCALA_MODELS_XGBOOST_H_
