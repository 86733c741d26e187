"""scikit-learn estimators trained by chainrule: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's parameters with scikit-learn's meanings (``hidden_layer_sizes``,
``activation``, ``solver``, ``alpha``, ``batch_size``, ``learning_rate_init``, ``max_iter``,
``tol``, ``n_iter_no_change``, ``early_stopping``, ``warm_start``...), so they drop into a
``Pipeline``, ``GridSearchCV`` or ``cross_val_score`` in place of
``sklearn.neural_network``'s, and train in float32 with chainrule's engine. Two parameters are
chainrule's own: ``optimizer`` (any of chainrule's optimizers, by name or as a function of the
parameters) and ``epochs`` (train exactly that many epochs, with no convergence test).

>>> from chainrule.sklearn import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=50).fit(X, y)
>>> clf.predict_proba(X[:3]); clf.model_              # the trained chainrule Sequential

What differs from scikit-learn: ``solver='lbfgs'`` (and its ``max_fun``), the Poisson loss and
multi-label targets are not available; with a changing learning rate (``invscaling``,
``adaptive``) momentum follows PyTorch's rule, where the rate scales the whole step. As in
scikit-learn, with several regression targets the loss reported (and compared with ``tol``)
averages the squared error over the targets while training follows its sum over them. The
fitted network is ``model_``: ``cr.save`` and ``cr.onnx.export`` take it as it is.
"""

from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
