"""Multi-label image tagging: the tags predicted as a sequence by a recurrent decoder over a CNN's features
(CNN-RNN, Wang et al. 2016), or by a sigmoid per tag (the baseline); ``rnnkit train tag-images``."""
