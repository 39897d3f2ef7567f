"""The Python package against scikit-learn's own estimators and tools, and the CLI.

Run by ctest (python.package) with PYTHONPATH=<build>/python; scikit-learn, pandas and the CLI
are optional: a test whose peer is absent is skipped.
"""
import os
import pickle
import subprocess
import tempfile
import unittest

import numpy as np

import escala

try:
    import pandas as pd
    from sklearn import datasets
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression as SkLogistic
    from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover
    HAVE_SKLEARN = False

PENGUINS = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "data", "penguins.csv")


class Reading(unittest.TestCase):
    def test_read_returns_views_of_the_parsed_columns(self):
        cols = escala.read(PENGUINS)
        self.assertEqual(len(cols["bill_length_mm"]), 344)
        self.assertFalse(cols["bill_length_mm"].flags.owndata)  # a view of escala's buffer
        codes, categories = cols["species"]
        self.assertEqual(sorted(categories), ["Adelie", "Chinstrap", "Gentoo"])
        self.assertTrue(np.isnan(cols["bill_length_mm"]).any())  # missing values are NaN

    @unittest.skipUnless(HAVE_SKLEARN, "pandas and scikit-learn are absent")
    def test_read_csv_types_columns_as_pandas_reads_them(self):
        df = escala.read_csv(PENGUINS)
        ref = pd.read_csv(PENGUINS)
        self.assertEqual(list(df.columns), list(ref.columns))
        self.assertEqual(str(df["species"].dtype), "category")
        np.testing.assert_allclose(df["bill_length_mm"], ref["bill_length_mm"])
        self.assertEqual(df["sex"].isna().sum(), ref["sex"].isna().sum())

    def test_read_array_gives_one_float32_matrix_and_the_label(self):
        rng = np.random.default_rng(2)
        data = rng.normal(size=(50, 3))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "n.csv")
            np.savetxt(path, data, delimiter=",", header="a,b,y", comments="", fmt="%.6f")
            X, y, names = escala.read_array(path, label="y")
        self.assertEqual((X.shape, X.dtype, names), ((50, 2), np.float32, ["a", "b"]))
        np.testing.assert_allclose(X, data[:, :2], atol=1e-6)
        np.testing.assert_allclose(y, data[:, 2], atol=1e-6)
        with self.assertRaisesRegex(ValueError, "categorical"):
            escala.read_array(PENGUINS)

    def test_a_missing_file_is_an_error_naming_it(self):
        with self.assertRaisesRegex(escala.Error, "no_such.csv"):
            escala.read("no_such.csv")
        with self.assertRaises(FileNotFoundError) as e:
            escala.read("no_such.csv")
        self.assertEqual(e.exception.code, "NotFound")
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.csv")
            with open(bad, "w") as f:
                f.write("a,b\n1,2\n3\n")
            with self.assertRaisesRegex(ValueError, "bad.csv:3"):  # file:line, a ValueError
                escala.read(bad)
            with open(os.path.join(d, "m.bundle"), "wb") as f:
                f.write(b"ESCALAMB garbage")
            with self.assertRaises(escala.Error):
                escala.load(os.path.join(d, "m.bundle"))


