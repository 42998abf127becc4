"""Scoring predictions: depth metrics, pose (ATE) and the KITTI leaderboard submission."""
