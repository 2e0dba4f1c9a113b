"""The Certify & Detect page: what can be guaranteed or noticed when accuracy
under attack is not enough (randomized smoothing, detectors, two-sample
tests), one tab each."""