@unittest.skipUnless(HAVE_SKLEARN, "pandas and scikit-learn are absent")
class Estimators(unittest.TestCase):
    def test_gbdt_classifier_matches_sklearns_boosting_on_breast_cancer(self):
        X, y = datasets.load_breast_cancer(return_X_y=True)
        Xt, Xv, yt, yv = train_test_split(X, y, test_size=0.3, random_state=0)
        ours = escala.GBDTClassifier(n_estimators=100, max_depth=4, learning_rate=0.1)
        ours.fit(Xt, yt)
        theirs = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1).fit(Xt, yt)
        self.assertGreaterEqual(ours.score(Xv, yv), theirs.score(Xv, yv) - 0.03)
        p = ours.predict_proba(Xv)
        self.assertEqual(p.shape, (len(yv), 2))
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
        self.assertEqual(ours.n_features_in_, 30)

    def test_arrays_take_the_fast_path_with_the_same_predictions(self):
        X, y = datasets.load_breast_cancer(return_X_y=True)
        clf = escala.GBDTClassifier(n_estimators=20).fit(X, y)
        by_columns = clf.model_.predict({n: X[:, j] for j, n in enumerate(clf._names)})[:, 0]
        np.testing.assert_array_equal(clf.predict_proba(X)[:, 1], by_columns)  # the matrix path
        np.testing.assert_array_equal(clf.predict_proba(np.asfortranarray(X))[:, 1], by_columns)
        Xn = X.copy()
        Xn[0, 0] = np.nan  # not finite: the checked path, where trees take NaN as missing
        self.assertEqual(clf.predict_proba(Xn).shape, (len(X), 2))

    def test_classes_keep_their_labels_and_order(self):
        X, y = datasets.load_iris(return_X_y=True)
        names = np.array(["setosa", "versicolor", "virginica"])[y]
        for est in (escala.GBDTClassifier(n_estimators=20), escala.LogisticRegression(),
                    escala.RandomForestClassifier(n_estimators=20, random_state=0),
                    escala.MLPClassifier(hidden_layer_sizes=(16,), max_iter=300,
                                         random_state=0)):
            est.fit(X, names)
            self.assertEqual(list(est.classes_), ["setosa", "versicolor", "virginica"])
            self.assertGreater(est.score(X, names), 0.9, type(est).__name__)

    def test_logistic_regression_matches_sklearns_defaults(self):
        X, y = datasets.load_breast_cancer(return_X_y=True)
        Xt, Xv, yt, yv = train_test_split(X, y, test_size=0.3, random_state=1)
        ours = escala.LogisticRegression().fit(Xt, yt)
        theirs = make_pipeline(StandardScaler(), SkLogistic()).fit(Xt, yt)
        self.assertGreaterEqual(ours.score(Xv, yv), theirs.score(Xv, yv) - 0.02)

    def test_sample_weight_matches_sklearn_and_duplicated_rows(self):
        from sklearn.datasets import load_breast_cancer, load_diabetes
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler
        X, y = load_breast_cancer(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        w = np.random.default_rng(0).integers(0, 4, len(y)).astype(float)
        ours = escala.LogisticRegression(pipeline="none", tol=1e-8).fit(X, y, sample_weight=w)
        ref = LogisticRegression(max_iter=10000, tol=1e-10).fit(X, y, sample_weight=w)
        np.testing.assert_allclose(ours.predict_proba(X)[:, 1], ref.predict_proba(X)[:, 1],
                                   atol=2e-3)
        Xd, yd = load_diabetes(return_X_y=True)
        Xd = np.round(Xd * 50) / 50  # few values: the bins are the values either way
        wd = np.random.default_rng(1).integers(1, 4, len(yd))
        weighted = escala.GBDTRegressor(n_estimators=20).fit(Xd, yd, sample_weight=wd)
        copies = escala.GBDTRegressor(n_estimators=20).fit(np.repeat(Xd, wd, axis=0),
                                                           np.repeat(yd, wd))
        np.testing.assert_allclose(weighted.predict(Xd), copies.predict(Xd), rtol=1e-4)
        with self.assertRaisesRegex(ValueError, "sample_weight"):
            escala.GBDTRegressor().fit(Xd, yd, sample_weight=wd[:-1])
        with self.assertRaisesRegex(ValueError, "sample_weight: row 3"):
            bad = wd.astype(float)
            bad[3] = -1
            escala.GBDTRegressor().fit(Xd, yd, sample_weight=bad)

    def test_regressors_learn_diabetes(self):
        X, y = datasets.load_diabetes(return_X_y=True)
        Xt, Xv, yt, yv = train_test_split(X, y, test_size=0.3, random_state=0)
        for est in (escala.GBDTRegressor(n_estimators=50, max_depth=3, learning_rate=0.1),
                    escala.LinearRegression(),
                    escala.RandomForestRegressor(n_estimators=50, random_state=0)):
            self.assertGreater(est.fit(Xt, yt).score(Xv, yv), 0.3, type(est).__name__)

    def test_dataframes_with_categories_and_missing_values(self):
        df = escala.read_csv(PENGUINS).dropna(subset=["species"])
        X, y = df.drop(columns="species"), df["species"]
        clf = escala.GBDTClassifier(n_estimators=30).fit(X, y)
        self.assertEqual(list(clf.feature_names_in_), list(X.columns))
        self.assertGreater(clf.score(X, y), 0.95)
        shuffled = X[list(reversed(X.columns))]  # columns by name, not position
        np.testing.assert_allclose(clf.predict_proba(shuffled), clf.predict_proba(X))

    def test_grid_search_cross_validation_and_pipelines(self):
        X, y = datasets.load_breast_cancer(return_X_y=True)
        grid = GridSearchCV(escala.GBDTClassifier(n_estimators=20),
                            {"max_depth": [1, 3], "learning_rate": [0.3]}, cv=3).fit(X, y)
        self.assertIn(grid.best_params_["max_depth"], (1, 3))
        scores = cross_val_score(make_pipeline(StandardScaler(), escala.LogisticRegression()),
                                 X, y, cv=3)
        self.assertGreater(scores.mean(), 0.9)

    def test_estimators_pickle_and_round_trip_through_bundles(self):
        X, y = datasets.load_breast_cancer(return_X_y=True)
        clf = escala.GBDTClassifier(n_estimators=10).fit(X, y)
        again = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
        self.assertEqual(again.get_params(), clf.get_params())
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.bundle")
            clf.to_bundle(path)
            model = escala.load(path)
            np.testing.assert_allclose(model.predict(X)[:, 0], clf.predict_proba(X)[:, 1],
                                       rtol=1e-6)

    def test_a_float_matrix_trains_as_the_table_of_its_columns(self):
        # Arrays take the matrix path (viewed in C++); DataFrames the table path: same models.
        X, y = datasets.load_breast_cancer(return_X_y=True)
        X = StandardScaler().fit_transform(X).astype(np.float32)
        df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        for make in (lambda: escala.LogisticRegression(),
                     lambda: escala.GBDTClassifier(n_estimators=10),
                     lambda: escala.RandomForestClassifier(n_estimators=5, random_state=0)):
            a, b = make().fit(X, y), make().fit(df, y)
            np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(df))
            self.assertEqual(a.model_.inputs, b.model_.inputs)
            self.assertEqual(a.model_.training_config, b.model_.training_config)
        Xn = X.copy()
        Xn[3, 2] = np.nan  # (scikit-learn's check refuses infinities before)
        with self.assertRaisesRegex(ValueError, "row 3: feature 'x2' is missing"):
            escala.LogisticRegression(pipeline="none").fit(Xn, y)
        # Trees learn a direction for missing values.
        self.assertEqual(escala.GBDTClassifier(n_estimators=3).fit(Xn, y).n_features_in_, 30)
        np.testing.assert_array_equal(  # a Fortran-ordered float64 view: copied once, same fit
            escala.LogisticRegression().fit(np.asfortranarray(X.astype(np.float64)), y)
            .predict_proba(X), escala.LogisticRegression().fit(X, y).predict_proba(X))

    def test_files_as_X_train_predict_and_stream(self):
        rng = np.random.default_rng(7)
        X = rng.normal(size=(3000, 3))
        y = np.where(X @ [1.0, -1.5, 0.3] + rng.normal(scale=0.3, size=3000) > 0, 3, 8)
        w = rng.integers(1, 3, 3000)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.csv")
            np.savetxt(path, np.column_stack([X, y, w]), delimiter=",", header="a,b,c,y,w",
                       comments="", fmt=["%.7f"] * 3 + ["%d", "%d"])
            df = pd.DataFrame(X, columns=["a", "b", "c"])
            # (the same pipeline both ways: "auto" on files is escala's default pipeline)
            for est in (escala.LogisticRegression(pipeline="standardize"),
                        escala.GBDTClassifier(n_estimators=10)):
                est.fit(path, "y", sample_weight="w")
                self.assertEqual(list(est.classes_), [3, 8])
                self.assertEqual(list(est.feature_names_in_), ["a", "b", "c"])
                ref = type(est)(**est.get_params()).fit(df, y, sample_weight=w)
                np.testing.assert_allclose(est.predict_proba(path), ref.predict_proba(df),
                                           atol=2e-4 if isinstance(est, escala.LogisticRegression)
                                           else 1e-6)
                self.assertGreater((est.predict(path) == y).mean(), 0.9)
            # Streamed in 64 KiB chunks: L-BFGS reaches the in-memory model.
            streamed = escala.LogisticRegression().fit(path, "y", memory_budget=64 << 10)
            whole = escala.LogisticRegression().fit(path, "y")
            np.testing.assert_allclose(streamed.predict_proba(path), whole.predict_proba(path),
                                       atol=1e-4)
            reg = escala.LinearRegression().fit(path, "a")  # any column is a label
            self.assertEqual(list(reg.feature_names_in_), ["b", "c", "y", "w"])
            with self.assertRaisesRegex(ValueError, "name of their label column"):
                escala.LogisticRegression().fit(path, y)
            with self.assertRaisesRegex(escala.NotFoundError, "nope"):
                escala.LogisticRegression().fit(path, "nope")
            with self.assertRaisesRegex(escala.Error, "gbdt"):  # trees need the rows in memory
                escala.GBDTClassifier().fit(path, "y", memory_budget=1 << 20)
            with self.assertRaisesRegex(ValueError, "memory_budget"):
                escala.LogisticRegression().fit(X, y, memory_budget=1 << 20)

    def test_weighted_validation_sets(self):
        X, y = datasets.load_breast_cancer(return_X_y=True)
        Xt, Xv, yt, yv = train_test_split(X, y, test_size=0.3, random_state=2)
        wv = np.where(yv == 1, 5.0, 1.0)
        plain = escala.GBDTClassifier(n_estimators=10).fit(Xt, yt, eval_set=[(Xv, yv)])
        weighted = escala.GBDTClassifier(n_estimators=10).fit(
            Xt, yt, eval_set=[(Xv, yv)], sample_weight_eval_set=[wv])
        p = np.clip(plain.predict_proba(Xv)[:, 1], 1e-15, 1 - 1e-15)
        loss = -(yv * np.log(p) + (1 - yv) * np.log(1 - p))
        self.assertAlmostEqual(weighted.fit_report_["valid"]["logloss"],
                               float(np.sum(wv * loss) / np.sum(wv)), places=4)
        self.assertAlmostEqual(plain.fit_report_["valid"]["logloss"], float(loss.mean()),
                               places=4)
        with self.assertRaisesRegex(ValueError, "without an eval_set"):
            escala.GBDTClassifier().fit(Xt, yt, sample_weight_eval_set=[wv])
        with self.assertRaisesRegex(ValueError, "sample_weight_eval_set.shape"):
            escala.GBDTClassifier().fit(Xt, yt, eval_set=(Xv, yv), sample_weight_eval_set=wv[1:])
        with self.assertRaisesRegex(ValueError, "one set"):
            escala.GBDTClassifier().fit(Xt, yt, eval_set=[(Xv, yv), (Xv, yv)])

    def test_bad_input_is_refused_clearly(self):
        X, y = datasets.load_iris(return_X_y=True)
        with self.assertRaisesRegex(ValueError, "2D array"):
            escala.GBDTClassifier().fit(X[:, 0], y)
        with self.assertRaisesRegex(ValueError, "greater than one"):
            escala.GBDTClassifier().fit(X, np.zeros(len(y)))
        clf = escala.GBDTClassifier(n_estimators=5).fit(X, y)
        with self.assertRaisesRegex(ValueError, "expecting 4 features"):
            clf.predict(X[:, :3])
        with self.assertRaisesRegex(escala.Error, "max_depth"):
            escala.GBDTClassifier(max_depth=0).fit(X, y)


