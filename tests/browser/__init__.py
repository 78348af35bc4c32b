"""Autobahn|JS in headless Chromium against our router (opt-in: tox -e browser)."""
