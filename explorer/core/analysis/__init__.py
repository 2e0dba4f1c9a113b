"""Analysis jobs: evaluation now; boundaries, landscapes and detectors later."""