@unittest.skipUnless(HAVE_SKLEARN, "pandas and scikit-learn are absent")
class Conformance(unittest.TestCase):
    """scikit-learn's own estimator checks; the checks an estimator declares it cannot pass
    (its _xfail_checks tag, with the reason; docs/python.md) are skipped."""

    def test_every_estimator_passes_check_estimator(self):
        import warnings

        from sklearn.utils.estimator_checks import check_estimator
        for est in (escala.GBDTRegressor(n_estimators=10), escala.GBDTClassifier(n_estimators=10),
                    escala.RandomForestRegressor(n_estimators=10),
                    escala.RandomForestClassifier(n_estimators=10), escala.LogisticRegression(),
                    escala.LinearRegression(), escala.MLPRegressor(), escala.MLPClassifier()):
            with self.subTest(estimator=type(est).__name__), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check_estimator(est)


class Behaviour(unittest.TestCase):
    def test_ctrl_c_stops_a_long_fit_and_leaves_the_process_usable(self):
        import sys
        script = (
            "import os, signal, threading, time, numpy as np, escala\n"
            "X = np.random.default_rng(0).normal(size=(200000, 20)); y = (X[:, 0] > 0) * 1\n"
            "threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
            "t = time.time()\n"
            "try:\n"
            "    escala.GBDTClassifier(n_estimators=100000, max_depth=8).fit(X, y)\n"
            "    print('not interrupted')\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted after', round(time.time() - t, 1))\n"
            "print('usable', escala.GBDTClassifier(n_estimators=3).fit(X[:500], y[:500])"
            ".score(X[:500], y[:500]) > 0.9)\n")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=120, env=os.environ)
        self.assertIn("interrupted after", out.stdout, out.stdout + out.stderr)
        self.assertIn("usable True", out.stdout, out.stdout + out.stderr)
        after = float(out.stdout.split("interrupted after")[1].split()[0])
        self.assertLess(after, 30)

    def test_logs_go_to_pythons_logging(self):
        import logging
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        handler = Keep()
        logger = logging.getLogger("escala")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        escala.set_log_level("info")
        try:
            X = np.random.default_rng(1).normal(size=(300, 3))
            escala.GBDTRegressor(n_estimators=5).fit(X, X[:, 0])
        finally:
            escala.set_log_level("warn")
            logger.removeHandler(handler)
        self.assertTrue(any("gbdt" in r for r in records), records)

    @unittest.skipUnless(HAVE_SKLEARN, "pandas and scikit-learn are absent")
    def test_pandas_nullable_numbers_bytes_and_missing_categories(self):
        df = pd.DataFrame({"a": pd.array([1, None, 3, 4], dtype="Int64"),
                           "b": np.array([b"x", b"y", b"x", b"y"]),
                           "c": pd.Categorical(["u", None, "v", "u"])})
        d = escala.describe(df)
        self.assertEqual(d.loc["a", "type"], "float64")
        self.assertEqual(d.loc["a", "missing"], 1)
        self.assertEqual(d.loc["c", "missing"], 1)
        p = escala.Pipeline("onehot(b)").fit(df[["b"]])
        self.assertEqual(sorted(p.get_feature_names_out()), ["b=x", "b=y"])
        with tempfile.TemporaryDirectory() as t:
            path = os.path.join(t, "m.csv")
            with open(path, "w") as f:
                f.write("color,v\nred,1\n,2\nblue,3\n")
            self.assertEqual(escala.describe(path).loc["color", "missing"], 1)


