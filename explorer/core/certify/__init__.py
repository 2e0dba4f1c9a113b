"""What can be guaranteed or noticed when accuracy under attack is not enough:
certified radii by randomized smoothing (:mod:`.smoothing`,
:mod:`.empirical`), adversarial-example detectors (:mod:`.detect`,
:mod:`.detectors`) and two-sample tests under attack (:mod:`.two_sample`,
:mod:`.two_sample_job`).

Import the modules themselves (``from explorer.core.certify import
smoothing``); this package re-exports nothing, so importing one part never
loads the others.
"""
