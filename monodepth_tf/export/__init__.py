"""Exporting a depth network: TF Serving SavedModels and TFLite models."""