class Library(unittest.TestCase):
    def test_the_api_reference_is_current(self):
        import sys
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        out = subprocess.run([sys.executable, os.path.join(root, "scripts", "python-api-doc.py")],
                             capture_output=True, text=True, check=True, env=os.environ).stdout
        with open(os.path.join(root, "docs", "python_api.md"), encoding="utf-8") as f:
            self.assertEqual(f.read(), out, "regenerate: PYTHONPATH=build/release/python "
                             "python3 scripts/python-api-doc.py > docs/python_api.md")

    def test_train_by_declared_parameter_names(self):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(400, 3))
        y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
        model = escala.train({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]}, y, model="gbdt",
                             rounds=30, max_depth=3)
        self.assertEqual(model.task, "binary")
        self.assertIn("gbdt", model.describe())
        p = model.predict({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})[:, 0]
        self.assertGreater(((p > 0.5) == y).mean(), 0.9)
        phi, names = model.contributions({"a": X[:5, 0], "b": X[:5, 1], "c": X[:5, 2]})
        self.assertEqual(names[-1], "bias")
        self.assertEqual(phi.shape, (5, 4))
        names = {p["name"] for p in escala.parameters()}
        self.assertTrue({"rounds", "max_depth", "lr", "label"} <= names)

    def test_train_from_files_in_memory_or_streamed(self):
        rng = np.random.default_rng(4)
        X = rng.normal(size=(6000, 4))
        y = (X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(scale=0.5, size=6000) > 0).astype(int)
        with tempfile.TemporaryDirectory() as d:
            for part in range(2):  # two part files, read as one dataset through a glob
                rows = slice(part * 3000, (part + 1) * 3000)
                np.savetxt(os.path.join(d, f"part-{part}.csv"),
                           np.column_stack([X[rows], y[rows]]), delimiter=",",
                           header="a,b,c,d,y", comments="", fmt="%.6f")
            glob = os.path.join(d, "part-*.csv")
            whole = escala.train(glob, label="y", model="logistic")
            streamed = escala.train(glob, label="y", model="logistic", memory_budget=64 << 10)
        cols = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "d": X[:, 3]}
        # L-BFGS through streamed passes reaches the in-memory model (docs/training.md).
        np.testing.assert_allclose(streamed.predict(cols), whole.predict(cols), atol=1e-4)
        self.assertGreater(((whole.predict(cols)[:, 0] > 0.5) == y).mean(), 0.85)
        with self.assertRaisesRegex(ValueError, "label="):
            escala.train(glob)

    @unittest.skipUnless(os.environ.get("ESCALA_CLI"), "the CLI's path is not given")
    def test_a_bundle_from_python_scores_the_same_with_the_cli(self):
        rng = np.random.default_rng(1)
        X = rng.normal(size=(200, 2))
        y = X[:, 0] - 2 * X[:, 1]
        model = escala.train({"u": X[:, 0], "v": X[:, 1]}, y, model="gbdt", rounds=20)
        with tempfile.TemporaryDirectory() as d:
            model.save(os.path.join(d, "m.bundle"))
            np.savetxt(os.path.join(d, "x.csv"), X, delimiter=",", header="u,v", comments="",
                       fmt="%.17g")
            subprocess.run([os.environ["ESCALA_CLI"], "score", "--model",
                            os.path.join(d, "m.bundle"), "--data", os.path.join(d, "x.csv"),
                            "--out", os.path.join(d, "s.csv")], check=True,
                           capture_output=True)
            cli = np.loadtxt(os.path.join(d, "s.csv"), delimiter=",", skiprows=1)
        np.testing.assert_allclose(cli, model.predict({"u": X[:, 0], "v": X[:, 1]})[:, 0],
                                   rtol=1e-6)


