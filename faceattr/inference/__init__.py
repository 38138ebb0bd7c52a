"""Using trained views: the weights bundle, the batched encoder, the 40 heads, the predictor, the
scikit-learn transformer, feature extraction."""
