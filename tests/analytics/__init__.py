"""Tests of :mod:`alpnsniff.analytics`."""