@unittest.skipUnless(HAVE_SKLEARN, "pandas and scikit-learn are absent")
class PipelinesStatisticsServing(unittest.TestCase):
    def test_a_pipeline_transforms_as_the_cli_and_pickles(self):
        df = escala.read_csv(PENGUINS).drop(columns="species")
        p = escala.Pipeline("impute(median) | impute(most_frequent) | standardize | "
                            "onehot(island, sex)")
        Z = p.fit_transform(df)
        self.assertEqual(Z.shape, (344, 10))
        self.assertEqual(Z.dtype, np.float32)
        self.assertIn("island=Biscoe", list(p.get_feature_names_out()))
        np.testing.assert_allclose(Z[:, list(p.get_feature_names_out()).index("bill_length_mm")]
                                   .mean(), 0, atol=1e-5)
        again = pickle.loads(pickle.dumps(p))
        np.testing.assert_array_equal(again.transform(df), Z)
        with self.assertRaisesRegex(escala.Error, "nosuchstep"):
            escala.Pipeline("nosuchstep").fit(df)

    def test_describe_and_report(self):
        df = escala.read_csv(PENGUINS)
        d = escala.describe(df, label="species")
        ref = pd.read_csv(PENGUINS)
        self.assertEqual(d.loc["bill_length_mm", "missing"], ref["bill_length_mm"].isna().sum())
        self.assertAlmostEqual(d.loc["bill_length_mm", "mean"], ref["bill_length_mm"].mean(), 6)
        self.assertEqual(d.loc["species", "type"], "categorical")
        self.assertEqual(escala.describe(PENGUINS).shape[0], len(ref.columns))
        with tempfile.TemporaryDirectory() as t:
            escala.report(df, os.path.join(t, "r.html"), label="species")
            with open(os.path.join(t, "r.html"), encoding="utf-8") as f:
                html = f.read()
        self.assertIn("<svg", html)

    def test_the_embedded_server_serves_a_fitted_estimator(self):
        import urllib.request
        df = escala.read_csv(PENGUINS)
        clf = escala.GBDTClassifier(n_estimators=10).fit(df.drop(columns="species"), df.species)
        with escala.serve({"penguins": clf}) as server:
            url = f"http://127.0.0.1:{server.http_port}/v2/health/ready"
            self.assertEqual(urllib.request.urlopen(url, timeout=10).status, 200)
            client = escala.Client(f"127.0.0.1:{server.grpc_port}")
            self.assertTrue(client.ready())
            out = client.infer("penguins", df.drop(columns="species").head(3))
            self.assertEqual(list(out["label"]), ["Adelie"] * 3)
            self.assertEqual(out["probabilities"].shape, (3, 3))
            with self.assertRaises(FileNotFoundError):
                client.infer("nosuch", df.head(1))
            if os.environ.get("ESCALA_CLI"):
                out = subprocess.run([os.environ["ESCALA_CLI"], "query", "--server",
                                      f"127.0.0.1:{server.grpc_port}", "--model", "penguins",
                                      "--data", PENGUINS, "--rows", "2"], capture_output=True,
                                     text=True, timeout=60, check=True).stdout
                self.assertIn("label=Adelie", out)  # the bundle names the classes


