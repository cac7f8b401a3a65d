"""The models the RNN literature compares against, on the same data and splits.

* :mod:`.forecasting` - naive, seasonal naive, linear autoregression (NumPy);
* :mod:`.statsmodels_ts` - exponential smoothing (ETS) and SARIMA (statsmodels);
* :mod:`.text` - TF-IDF + logistic regression (scikit-learn);
* :mod:`.markov` - n-gram Markov language model with smoothing;
* TDNN and MLP encoders live in :mod:`rnnkit.modules.encoders` and are selected with
  ``--model tdnn|mlp`` on the classify / tag / forecast commands.
"""
