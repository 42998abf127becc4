"""Prediction with trained networks: the predictor, test-time post-processing, colour maps."""