@unittest.skipUnless(os.environ.get("ESCALA_CLI"), "the CLI's path is not given")
class Distributed(unittest.TestCase):
    def test_a_process_alone_is_a_job_of_one(self):
        with escala.distributed.init() as comm:
            self.assertEqual((comm.rank, comm.size), (0, 1))
            a = np.ones(3, dtype=np.float32)
            comm.allreduce(a)
            np.testing.assert_array_equal(a, 1)
            with self.assertRaisesRegex(escala.Error, "float32, float64, int32 or int64"):
                comm.allreduce(np.ones(2, dtype=np.int16))
            with self.assertRaisesRegex(escala.Error, "writeable C-contiguous"):
                comm.allreduce(np.ones((3, 3), dtype=np.float32).T)

    def run_workers(self, launcher):
        import sys
        worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_worker.py")
        with tempfile.TemporaryDirectory() as d:
            r = subprocess.run(launcher + [sys.executable, worker, d], capture_output=True,
                               text=True, timeout=180)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.lr = np.load(os.path.join(d, "lr.npy"))
            return np.load(os.path.join(d, "dp.npy"))

    def expect_one_workers_model(self, dp):
        import sys
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from distributed_worker import shared_data
        X, y = shared_data()
        alone = escala.GBDTClassifier(n_estimators=20, max_depth=3).fit(X, y)
        # Two workers grow exactly the trees one grows on all the rows.
        np.testing.assert_array_equal(dp, alone.predict_proba(X))
        lr = escala.LogisticRegression().fit(X, y)
        # To L-BFGS rounding (2.5e-5 here); a penalty off by half its size moves them 1e-4.
        np.testing.assert_allclose(self.lr, lr.predict_proba(X), atol=6e-5)

    def test_collectives_and_a_data_parallel_fit_under_escala_launch(self):
        dp = self.run_workers([os.environ["ESCALA_CLI"], "launch", "--nproc", "2", "--"])
        self.expect_one_workers_model(dp)

    def test_the_same_under_torchrun(self):
        import shutil
        torchrun = shutil.which("torchrun", path="/usr/bin")
        if torchrun is None:
            self.skipTest("torchrun (python3-torch) is absent")
        with tempfile.TemporaryDirectory() as logs:
            # Debian 12's torch cannot parse its own default --redirects/--tee: say them.
            dp = self.run_workers([torchrun, "--redirects", "1", "--tee", "1", "--log_dir", logs,
                                   "--standalone", "--nproc_per_node", "2", "--no_python"])
        self.expect_one_workers_model(dp)


class OnnxModels(unittest.TestCase):
    """An ONNX graph loads as a model (escala's ONNX runtime) and predicts from numpy."""

    def test_an_onnx_regressor_and_classifier_predict_from_numpy(self):
        try:
            import onnx
            from onnx import TensorProto, helper
        except ImportError:
            self.skipTest("python3-onnx is absent")
        coef = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], np.float32)
        x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
        graph = helper.make_graph(
            [helper.make_node("LinearRegressor", ["x"], ["y"], domain="ai.onnx.ml",
                              coefficients=coef.ravel().tolist(), intercepts=[0.25, -1.0],
                              targets=2)],
            "reg", [x_info], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                        helper.make_opsetid("ai.onnx.ml", 1)])
        X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.onnx")
            onnx.save(model, path)
            m = escala.load(path)
            self.assertEqual(m.training_config["source"], "onnx")
            self.assertEqual([n for n, _ in m.inputs], ["x_0", "x_1", "x_2"])
            np.testing.assert_allclose(m.predict(X), X @ coef.T + [0.25, -1.0], rtol=1e-5,
                                       atol=1e-6)
            with open(path, "wb") as f:
                f.write(model.SerializeToString()[:40])
            with self.assertRaisesRegex(escala.Error, "m.onnx"):
                escala.load(path)

    def test_an_estimator_exported_to_onnx_predicts_as_itself(self):
        try:
            import onnx
        except ImportError:
            self.skipTest("python3-onnx is absent")
        rng = np.random.default_rng(1)
        X = rng.normal(size=(300, 4)).astype(np.float32)
        y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
        for clf in (escala.LogisticRegression(), escala.GBDTClassifier(n_estimators=10)):
            clf.fit(X, y)
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "m.onnx")
                clf.to_onnx(path, opset=13)
                onnx.checker.check_model(onnx.load(path), full_check=True)
                np.testing.assert_allclose(escala.load(path).predict(X), clf.predict_proba(X),
                                           atol=1e-5)


if __name__ == "__main__":
    unittest.main()
